-- args: --sandbox --max-instructions 200000000 --max-memory-mb 64 --timeout-ms 20000
-- exit: 0 9592
local sieve, count = {}, 0
for i = 2, 100000 do
  if not sieve[i] then
    count = count + 1
    for j = i * i, 100000, i do sieve[j] = true end
  end
end
print(count)
