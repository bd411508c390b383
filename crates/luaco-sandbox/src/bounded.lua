-- Versions of standard functions whose C loops can run without end while
-- allocating nothing, so no hook and no heap limit would stop them: they
-- keep the originals' results and errors, and do long work in Lua, where
-- the count hook runs; and the ones whose C work is long for one
-- instruction are charged by its size. Arguments: the `string` and `table`
-- libraries, and `charge(n)`, which counts n instructions (raising once a
-- budget is spent).
local string, table, charge = ...
local rep, move, insert, remove = string.rep, table.move, table.insert, table.remove
local unpack, concat, sort = table.unpack, table.concat, table.sort
local type, select, tonumber = type, select, tonumber
local tointeger, maxinteger = math.tointeger, math.maxinteger

-- Longer C loops than this run in pieces, or in Lua.
local CHUNK = 1024

local function integer(x)
  return tointeger(tonumber(x) or x)
end

-- C work counts as one instruction, however long: a loop of big calls
-- (`("x"):rep(1e6):upper()`, `table.unpack(t, 1, 1e6)`) would cost the
-- budget next to nothing. Past SMALL, work is charged: one instruction per
-- BYTES bytes of a result string, one per element unpacked, n log n per sort.
-- Each original is called through a local of its own name, so its
-- argument errors name it as Lua's do ("bad argument #1 to 'upper'"); they
-- point at this file's line, though, not the script's.
local SMALL, BYTES = 4096, 16
-- Lua's own ceilings: past them unpack and sort raise, which a script may
-- catch; charging such a call would end the run instead.
local MAX_UNPACK, MAX_SORT = 1000000, 0x7fffffff
local function charged(r)
  if type(r) == "string" and #r > SMALL then charge(#r // BYTES) end
  return r
end
local upper, lower, reverse, format = string.upper, string.lower, string.reverse, string.format
string.upper = function(...) return charged(upper(...)) end
string.lower = function(...) return charged(lower(...)) end
string.reverse = function(...) return charged(reverse(...)) end
string.format = function(...) return charged(format(...)) end
table.concat = function(...) return charged(concat(...)) end

-- `string.rep("", n)` loops n times copying nothing.
string.rep = function(s, n, sep)
  if s == "" and (sep == nil or sep == "") then
    local k = integer(n)
    if k and k > 1 then n = 1 end
  end
  return charged(rep(s, n, sep))
end

table.unpack = function(t, i, j)
  if type(t) == "table" then
    local first = integer(i) or 1
    local last = integer(j)
    if j == nil then last = tointeger(#t) end
    if first and last then
      local n = last - first
      if n > SMALL and n < MAX_UNPACK then charge(n) end
    end
  end
  return unpack(t, i, j)
end

table.sort = function(t, ...)
  if type(t) == "table" then
    local n = tointeger(#t)
    if n and n > SMALL and n < MAX_SORT then
      local log = 1
      while (1 << log) < n do log = log + 1 end
      charge(n * log)
    end
  end
  return sort(t, ...)
end

-- `table.move` loops over the whole range even where every value is nil.
table.move = function(a1, f, e, t, a2)
  local fi, ei, ti = integer(f), integer(e), integer(t)
  -- Short or malformed moves are Lua's own, with its checks and messages.
  if not (fi and ei and ti) or not (fi > 0 or ei < maxinteger + fi) or ei - fi < CHUNK
      or ti > maxinteger - (ei - fi) then
    return move(a1, f, e, t, a2)
  end
  if a2 == nil then a2 = a1 end
  move(a1, 1, 0, 1, a2) -- only checks both tables
  local n = ei - fi
  if ti > ei or ti <= fi or a1 ~= a2 then
    for i = 0, n, CHUNK do
      local last = i + CHUNK - 1
      if last > n then last = n end
      move(a1, fi + i, fi + last, ti + i, a2)
    end
  else
    -- Overlapping, the destination above the source: from the top down.
    local i = n
    while i >= 0 do
      local first = i - CHUNK + 1
      if first < 0 then first = 0 end
      move(a1, fi + first, fi + i, ti + first, a2)
      i = first - 1
    end
  end
  return a2
end

-- `table.insert(t, pos, v)` and `table.remove(t, pos)` shift every element
-- up to `#t`, which `__len` may make as large as it likes.
table.insert = function(t, ...)
  if type(t) ~= "table" or select("#", ...) ~= 2 then return insert(t, ...) end
  local pos, v = ...
  local e = tointeger(#t) -- Lua takes a float length with an integer value
  local p = integer(pos)
  if e then e = e + 1 end
  if not p or not e or p < 1 or p > e or e - p < CHUNK then
    return insert(t, pos, v)
  end
  for i = e, p + 1, -1 do t[i] = t[i - 1] end
  t[p] = v
end

table.remove = function(t, ...)
  if type(t) ~= "table" or select("#", ...) ~= 1 then return remove(t, ...) end
  local size = tointeger(#t)
  local p = integer((...))
  if not p or not size or p < 1 or p > size or size - p < CHUNK then
    return remove(t, ...)
  end
  local v = t[p]
  for i = p, size - 1 do t[i] = t[i + 1] end
  t[size] = nil
  return v
end
