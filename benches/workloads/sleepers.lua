-- N tasks suspended in sleep at once: resident memory per sleeping task.
local common = require("common")
local n = tonumber(arg[1]) or 1000000
collectgarbage()
local before = common.current_rss_kb()
local ps = {}
for i = 1, n do ps[i] = async(function() await(sleep(500)); return i end) end
await(sleep(1)) -- every task has started and is suspended
collectgarbage()
local during = common.current_rss_kb()
await(all(ps))
common.report({ rss_kb = common.rss_kb(), bytes_per_task = math.floor((during - before) * 1024 / n) })
