-- args: --sandbox --max-instructions 5000000
-- exit: 3 instruction limit
-- Short coroutines each start a fresh hook counter; the budget still holds.
while true do coroutine.wrap(function() for _ = 1, 50 do end end)() end
