-- Timers: sleep, set_timeout, set_interval and now.
--
-- A deadline is the loop's time (read once per turn, and whenever a script
-- calls now()) plus the delay, rounded up to a whole microsecond: the key
-- of its bucket. Rust keeps the ordered set of keys; each bucket here holds
-- its entries in creation order. Timers made in the same turn with the same
-- delay share a bucket, so most timers cost one table slot and no call
-- into Rust. A bucket fires when the loop's time reaches its key, so no
-- timer fires early, and buckets fire in key order: deadline order, ties in
-- creation order.
local core, prim = ...

local type, rawget, setmetatable, getmetatable, ceil, floor =
  type, rawget, setmetatable, getmetatable, math.ceil, math.floor
local ST, V, PENDING, RESOLVED = core.ST, core.V, core.PENDING, core.RESOLVED
local new_promise, settle, check_ms = core.new_promise, core.settle, core.check_ms
local add_key, remove_key, pop_due, clock = prim.add_key, prim.remove_key, prim.pop_due, prim.now

local turn_now = 0 -- ms
local buckets = {}
local live = 0

local function stop_entry(b)
  b.live = b.live - 1
  live = live - 1
  if b.live == 0 and buckets[b.key] == b then
    buckets[b.key] = nil
    remove_key(b.key)
  end
end

-- Adds `entry` (a promise, or a timer handle) to the bucket of its
-- deadline; returns the bucket, which is also its source: cancelling the
-- promise calls `stop_entry`.
local function add_entry(ms, entry)
  local k = ceil((turn_now + ms) * 1000)
  local b = buckets[k]
  if not b then
    b = { live = 0, n = 0, key = k, stop = stop_entry }
    buckets[k] = b
    add_key(k)
  end
  local n = b.n + 1
  b.n, b[n] = n, entry
  b.live = b.live + 1
  live = live + 1
  return b
end

-- A promise resolving `nil` after `ms`; not an operation of any task.
local function timer(ms)
  local p = new_promise()
  p[V] = add_entry(ms, p)
  return p
end
core.timer = timer

local ARMED, DONE = 1, 2
local Handle = { __name = "timer" }
Handle.__index = Handle

-- handle:cancel(): true if it stopped a pending timer.
function Handle:cancel()
  if type(self) ~= "table" or getmetatable(self) ~= Handle then
    core.raise("type", "timer:cancel() must be called on a timer (use ':' to call a method)", 2)
  end
  if self.state ~= ARMED then return false end
  self.state = DONE
  stop_entry(self.b)
  return true
end

local function start(fname, fn, ms, interval)
  if type(fn) ~= "function" then core.bad_argument(1, fname, "function", fn, 3) end
  check_ms(ms, fname, 2, 3)
  local h = setmetatable({ fn = fn, ms = ms, interval = interval, state = ARMED }, Handle)
  h.b = add_entry(ms, h)
  return h
end

local due = {}

-- Fires every bucket whose key has passed. Keys added while firing (an
-- interval re-arming with 0 ms) wait for the next turn.
local function fire(now_ms)
  if now_ms > turn_now then turn_now = now_ms end
  local now_us = floor(now_ms * 1000)
  local n = 0
  while true do
    local k = pop_due(now_us)
    if not k then break end
    n = n + 1
    due[n] = k
  end
  local fired = 0
  for i = 1, n do
    local k = due[i]
    due[i] = nil
    local b = buckets[k]
    if b then
      buckets[k] = nil
      for j = 1, b.n do
        local e = b[j]
        if rawget(e, ST) ~= nil then
          if e[ST] == PENDING then
            live = live - 1
            fired = fired + 1
            e[V] = false
            settle(e, RESOLVED, nil)
          end
        elseif e.state == ARMED then
          live = live - 1
          fired = fired + 1
          core.spawn_detached(e.fn)
          if e.interval then e.b = add_entry(e.ms, e) else e.state = DONE end
        end
      end
    end
  end
  return fired
end

local function now()
  local t = clock()
  if t > turn_now then turn_now = t end
  return t
end

local api = core.api
api.sleep = function(ms)
  check_ms(ms, "sleep", 1)
  local p = new_promise()
  p[V] = add_entry(ms, p)
  core.track(p)
  return p
end
api.set_timeout = function(fn, ms) return start("set_timeout", fn, ms, false) end
api.set_interval = function(fn, ms) return start("set_interval", fn, ms, true) end
api.now = now

return fire, function() return live end
