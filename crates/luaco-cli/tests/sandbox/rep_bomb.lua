-- args: --sandbox --max-memory-mb 32
-- exit: 3 memory limit
local s = string.rep("x", 1 << 30)
print(#s)
