-- HTTP against the test server at BASE (a real server on 127.0.0.1).
local r = await(http_get(BASE .. "/hello"))
assert(r.status == 200, r.status)
assert(r.body == "hello")
assert(r.headers["content-type"] == "text/plain")
assert(r.headers["x-test"] == "yes", "header names are lower-case")

-- POST with headers and a body
local e = await(http.request{
  method = "post", url = BASE .. "/echo",
  headers = { ["X-Token"] = "abc", ["Content-Type"] = "application/json" },
  body = json.encode({ hello = "world" }),
})
assert(e.status == 200)
local echo = json.decode(e.body)
assert(echo.method == "POST", echo.method)
assert(echo.headers["x-token"] == "abc")
assert(json.decode(echo.body).hello == "world")

-- non-2xx is a response, not a rejection; redirects are not followed
assert(await(http_get(BASE .. "/missing")).status == 404)
assert(await(http_get(BASE .. "/status/503")).status == 503)
local redirect = await(http_get(BASE .. "/redirect"))
assert(redirect.status == 302 and redirect.headers.location == "/hello")

-- a slow endpoint past timeout_ms rejects with kind "timeout"
local t0 = now()
local ok, err = pcall(await, http.request{ url = BASE .. "/slow?ms=2000", timeout_ms = 50 })
assert(not ok and err.kind == "timeout", tostring(err))
assert(now() - t0 < 1500, "the timeout fired late")
-- within the limit it succeeds
assert(await(http.request{ url = BASE .. "/slow?ms=10", timeout_ms = 2000 }).body == "slow")

-- connection refused is kind "network"
local okr, er = pcall(await, http_get(REFUSED))
assert(not okr and er.kind == "network", tostring(er))

-- malformed URLs reject with kind "type"
for _, bad in ipairs({ "not a url", "ftp://127.0.0.1/x", "http://", "" }) do
  local okm, em = pcall(await, http_get(bad))
  assert(not okm and em.kind == "type", bad .. ": " .. tostring(em))
end
local okt, et = pcall(await, http.request({ url = BASE, headers = { x = 1 } }))
assert(not okt and et.kind == "type")
-- a wrong argument type is raised at once
local okn, en = pcall(http.request, "x")
assert(not okn and en.kind == "type")
local okg, eg = pcall(http_get, 42)
assert(not okg and eg.kind == "type")

-- 200 concurrent requests with all()
local many = {}
for i = 1, 200 do many[i] = http_get(BASE .. "/echo?i=" .. i) end
local rs = await(all(many))
assert(rs.n == 200)
for i = 1, 200 do
  assert(json.decode(rs[i].body).path == "/echo?i=" .. i)
end
return "ok"
