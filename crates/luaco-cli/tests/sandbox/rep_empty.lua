-- args: --sandbox --max-instructions 1000000
-- exit: 0 ok
-- Lua's rep loops n times even to build an empty string: bounded, and
-- still right.
assert(string.rep("", 1e15) == "")
assert(("x"):rep(3, ",") == "x,x,x")
assert(select(2, pcall(string.rep, "", "no")):find("number expected"))
print("ok")
