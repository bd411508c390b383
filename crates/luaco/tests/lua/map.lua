-- map(list, fn, concurrency)
local active, peak = 0, 0
local out = await(map({ 10, 20, 30, 40, 50 }, function(v, i)
  active = active + 1
  if active > peak then peak = active end
  await(sleep(2))
  active = active - 1
  return v + i
end, 2))
assert(peak == 2, "peak=" .. peak)
assert(out.n == 5 and out[1] == 11 and out[5] == 55)
-- default concurrency: all at once
peak, active = 0, 0
await(map({ 1, 2, 3, 4 }, function() active = active + 1; peak = math.max(peak, active); await(sleep(1)); active = active - 1 end))
assert(peak == 4)
-- fn may return promises; they are awaited
local r = await(map({ 1, 2 }, function(v) return async(function() return v * 10 end) end))
assert(r[1] == 10 and r[2] == 20)
assert(await(map({}, function() end)).n == 0)
-- the first error rejects and cancels the tasks still running
local finished = 0
local ok, e = pcall(await, map({ 1, 2, 3 }, function(v)
  if v == 1 then await(sleep(1)); error("bad item") end
  await(sleep(200)); finished = finished + 1
end, 3))
assert(not ok and e.message:find("bad item", 1, true))
await(sleep(250))
assert(finished == 0, "running tasks were cancelled")
local okb, eb = pcall(map, {}, function() end, 0)
assert(not okb and eb.kind == "type")
local okc, ec = pcall(map, "x", function() end)
assert(not okc and ec.kind == "type")
return "ok"
