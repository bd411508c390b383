-- A chain of N :next handlers, each on the previous promise.
local common = require("common")
local n = tonumber(arg[1]) or 100000
local p = promise.resolve(0)
for _ = 1, n do p = p:next(function(v) return v + 1 end) end
assert(await(p) == n)
common.report({ rss_kb = common.rss_kb() })
