-- args: --timeout-ms 300
-- exit: 3 timeout
-- A trusted script too: any run-level limit bounds the pattern functions.
local t = async(function() return ("a"):rep(40):match(("a*"):rep(40) .. "b") end)
print(await(t))
