-- args: --sandbox --timeout-ms 300
-- exit: 3 timeout
for w in string.gmatch(("a"):rep(40), ("a*"):rep(40) .. "b") do print(w) end
