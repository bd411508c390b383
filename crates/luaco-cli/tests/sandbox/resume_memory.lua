-- args: --sandbox --max-memory-mb 32
-- exit: 3 memory limit
while true do
  coroutine.resume(coroutine.create(function() return ("x"):rep(1 << 29) end))
end
