-- Errors as objects: pcall(await, p), :catch, error kinds, rethrowing and :finally.
-- Run: luaco run examples/try_catch.lua

-- A string raised in a task becomes an error object: message (with file:line),
-- kind "runtime", and a traceback. tostring(err) is the message.
local ok, err = pcall(await, async(function() error("disk on fire") end))
print("pcall:", ok, err.kind, tostring(err))
assert(not ok and err.kind == "runtime" and err.message:find("disk on fire", 1, true))
assert(err.message:match("^[^:]+:%d+: ") and type(err.traceback) == "string")

-- A raised table is the rejection reason itself, unchanged.
local custom = { code = 418 }
local ok2, got = pcall(await, async(function() error(custom) end))
assert(not ok2 and got == custom)
print("custom error table kept, code:", got.code)

-- Errors made by the runtime carry a kind too.
local kinds = {}
kinds.type = select(2, pcall(sleep, "10")).kind                 -- bad argument
kinds.json = select(2, pcall(json.decode, "{oops")).kind
kinds.io = select(2, pcall(await, fs.read("/nonexistent/luaco-example"))).kind
kinds.timeout = select(2, pcall(await, timeout(sleep(200), 5))).kind
print(string.format("kinds: type=%s json=%s io=%s timeout=%s", kinds.type, kinds.json, kinds.io, kinds.timeout))
assert(kinds.type == "type" and kinds.json == "json" and kinds.io == "io" and kinds.timeout == "timeout")

-- :catch turns a rejection into a value; handlers run as tasks and may await.
local recovered = await(async(function() error("flaky") end):catch(function(e)
  await(sleep(1))
  return "recovered from " .. e.kind
end))
print("catch:", recovered)
assert(recovered == "recovered from runtime")

-- Rethrow: handle only the kind you expect and raise the rest again.
local function fetch_config()
  local ok3, e = pcall(await, fs.read("/nonexistent/luaco.conf"))
  if ok3 then return e end
  if e.kind == "io" and e.code == "ENOENT" then return "{defaults}" end
  error(e) -- rethrow the same object
end
print("rethrow-or-default:", await(async(fetch_config)))
local parse_err = async(function() return json.decode("[1,") end)
local rethrown = async(function()
  local ok4, e = pcall(await, parse_err)
  if not ok4 then error(e) end
end)
local _, final = pcall(await, rethrown)
assert(final.kind == "json" and final == select(2, pcall(await, parse_err)))
print("rethrown kept its identity:", final.kind, final.message)

-- :finally runs on every outcome and passes the outcome through.
local log = {}
local ok5, e5 = pcall(await, async(function() error("boom") end)
  :finally(function() log[#log + 1] = "cleanup after failure" end))
local v = await(async(function() return "fine" end)
  :finally(function() log[#log + 1] = "cleanup after success" end))
print("finally:", table.concat(log, "; "), "| values:", ok5, e5.kind, v)
assert(#log == 2 and not ok5 and e5.kind == "runtime" and v == "fine")
