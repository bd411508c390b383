-- args: --sandbox --max-memory-mb 32
-- exit: 3 memory limit
-- A heap-limit error caught by pcall still ends the run.
while true do pcall(string.rep, "x", 1 << 29) end
