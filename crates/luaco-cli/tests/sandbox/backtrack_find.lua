-- args: --sandbox --max-instructions 5000000
-- exit: 3 instruction limit
-- Lua's matcher runs in C, unhooked: in a run with limits the pattern
-- functions count their steps against the budget.
local s = ("a"):rep(40)
print(s:find(("a*"):rep(40) .. "b"))
