-- args: --sandbox --max-instructions 2000000
-- exit: 3 instruction limit
xpcall(function() error("x") end, function() while true do end end)
while true do end
