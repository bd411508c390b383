-- all, all_settled, race, any and timeout. Each attaches a waiter to its
-- inputs instead of spawning tasks: a combinator over n promises costs n
-- small closures and one result list. Non-promise items count as resolved
-- values. Result lists are arrays (ARRAY_MT, with `n`).
local core = ...

local type, rawget, rawlen, setmetatable, math_type, tostring, floor =
  type, rawget, rawlen, setmetatable, math.type, tostring, math.floor
local ST, V = core.ST, core.V
local PENDING, RESOLVED, REJECTED, CANCELLED = core.PENDING, core.RESOLVED, core.REJECTED, core.CANCELLED
local new_promise, settle, cancel, follow, add_waiter, is_promise =
  core.new_promise, core.settle, core.cancel, core.follow, core.add_waiter, core.is_promise
local new_error, cancelled_error, raise = core.new_error, core.cancelled_error, core.raise

local ARRAY_MT = core.ARRAY_MT
local function array(n) return setmetatable({ n = n }, ARRAY_MT) end
core.array = array

-- A list's length: its `n` field if that is a count, else its border. An
-- `n` far beyond the items is refused rather than walked.
local MAX_HOLES = 1 << 20
local function list_length(list, fname)
  if type(list) ~= "table" then core.bad_argument(1, fname, "table", list, 3) end
  local len = rawlen(list)
  local n = rawget(list, "n")
  if math_type(n) ~= "integer" or n < 0 then return len end
  if n > len + MAX_HOLES then
    raise("type", "bad argument #1 to '" .. fname .. "' (list field n = " .. n
      .. " is far beyond its " .. len .. " items)", 3)
  end
  return n
end
core.list_length = list_length

-- The shape of all, all_settled and any: `each(st, v)` returns an entry for
-- the list, or (nil, st, v) to settle the combinator at once; when every
-- input gave an entry, `finish(list)` settles it.
local function gather(list, fname, each, finish)
  local n = list_length(list, fname)
  local d = new_promise()
  local entries = array(n)
  local left = n
  -- Every input is consumed, even after the result settled: a combinator
  -- holding a promise counts as handling it.
  for i = 1, n do
    local item = rawget(list, i)
    if is_promise(item) then
      add_waiter(item, function(p)
        if d[ST] ~= PENDING then return end
        local entry, st, v = each(p[ST], p[V])
        if st then settle(d, st, v); return end
        entries[i] = entry
        left = left - 1
        if left == 0 then finish(d, entries) end
      end)
    elseif d[ST] == PENDING then
      local entry, st, v = each(RESOLVED, item)
      if st then settle(d, st, v) else entries[i] = entry; left = left - 1 end
    end
  end
  if left == 0 and d[ST] == PENDING then finish(d, entries) end
  return d
end

local function resolve_with(d, list) settle(d, RESOLVED, list) end

local function all(list)
  return gather(list, "all", function(st, v)
    if st == RESOLVED then return v end
    if st == CANCELLED then v = cancelled_error() end
    return nil, REJECTED, v
  end, resolve_with)
end

local function all_settled(list)
  return gather(list, "all_settled", function(st, v)
    if st == RESOLVED then return { status = "resolved", value = v } end
    if st == CANCELLED then return { status = "cancelled" } end
    return { status = "rejected", reason = v }
  end, resolve_with)
end

local function any(list)
  return gather(list, "any", function(st, v)
    if st == RESOLVED then return nil, RESOLVED, v end
    if st == CANCELLED then return cancelled_error() end
    return v
  end, function(d, reasons)
    local e = new_error("aggregate", "all " .. reasons.n .. " promises were rejected")
    e.errors = reasons
    settle(d, REJECTED, e)
  end)
end

local function race(list)
  local n = list_length(list, "race")
  if n == 0 then raise("type", "race() requires a non-empty list", 2) end
  local d = new_promise()
  local inputs = {}
  local first
  -- Once the race is decided its waiter leaves the other inputs, so racing
  -- a long-lived promise in a loop does not grow its waiter list.
  function first(p)
    if d[ST] ~= PENDING then return end
    follow(d, p)
    for i = 1, #inputs do
      if inputs[i] ~= p then core.remove_waiter(inputs[i], first) end
    end
  end
  for i = 1, n do
    local item = rawget(list, i)
    if is_promise(item) then
      inputs[#inputs + 1] = item
      add_waiter(item, first)
    elseif d[ST] == PENDING then
      settle(d, RESOLVED, item)
    end
  end
  if d[ST] ~= PENDING then
    for i = 1, #inputs do core.remove_waiter(inputs[i], first) end
  end
  return d
end

-- Validates a millisecond count: a finite number >= 0, never a string.
-- `level` is where the error points, as for `error` (default 2: the
-- caller of the function that checks).
local function check_ms(ms, fname, n, level)
  level = (level or 2) + 1
  if type(ms) ~= "number" then core.bad_argument(n, fname, "number", ms, level) end
  if not (ms >= 0 and ms <= 1e15) then
    raise("type", "bad argument #" .. n .. " to '" .. fname .. "' (finite number >= 0 expected, got "
      .. tostring(ms) .. ")", level)
  end
  return ms
end
core.check_ms = check_ms

local function ms_text(ms)
  if ms == floor(ms) then return ("%d"):format(ms) end
  return ("%g"):format(ms)
end

-- timeout_with(p, ms, reason): settles like p if p settles within ms, else
-- rejects and cancels p. Cancelling the result stops the timer only. The
-- rejection is `reason` itself when it is an error object (the sandbox's
-- wall-clock limit), else kind "timeout" saying `reason`. Rust callers
-- (HTTP, the sandbox) give their own.
local function timeout_with(p, ms, reason)
  if not is_promise(p) then
    local r = new_promise()
    core.resolve(r, p)
    return r
  end
  local timer = core.timer(ms)
  local d = new_promise(timer)
  add_waiter(timer, function(t)
    if t[ST] == RESOLVED and d[ST] == PENDING then
      local err = reason
      if type(reason) ~= "table" then err = new_error("timeout", reason) end
      settle(d, REJECTED, err)
      cancel(p)
    end
  end)
  add_waiter(p, function(src)
    follow(d, src)
    cancel(timer)
  end)
  return d
end
core.timeout_with = timeout_with

local function timeout(p, ms)
  check_ms(ms, "timeout", 2)
  return timeout_with(p, ms, core.located("timed out after " .. ms_text(ms) .. " ms", 2))
end

-- Timers come from the event loop (luaco-sched installs them); without one,
-- timeout() cannot work and says so.
function core.timer()
  raise("runtime", "timeout() needs timers, and no event loop installed them", 3)
end

local promise = core.promise
promise.all, promise.all_settled, promise.race, promise.any, promise.timeout =
  all, all_settled, race, any, timeout
