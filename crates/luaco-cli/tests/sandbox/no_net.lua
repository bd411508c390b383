-- args: --sandbox
-- exit: 0 ok
local ok, err = pcall(await, http_get("http://127.0.0.1:9/"))
assert(not ok and err.kind == "permission", tostring(err))
print("ok")
