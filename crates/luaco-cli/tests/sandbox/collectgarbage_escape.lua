-- args: --sandbox
-- exit: 0 ok
assert(type(collectgarbage("count")) == "number")
assert(not pcall(collectgarbage, "stop"))
assert(not pcall(collectgarbage, "incremental", 1000))
print("ok")
