-- args: --sandbox --max-instructions 2000000
-- exit: 3 instruction limit
local t = setmetatable({}, { __index = function() while true do end end })
print(t.x)
