-- args: --sandbox --max-memory-mb 32
-- exit: 3 memory limit
local ps = {}
while true do ps[#ps + 1] = sleep(1e7) end
