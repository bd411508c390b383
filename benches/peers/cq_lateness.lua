-- N timers with delays spread over one second: how late each fires after
-- its deadline (the time it was set plus its delay).
package.path = arg[0]:match("^(.*/)") .. "../workloads/?.lua;" .. package.path
local cqueues = require("cqueues")
local common = require("common")
local n = tonumber(arg[1]) or 100000
-- arg[2]: added to every delay (1500: all made at once, due 1.5-2.5 s later).
local base = tonumber(arg[2]) or 0
local cq = cqueues.new()
local late = {}
for i = 1, n do
  local delay = (base + (i * 7919) % 1000) / 1000
  -- The deadline counts from now, as the others' do, not from when the
  -- coroutine first runs.
  local start = cqueues.monotime()
  cq:wrap(function()
    cqueues.sleep(math.max(0, start + delay - cqueues.monotime()))
    late[#late + 1] = (cqueues.monotime() - (start + delay)) * 1000
  end)
end
assert(cq:loop())
common.report({
  rss_kb = common.rss_kb(),
  p50_ms = string.format("%.3f", common.percentile(late, 0.5)),
  p99_ms = string.format("%.3f", common.percentile(late, 0.99)),
})
