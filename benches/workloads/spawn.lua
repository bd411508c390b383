-- N trivial tasks spawned, then each awaited in turn.
local common = require("common")
local n = tonumber(arg[1]) or 1000000
local ps = {}
for i = 1, n do ps[i] = async(function() return i end) end
local sum = 0
for i = 1, n do sum = sum + await(ps[i]) end
assert(sum == n * (n + 1) // 2)
common.report({ rss_kb = common.rss_kb() })
