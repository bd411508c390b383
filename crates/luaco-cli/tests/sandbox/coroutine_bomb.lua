-- args: --sandbox --max-memory-mb 32
-- exit: 3 memory limit
local cs = {}
while true do cs[#cs + 1] = coroutine.create(function() end) end
