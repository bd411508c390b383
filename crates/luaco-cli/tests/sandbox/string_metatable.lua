-- args: --sandbox
-- exit: 0 ok
-- The shared string metatable is out of reach, and a script's string
-- table is its own copy.
assert(getmetatable("") == "string")
string.upper = nil
assert(("x"):upper() == "X")
print("ok")
