-- N trivial coroutines on one cqueues controller, run to completion.
package.path = arg[0]:match("^(.*/)") .. "../workloads/?.lua;" .. package.path
local cqueues = require("cqueues")
local common = require("common")
local n = tonumber(arg[1]) or 1000000
local cq = cqueues.new()
local sum = 0
for i = 1, n do cq:wrap(function() sum = sum + i end) end
assert(cq:loop())
assert(sum == n * (n + 1) // 2)
common.report({ rss_kb = common.rss_kb() })
