-- args: --sandbox
-- exit: 0 ok
local ok, err = pcall(require, "os")
assert(not ok and tostring(err):find("not available"), tostring(err))
assert(pcall(require, "socket.core") == false)
assert(require("luaco").sleep == sleep)
print("ok")
