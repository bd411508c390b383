-- args: --sandbox
-- exit: 1 error
local t = setmetatable({}, {})
getmetatable(t).__tostring = function(x) return tostring(x) end
print(tostring(t))
