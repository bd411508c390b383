-- async functions and await: the same three waits run one after another,
-- then all at once, timed with now().
-- Run: luaco run examples/basic_await.lua
--   (or: cargo run -p luaco-cli -- run examples/basic_await.lua)

-- An "async function" is a plain function that awaits; async() runs it as a task.
local function work(name, ms)
  await(sleep(ms))
  return name .. " after " .. ms .. " ms"
end

-- await works at top level: the main chunk is a task too.
local first = await(async(work, "warm-up", 5))
print(first)
assert(first == "warm-up after 5 ms")

-- Sequential: each await waits for the previous task to finish (~30+30+30 ms).
local t0 = now()
local seq = {}
for i = 1, 3 do seq[i] = await(async(work, "seq" .. i, 30)) end
local sequential_ms = now() - t0
print(string.format("sequential: %s | %.0f ms", table.concat(seq, ", "), sequential_ms))

-- Concurrent: start all three tasks first, then await each (~30 ms in total).
t0 = now()
local tasks = {}
for i = 1, 3 do tasks[i] = async(work, "con" .. i, 30) end
local con = {}
for i = 1, 3 do con[i] = await(tasks[i]) end
local concurrent_ms = now() - t0
print(string.format("concurrent: %s | %.0f ms", table.concat(con, ", "), concurrent_ms))

-- A task does not start inside async(); it runs on a later scheduler turn.
local started = false
local p = async(function() started = true; return 42 end)
print("status right after async(): " .. p:status() .. ", started = " .. tostring(started))
assert(p:status() == "pending" and not started)
assert(await(p) == 42 and p:status() == "resolved" and started)
-- Awaiting an already-settled promise returns at once.
assert(p:await() == 42)

assert(sequential_ms >= 90, "sequential run was too fast")
assert(concurrent_ms >= 30 and concurrent_ms < sequential_ms * 0.75,
  "concurrent run should take about one wait, not three")
print(string.format("speed-up: %.1fx", sequential_ms / concurrent_ms))
