-- Timers: sleep, set_timeout, set_interval with :cancel(), and a retry loop
-- with exponential backoff built on sleep.
-- Run: luaco run examples/timers.lua
local t0 = now()
await(sleep(20))
local slept = now() - t0
print(string.format("sleep(20) took %.1f ms", slept))
assert(slept >= 20)

-- set_timeout runs its function once, as a task; a cancelled one never runs.
local fired = {}
set_timeout(function() fired[#fired + 1] = "timeout A" end, 10)
local b = set_timeout(function() fired[#fired + 1] = "timeout B" end, 10)
assert(b:cancel() == true and b:cancel() == false) -- true only if it stopped a pending timer

-- set_interval repeats until cancelled; here it cancels itself after 5 ticks.
local ticks, interval = 0, nil
t0 = now()
local done = promise.new(function(resolve)
  interval = set_interval(function()
    ticks = ticks + 1
    if ticks == 5 then assert(interval:cancel()); resolve(now() - t0) end
  end, 10)
end)
local elapsed = await(done)
await(sleep(30)) -- no more ticks after cancel
print(string.format("interval: %d ticks in %.0f ms; fired: %s", ticks, elapsed, table.concat(fired, ", ")))
assert(ticks == 5 and elapsed >= 50 and #fired == 1 and fired[1] == "timeout A")

-- Retry with backoff: wait 5, 10, 20 ... ms between attempts.
local function retry(fn, attempts, base_ms)
  for attempt = 1, attempts do
    local ok, result = pcall(fn, attempt)
    if ok then return result, attempt end
    if attempt == attempts then error(result, 0) end
    local delay = base_ms * 2 ^ (attempt - 1)
    print(string.format("  attempt %d failed (%s); retrying in %d ms", attempt, tostring(result), delay))
    await(sleep(delay))
  end
end

local function flaky(attempt)
  await(sleep(1))
  if attempt < 4 then error("service unavailable", 0) end
  return "ok on attempt " .. attempt
end
t0 = now()
local result, attempts = retry(flaky, 5, 5)
local waited = now() - t0
print(string.format("retry: %s after %.0f ms", result, waited))
assert(attempts == 4 and waited >= 5 + 10 + 20)

-- When every attempt fails, the last error comes out.
local ok, err = pcall(retry, function() error("still down", 0) end, 2, 1)
print("gave up:", ok, err)
assert(not ok and err == "still down")
