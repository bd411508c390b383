-- await: settled promises return at once; rejections raise the same value;
-- await outside a task raises; pcall, metamethods, iterators; <close>.
local resolved = promise.resolve(5)
assert(await(resolved) == 5)
assert(resolved:await() == 5)

local reason = { custom = true }
local ok, e = pcall(await, promise.reject(reason))
assert(not ok and e == reason, "await must raise the very same value")
local ok2, e2 = pcall(await, promise.reject("plain string"))
assert(not ok2 and e2 == "plain string")

-- non-promise argument
local ok3, e3 = pcall(await, 42)
assert(not ok3 and e3.kind == "type")
assert(tostring(e3):find("await() requires a promise argument", 1, true), tostring(e3))

-- inside a user coroutine: raises, even for a settled promise, and never yields to it
local co = coroutine.create(function() return await(promise.resolve(1)) end)
local okc, ec = coroutine.resume(co)
assert(okc == false, "await in a user coroutine must raise")
assert(tostring(ec):find("await() called outside an async task", 1, true), tostring(ec))
local wrapped = coroutine.wrap(function() await(sleep(1)) end)
local okw, ew = pcall(wrapped)
assert(not okw and tostring(ew):find("outside an async task", 1, true))

-- pcall / xpcall around a yielding await
local okp, vp = pcall(function() return await(async(function() await(sleep(1)); return "p" end)) end)
assert(okp and vp == "p")
local okx, vx = xpcall(function() await(sleep(1)); error("x!") end, function(m) return "handled: " .. tostring(m) end)
assert(not okx and vx:find("handled:", 1, true) and vx:find("x!", 1, true))

-- metamethods and iterators may await
local mt = { __index = function(_, k) await(sleep(1)); return k .. "!" end,
             __add = function(a, b) await(sleep(0)); return 99 end }
local obj = setmetatable({}, mt)
assert(obj.hi == "hi!")
assert(obj + 1 == 99)
local function slow_iter(n)
  local i = 0
  return function() await(sleep(0)); i = i + 1; if i <= n then return i end end
end
local sum = 0
for i in slow_iter(4) do sum = sum + i end
assert(sum == 10)

-- where Lua cannot yield, await of a pending promise raises
local okc2, ec2 = pcall(table.sort, { 3, 1, 2 }, function(a, b) await(sleep(1)); return a < b end)
assert(not okc2 and tostring(ec2):find("yield across", 1, true), tostring(ec2))
local okg, eg = pcall(string.gsub, "abc", "%w", function(c) await(sleep(1)); return c end)
assert(not okg and tostring(eg):find("yield across", 1, true), tostring(eg))
local slow_name = setmetatable({}, { __tostring = function() await(sleep(1)); return "x" end })
local okt, et = pcall(tostring, slow_name)
assert(not okt and tostring(et):find("yield across", 1, true), tostring(et))
-- a settled promise needs no yield, so it works even there
local sorted = { 3, 1, 2 }
local settled = promise.resolve(true)
table.sort(sorted, function(a, b) return await(settled) and a < b end)
assert(sorted[1] == 1 and sorted[3] == 3)

-- <close> values are closed on normal exit and on error
local closed = {}
local function closer(name) return setmetatable({}, { __close = function() closed[#closed + 1] = name end }) end
await(async(function() local c <close> = closer("normal"); await(sleep(1)) end))
pcall(await, async(function() local c <close> = closer("error"); await(sleep(1)); error("boom") end))
assert(closed[1] == "normal" and closed[2] == "error", table.concat(closed, ","))
return "ok"
