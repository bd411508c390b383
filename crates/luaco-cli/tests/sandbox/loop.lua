-- args: --sandbox --max-instructions 2000000
-- exit: 3 instruction limit
while true do end
