-- args: --max-memory-mb 32
-- exit: 3 memory limit
-- Without the sandbox too: the memory limit is a run-level limit.
local t = {}
while true do
  if not pcall(function() t[#t + 1] = ("y"):rep(1 << 20) .. #t end) then t = {} end
end
