-- await(p): the value of a settled promise at once; for a pending one, the
-- task yields to the scheduler, which resumes it once `p` has settled.
-- Scripts get the C `await` (native/hot.rs), which does the common cases
-- itself and calls this file's rules, one frame deeper, for the rest.
local core, prim = ...
local ssub = string.sub

local error = error
local real_metatable = core.debug.getmetatable
local PROMISE_MT = core.PROMISE_MT
local running, yield = core.co_running, coroutine.yield
local running_task = core.running_task
local ST, V, W = core.ST, core.V, core.W
local PENDING, RESOLVED, REJECTED = core.PENDING, core.RESOLVED, core.REJECTED
local AWAIT = core.AWAIT
local raise, cancelled_error = core.raise, core.cancelled_error
local ERROR_MT = core.ERROR_MT
local getinfo = core.debug.getinfo
local rawget, rawset = rawget, rawset

-- An error object re-raised here learns where the script awaited it: one
-- without a traceback (an error made in Rust: HTTP, fs) gets the awaiting
-- task's stack; one with a traceback (from a failed task) gets the
-- awaiting line and function appended, so a report spans the awaits.
-- Bounded, so a loop that awaits the same rejection cannot grow it.
local MAX_TRACEBACK = 4096
-- `extra`: frames between await's caller and the await rules (the C
-- await's).
local function note_await(e, extra)
  local tb = rawget(e, "traceback")
  if tb == nil then
    rawset(e, "traceback", core.task_traceback(3 + extra))
    return
  end
  if type(tb) ~= "string" or #tb > MAX_TRACEBACK then return end
  local info = getinfo(3 + extra, "Sln")
  -- `return await(p)` is a tail call: the awaiting frame is gone, and the
  -- frame above is the runtime's own; the spawn sites already say where.
  if not info or not info.currentline or info.currentline <= 0
      or ssub(info.short_src, 1, 6) == "luaco/" then
    return
  end
  local where = info.short_src .. ":" .. info.currentline
  if info.what == "main" then
    where = where .. ": in main chunk"
  elseif info.name then
    where = where .. ": in function '" .. info.name .. "'"
  elseif info.linedefined and info.linedefined > 0 then
    -- A task's function has no name where the worker calls it.
    where = where .. ": in function <" .. info.short_src .. ":" .. info.linedefined .. ">"
  end
  rawset(e, "traceback", tb .. "\n\t[awaited at] " .. where)
end

local OUTSIDE = "await() called outside an async task"
local NOT_A_PROMISE = "await() requires a promise argument"

local function await_with(p, extra)
  -- Only the scheduler resumes task coroutines (see the guards in task.lua),
  -- so running in the current task's coroutine means running in the task.
  if running() ~= running_task.co then raise("runtime", OUTSIDE, 2 + extra) end
  if real_metatable(p) ~= PROMISE_MT then raise("type", NOT_A_PROMISE, 2 + extra) end
  local st = p[ST]
  if p[W] == false then p[W] = true end
  while st == PENDING do
    yield(AWAIT, p)
    st = p[ST]
  end
  -- Raw: a nil value is a missing slot, which would call __index.
  if st == RESOLVED then return rawget(p, V) end
  if st == REJECTED then
    local e = p[V]
    if real_metatable(e) == ERROR_MT then note_await(e, extra) end
    error(e, 0)
  end
  error(cancelled_error(), 0)
end

local function await(p)
  return await_with(p, 0)
end
core.await = await
-- The frame that re-raises a rejection (errors.lua lets its strings through).
core.set_await(await_with)
-- What scripts call: the C await, whose rare cases come back here.
core.await_c = prim.make_await(running_task, PROMISE_MT, AWAIT, function(p)
  return await_with(p, 1)
end)
