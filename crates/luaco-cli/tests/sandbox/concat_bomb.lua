-- args: --sandbox --max-memory-mb 32
-- exit: 3 memory limit
local s = "x"
while true do s = s .. s end
