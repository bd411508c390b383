-- Fan out work to concurrent tasks, bound the concurrency with map(), and
-- collect the results in order. Run: cargo run -p luaco-cli -- run examples/fanout.lua
local t0 = now()

-- Pretend each job is a network call that takes a while.
local function fetch(id)
  await(sleep(10 + (id % 3) * 5))
  return string.format("job %d done", id)
end

local jobs = {}
for i = 1, 12 do jobs[i] = i end

-- At most 4 jobs in flight at once.
local results = await(map(jobs, fetch, 4))
for i = 1, results.n do print(results[i]) end

-- The first of several racers wins; the losers are left to finish.
local winner = await(race({
  async(function() await(sleep(30)); return "slow" end),
  async(function() await(sleep(5)); return "fast" end),
}))
print("race winner: " .. winner)

-- A deadline: timeout() rejects with kind "timeout" and cancels the work.
local ok, err = pcall(await, timeout(sleep(1000), 20))
print("timeout: " .. tostring(ok) .. " " .. err.kind)

print(string.format("elapsed: about %d ms", math.floor(now() - t0)))
