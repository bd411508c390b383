-- Tasks: async starts on a later turn, returns resolve, errors reject,
-- FIFO order, bare yields, the coroutine library inside tasks.
local log = {}
local p = async(function(a, b) log[#log + 1] = "ran"; return a + b, "ignored" end, 1, 2)
assert(#log == 0, "async must not run the task inside the call")
assert(p:status() == "pending")
assert(await(p) == 3)
assert(#log == 1)
assert(try_async == async or type(try_async) == "function")

-- FIFO: tasks made ready in the same turn run in creation order.
local order = {}
local ps = {}
for i = 1, 5 do ps[i] = async(function() order[#order + 1] = i end) end
await(all(ps))
assert(table.concat(order, ",") == "1,2,3,4,5", table.concat(order, ","))

-- A bare coroutine.yield in a task suspends it until the next turn, returns nothing.
local turns = {}
local a = async(function()
  turns[#turns + 1] = "a1"
  local r = select("#", coroutine.yield(1, 2, 3))
  turns[#turns + 1] = "a2:" .. r
end)
local b = async(function() turns[#turns + 1] = "b1"; coroutine.yield(); turns[#turns + 1] = "b2" end)
await(all({ a, b }))
assert(table.concat(turns, ",") == "a1,b1,a2:0,b2", table.concat(turns, ","))

-- The coroutine library keeps working inside tasks.
local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
assert(gen() == 1 and gen() == 2 and gen() == 3)
local co = coroutine.create(function(x) local y = coroutine.yield(x + 1); return y * 2 end)
local _, v1 = coroutine.resume(co, 1)
local _, v2 = coroutine.resume(co, 10)
assert(v1 == 2 and v2 == 20 and coroutine.status(co) == "dead")
-- await inside the task after using coroutines still works
assert(await(async(function() return "still fine" end)) == "still fine")

-- A task returning a promise adopts it.
local inner = async(function() await(sleep(1)); return "inner" end)
assert(await(async(function() return inner end)) == "inner")

-- Many tasks at once.
local many = {}
for i = 1, 1000 do many[i] = async(function() await(sleep(0)); return i end) end
local res = await(all(many))
assert(res.n == 1000 and res[1000] == 1000)

-- require("luaco") gives the same API.
local luaco = require("luaco")
assert(luaco.async == async and luaco.await == await and luaco.sleep == sleep)
return "ok"
