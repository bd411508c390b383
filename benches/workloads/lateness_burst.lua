-- N timers created at once, due 1.5 to 2.5 s later: how late each fires
-- after its deadline (the time it was set plus its delay).
local common = require("common")
local n = tonumber(arg[1]) or 100000
local late = {}
local done = 0
for i = 1, n do
  local delay = 1500 + (i * 7919) % 1000
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
