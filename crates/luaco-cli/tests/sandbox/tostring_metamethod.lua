-- args: --sandbox --max-instructions 2000000
-- exit: 3 instruction limit
print(tostring(setmetatable({}, { __tostring = function() while true do end end })))
