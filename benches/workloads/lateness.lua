-- N timers with delays spread over one second: how late each fires after
-- its deadline (the time it was set plus its delay).
local common = require("common")
local n = tonumber(arg[1]) or 100000
-- arg[2]: added to every delay (1500: all made at once, due 1.5-2.5 s later).
local base = tonumber(arg[2]) or 0
local late = {}
local done = 0
for i = 1, n do
  local delay = base + (i * 7919) % 1000
  local start = now()
  set_timeout(function()
    late[#late + 1] = now() - (start + delay)
    done = done + 1
  end, delay)
end
while done < n do await(sleep(50)) end
common.report({
  rss_kb = common.rss_kb(),
  p50_ms = string.format("%.3f", common.percentile(late, 0.5)),
  p99_ms = string.format("%.3f", common.percentile(late, 0.99)),
})
