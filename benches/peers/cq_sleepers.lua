-- N coroutines suspended in cqueues.sleep at once: resident memory per task.
package.path = arg[0]:match("^(.*/)") .. "../workloads/?.lua;" .. package.path
local cqueues = require("cqueues")
local common = require("common")
local n = tonumber(arg[1]) or 1000000
local cq = cqueues.new()
collectgarbage()
local before = common.current_rss_kb()
local during
for _ = 1, n do cq:wrap(function() cqueues.sleep(0.5) end) end
cq:wrap(function() cqueues.sleep(0.001); collectgarbage(); during = common.current_rss_kb() end)
assert(cq:loop())
common.report({ rss_kb = common.rss_kb(), bytes_per_task = math.floor((during - before) * 1024 / n) })
