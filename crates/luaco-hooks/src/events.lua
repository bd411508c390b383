-- The Lua half of the event emitter: `events.on`, `events.once`,
-- `events.emit`, and `deliver`, which Rust calls for lifecycle and
-- runtime events and for events the host emits.
--
-- Subscriptions are kept per pattern: an exact name, `prefix.*` (the
-- names one part longer than `prefix`: `job.*` hears `job.done`, not
-- `job.step.done`) or `*` (every name). Handlers run as
-- tasks in subscription order, each in the script context it subscribed
-- from. Arguments: the core's internals, and the Rust primitives
-- (`emit_rust(name, data)` → Rust subscribers called, `interest(mask)`).
local core, prim = ...
-- The C string functions, taken before a run with limits counts them: the
-- hooks run on the engine's behalf.
local find, sub, match = string.find, string.sub, string.match
local type, setmetatable, getmetatable, ipairs = type, setmetatable, getmetatable, ipairs
local sort, tremove = table.sort, table.remove
local spawn_detached, spawn_quiet, current_ctx = core.spawn_detached, core.spawn_quiet, core.current_ctx
local new_promise, resolve = core.new_promise, core.resolve
local ST, PENDING = core.ST, core.PENDING

-- The lifecycle events, in the order of the Rust bit mask.
local LIFECYCLE = {
  "coroutine.created", "coroutine.started", "coroutine.yielded", "coroutine.resumed",
  "coroutine.completed", "coroutine.failed", "coroutine.cancelled",
}

local by_pattern = {} -- pattern -> array of subscriptions
local seq = 0

-- Tells Rust which lifecycle events have Lua subscribers, so it builds
-- their data only then.
local function refresh_interest()
  local mask = 0
  for i = 1, #LIFECYCLE do
    local name = LIFECYCLE[i]
    local any = by_pattern[name] or by_pattern["coroutine.*"] or by_pattern["*"]
    if any then mask = mask | (1 << (i - 1)) end
  end
  prim.interest(mask)
end

local function check_name(name, fname)
  if type(name) ~= "string" or name == "" then
    core.bad_argument(1, fname, "event name", name, 3)
  end
  local star = find(name, "*", 1, true)
  if star and not (name == "*" or (star == #name and sub(name, -2) == ".*")) then
    core.raise("type", "bad argument #1 to '" .. fname
      .. "' (a wildcard is '*' or 'prefix.*', got '" .. name .. "')", 3)
  end
end

local function remove(sub)
  local list = by_pattern[sub.pattern]
  if not list or sub.gone then return false end
  sub.gone = true
  for i = 1, #list do
    if list[i] == sub then tremove(list, i) break end
  end
  if #list == 0 then by_pattern[sub.pattern] = nil end
  refresh_interest()
  return true
end

local SUB_MT = {
  __name = "subscription",
  __index = {
    -- Stops delivery; true if it was still subscribed.
    off = function(self)
      if type(self) ~= "table" or getmetatable(self) ~= "subscription" then
        core.raise("type", "use ':' to call a method: sub:off()", 2)
      end
      return remove(self)
    end,
  },
  __metatable = "subscription",
}

local function add(pattern, handler, once)
  seq = seq + 1
  local sub = setmetatable({ pattern = pattern, fn = handler, once = once, seq = seq,
    ctx = current_ctx() }, SUB_MT)
  local list = by_pattern[pattern]
  if not list then list = {}; by_pattern[pattern] = list end
  list[#list + 1] = sub
  refresh_interest()
  return sub
end

local api = {}

-- events.on(name, fn) → subscription
function api.on(name, handler)
  check_name(name, "on")
  if type(handler) ~= "function" then core.bad_argument(2, "on", "function", handler, 2) end
  return add(name, handler, nil)
end

-- events.once(name) → promise of the next event's data
function api.once(name)
  check_name(name, "once")
  local p = new_promise()
  add(name, nil, p)
  return core.track(p)
end

-- The subscriptions `name` reaches, in subscription order.
local function matching(name)
  local exact = by_pattern[name]
  -- `prefix.*` reaches one name part more than its prefix.
  local prefix = match(name, "^(.*%.)[^.]*$")
  local prefixed = prefix and by_pattern[prefix .. "*"]
  local all = by_pattern["*"]
  local out, n = {}, 0
  for _, list in ipairs({ exact or false, prefixed or false, all or false }) do
    if list then
      for i = 1, #list do n = n + 1; out[n] = list[i] end
    end
  end
  if (exact and 1 or 0) + (prefixed and 1 or 0) + (all and 1 or 0) > 1 then
    sort(out, function(a, b) return a.seq < b.seq end)
  end
  return out, n
end

-- Schedules the handlers of `name`; `quiet` handler tasks (for lifecycle
-- and runtime events) report no lifecycle themselves. Returns how many
-- handlers and once-waiters it reached.
local function deliver(name, data, quiet)
  local subs, n = matching(name)
  local spawn = quiet and spawn_quiet or spawn_detached
  for i = 1, n do
    local sub = subs[i]
    if not sub.gone then
      if sub.once then
        remove(sub)
        -- A waiter cancelled meanwhile (its task was) is not reached.
        if sub.once[ST] == PENDING then resolve(sub.once, data) else n = n - 1 end
      else
        -- Not consumed: a handler that fails is an unhandled rejection.
        spawn(sub.ctx, sub.fn, data, name)
      end
    end
  end
  return n
end

-- events.emit(name, data) → number of handlers reached (Lua handlers,
-- once-waiters and Rust subscribers)
function api.emit(name, data)
  if type(name) ~= "string" or name == "" then core.bad_argument(1, "emit", "event name", name, 2) end
  if find(name, "*", 1, true) then
    core.raise("type", "bad argument #1 to 'emit' (an event name, not a pattern: '" .. name .. "')", 2)
  end
  local rust = prim.emit_rust(name, data)
  return deliver(name, data, false) + rust
end

return api, deliver, LIFECYCLE
