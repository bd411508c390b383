-- args: --sandbox --max-instructions 50000000
-- exit: 0 ok
-- The charged functions give the same results as Lua's own.
local big = ("ab"):rep(5000)
assert(#big == 10000 and big:upper():sub(1, 4) == "ABAB" and big:upper():lower() == big)
assert(big:reverse():sub(1, 2) == "ba" and ("%s-%d"):format(big, 7):sub(-2) == "-7")
local t = {}
for i = 1, 10000 do t[i] = 10000 - i end
table.sort(t)
assert(t[1] == 0 and t[10000] == 9999)
table.sort(t, function(a, b) return a > b end)
assert(t[1] == 9999)
assert(select("#", table.unpack(t)) == 10000 and select("#", table.unpack(t, 9000)) == 1001)
assert(#table.concat(t, ",") > 10000 and table.concat({ 1, 2, 3 }, "-") == "1-2-3")
assert(string.upper(12) == "12" and not pcall(string.upper) and not pcall(table.unpack, 5))
print("ok")
