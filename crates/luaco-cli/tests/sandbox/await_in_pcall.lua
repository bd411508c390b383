-- args: --sandbox --max-memory-mb 64 --max-instructions 10000000
-- exit: 0 awaited 7
-- pcall stays yieldable with its memory guard.
local ok, v = pcall(await, async(function() await(sleep(1)); return 7 end))
assert(ok)
print("awaited " .. v)
