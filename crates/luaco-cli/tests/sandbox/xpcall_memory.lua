-- args: --sandbox --max-memory-mb 32
-- exit: 3 memory limit
while true do xpcall(string.rep, function(e) return e end, "x", 1 << 29) end
