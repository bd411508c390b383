-- args: --sandbox --timeout-ms 300
-- exit: 3 timeout
-- table.move walks the whole range in C even when every value is nil.
local t = table.move({1, 2, 3}, 1, 3, 2)
assert(t[1] == 1 and t[2] == 1 and t[3] == 2 and t[4] == 3)
table.move({}, 1, 1e15, 2)
