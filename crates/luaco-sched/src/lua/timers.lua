-- Timers: sleep, set_timeout, set_interval and now.
--
-- Time here is whole microseconds on the loop's clock. A deadline is the
-- time of the call (rounded up to 0.1 ms; a 0 ms sleep counts from the
-- turn) plus the delay rounded up to a whole microsecond: the key of its
-- bucket. A binary heap orders the keys; each bucket holds its entries in
-- creation order. Timers made within 0.1 ms of each other with the same
-- delay share a bucket, so most timers cost one table slot. A bucket fires when the loop's time
-- reaches its key, so no timer fires early, and buckets fire in key order:
-- deadline order, ties in creation order.
--
-- `turn` is the whole of one scheduler turn, so a turn costs Rust one call:
-- fire what is due, then run the ready batch (luaco-core's `run`).
local core, prim = ...

local type, setmetatable, ceil =
  type, setmetatable, math.ceil
local ST, V, PENDING, RESOLVED = core.ST, core.V, core.PENDING, core.RESOLVED
local new_promise, settle, check_ms = core.new_promise, core.settle, core.check_ms
local clock_us = prim.now_us
local run = core.run

local turn_us = 0
local buckets = {}
local live = 0

---------------------------------------------------------------- key heap
-- Keys of emptied buckets stay in the heap until they come up (or until
-- they outnumber the live ones, when the heap is rebuilt).
local heap, heap_n, stale = {}, 0, 0

local function heap_push(k)
  heap_n = heap_n + 1
  local i = heap_n
  while i > 1 do
    local parent = i // 2
    local pk = heap[parent]
    if pk <= k then break end
    heap[i] = pk
    i = parent
  end
  heap[i] = k
end

local function heap_pop()
  local top = heap[1]
  local last = heap[heap_n]
  heap[heap_n] = nil
  heap_n = heap_n - 1
  if heap_n > 0 then
    local i = 1
    while true do
      local c = i * 2
      if c > heap_n then break end
      if c < heap_n and heap[c + 1] < heap[c] then c = c + 1 end
      if heap[c] >= last then break end
      heap[i] = heap[c]
      i = c
    end
    heap[i] = last
  end
  return top
end

local function rebuild_heap()
  heap, heap_n, stale = {}, 0, 0
  for k in pairs(buckets) do heap_push(k) end
end

-- The earliest key that still has a bucket, or nil.
local function next_key()
  while heap_n > 0 and not buckets[heap[1]] do
    heap_pop()
    stale = stale - 1
  end
  return heap[1]
end

local function stop_entry(b)
  b.live = b.live - 1
  live = live - 1
  if b.live == 0 and buckets[b.key] == b then
    buckets[b.key] = nil
    stale = stale + 1
    if stale > 64 and stale > heap_n // 2 then rebuild_heap() end
  end
end

-- Adds `entry` (a promise, or a timer handle) to the bucket of its
-- deadline; returns the bucket, which is also its source: cancelling the
-- promise calls `stop_entry`.
-- Deadlines count from the clock at the call, rounded up to QUANTUM µs so
-- that timers made close together share a bucket; a delay of 0 counts from
-- the turn, so it fires on the next one.
local QUANTUM = 100

-- Fired buckets are kept for reuse (a loop of sleep(0) makes one a turn).
local spare, spare_n, MAX_SPARE = {}, 0, 64

local function add_entry(ms, entry)
  local base = turn_us
  if ms > 0 then
    local now = clock_us()
    base = now + (-now % QUANTUM)
    if base < turn_us then base = turn_us end
  end
  local k = base + ceil(ms * 1000)
  local b = buckets[k]
  if not b then
    if spare_n > 0 then
      b = spare[spare_n]
      spare[spare_n] = nil
      spare_n = spare_n - 1
      b.key = k
    else
      b = { live = 0, n = 0, key = k, stop = stop_entry }
    end
    buckets[k] = b
    heap_push(k)
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
local Handle = { __name = "timer", __metatable = "timer" }
local real_metatable = core.debug.getmetatable
Handle.__index = Handle

-- handle:cancel(): true if it stopped a pending timer.
function Handle:cancel()
  if real_metatable(self) ~= Handle then
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
  local h = setmetatable({ fn = fn, ms = ms, interval = interval, state = ARMED,
    ctx = core.current_ctx(), quiet = core.quiet_now() }, Handle)
  h.b = add_entry(ms, h)
  return h
end

local due = {}

-- Fires every bucket whose key has passed. Keys added while firing (an
-- interval re-arming with 0 ms) wait for the next turn.
local function fire(now_us)
  if now_us > turn_us then turn_us = now_us end
  local n = 0
  while heap_n > 0 and heap[1] <= now_us do
    local k = heap_pop()
    if buckets[k] then
      n = n + 1
      due[n] = k
    else
      stale = stale - 1
    end
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
        if real_metatable(e) ~= Handle then
          if e[ST] == PENDING then
            live = live - 1
            fired = fired + 1
            e[V] = false
            settle(e, RESOLVED, nil)
          end
        elseif e.state == ARMED then
          live = live - 1
          fired = fired + 1
          core.quietly(e.quiet, core.spawn_detached, e.ctx, e.fn)
          if e.interval then e.b = add_entry(e.ms, e) else e.state = DONE end
        end
      end
      if spare_n < MAX_SPARE then
        for j = 1, b.n do b[j] = nil end
        b.n, b.live = 0, 0
        spare_n = spare_n + 1
        spare[spare_n] = b
      end
    end
  end
  return fired
end

local function now()
  local t = clock_us()
  if t > turn_us then turn_us = t end
  return t / 1000
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

-- One chunk of a turn: `now_us` moves the base of new deadlines forward
-- (so a sleep made late in a long turn is not shortened by it); with
-- `fire_due`, at the start of a turn, due timers fire first; then up to
-- `max` tasks of the batch run. Returns what core's `run` does, then the timers fired, the
-- next deadline (or -1) and the pending timer count.
local function turn(now_us, fire_due, max)
  local fired = 0
  if now_us > turn_us then turn_us = now_us end
  if fire_due then fired = fire(now_us) end
  local left, ready, resumed = run(max)
  return left, ready, resumed, fired, next_key() or -1, live
end

-- Stops every timer: handles are done, pending sleeps are cancelled (a
-- task awaiting one is cancelled on its own, as the end of a run does).
local function clear()
  local old = buckets
  buckets, live = {}, 0
  heap, heap_n, stale = {}, 0, 0
  for _, b in pairs(old) do
    for j = 1, b.n do
      local e = b[j]
      if real_metatable(e) == Handle then
        e.state = DONE
      elseif e[ST] == PENDING then
        -- Its entry is gone already: the source must not stop it again.
        e[V] = false
        core.cancel(e)
      end
    end
  end
end

return turn, function() return next_key() or -1, live end, clear
