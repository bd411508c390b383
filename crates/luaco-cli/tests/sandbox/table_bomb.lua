-- args: --sandbox --max-memory-mb 32
-- exit: 3 memory limit
local t = {}
for i = 1, 1e9 do t[i] = i end
