-- The methods of promises (`p:next`, `:catch`, `:finally`, `:status`,
-- `:cancel`, `:await`) and `promise.new/resolve/reject`.
local core = ...

local type, xpcall, rawget = type, xpcall, rawget
local ST, V, W = core.ST, core.V, core.W
local PENDING, RESOLVED, REJECTED, CANCELLED = core.PENDING, core.RESOLVED, core.REJECTED, core.CANCELLED
local new_promise, settle, resolve, cancel = core.new_promise, core.settle, core.resolve, core.cancel
local add_waiter, spawn_into, follow = core.add_waiter, core.spawn_into, core.follow
local STATUS = core.STATUS

local function self_check(p, name)
  if not core.is_promise(p) then
    core.raise("type", "promise:" .. name .. "() must be called on a promise (use ':' to call a method)", 3)
  end
end

local methods = {}

-- p:next(on_ok, on_err): handlers run as tasks on a later turn; a missing
-- (or non-function) handler passes the outcome through.
function methods.next(p, on_ok, on_err)
  self_check(p, "next")
  if type(on_ok) ~= "function" then on_ok = nil end
  if type(on_err) ~= "function" then on_err = nil end
  local d = new_promise()
  local ctx, quiet = core.current_ctx(), core.quiet_now()
  add_waiter(p, function(src)
    local st = src[ST]
    if st == CANCELLED then cancel(d); return end
    local h
    if st == RESOLVED then h = on_ok else h = on_err end
    if h then
      if d[ST] == PENDING then core.quietly(quiet, core.spawn_handler, d, ctx, h, src[V]) end
    else
      settle(d, st, src[V])
    end
  end)
  return d
end
methods.and_then = methods.next
methods["then"] = methods.next

function methods.catch(p, on_err)
  self_check(p, "catch")
  return methods.next(p, nil, on_err)
end

local function finally_runner(fn)
  local r = fn()
  if core.is_promise(r) then core.await(r) end
end

-- p:finally(fn): fn runs as a task on any settlement (cancellation
-- included); the outcome passes through unless fn raises or its promise
-- rejects. A cancelled promise stays cancelled.
function methods.finally(p, fn)
  self_check(p, "finally")
  local d = new_promise()
  if type(fn) ~= "function" then
    add_waiter(p, function(src) follow(d, src) end)
    return d
  end
  local ctx, quiet = core.current_ctx(), core.quiet_now()
  add_waiter(p, function(src)
    if d[ST] ~= PENDING then return end
    local inner = core.quietly(quiet, core.spawn_detached, ctx, finally_runner, fn)
    inner[W] = true
    d[V] = inner -- cancelling d cancels the handler
    add_waiter(inner, function(r)
      local rst = r[ST]
      if src[ST] == CANCELLED or rst == CANCELLED then cancel(d)
      elseif rst == REJECTED then settle(d, REJECTED, r[V])
      else follow(d, src) end
    end)
  end)
  return d
end

function methods.status(p)
  self_check(p, "status")
  return STATUS[p[ST]]
end

function methods.cancel(p)
  self_check(p, "cancel")
  return cancel(p)
end

function methods.await(p)
  return core.await(p)
end

local PROMISE_MT = core.PROMISE_MT
-- A promise has methods and nothing else: reading another named field is
-- nearly always a forgotten `await` (`http_get(url).body`), so it raises
-- with that hint instead of giving nil. Other keys (the runtime's own
-- numbered slots) read as nil, as for any table.
PROMISE_MT.__index = function(p, k)
  local m = methods[k]
  if m ~= nil or type(k) ~= "string" then return m end
  core.raise("type", "attempt to read field '" .. k
    .. "' of a promise (did you forget await? await(p)." .. k .. ")", 2)
end
PROMISE_MT.__tostring = function(p) return "promise (" .. STATUS[p[ST]] .. ")" end
core.methods = methods

local promise = {}

-- promise.new(executor): the executor runs at once with resolve and reject;
-- an error raised in it rejects the promise.
function promise.new(executor)
  if type(executor) ~= "function" then
    core.raise("type", "promise.new() requires an executor function, got " .. type(executor), 2)
  end
  local p = new_promise()
  local function res(v) resolve(p, v) end
  local function rej(e) settle(p, REJECTED, e) end
  local ok, e = xpcall(executor, core.on_error, res, rej)
  if not ok then rej(e) end
  return p
end

function promise.resolve(v)
  local p = new_promise()
  resolve(p, v)
  return p
end

function promise.reject(e)
  local p = new_promise()
  settle(p, REJECTED, e)
  return p
end

core.promise = promise
