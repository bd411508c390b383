-- sleep, set_timeout, set_interval, now; the turn rule.
local t0 = now()
await(sleep(20))
assert(now() - t0 >= 20, "sleep waits at least ms")
assert(type(now()) == "number")
await(sleep(0.5))

-- sleep(0) resolves on the next turn, after tasks already ready this turn
local order = {}
local a = async(function() await(sleep(0)); order[#order + 1] = "a after sleep0" end)
local b = async(function() order[#order + 1] = "b"; coroutine.yield(); order[#order + 1] = "b2" end)
await(all({ a, b }))
assert(order[1] == "b", table.concat(order, ","))

-- timers with the same deadline fire in creation order
local fired = {}
for i = 1, 5 do set_timeout(function() fired[#fired + 1] = i end, 10) end
await(sleep(30))
assert(table.concat(fired, ",") == "1,2,3,4,5", table.concat(fired, ","))

-- cancel a timeout
local ran = false
local h = set_timeout(function() ran = true end, 5)
assert(h:cancel() == true)
assert(h:cancel() == false)
await(sleep(15))
assert(not ran)
-- a fired timer cannot be cancelled
local h2 = set_timeout(function() end, 1)
await(sleep(10))
assert(h2:cancel() == false)

-- intervals repeat until cancelled
local count = 0
local iv
iv = set_interval(function() count = count + 1; if count == 3 then iv:cancel() end end, 2)
await(sleep(60))
assert(count == 3, "count=" .. count)

-- argument checks
for _, bad in ipairs({ "5", -1, 1/0, 0/0, {} }) do
  local ok, e = pcall(sleep, bad)
  assert(not ok and e.kind == "type", tostring(bad))
end
local ok1, e1 = pcall(set_timeout, "not a function", 5)
assert(not ok1 and e1.kind == "type")
local ok2, e2 = pcall(set_interval, function() end, "5")
assert(not ok2 and e2.kind == "type")
return "ok"
