-- CPU-bound Lua with no awaits: naive fib and a sieve, N rounds. Run with
-- and without --max-instructions to price the count hook.
local common = dofile("common.lua")
local n = tonumber(arg[1]) or 3
local function fib(k) if k < 2 then return k end return fib(k - 1) + fib(k - 2) end
local t0 = now()
local total = 0
for _ = 1, n do
  total = total + fib(27)
  local sieve, count = {}, 0
  for i = 2, 200000 do
    if not sieve[i] then
      count = count + 1
      for j = i * i, 200000, i do sieve[j] = true end
    end
  end
  total = total + count
end
common.report({ ms = string.format("%.1f", now() - t0), total = total })
