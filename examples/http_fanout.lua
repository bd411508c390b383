-- Fetch many URLs at once with a concurrency bound, then summarise.
-- Run against any HTTP server:
--   LUACO_TEST_URL=http://127.0.0.1:8080 cargo run -p luaco-cli -- run examples/http_fanout.lua
-- (`cargo xtask examples` starts a loopback test server and sets it for you.)
local base = os.getenv("LUACO_TEST_URL") or arg[1]
if not base then
  error("set LUACO_TEST_URL (or pass a base URL as the first argument)", 0)
end

local paths = {}
for i = 1, 40 do paths[i] = "/echo?item=" .. i end
paths[#paths + 1] = "/status/404"
paths[#paths + 1] = "/slow?ms=50"

local t0 = now()
-- At most 8 requests in flight; each result keeps the request order.
local results = await(map(paths, function(path)
  local r = await(http.request{ url = base .. path, timeout_ms = 5000 })
  return { path = path, status = r.status, bytes = #r.body }
end, 8))

local by_status = {}
for i = 1, results.n do
  local s = results[i].status
  by_status[s] = (by_status[s] or 0) + 1
end
for status, count in pairs(by_status) do print(string.format("status %d: %d responses", status, count)) end

-- A request that takes too long is cut off by timeout_ms.
local ok, err = pcall(await, http.request{ url = base .. "/slow?ms=2000", timeout_ms = 50 })
print("slow request: " .. (ok and "answered" or err.kind))

-- The JSON endpoint, decoded.
local data = json_parse(await(http_get(base .. "/json")).body)
print("json items: " .. #data.items .. ", name: " .. data.name)
print(string.format("%d requests in %d ms", results.n + 2, math.floor(now() - t0)))
