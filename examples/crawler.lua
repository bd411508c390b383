-- A crawler bounded by sync.semaphore: one task per URL, but never more than
-- K requests in flight (measured), statuses collected per URL.
-- Run against the test server (`cargo xtask test` sets it for you):
--   LUACO_TEST_URL=http://127.0.0.1:8080 luaco run examples/crawler.lua
local base = os.getenv("LUACO_TEST_URL")
if not base then
  print("crawler: LUACO_TEST_URL is not set; start a test server and set it to run this example")
  return
end

local K = 3
local urls = {}
for i = 1, 12 do
  if i % 4 == 0 then urls[#urls + 1] = base .. "/status/" .. (i % 8 == 0 and 404 or 503)
  else urls[#urls + 1] = base .. "/slow?ms=" .. (10 + (i % 3) * 10) end
end

local sem = sync.semaphore(K)
local in_flight, peak = 0, 0
local function fetch(url)
  -- :with acquires a permit, runs the function, and always releases it.
  return sem:with(function()
    in_flight = in_flight + 1
    peak = math.max(peak, in_flight)
    local ok, r = pcall(await, http_get(url, { timeout_ms = 5000 }))
    in_flight = in_flight - 1
    if not ok then return { url = url, error = r.kind } end
    return { url = url, status = r.status, body = r.body }
  end)
end

local t0 = now()
local tasks = {}
for i, url in ipairs(urls) do tasks[i] = async(fetch, url) end -- all 12 start at once...
local results = await(all(tasks)) -- ...but the semaphore lets only K through at a time
local elapsed = now() - t0

local by_status = {}
for i = 1, results.n do
  local r = results[i]
  print(string.format("%-28s %s", r.url:sub(#base + 1), r.status or r.error))
  by_status[r.status or r.error] = (by_status[r.status or r.error] or 0) + 1
end
print(string.format("%d URLs in %.0f ms, peak %d in flight (limit %d)", results.n, elapsed, peak, K))
print("by status: " .. json.encode(by_status))

assert(peak <= K, "the semaphore let too many through")
assert(peak == K, "expected the crawler to use all K permits")
assert(sem:available() == K, "every permit was released")
assert(by_status[200] == 9 and by_status[404] == 1 and by_status[503] == 2)
assert(results[1].body == "slow")
