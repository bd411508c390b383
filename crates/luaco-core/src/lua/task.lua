-- Tasks: spawning, the ready queue, the worker coroutines that run tasks,
-- resuming, cancelling, children and spawn sites.
--
-- A task record is an array (fields below) made at spawn; it gets a worker
-- coroutine only when it starts and gives it back when it ends. A worker
-- runs tasks in a loop (`worker_body`), so a finished task's coroutine is
-- reused without being reset. Everything here lives in Lua: the host holds
-- no reference per task or per promise.
local core, prim = ...
-- The C string functions (see errors.lua).
local ssub, smatch, sgmatch, sfind = string.sub, string.match, string.gmatch, string.find

local type, select, error, rawget, rawset, collectgarbage, setmetatable =
  type, select, error, rawget, rawset, collectgarbage, setmetatable
local unpack, pack = table.unpack, table.pack
-- resume and close are the core's C functions that publish the coroutine
-- they run, so that a deadline or a time slice can interrupt it.
local co_create, co_yield, co_running = coroutine.create, coroutine.yield, coroutine.running
local co_resume, co_close = prim.resume, prim.close
local spawn_site = prim.spawn_site
core.co_running = co_running
local new_promise, settle, resolve, cancel = core.new_promise, core.settle, core.resolve, core.cancel
local add_waiter, dispatch, defer, drain = core.add_waiter, core.dispatch, core.defer, core.drain
local ST, V, W, X = core.ST, core.V, core.W, core.X
local PENDING, RESOLVED, REJECTED = core.PENDING, core.RESOLVED, core.REJECTED

-- Task record fields.
local FN, PROMISE, CO, CTX, ARGS, ID, WAITING, KIDS, STATE, UP, SITE, LINE, ARG1, YIELDS, TIME =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
-- QUIET: a task that reports no lifecycle (an event handler), nor do the
-- tasks made while it runs.
local QUIET = 16
-- ARGS is ONE when the only argument sits in ARG1 (a handler's value),
-- which saves packing it into a table.
local ONE = {}
-- STATE values. Live tasks: false (listed among the children of a
-- parent task or of `root`, below) or LOOSE (a task with no parent task,
-- spawned by an effect, a timer or the host: listed under `root` only
-- once it first awaits, since until then the ready queue holds it, and
-- most such tasks end in their first run).
local DONE, LOOSE = 2, 4
-- CANCEL_PENDING: cancelled while it ran; closed once it stops.
local CANCEL_PENDING = 3

-- What a worker yields: the scheduler tells an await, a finished task and
-- a bare (or hook) yield apart by the first value.
local AWAIT, FINISHED = {}, {}
core.AWAIT = AWAIT

-- Why a task stopped, as Rust's `Stop` enum numbers them.
local STOP_YIELD, STOP_PREEMPTED, STOP_LIMIT = 1, 2, 3

-- The scheduler's state, shared with the C run loop (native/hot.rs). What
-- Lua code reads on its own hot paths is in the array S, a slot by number:
-- the ready queue S[S_RQ] (up to S[S_TAIL]), the running task S[S_CUR]
-- (false between tasks), the pool of idle worker coroutines S[S_POOL],
-- the live task count S[S_LIVE]. The rest is the C loop's own, read and
-- written here through qget/qset (Q_ numbers): where the queue and this
-- turn's batch start and end, the pool's size, and the flags.
local S_RQ <const>, S_TAIL <const>, S_CUR <const>, S_POOL <const>, S_LIVE <const> = 1, 2, 3, 4, 5
-- S[S_SERIAL]: the id of the last task made.
local S_SERIAL <const> = 6
local S = { {}, 0, false, {}, 0, 0 }
local rq, pool = S[S_RQ], S[S_POOL]
local Q_HEAD <const>, Q_BATCH <const>, Q_POOL_N <const>, Q_POOL_SIZE <const> = 1, 2, 3, 4
local Q_HALTED <const>, Q_OBSERVED <const>, Q_UNHANDLED <const> = 5, 6, 7
local run, qget, qset -- made below, once the Lua half of a step is defined
-- The running task's coroutine, shared with await.lua (a table field is
-- cheaper to read there than a function to call).
-- `resumes` counts every resume, so a time-slice hook can tell a task that
-- just resumed from one that has been running since it last looked.
local running_task = { co = false, resumes = 0 }
core.running_task = running_task
function core.current() return S[S_CUR] or nil end

-- S[S_LIVE]: tasks spawned and not yet done.
function core.live_tasks() return S[S_LIVE] end

local function set_done(t)
  t[STATE] = DONE
  S[S_LIVE] = S[S_LIVE] - 1
end
local options = core.options
local spawn_sites = options.spawn_sites
local default_ctx = options.default_ctx

-- Lifecycle reporting: off unless an observer wants it.
-- `observed`: some point is wanted (running time and yields are counted);
-- then one flag per point.
local observed = false
local obs_created, obs_started, obs_yielded, obs_resumed = false, false, false, false
local obs_completed, obs_failed, obs_cancelled = false, false, false
local lifecycle, clock = prim.lifecycle, prim.clock
local EV_CREATED, EV_STARTED, EV_YIELDED, EV_RESUMED, EV_COMPLETED, EV_FAILED, EV_CANCELLED =
  1, 2, 3, 4, 5, 6, 7
-- Not a lifecycle point: a run-level limit stopped the task.
local EV_LIMIT = 8
-- `mask`: bit i - 1 for lifecycle point i.
function core.set_observed(mask)
  local function bit(i) return mask & (1 << (i - 1)) ~= 0 end
  observed = mask ~= 0
  qset(Q_OBSERVED, observed and 1 or 0)
  obs_created, obs_started, obs_yielded, obs_resumed = bit(1), bit(2), bit(3), bit(4)
  obs_completed, obs_failed, obs_cancelled = bit(5), bit(6), bit(7)
end

-- `v`: the result or the error, where there is one.
local function report(ev, t, st, v)
  if t[QUIET] then return end
  lifecycle(ev, t[ID], t[CTX], st or t[PROMISE][ST], t[YIELDS] or 0, t[TIME] or 0, v)
end

-- A new task, reported: an observer may refuse it, and then it never runs
-- and its promise rejects with the observer's error. `parent`: the task
-- running when it was made.
-- A quiet task is asked about too (a host's quota sees every task), but
-- reports nothing.
local function created(t, parent)
  local quiet = t[QUIET] or false
  local veto = lifecycle(EV_CREATED, t[ID], t[CTX], PENDING, 0, 0, nil, parent and parent[ID] or 0, quiet)
  if veto == nil then return end
  set_done(t)
  t[FN], t[ARGS], t[ARG1] = nil, nil, nil
  if obs_failed then report(EV_FAILED, t, REJECTED, veto) end
  local p = t[PROMISE]
  t[PROMISE] = false
  settle(p, REJECTED, veto)
end

---------------------------------------------------------------- ready queue
local function make_ready(t)
  local n = S[S_TAIL] + 1
  S[S_TAIL] = n
  rq[n] = t
end
core.set_make_ready(make_ready)
core.make_ready = make_ready

function core.ready_count() return S[S_TAIL] - qget(Q_HEAD) + 1 end

---------------------------------------------------------------- workers
-- Task coroutines a script got hold of (through coroutine.running): the
-- guards below refuse to resume or close them.
local exposed = {}
core.exposed = exposed

-- Runs one task's function as a tail call, so no local of it outlives it.
-- There is no protected call here: an error kills the worker, and the
-- scheduler reads the reason and traceback from the dead coroutine (see
-- core.failure_reason). Without a C frame in the middle, a worker's stack
-- stays within Lua's initial allocation for typical tasks.
local function run_task(t)
  local f, args = t[FN], t[ARGS]
  t[FN], t[ARGS] = nil, nil
  if args == ONE then
    local v = t[ARG1]
    t[ARG1] = nil
    return f(v)
  end
  if args then return f(unpack(args, 1, args.n)) end
  return f()
end

local function worker_body(t)
  while true do
    t = co_yield(FINISHED, (run_task(t)))
  end
end

function core.pooled() return qget(Q_POOL_N) end

---------------------------------------------------------------- children
-- A task's pending children (tasks and operations) are cancelled with it.
-- One child is kept as it is (most tasks await one operation at a time,
-- and a settled one is replaced by the next); more make a list
-- {n = k, limit = m, ...}, compacted when it doubles, so it holds about as
-- many entries as there are pending children. A list is told from a child
-- by its `n`, read raw (a promise has no fields).
local function add_kid(t, p)
  local kids = t[KIDS]
  if not kids then
    t[KIDS] = p
    return
  end
  local n = rawget(kids, "n")
  if n == nil then
    if kids[ST] ~= PENDING then t[KIDS] = p else t[KIDS] = { n = 2, limit = 16, kids, p } end
    return
  end
  if n >= kids.limit then
    local m = 0
    for i = 1, n do
      local k = kids[i]
      kids[i] = nil
      if k[ST] == PENDING then m = m + 1; kids[m] = k end
    end
    n = m
    kids.limit = (m * 2 > 16) and m * 2 or 16
  end
  n = n + 1
  kids.n, kids[n] = n, p
end

-- The children of no task: LOOSE tasks once they await, and the pending
-- children of finished tasks. With the ready queue, it lets the end of a
-- run (an error in a main chunk) reach each live task through children
-- lists, at no cost on the paths a task usually takes.
local root = {}

-- The pending ones among a finished task's children go on under `root`.
local function adopt(kids)
  if rawget(kids, "n") == nil then
    if kids[ST] == PENDING then add_kid(root, kids) end
    return
  end
  for i = 1, kids.n do
    local k = kids[i]
    if k[ST] == PENDING then add_kid(root, k) end
  end
end

-- Makes `p` an operation of the running task: cancelled with it.
function core.track(p)
  local cur = S[S_CUR]
  if cur then add_kid(cur, p) end
  return p
end

---------------------------------------------------------------- spawning
local MAX_SITE_DEPTH = 8

-- Work a quiet task registers for later (a `:next` handler, a timer, a
-- `finally`) is spawned by an effect or a timer, when no task runs: it is
-- made quiet through `core.quietly`, with what the registration captured.
local next_quiet = false
function core.quiet_now()
  local cur = S[S_CUR]
  return cur and cur[QUIET] == true or false
end
function core.quietly(quiet, f, ...)
  if not quiet then return f(...) end
  next_quiet = true
  local ok, r = pcall(f, ...)
  next_quiet = false
  if not ok then error(r, 0) end
  return r
end

local function new_task(f, p, ctx, args)
  local serial = S[S_SERIAL] + 1
  S[S_SERIAL] = serial
  S[S_LIVE] = S[S_LIVE] + 1
  -- Every field up to LINE from the start, so the record never resizes.
  local t = { f, p, false, ctx, args or false, serial, false, false, LOOSE, false, false, 0, nil }
  p[V] = t
  local cur = S[S_CUR]
  if next_quiet or (cur and cur[QUIET]) then t[QUIET] = true end
  make_ready(t)
  return t
end

-- async(f, ...): a child of the running task, starting on a later turn.
-- The C async (native/hot.rs) makes most tasks itself, as this does; this
-- is for the rest (observed runs, a bad argument), called from it:
-- `level` is that of async's caller here.
local PROMISE_MT = core.PROMISE_MT
local function spawn_with(level, f, ...)
  if type(f) ~= "function" then core.bad_argument(1, "async", "function", f, level) end
  -- new_promise and new_task, inlined: this is the hottest path of all.
  local p = setmetatable({ PENDING, false, false }, PROMISE_MT)
  local parent = S[S_CUR]
  local n = select("#", ...)
  local serial = S[S_SERIAL] + 1
  S[S_SERIAL] = serial
  S[S_LIVE] = S[S_LIVE] + 1
  local t = { f, p, false, parent and parent[CTX] or default_ctx, n > 0 and pack(...) or false,
    serial, false, false, not parent and LOOSE or false, false, false, 0, nil }
  p[V] = t
  local tail = S[S_TAIL] + 1
  S[S_TAIL] = tail
  rq[tail] = t
  if parent then
    add_kid(parent, p)
    if parent[QUIET] then t[QUIET] = true end
  end
  if spawn_sites then
    t[SITE], t[LINE] = spawn_site(level)
    if parent then
      -- Chains are cut at MAX_SITE_DEPTH, so a long line of spawns does
      -- not keep every ancestor's record alive.
      local depth, a = 0, parent
      while a and depth < MAX_SITE_DEPTH do a = a[UP]; depth = depth + 1 end
      if depth < MAX_SITE_DEPTH then t[UP] = parent end
    end
  end
  if obs_created then created(t, parent) end
  return p
end

-- The script context of the running task (the default one outside tasks).
-- Whoever registers work for later (a handler, a timer) takes it then, so
-- the work runs in the script that asked for it, not in whichever task
-- happens to run when it starts.
local function current_ctx()
  local cur = S[S_CUR]
  return cur and cur[CTX] or default_ctx
end
core.current_ctx = current_ctx

-- A task with no parent whose promise is `p` (a handler settling a
-- derived promise, a timer callback), in script context `ctx`.
local function spawn_into(p, ctx, f, ...)
  local n = select("#", ...)
  local t = new_task(f, p, ctx or default_ctx, n > 0 and pack(...) or nil)
  if obs_created then created(t, S[S_CUR] or nil) end
  return t
end
core.spawn_into = spawn_into

-- spawn_into for a handler of one value.
function core.spawn_handler(p, ctx, f, v)
  local t = new_task(f, p, ctx or default_ctx, ONE)
  t[ARG1] = v
  if obs_created then created(t, S[S_CUR] or nil) end
  return t
end

function core.spawn_detached(ctx, f, ...)
  local p = new_promise()
  spawn_into(p, ctx, f, ...)
  return p
end

-- A detached task that reports no lifecycle, nor do the tasks made while
-- it runs: event handlers, so that watching tasks makes no new ones to
-- watch.
function core.spawn_quiet(ctx, f, ...)
  local p = new_promise()
  local n = select("#", ...)
  local t = new_task(f, p, ctx or default_ctx, n > 0 and pack(...) or nil)
  t[QUIET] = true
  if obs_created then created(t, S[S_CUR] or nil) end
  return p
end

-- A task started by the host in script context `ctx`; its promise counts
-- as consumed (the host holds it).
function core.spawn_host(f, ctx, name, ...)
  local p = new_promise()
  p[W] = true
  local n = select("#", ...)
  local t = new_task(f, p, ctx, n > 0 and pack(...) or nil)
  t[SITE], t[LINE] = "=" .. name .. " (by the host)", 0
  if obs_created then created(t, S[S_CUR] or nil) end
  return p
end

-- A chunk's source as tracebacks name it ("@file.lua" is "file.lua").
local function short_source(src)
  local c = ssub(src, 1, 1)
  if c == "@" or c == "=" then return ssub(src, 2) end
  return '[string "' .. ssub(smatch(src, "^[^\n]*"), 1, 40) .. '"]'
end

-- The spawn sites of task `t` (the running one by default) and its
-- ancestors, as traceback lines.
function core.spawn_chain(t)
  local out = ""
  t = t or S[S_CUR] or nil
  while t do
    if t[SITE] then
      out = out .. "\n\t[spawned at] " .. short_source(t[SITE])
      if t[LINE] and t[LINE] > 0 then out = out .. ":" .. t[LINE] end
    end
    t = t[UP]
  end
  return out
end

function core.task_ctx(t) return t and t[CTX] end

-- The stack of the suspended task behind pending promise `p`, without the
-- runtime's own frames, and its spawn chain.
function core.suspended_traceback(p)
  local t = p[V]
  if p[ST] ~= PENDING or type(t) ~= "table" or type(t[CO]) ~= "thread" then return nil end
  local tb = core.debug.traceback(t[CO], "", 0)
  local lines = {}
  for line in sgmatch(tb, "[^\n]+") do
    -- The runtime's frames: its Lua files, the yield, and the C await.
    if not sfind(line, "luaco/", 1, true) and not sfind(line, "[C]: in function 'coroutine.yield'", 1, true)
        and not smatch(line, "^%s*%[C%]: in [%w ]*'[%w_.]*await'$")
        and line ~= "stack traceback:" then
      lines[#lines + 1] = line
    end
  end
  return "stack traceback:\n" .. table.concat(lines, "\n") .. core.spawn_chain(t)
end

---------------------------------------------------------------- finishing
local OUT_OF_MEMORY = core.OUT_OF_MEMORY

local function finish(t, ok, v)
  t[STATE] = DONE
  S[S_LIVE] = S[S_LIVE] - 1
  local p = t[PROMISE]
  if not ok then
    if v == OUT_OF_MEMORY then
      -- The task died of a memory error (its status says so). Free what
      -- it left before anything else is built.
      collectgarbage()
      v = core.memory_error()
    end
    -- A full heap is a run-level limit however the failure is handled
    -- (the host may hold this promise): the observers hear of it now.
    if type(v) == "table" and rawget(v, "code") == "memory" and rawget(v, "kind") == "limit" then
      lifecycle(EV_LIMIT, t[ID], t[CTX], REJECTED, t[YIELDS] or 0, t[TIME] or 0, v)
    end
  end
  if ok then
    if obs_completed then report(EV_COMPLETED, t, RESOLVED, v) end
  elseif obs_failed then
    report(EV_FAILED, t, REJECTED, v)
  end
  local kids = t[KIDS]
  if kids then
    t[KIDS] = nil
    adopt(kids)
  end
  if ok then
    if type(v) == "table" then
      resolve(p, v)
    elseif p[ST] == PENDING then
      -- settle's common case inline: a plain value, often nobody waiting.
      p[ST], p[V] = RESOLVED, v
      if p[W] ~= false then dispatch(p, RESOLVED) end
    end
  else
    -- Where an unhandled rejection came from, for the report.
    rawset(p, "origin", t)
    settle(p, REJECTED, v)
  end
  t[PROMISE] = false
end

-- Closes a suspended coroutine, running its pending `__close` handlers.
local function close(co)
  exposed[co] = nil
  local ok, err = co_close(co)
  if not ok then
    local e = err
    if type(e) == "string" then e = core.new_error("runtime", e) end
    prim.close_error(e)
  end
end

-- A task that was woken with a value but cancelled before it resumed hands
-- the value back (a semaphore permit, a channel message).
local function undeliver(t)
  local w = t[WAITING]
  if not w then return end
  t[WAITING] = nil
  if w[ST] == PENDING then core.remove_waiter(w, t) end
  local hook = rawget(w, X)
  if hook and w[ST] == RESOLVED then
    w[X] = nil
    hook(w[V])
  end
end

-- Cancels the pending ones among `kids` through the effect queue, so a
-- deep line of descendants cannot overflow the stack.
local function cancel_kids(kids)
  if rawget(kids, "n") == nil then
    if kids[ST] == PENDING then defer(cancel, kids) end
  else
    for i = 1, kids.n do
      local k = kids[i]
      if k[ST] == PENDING then defer(cancel, k) end
    end
  end
  drain()
end

local function cancel_task(t)
  local state = t[STATE]
  if state == DONE or state == CANCEL_PENDING then return end
  local kids = t[KIDS]
  t[KIDS] = nil
  if t == S[S_CUR] then
    -- It stops at its next yield; what it spawns until then is cancelled
    -- when it does (see cancel_leftovers).
    t[STATE] = CANCEL_PENDING
  else
    set_done(t)
    if obs_cancelled then report(EV_CANCELLED, t) end
    local co = t[CO]
    t[FN], t[ARGS], t[ARG1] = nil, nil, nil
    if co then
      t[CO] = false
      close(co)
      undeliver(t)
    end
  end
  if kids then cancel_kids(kids) end
end
core.set_cancel_task(cancel_task)

-- Children a task made after it was cancelled from inside itself.
local function cancel_leftovers(t)
  local kids = t[KIDS]
  if not kids then return end
  t[KIDS] = nil
  cancel_kids(kids)
end

---------------------------------------------------------------- running
local yield_reason = prim.yield_reason

-- What happens after a resume, in full: `ok, a, b, c` is what the resume
-- gave. The C loop (native/hot.rs) does the common cases itself (a task
-- that awaits a pending promise, or finishes) and calls this for the rest.
local function after_resume(t, co, ok, a, b, c)
  if not ok then
    -- The task raised: its coroutine is dead, with the stack of the error
    -- still in place to read. Then its pending `<close>` values run.
    exposed[co] = nil
    t[CO] = false
    local reason = core.failure_reason(co, a, t)
    -- close gives the original error back; a different one is an error
    -- raised by a `__close` handler, which replaces it (as in a pcall).
    local closed, close_err = co_close(co)
    if not closed and not rawequal(close_err, a) then
      reason = core.failure_reason(co, close_err, t)
    end
    -- A `__close` handler may have cancelled the task meanwhile.
    if t[STATE] == DONE then return end
    if t[STATE] ~= CANCEL_PENDING then
      finish(t, false, reason)
    else
      set_done(t)
      cancel_leftovers(t)
    end
    return
  end
  if a == FINISHED then
    local pool_n = qget(Q_POOL_N)
    if pool_n < qget(Q_POOL_SIZE) then
      pool_n = pool_n + 1
      qset(Q_POOL_N, pool_n)
      pool[pool_n] = co
    else
      -- Not kept: close it, so a script that held on to it cannot resume
      -- a worker outside the scheduler.
      exposed[co] = nil
      co_close(co)
    end
    t[CO] = false
    if t[STATE] == CANCEL_PENDING then
      set_done(t)
      if obs_cancelled then report(EV_CANCELLED, t) end
      cancel_leftovers(t)
    else
      finish(t, true, b)
    end
    return
  end
  if t[STATE] == CANCEL_PENDING then
    set_done(t)
    t[CO] = false
    if obs_cancelled then report(EV_CANCELLED, t) end
    close(co)
    cancel_leftovers(t)
    return
  end
  if observed then
    t[YIELDS] = (t[YIELDS] or 0) + 1
    if obs_yielded then report(EV_YIELDED, t) end
  end
  if a == AWAIT then
    if t[STATE] == LOOSE then
      t[STATE] = false
      add_kid(root, t[PROMISE])
    end
    t[WAITING] = b
    -- add_waiter's common case inline: nobody else waits on `b` yet.
    local cur = b[W]
    if cur == false or cur == true then b[W] = t else add_waiter(b, t) end
    return
  end
  -- A bare coroutine.yield, or a hook that suspended the task.
  local why = (a == nil) and yield_reason() or STOP_YIELD
  if why == STOP_LIMIT then
    -- Abandoned: never resumed again, never closed (closing would run the
    -- script's own code once more).
    exposed[co] = nil
    t[CO] = false
    set_done(t)
    local err = prim.limit_error()
    lifecycle(EV_LIMIT, t[ID], t[CTX], REJECTED, t[YIELDS] or 0, t[TIME] or 0, err)
    if obs_failed then report(EV_FAILED, t, REJECTED, err) end
    settle(t[PROMISE], REJECTED, err)
    return
  end
  make_ready(t)
end

-- Resumes a ready task once, in full: what the C loop calls for every
-- task while an observer watches lifecycles (the reports and the running
-- time are counted here).
local function step(t)
  local state = t[STATE]
  if state == DONE then return end
  local co, arg = t[CO], nil
  if not co then
    local pool_n = qget(Q_POOL_N)
    if pool_n > 0 then
      co = pool[pool_n]
      pool[pool_n] = nil
      qset(Q_POOL_N, pool_n - 1)
    else
      co = co_create(worker_body)
    end
    t[CO], arg = co, t
    if obs_started then report(EV_STARTED, t) end
  else
    local w = t[WAITING]
    if w then
      if w[ST] == PENDING then return end -- woken early: keep waiting
      t[WAITING] = nil
      if rawget(w, X) then w[X] = nil end -- the value is delivered now (raw: no __index call)
    end
    if obs_resumed then report(EV_RESUMED, t) end
  end
  local started = observed and clock()
  S[S_CUR] = t
  running_task.co = co
  running_task.resumes = running_task.resumes + 1
  local ok, a, b, c
  if arg then ok, a, b, c = co_resume(co, arg) else ok, a, b, c = co_resume(co) end
  S[S_CUR] = false
  running_task.co = false
  if started then t[TIME] = (t[TIME] or 0) + (clock() - started) end
  return after_resume(t, co, ok, a, b, c)
end

-- When the ready queue empties with rejections nobody consumed: they are
-- reported, if nothing consumed them by then.
local function drained()
  if core.has_unhandled() then core.report_unhandled() end
end

-- core.run(max): runs up to `max` tasks of the current turn's batch,
-- opening a new batch (every task ready now) when none is open. Returns
-- how many of the batch are left, how many tasks are ready in all, and
-- how many ran. The loop is C (native/hot.rs), over S.
local spawn, c_track, c_make_ready
run, qget, qset, spawn, c_track, c_make_ready = prim.make_run(S, running_task, AWAIT, FINISHED, worker_body, {
  step = step,
  after_resume = after_resume,
  finish = finish,
  drained = drained,
  spawn = function(...) return spawn_with(3, ...) end,
  add_kid = add_kid,
  default_ctx = default_ctx,
  spawn_sites = spawn_sites,
  promise_mt = PROMISE_MT,
})
core.spawn = spawn
-- The C track and make_ready do what the Lua ones above do, for the
-- modules loaded from now on (timers, I/O) and for settling.
core.track = c_track
core.make_ready = c_make_ready
core.set_make_ready(c_make_ready)
qset(Q_POOL_SIZE, options.pool_size)
core.run = run
-- The C loop calls `drained` only while some rejection waits for a report.
core.set_unhandled_count(function(n) qset(Q_UNHANDLED, n) end)

-- Stops the loop at once: no task runs until cancel_all (how an error in
-- a main chunk ends the run, with nothing else running after it).
function core.halt()
  qset(Q_HALTED, 1)
  -- Ends the batch being run without a check per resume.
  qset(Q_BATCH, 0)
end

-- Cancels every live task (their `<close>` values run) and whatever their
-- cancellation starts, then empties the ready queue and lifts a halt.
-- Returns how many tasks were cancelled.
local MAX_CANCEL_ROUNDS = 64
function core.cancel_all()
  local before = S[S_LIVE]
  for _ = 1, MAX_CANCEL_ROUNDS do
    -- The queue is emptied first: cancelling makes tasks ready again.
    local queued, n = {}, 0
    for i = qget(Q_HEAD), S[S_TAIL] do
      n = n + 1
      queued[n] = rq[i]
      rq[i] = nil
    end
    S[S_TAIL] = 0
    qset(Q_HEAD, 1)
    qset(Q_BATCH, 0)
    local kids = root[KIDS]
    root[KIDS] = nil
    if not kids and n == 0 then break end
    for i = 1, n do
      local t = queued[i]
      if t and t[STATE] ~= DONE then
        local p = t[PROMISE]
        if p and p[ST] == PENDING then cancel(p) end
        if t[STATE] ~= DONE then cancel_task(t) end
      end
    end
    if kids then cancel_kids(kids) end
  end
  for i = qget(Q_HEAD), S[S_TAIL] do rq[i] = nil end
  S[S_TAIL] = 0
  qset(Q_HEAD, 1)
  qset(Q_BATCH, 0)
  qset(Q_HALTED, 0)
  return before - S[S_LIVE]
end

-- Unhandled rejections: reported once the ready queue is empty, if nothing
-- consumed them by then.
function core.report_unhandled()
  local list, n = core.unhandled()
  for i = 1, n do
    local p = list[i]
    if p[W] == false then
      p[W] = true
      local o = rawget(p, "origin")
      if o then
        prim.unhandled(p[V], o[ID], o[CTX], o[QUIET] or false)
      else
        prim.unhandled(p[V])
      end
    end
  end
end

---------------------------------------------------------------- guards
-- Task coroutines belong to the scheduler: a script that got hold of one
-- (through coroutine.running) cannot resume or close it behind its back.
do
  local co_lib = coroutine
  local wrap_running = function()
    local co, main = co_running()
    if co == running_task.co then exposed[co] = true end
    return co, main
  end
  co_lib.running = wrap_running
  co_lib.wrap = prim.wrap
  -- A C function, so argument errors name 'coroutine.resume' as Lua's do.
  co_lib.resume = prim.guard_resume(exposed)
  local co_status = coroutine.status
  co_lib.close = function(...)
    local co = ...
    -- Lua's own refusals, word for word and at the caller's line, where
    -- Lua would refuse: a running coroutine, or one that has resumed the
    -- caller (a task's coroutine is one of them when the task asks).
    if type(co) ~= "thread" then
      local got = select("#", ...) == 0 and "no value" or type(co)
      error("bad argument #1 to 'close' (coroutine expected, got " .. got .. ")", 2)
    end
    local st = co_status(co)
    if st == "running" or st == "normal" then
      error("cannot close a " .. st .. " coroutine", 2)
    end
    if exposed[co] then
      error("cannot close a coroutine that runs an async task (cancel its promise instead)", 2)
    end
    return co_close(co)
  end
end
