-- N tasks each awaiting sleep(10), joined with all().
local common = require("common")
local n = tonumber(arg[1]) or 100000
local ps = {}
for i = 1, n do ps[i] = async(function() await(sleep(10)); return i end) end
local r = await(all(ps))
assert(r.n == n and r[n] == n)
common.report({ rss_kb = common.rss_kb() })
