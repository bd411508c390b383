-- args: --sandbox
-- exit: 0 ok
local ok, err = pcall(await, fs.read("/etc/passwd"))
assert(not ok and err.kind == "permission", tostring(err))
print("ok")
