-- Deadlines and races: timeout(p, ms) rejects with kind "timeout" and cancels
-- the slow work; race() settles like the first input to settle.
-- Run: luaco run examples/timeout_race.lua
local function job(name, ms)
  return async(function() await(sleep(ms)); return name end)
end

-- Work that finishes in time passes straight through.
assert(await(timeout(job("quick", 5), 100)) == "quick")
print("timeout(quick, 100): quick")

-- Work that is too slow: rejected with kind "timeout", and the work is cancelled.
local slow = job("slow", 10000)
local t0 = now()
local ok, err = pcall(await, timeout(slow, 25))
local waited = now() - t0
print(string.format("timeout(slow, 25): %s after %.0f ms; message: %s; slow is %s",
  err.kind, waited, tostring(err), slow:status()))
assert(not ok and err.kind == "timeout" and slow:status() == "cancelled")
assert(waited >= 25 and waited < 1000)

-- A rejection inside the deadline stays that rejection, not a timeout.
local ok2, err2 = pcall(await, timeout(async(function() error("broken", 0) end), 100))
assert(not ok2 and err2.kind == "runtime" and tostring(err2) == "broken")
print("timeout(failing, 100): " .. err2.kind .. " " .. tostring(err2))

-- race: the fastest sleep wins; the others keep running unless cancelled.
local racers = { job("tortoise", 60), job("hare", 10), job("snail", 200) }
t0 = now()
local winner = await(race(racers))
print(string.format("race winner: %s after %.0f ms", winner, now() - t0))
assert(winner == "hare")
assert(racers[1]:status() == "pending" and racers[3]:status() == "pending")
for _, p in ipairs(racers) do p:cancel() end -- stop the losers ourselves

-- race also settles like a rejection if that comes first.
local ok3, err3 = pcall(await, race({ job("late", 50), async(function() await(sleep(5)); error("crash", 0) end) }))
assert(not ok3 and tostring(err3) == "crash")
print("race with an early failure: " .. tostring(err3))

-- race against a timer is a timeout by hand that does not cancel the loser.
local result = await(race({ job("answer", 80), sleep(20):next(function() return "gave up waiting" end) }))
print("race against sleep: " .. result)
assert(result == "gave up waiting")

-- race({}) is a type error, raised at once.
local ok4, err4 = pcall(race, {})
assert(not ok4 and err4.kind == "type")
print("race({}): " .. err4.kind .. " error: " .. tostring(err4))
