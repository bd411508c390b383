-- await(p): the value of a settled promise at once; for a pending one, the
-- task yields to the scheduler, which resumes it once `p` has settled.
local core = ...

local error = error
local real_metatable = core.debug.getmetatable
local PROMISE_MT = core.PROMISE_MT
local running, yield = core.co_running, coroutine.yield
local running_task = core.running_task
local ST, V, W = core.ST, core.V, core.W
local PENDING, RESOLVED, REJECTED = core.PENDING, core.RESOLVED, core.REJECTED
local AWAIT = core.AWAIT
local raise, cancelled_error = core.raise, core.cancelled_error

local OUTSIDE = "await() called outside an async task"
local NOT_A_PROMISE = "await() requires a promise argument"

local function await(p)
  -- Only the scheduler resumes task coroutines (see the guards in task.lua),
  -- so running in the current task's coroutine means running in the task.
  if running() ~= running_task.co then raise("runtime", OUTSIDE, 2) end
  if real_metatable(p) ~= PROMISE_MT then raise("type", NOT_A_PROMISE, 2) end
  local st = p[ST]
  if p[W] == false then p[W] = true end
  while st == PENDING do
    yield(AWAIT, p)
    st = p[ST]
  end
  if st == RESOLVED then return p[V] end
  if st == REJECTED then error(p[V], 0) end
  error(cancelled_error(), 0)
end
core.await = await
core.set_await(await)
