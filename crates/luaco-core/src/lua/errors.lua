-- Error objects: the tables with `message`, `kind` and `traceback` that the
-- runtime raises and rejects with, and the message handler every task runs
-- under. All share ERROR_MT, which is how Rust and scripts tell them from
-- other raised values.
local core, prim = ...
-- The C string functions, taken before a run with limits replaces the
-- library's with counted ones: the runtime's own reports must not be
-- refused by a script's spent budget.
local gsub, match = string.gsub, string.match

local type, setmetatable, getmetatable, tostring, rawget, error, pcall =
  type, setmetatable, getmetatable, tostring, rawget, error, pcall
local getinfo, traceback = core.debug.getinfo, core.debug.traceback
local thread_status, STATUS_MEMORY, memory_refused =
  prim.thread_status, prim.STATUS_MEMORY, prim.memory_refused
-- What failure_reason gives for a task that died of a memory error: the
-- finisher builds the error object once the task's garbage is collected.
core.OUT_OF_MEMORY = {}

local ERROR_MT = { __name = "error", __metatable = "error" }
ERROR_MT.__tostring = function(e) return tostring(rawget(e, "message")) end
core.ERROR_MT = ERROR_MT

local function new_error(kind, message, tb)
  return setmetatable({ kind = kind, message = message, traceback = tb }, ERROR_MT)
end
core.new_error = new_error

-- `message` prefixed with the `file:line:` of the Lua function `level`
-- frames above the caller of `located` (1 = the caller itself), as `error`
-- does for strings.
local function located(message, level)
  local info = getinfo(level + 1, "Sl")
  if info and info.currentline and info.currentline > 0 then
    return info.short_src .. ":" .. info.currentline .. ": " .. message
  end
  return message
end
core.located = located

-- Raises an error object of `kind` positioned like `error(message, level)`.
function core.raise(kind, message, level)
  level = (level or 1) + 1
  error(new_error(kind, located(message, level)), level)
end

-- The message of `bad argument` errors, as Lua's own library words them.
function core.bad_argument(n, fname, expected, got, level)
  core.raise("type", "bad argument #" .. n .. " to '" .. fname .. "' (" .. expected
    .. " expected, got " .. (got == nil and "no value" or type(got)) .. ")", (level or 1) + 1)
end

-- Its code is the name the sandbox's run-level memory limit uses.
local MEMORY_MESSAGE = "memory limit: not enough memory"
local function fresh_memory_error()
  local e = new_error("limit", MEMORY_MESSAGE)
  e.code = "memory"
  return e
end
-- Made once, up front: when the heap is full there may be no room to
-- build the error that says so. Handed out only then, because a script
-- could change it for everyone else.
local MEMORY_ERROR = fresh_memory_error()
function core.memory_error()
  local ok, e = pcall(fresh_memory_error)
  if ok then return e end
  return MEMORY_ERROR
end

local CANCELLED_MESSAGE = "the promise was cancelled"
function core.cancelled_error()
  return new_error("cancelled", CANCELLED_MESSAGE)
end

-- A traceback without the frames every task has at its bottom (the worker
-- loop, reached through a tail call): they say nothing about the script.
local function without_worker(tb)
  tb = gsub(tb, "^\n", "")
  while true do
    local cut = match(tb, "^(.*)\n\t[^\n]*luaco/task%.lua:[^\n]*$")
      or match(tb, "^(.*)\n\t%(%.%.%.tail calls%.%.%.%)$")
    if not cut then break end
    tb = cut
  end
  return tb
end

-- The traceback of the running task from `level` up, plus the chain of
-- places where it and its ancestors were spawned.
local function task_traceback(level)
  return without_worker(traceback("", level + 1)) .. core.spawn_chain()
end
core.task_traceback = task_traceback

-- The same for a task whose coroutine died with an error: its stack is
-- still there to read.
local function dead_traceback(co, task)
  return without_worker(traceback(co, "", 0)) .. core.spawn_chain(task)
end

-- The message handler of promise executors (tasks use failure_reason,
-- below, which applies the same rules). Strings become
-- error objects; a string that `await` re-raises (its rejection reason)
-- passes through unchanged, so awaiting keeps the reason's identity. The
-- check looks at the raising frame itself, so it cannot be confused by an
-- equal string raised elsewhere.
local await_fn
function core.set_await(f) await_fn = f end
function core.on_error(e)
  local t = type(e)
  if t == "string" then
    local raiser = getinfo(2, "f")
    if raiser and raiser.func == error then
      local caller = getinfo(3, "f")
      if caller and caller.func == await_fn then return e end
    end
    return new_error("runtime", e, task_traceback(2))
  elseif t == "userdata" then
    return prim.convert_error(e)
  end
  return e
end

-- What a task whose coroutine died with `e` rejects with: the same rules
-- as `on_error`, read from the dead coroutine's stack (tasks run without a
-- protected call of their own, which keeps their coroutines' stacks small).
-- Where each raised table (not an error object) was raised, for reports:
-- the table itself stays the reason, unchanged.
local raised = setmetatable({}, { __mode = "k" })
core.raised_tracebacks = raised

function core.failure_reason(co, e, task)
  local t = type(e)
  if t == "table" and rawget(e, "traceback") == nil and getmetatable(e) ~= "error" then
    raised[e] = dead_traceback(co, task)
    return e
  end
  if t == "string" then
    local raiser = getinfo(co, 0, "f")
    if raiser and raiser.func == error then
      local caller = getinfo(co, 1, "f")
      if caller and caller.func == await_fn then return e end
    end
    -- A memory error is told by the status the coroutine died with, and
    -- the allocator's record (Lua gives `error("not enough memory")` the
    -- same status), never by the message.
    if thread_status(co) == STATUS_MEMORY and memory_refused() then return core.OUT_OF_MEMORY end
    return new_error("runtime", e, dead_traceback(co, task))
  elseif t == "userdata" then
    return prim.convert_error(e)
  end
  return e
end
