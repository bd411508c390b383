-- args: --sandbox --max-instructions 2000000
-- exit: 3 instruction limit
while true do xpcall(function() while true do end end, function(e) return e end) end
