-- promise.new/resolve/reject, next/and_then/then/catch/finally, status, settle-once.
local p = promise.new(function(resolve, reject) resolve(1); resolve(2); reject("no") end)
assert(p:status() == "resolved" and await(p) == 1, "settles once")

local ran = false
local q = promise.new(function() ran = true end)
assert(ran, "executor runs at once")
assert(q:status() == "pending")

local bad = promise.new(function() error("in executor") end)
assert(bad:status() == "rejected")
local ok, e = pcall(await, bad)
assert(not ok and e.kind == "runtime" and e.message:find("in executor", 1, true))
local badt = promise.new(function() error({ code = 7 }) end)
local _, et = pcall(await, badt)
assert(et.code == 7, "non-string raised values are the reason unchanged")
local _, en = pcall(await, promise.new(function() error(42) end))
assert(en == 42)

assert(not pcall(promise.new, 5))

-- handlers run on a later turn, never synchronously
local sync_ran = false
local r = promise.resolve(10)
local n = r:next(function(v) sync_ran = true; return v + 1 end)
assert(not sync_ran, "handler must not run synchronously")
assert(await(n) == 11)
-- aliases
assert(await(r:and_then(function(v) return v * 2 end)) == 20)
assert(await(r["then"](r, function(v) return v * 3 end)) == 30)
-- handlers may await, returned promises are adopted
assert(await(r:next(function(v) await(sleep(1)); return async(function() return v + 5 end) end)) == 15)
-- missing handlers pass through; non-function handlers are ignored
assert(await(r:next(nil, function() return "unused" end)) == 10)
assert(await(r:next(42)) == 10)
local rej = promise.reject("bad")
assert(await(rej:next(function() return "unused" end):catch(function(e) return "caught " .. e end)) == "caught bad")
-- errors in handlers reject the derived promise
local _, he = pcall(await, r:next(function() error("handler boom") end))
assert(he.kind == "runtime" and he.message:find("handler boom", 1, true))

-- finally: runs on any settlement, passes the outcome through, may await
local fin = {}
assert(await(r:finally(function() fin[#fin + 1] = "a"; await(sleep(1)) end)) == 10)
local okf, ef = pcall(await, rej:finally(function() fin[#fin + 1] = "b" end))
assert(not okf and ef == "bad")
-- finally that raises replaces the outcome
local okr, er = pcall(await, r:finally(function() error("fin err") end))
assert(not okr and er.message:find("fin err", 1, true))
-- finally returning a rejected promise rejects
local okpr, epr = pcall(await, r:finally(function() return promise.reject("late") end))
assert(not okpr and epr == "late")
assert(table.concat(fin, ",") == "a,b")

-- promise.resolve adopts promises and thenables
assert(await(promise.resolve(promise.resolve(3))) == 3)
local calls = 0
local thenable = { ["then"] = function(self, res, rej) calls = calls + 1; res("from thenable"); res("again"); rej("ignored") end }
assert(await(promise.resolve(thenable)) == "from thenable")
assert(calls == 1)
local bad_thenable = { ["then"] = function(self, res) error("thenable error") end }
local okt, etb = pcall(await, promise.resolve(bad_thenable))
assert(not okt and etb.message:find("thenable error", 1, true))
local late_error = { ["then"] = function(self, res) res("first"); error("ignored after") end }
assert(await(promise.resolve(late_error)) == "first")
-- `then` is read exactly once
local reads = 0
local counted = setmetatable({}, { __index = function(_, k)
  if k == "then" then reads = reads + 1; return function(_, res) res("counted") end end
end })
assert(await(promise.resolve(counted)) == "counted" and reads == 1, "reads=" .. reads)
-- a task resolving to a thenable adopts it
assert(await(async(function() return thenable end)) == "from thenable")
-- status strings
assert(promise.resolve(1):status() == "resolved")
local rj = promise.reject("x"); rj:catch(function() end)
assert(rj:status() == "rejected")
assert(tostring(promise.resolve(1)):find("promise", 1, true))
return "ok"
