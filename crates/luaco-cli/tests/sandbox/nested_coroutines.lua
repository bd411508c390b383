-- args: --sandbox --max-instructions 2000000
-- exit: 3 instruction limit
local function deeper(n)
  if n == 0 then while true do end end
  coroutine.wrap(deeper)(n - 1)
end
deeper(20)
