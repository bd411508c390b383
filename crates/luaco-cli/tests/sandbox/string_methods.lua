-- args: --sandbox
-- exit: 0 string methods hold
-- Strings share one metatable whose __index gives every string its
-- methods: nothing of the real `string` table may be reachable through it
-- (`dump` made bytecode), and a script's changes to its own `string`
-- table do not become methods.
assert(("").dump == nil, "dump through a string value")
assert(string.dump == nil)
local ok = pcall(function() return ("x"):dump() end)
assert(not ok)
string.upper = function() return "changed" end
assert(("abc"):upper() == "ABC", "a script's string table became the methods")
assert(getmetatable("") == "string")
assert(("a,b"):gsub(",", ";") == "a;b")
print("string methods hold")
