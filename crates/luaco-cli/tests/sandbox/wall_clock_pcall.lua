-- args: --sandbox --timeout-ms 300
-- exit: 3 timeout
while true do pcall(function() while true do end end) end
