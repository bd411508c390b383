-- all, all_settled, race, any, timeout (also under promise.*).
assert(promise.all == all and promise.race == race and promise.any == any)
local function after(ms, v) return async(function() await(sleep(ms)); return v end) end
-- Rejects with the plain string `e` (promise.reject does not wrap strings).
local function fail_after(ms, e) return async(function() await(sleep(ms)); return promise.reject(e) end) end

local r = await(all({ after(5, "a"), "plain", after(1, "c") }))
assert(r.n == 3 and r[1] == "a" and r[2] == "plain" and r[3] == "c")
local empty = await(all({}))
assert(empty.n == 0 and next(empty, nil) == "n")
local ok, e = pcall(await, all({ after(20, 1), fail_after(1, "first"), fail_after(5, "second") }))
assert(not ok and e == "first")
-- a cancelled input makes all reject with the cancelled error
local c = after(50, 1)
local a = all({ c })
c:cancel()
local okc, ec = pcall(await, a)
assert(not okc and ec.kind == "cancelled")
local holes = await(all({ n = 3, nil, after(1, 2), nil }))
assert(holes.n == 3 and holes[1] == nil and holes[2] == 2)

local s = await(all_settled({ after(1, "v"), fail_after(1, "why"), 7, c }))
assert(s.n == 4)
assert(s[1].status == "resolved" and s[1].value == "v")
assert(s[2].status == "rejected" and s[2].reason == "why")
assert(s[3].status == "resolved" and s[3].value == 7)
assert(s[4].status == "cancelled")

assert(await(race({ after(20, "slow"), after(1, "fast") })) == "fast")
local okr, er = pcall(await, race({ after(20, "slow"), fail_after(1, "boom") }))
assert(not okr and er == "boom")
assert(await(race({ after(5, 1), "now" })) == "now")
local okre, ere = pcall(race, {})
assert(not okre and ere.kind == "type")

assert(await(any({ fail_after(1, "x"), after(5, "y") })) == "y")
local oka, ea = pcall(await, any({ fail_after(5, "e1"), fail_after(1, "e2") }))
assert(not oka and ea.kind == "aggregate")
assert(ea.errors[1] == "e1" and ea.errors[2] == "e2", "errors are in list order")
local oke, ee = pcall(await, any({}))
assert(not oke and ee.kind == "aggregate" and #ee.errors == 0)
local c2 = after(50, 1)
local anyc = any({ c2 })
c2:cancel()
local okac, eac = pcall(await, anyc)
assert(not okac and eac.kind == "aggregate" and eac.errors[1].kind == "cancelled")

-- timeout settles like p within the deadline, else rejects and cancels p
assert(await(timeout(after(1, "in time"), 200)) == "in time")
local slow = after(500, "late")
local okt, et = pcall(await, timeout(slow, 5))
assert(not okt and et.kind == "timeout", tostring(et))
assert(slow:status() == "cancelled")
assert(await(timeout(5, 10)) == 5)
local okb, eb = pcall(timeout, after(1, 1), "10")
assert(not okb and eb.kind == "type")
local okf, ef = pcall(await, timeout(fail_after(1, "inner"), 100))
assert(not okf and ef == "inner")
return "ok"
