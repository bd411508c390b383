-- args: --sandbox --max-instructions 50000000 --timeout-ms 20000
-- exit: 0 done 55
local ps = {}
for i = 1, 10 do ps[i] = async(function() await(sleep(i)); return i end) end
local sum = 0
for _, v in ipairs(await(all(ps))) do sum = sum + v end
print("done " .. sum)
