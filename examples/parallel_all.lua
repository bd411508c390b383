-- Combinators: all, all_settled (and its status values), any, and map with a
-- concurrency limit. Run: luaco run examples/parallel_all.lua
local function after(ms, v) return async(function() await(sleep(ms)); return v end) end
local function fail_after(ms, msg) return async(function() await(sleep(ms)); error(msg, 0) end) end

-- all: values in list order (not finish order), with n; plain values pass through.
local vals = await(all({ after(30, "a"), after(10, "b"), "plain", after(20, "c") }))
print("all:", vals.n, table.concat(vals, " "))
assert(vals.n == 4 and vals[1] == "a" and vals[2] == "b" and vals[3] == "plain" and vals[4] == "c")
-- ... and rejects with the first rejection.
local ok, err = pcall(await, all({ after(30, "x"), fail_after(5, "early failure") }))
assert(not ok and tostring(err):find("early failure"))
print("all rejected:", tostring(err))

-- all_settled never rejects; each entry has status "resolved", "rejected" or "cancelled".
local doomed = after(1000, "never")
local settled = all_settled({ after(5, 1), fail_after(5, "bad"), doomed })
doomed:cancel()
settled = await(settled)
for i = 1, settled.n do
  local s = settled[i]
  print(string.format("all_settled[%d]: %-9s %s", i, s.status, tostring(s.value or s.reason or "")))
end
assert(settled[1].status == "resolved" and settled[1].value == 1)
assert(settled[2].status == "rejected" and tostring(settled[2].reason):find("bad"))
assert(settled[3].status == "cancelled")
print("as JSON:", json.encode({ settled[1].status, settled[2].status, settled[3].status }))

-- any: the first success wins; if every input fails, kind "aggregate" lists the reasons
-- (in list order; a raised string became an error object, so compare tostring()s).
local first = await(any({ fail_after(1, "nope"), after(20, "slow ok"), after(10, "fast ok") }))
print("any:", first)
assert(first == "fast ok")
local ok2, agg = pcall(await, any({ fail_after(5, "e1"), fail_after(1, "e2") }))
print("any failed:", agg.kind, tostring(agg), agg.errors.n, agg.errors[1].kind, tostring(agg.errors[1]), tostring(agg.errors[2]))
assert(not ok2 and agg.kind == "aggregate" and tostring(agg.errors[1]) == "e1" and tostring(agg.errors[2]) == "e2")

-- map: at most `limit` calls in flight at once; results keep input order.
local in_flight, peak = 0, 0
local items = {}
for i = 1, 10 do items[i] = i end
local t0 = now()
local squares = await(map(items, function(n, i)
  in_flight = in_flight + 1
  peak = math.max(peak, in_flight)
  await(sleep(10))
  in_flight = in_flight - 1
  return n * n
end, 3))
print(string.format("map: %s | peak %d in flight, %.0f ms", table.concat(squares, ","), peak, now() - t0))
assert(squares.n == 10 and squares[10] == 100 and peak == 3)
assert(json.encode(squares) == "[1,4,9,16,25,36,49,64,81,100]")
