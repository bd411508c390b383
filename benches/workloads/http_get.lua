-- N GETs of URL with INFLIGHT at once: INFLIGHT workers, each sending its
-- share in sequence. Prints the time from the first request to the last answer.
local common = dofile("common.lua")
local n, url, inflight = tonumber(arg[1]) or 2000, arg[2], tonumber(arg[3]) or 200
assert(url, "usage: http_get.lua N URL [INFLIGHT]")
local t0 = now()
local workers = {}
for w = 1, inflight do
  workers[w] = async(function()
    for _ = 1, n // inflight do
      local r = await(http_get(url))
      assert(r.status == 200, r.status)
    end
  end)
end
await(all(workers))
common.report({ ms = string.format("%.1f", now() - t0), rss_kb = common.rss_kb() })
