-- Timers: sleep, set_timeout, set_interval and now.
--
-- Time here is whole microseconds on the loop's clock. The heap is Rust's
-- (native.rs): a timer is an id there and its entry (a promise, or a
-- timer handle) in `entries` at that id. A deadline is the time of the call
-- plus the delay rounded up to a whole microsecond (a 0 ms sleep counts
-- from the turn, so it fires on the next one). Timers fire when the loop's
-- time reaches their deadline, so none fires early, in deadline order, ties
-- in creation order. Firing settles a sleep's promise and wakes its task
-- without coming back here; a handle's callback is spawned by `fire_handle`.
--
-- `turn` is the whole of one scheduler turn, so a turn costs Rust one call:
-- fire what is due, then run the ready batch (luaco-core's `run`).
local core, prim = ...

local type, setmetatable, pairs = type, setmetatable, pairs
local ST, V, PENDING = core.ST, core.V, core.PENDING
local check_ms = core.check_ms
local run = core.run
local PROMISE_MT = core.PROMISE_MT
local real_metatable = core.debug.getmetatable

local entries = {}
local fire_handle -- below
local heap = prim.heap(entries, PROMISE_MT, core.make_ready, core.dispatch,
  function(h) return fire_handle(h) end,
  core.track,
  -- A bad delay for the C sleep: raised at sleep's caller.
  function(ms) check_ms(ms, "sleep", 1, 3) end,
  run)
local add, cancel_timer, status = heap.add, heap.cancel, heap.status
local clock_us, heap_clear = heap.now_us, heap.clear

-- A pending timer promise's source is minus its timer id: cancelling the
-- promise stops the timer (promise.lua's `stop`).
core.set_stop_timer(function(id, p) cancel_timer(id, p) end)

-- A promise resolving `nil` after `ms`; not an operation of any task.
local function timer(ms)
  local p = setmetatable({ PENDING, false, false }, PROMISE_MT)
  p[V] = -add(ms, p)
  return p
end
core.timer = timer

local ARMED, DONE = 1, 2
local Handle = { __name = "timer", __metatable = "timer" }
Handle.__index = Handle

-- handle:cancel(): true if it stopped a pending timer.
function Handle:cancel()
  if real_metatable(self) ~= Handle then
    core.raise("type", "timer:cancel() must be called on a timer (use ':' to call a method)", 2)
  end
  if self.state ~= ARMED then return false end
  self.state = DONE
  cancel_timer(self.id, self)
  return true
end

local function start(fname, fn, ms, interval)
  if type(fn) ~= "function" then core.bad_argument(1, fname, "function", fn, 3) end
  check_ms(ms, fname, 2, 3)
  local h = setmetatable({ fn = fn, ms = ms, interval = interval, state = ARMED,
    ctx = core.current_ctx(), quiet = core.quiet_now() }, Handle)
  h.id = add(ms, h)
  return h
end

-- A handle whose time came: its callback runs as a task of the script
-- that armed it; an interval arms again.
function fire_handle(h)
  if h.state ~= ARMED then return end
  -- Its timer is gone: no id (should spawning fail, cancel stops nothing).
  h.id = 0
  if not h.interval then h.state = DONE end
  core.quietly(h.quiet, core.spawn_detached, h.ctx, h.fn)
  if h.interval and h.state == ARMED then h.id = add(h.ms, h) end
end

local function now()
  return clock_us() / 1000
end

local api = core.api
-- sleep(ms) is C (native.rs): a promise like `timer`'s, an operation of
-- the running task (core.track).
api.sleep = heap.sleep
api.set_timeout = function(fn, ms) return start("set_timeout", fn, ms, false) end
api.set_interval = function(fn, ms) return start("set_interval", fn, ms, true) end
api.now = now

-- One chunk of a turn, `turn(now_us, fire_due, max)` (C, native.rs):
-- `now_us` moves the base of new deadlines forward (so a sleep made late in
-- a long turn is not shortened by it); with `fire_due`, at the start of a
-- turn, due timers fire first; then up to `max` tasks of the batch run.
-- Returns what core's `run` does, then the timers fired, the next deadline
-- (or -1) and the pending timer count.
local turn = heap.turn

-- Stops every timer: handles are done, pending sleeps are cancelled (a
-- task awaiting one is cancelled on its own, as the end of a run does).
-- The entries are taken out first: cancelling runs code that may make
-- new timers.
local function clear()
  heap_clear()
  local list, n = {}, 0
  for id, e in pairs(entries) do
    entries[id] = nil
    n = n + 1
    list[n] = e
  end
  for i = 1, n do
    local e = list[i]
    if real_metatable(e) == Handle then
      e.state = DONE
    elseif e[ST] == PENDING then
      -- Its timer is gone already: the source must not stop it again.
      e[V] = false
      core.cancel(e)
    end
  end
end

return turn, status, clear
