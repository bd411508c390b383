-- args: --sandbox --max-instructions 2000000
-- exit: 3 instruction limit
coroutine.wrap(function() while true do end end)()
