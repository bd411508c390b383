-- N coroutines each sleeping 10 ms on one cqueues controller, run to completion.
package.path = arg[0]:match("^(.*/)") .. "../workloads/?.lua;" .. package.path
local cqueues = require("cqueues")
local common = require("common")
local n = tonumber(arg[1]) or 100000
local cq = cqueues.new()
local done = 0
for _ = 1, n do cq:wrap(function() cqueues.sleep(0.01); done = done + 1 end) end
assert(cq:loop())
assert(done == n)
common.report({ rss_kb = common.rss_kb() })
