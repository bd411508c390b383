-- args: --sandbox --max-instructions 5000000
-- exit: 3 instruction limit
-- A __len of 1e15 makes table.insert shift that many slots in C.
local t = {1, 2, 3}
table.insert(t, 1, 0)
assert(table.concat(t, ",") == "0,1,2,3")
assert(table.remove(t, 1) == 0 and #t == 3)
table.insert(setmetatable({}, { __len = function() return 1e15 end }), 1, "x")
