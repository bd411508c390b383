-- args: --sandbox
-- exit: 1 error
local t = setmetatable({}, {})
getmetatable(t).__index = t
print(t.missing)
