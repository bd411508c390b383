-- Promise state and settlement. A promise is a plain array of three slots
-- under PROMISE_MT, whose `__metatable` hides it: scripts can neither reach
-- the metatable nor forge a promise (the core tells promises apart with
-- debug.getmetatable). The slots:
--   [ST] the state (PENDING, RESOLVED, REJECTED, CANCELLED);
--   [V]  while pending, its source (what cancelling it stops); once
--        settled, its value or reason;
--   [W]  false while nobody consumed it; then its waiter, a list of
--        waiters ({n = k, ...}), or true once they were told;
--   [X]  (deferred promises only) the hook that takes back an undelivered value.
-- A waiter is a task record (woken), a function (called with the
-- promise) or a number (a Rust callback id).
-- Settling wakes tasks at once and queues every other effect; one loop
-- drains the queue, so chains of any length never recurse.
local core, prim = ...

local type, rawget, setmetatable, pcall, getmetatable = type, rawget, setmetatable, pcall, getmetatable
local real_metatable = core.debug.getmetatable
local notify = prim.notify

local PENDING, RESOLVED, REJECTED, CANCELLED = 0, 1, 2, 3
core.PENDING, core.RESOLVED, core.REJECTED, core.CANCELLED = PENDING, RESOLVED, REJECTED, CANCELLED
core.STATUS = { [0] = "pending", "resolved", "rejected", "cancelled" }
local ST, V, W, X = 1, 2, 3, 4
core.ST, core.V, core.W, core.X = ST, V, W, X

local PROMISE_MT = { __name = "promise", __metatable = "promise" }
core.PROMISE_MT = PROMISE_MT

-- Every slot from the start: settling and consuming never resize it.
local function new_promise(source)
  return setmetatable({ PENDING, source or false, false }, PROMISE_MT)
end
core.new_promise = new_promise

local function is_promise(v)
  return real_metatable(v) == PROMISE_MT
end
core.is_promise = is_promise

-- Rejected promises nobody consumed yet; checked when the ready queue empties.
local unhandled, unhandled_n = {}, 0
-- Tells the run loop how many wait (set by task.lua).
local unhandled_count = function() end
function core.set_unhandled_count(f) unhandled_count = f end
core.unhandled = function()
  local list, n = unhandled, unhandled_n
  unhandled, unhandled_n = {}, 0
  unhandled_count(0)
  return list, n
end
core.has_unhandled = function() return unhandled_n > 0 end

---------------------------------------------------------------- effects
local eq, eq_head, eq_tail = {}, 1, 0
local draining = false
local make_ready -- set by task.lua
function core.set_make_ready(f) make_ready = f end

local function queue(w, p)
  if type(w) == "table" then
    make_ready(w) -- a task: waking it is the whole effect
  else
    eq[eq_tail + 1], eq[eq_tail + 2] = w, p
    eq_tail = eq_tail + 2
  end
end

local settle, cancel

-- `d` adopted `p`: settle it the same way (a cancelled input cancels it).
local function follow(d, p)
  local st = p[ST]
  if st == CANCELLED then cancel(d) else settle(d, st, p[V]) end
end
core.follow = follow

local function run_effects()
  while eq_head <= eq_tail do
    local w, p = eq[eq_head], eq[eq_head + 1]
    eq[eq_head], eq[eq_head + 1] = nil, nil
    eq_head = eq_head + 2
    if type(w) == "function" then
      w(p)
    else
      notify(w, p[ST], p[V])
    end
  end
end

-- An effect that raises (a Rust callback, a memory error) is reported to
-- the host and the rest of the queue still runs: nothing waits for an
-- unrelated settlement to be drained.
local function drain()
  if draining then return end
  draining = true
  while true do
    local ok, err = pcall(run_effects)
    if ok then break end
    prim.unhandled(err)
  end
  draining = false
  eq_head, eq_tail = 1, 0
end

local function dispatch(p, st)
  local w = p[W]
  if w == false then
    if st == REJECTED then
      unhandled_n = unhandled_n + 1
      unhandled[unhandled_n] = p
      unhandled_count(unhandled_n)
    end
    return
  elseif w == true then
    return
  end
  p[W] = true
  if type(w) == "table" and w.n then
    for i = 1, w.n do queue(w[i], p) end
  else
    queue(w, p)
  end
  if eq_head <= eq_tail then drain() end
end

core.dispatch = dispatch

-- Queues `f(arg)` as an effect and drains the queue unless it is being
-- drained already (then it runs later in the same drain): how cancelling
-- a task reaches its descendants without recursing.
function core.defer(f, arg)
  eq[eq_tail + 1], eq[eq_tail + 2] = f, arg
  eq_tail = eq_tail + 2
end
core.drain = drain

-- Settles a pending promise with state `st` and value `v`, as is: no
-- adoption (see `resolve`). False if it had settled already.
function settle(p, st, v)
  if p[ST] ~= PENDING then return false end
  p[ST], p[V] = st, v
  dispatch(p, st)
  return true
end
core.settle = settle

-- Stops what a pending promise stands for. A source is a task record, a
-- promise (cancelled with it), a number (a Rust future; minus a timer's id
-- for a timer), a function (called) or a table with a `stop` function
-- (called with the table).
local cancel_task -- set by task.lua
function core.set_cancel_task(f) cancel_task = f end
local stop_timer = function() end -- set by the timer module
function core.set_stop_timer(f) stop_timer = f end
local function stop(src, p)
  local t = type(src)
  if t == "table" then
    if is_promise(src) then cancel(src)
    elseif src.stop then src.stop(src)
    else cancel_task(src) end
  elseif t == "number" then
    if src < 0 then stop_timer(-src, p) else core.stop_op(src) end
  elseif t == "function" then
    src()
  end
end

-- Cancels a pending promise: marks it first (so code run while stopping
-- sees it cancelled), stops its source, then tells its waiters.
function cancel(p)
  if p[ST] ~= PENDING then return false end
  local src = p[V]
  p[ST], p[V] = CANCELLED, nil
  if src then stop(src, p) end
  dispatch(p, CANCELLED)
  return true
end
core.cancel = cancel

-- Adds a waiter; if `p` has settled, its effect happens now. Either way `p`
-- counts as consumed.
local function add_waiter(p, w)
  local cur = p[W]
  if p[ST] ~= PENDING and (cur == false or cur == true) then
    p[W] = true
    queue(w, p)
    if eq_head <= eq_tail then drain() end
  elseif cur == false or cur == true then
    p[W] = w
  elseif type(cur) == "table" and cur.n then
    local n = cur.n + 1
    cur.n, cur[n] = n, w
  else
    p[W] = { n = 2, cur, w }
  end
end
core.add_waiter = add_waiter

-- Takes `w` off the waiters of `p` (a race that is over, a task that was
-- cancelled). `p` stays consumed.
function core.remove_waiter(p, w)
  local cur = p[W]
  if cur == w then
    p[W] = true
  elseif type(cur) == "table" and cur.n then
    local n = cur.n
    for i = 1, n do
      if cur[i] == w then
        table.move(cur, i + 1, n, i)
        cur[n] = nil
        cur.n = n - 1
        return
      end
    end
  end
end

-- Marks `p` consumed without waiting on it (the host holds it, say).
function core.consume(p)
  if p[W] == false then p[W] = true end
end

---------------------------------------------------------------- resolution
local function read_then(v) return v["then"] end

local adopt_thenable -- below

-- Resolves `p` with `v`: a promise is adopted, a table with a callable
-- `then` is treated as a thenable (read once), anything else settles it.
local function resolve(p, v)
  if p[ST] ~= PENDING then return end
  if type(v) == "table" then
    if is_promise(v) then
      if v == p then
        settle(p, REJECTED, core.new_error("type", "a promise cannot resolve to itself"))
        return
      end
      p[V] = false -- cancelling p now cancels only p
      add_waiter(v, function(src) follow(p, src) end)
      return
    end
    local th
    if getmetatable(v) == nil then
      th = rawget(v, "then")
    else
      local ok, got = pcall(read_then, v)
      if not ok then
        settle(p, REJECTED, got) -- Promises/A+ 2.3.3.2: exactly what was thrown
        return
      end
      th = got
    end
    if type(th) == "function" then
      adopt_thenable(p, v, th)
      return
    end
  end
  settle(p, RESOLVED, v)
end
core.resolve = resolve

function core.reject(p, reason)
  return settle(p, REJECTED, reason)
end

-- `then(obj, resolve, reject)` runs as a task of its own; only the first
-- call of either function counts, and an error raised before either was
-- called rejects.
function adopt_thenable(p, obj, th)
  local done = false
  local function res(v) if not done then done = true; resolve(p, v) end end
  local function rej(e) if not done then done = true; settle(p, REJECTED, e) end end
  local runner = core.spawn_detached(core.current_ctx(), function() th(obj, res, rej) end)
  core.consume(runner)
  add_waiter(runner, function(r) if r[ST] == REJECTED then rej(r[V]) end end)
end

-- A promise settled by whoever holds its resolvers. With `on_cancel` it is
-- an operation of the running task (cancelled with it) and `on_cancel`
-- runs when it is cancelled. With `on_undelivered`, a value that reached a
-- task that was cancelled before it resumed is handed back to it.
function core.deferred(on_cancel, on_undelivered)
  local p = new_promise(on_cancel)
  if on_cancel then core.track(p) end
  if on_undelivered then p[X] = on_undelivered end
  return p, function(v) resolve(p, v) end, function(e) settle(p, REJECTED, e) end
end
