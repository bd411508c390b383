-- The churn workload `cargo xtask sanitize` runs under valgrind's memcheck:
-- everything that makes, reuses and throws away coroutines, promises and
-- error objects in bulk, through the runtime's C functions (resume, wrap,
-- close, pcall, xpcall). Every part checks its own result, so a run that
-- exits 0 did the work; memcheck says whether it did it cleanly.
-- arg[1]: how many tasks to spawn in all (1,000,000 by default).
local total = tonumber(arg[1]) or 1000000

-- Spawn churn, in rounds so the heap stays small: each task's worker
-- coroutine goes back to the pool and is reused by the next round.
local ROUND = 10000
local spawned, sum = 0, 0
while spawned < total do
  local n = math.min(ROUND, total - spawned)
  local ps = {}
  for i = 1, n do ps[i] = async(function(k) return k end, i) end
  for i = 1, n do sum = sum + await(ps[i]) end
  spawned = spawned + n
end
assert(spawned == total and sum > 0)

-- Cancel storms: sleeping tasks with pending `<close>` values and children
-- of their own, cancelled while suspended. A task cancelled before its
-- first turn runs nothing, and under a time slice a turn can end before
-- every task began, or a task be preempted before its `<close>` local is
-- in place: so the check is that no guard closed twice or out of nowhere,
-- and that few were left unclosed (none without a slice).
local started, closed = 0, 0
for _ = 1, 20 do
  local ps = {}
  for i = 1, 500 do
    ps[i] = async(function()
      started = started + 1
      local guard <close> = setmetatable({}, { __close = function() closed = closed + 1 end })
      async(function() await(sleep(60000)) end)
      await(sleep(60000))
    end)
  end
  await(sleep(0))
  for i = 1, #ps do assert(ps[i]:cancel()) end
end
assert(closed <= started and started - closed <= 20, closed .. " of " .. started)

-- Errors thrown across awaits, caught by pcall and xpcall on the far side,
-- and pcall yielding from inside a task.
local caught = 0
for round = 1, 200 do
  local failing = async(function()
    await(sleep(0))
    error({ round = round })
  end)
  local ok, e = pcall(await, failing)
  assert(not ok and e.round == round)
  local ok2, msg = xpcall(function()
    await(async(function() error("across " .. round) end))
  end, function(m) return "handled: " .. tostring(m) end)
  assert(not ok2 and msg:find("across " .. round, 1, true))
  local ok3, v = pcall(function() await(sleep(0)); return round end)
  assert(ok3 and v == round)
  caught = caught + 1
end
assert(caught == 200)

-- Plain coroutines inside tasks: wrap, resume, close, an error inside one,
-- a coroutine abandoned suspended (collected with its stack).
for i = 1, 2000 do
  local gen = coroutine.wrap(function(a)
    local b = coroutine.yield(a + 1)
    return b * 2
  end)
  assert(gen(i) == i + 1 and gen(3) == 6)
  local co = coroutine.create(function() error("inner " .. i) end)
  local ok, err = coroutine.resume(co)
  assert(not ok and err:find("inner " .. i, 1, true))
  local held = coroutine.create(function()
    local g <close> = setmetatable({}, { __close = function() end })
    coroutine.yield()
  end)
  coroutine.resume(held)
  if i % 2 == 0 then assert(coroutine.close(held)) end
end
collectgarbage()

-- Busy tasks beside a sleeper: under `--time-slice-ms` the watcher thread
-- interrupts them (a signal and a one-shot hook), many times over.
local busy = {}
for i = 1, 3 do
  busy[i] = async(function()
    local x = 0
    for j = 1, 3000000 do x = x + j % 7 end
    return x
  end)
end
local woke = async(function() await(sleep(1)); return "woke" end)
assert(await(woke) == "woke")
for i = 1, 3 do assert(await(busy[i]) > 0) end

print("churn ok", spawned, closed, caught)
