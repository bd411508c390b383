-- args: --sandbox --max-instructions 2000000
-- exit: 3 instruction limit
sleep(1):next(function() while true do end end)
await(sleep(60000))
