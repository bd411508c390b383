-- args: --sandbox --max-instructions 2000000
-- exit: 3 instruction limit
set_interval(function() for _ = 1, 1e5 do end end, 1)
