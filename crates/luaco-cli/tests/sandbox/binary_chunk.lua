-- args: --sandbox
-- exit: 0 ok
local f, err = load("\27LuaT\0\25\147\r\n\26\n\4\8\8")
assert(f == nil and err:find("binary"), err)
local f2, err2 = load("\27Lua", "x", "b")
assert(f2 == nil and err2:find("binary"), err2)
-- text chunks load, into the sandbox
local g = load("return os.execute, io")
assert(select("#", g()) == 2 and g() == nil)
print("ok")
