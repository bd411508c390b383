-- The Lua half of the luaco API. Rust passes in its primitives; this chunk
-- builds the functions scripts call and returns them with the task runners.
-- Hot paths stay small: `await` is one Rust call and, only when the promise
-- is pending, one yield.
local prim, ERROR_MT, AWAIT, KEY, methods, task_threads = ...

local type, error, select, xpcall, pcall, setmetatable, tostring =
  type, error, select, xpcall, pcall, setmetatable, tostring
local math_floor, math_huge = math.floor, math.huge
local yield, running = coroutine.yield, coroutine.running
local traceback = prim.traceback
local peek, is_promise, deferred = prim.peek, prim.is_promise, prim.deferred
local make_error, spawn_chain, convert_error = prim.make_error, prim.spawn_chain, prim.convert_error

-- Rust primitives report bad input as a second result; this raises it at the
-- caller of the public function.
local function checked(f)
  return function(...)
    local v, err = f(...)
    if err ~= nil then error(err, 2) end
    return v
  end
end

-- The last reason `await` raised: a string rejection re-raised by await
-- passes through unchanged rather than being wrapped a second time.
local reraised = nil

-- Message handler of every task: strings become error objects carrying the
-- stack at the point of the error and where the task was spawned.
local function on_error(e)
  local t = type(e)
  if t == "string" and e ~= reraised then
    local tb = traceback(2)
    return setmetatable({ message = e, kind = "runtime", traceback = tb .. spawn_chain() }, ERROR_MT)
  elseif t == "userdata" then
    return convert_error(e)
  end
  return e
end

-- The body of every task thread.
local function runner(fn, ...)
  return xpcall(fn, on_error, ...)
end

local function await(p)
  -- Only the scheduler resumes task threads (see the coroutine guards
  -- below), so running in one means running in the current task.
  if not task_threads[running()] then
    error(make_error("runtime", "await() called outside an async task", 2), 2)
  end
  local st, v = peek(p)
  if st == 0 then
    -- Only the scheduler passes KEY; anything else resuming us is ignored.
    local k
    repeat k, st, v = yield(AWAIT) until k == KEY
  end
  if st == 1 then return v end
  if st == 3 then error(v, 2) end
  reraised = v
  error(v, 0)
end

-- Task coroutines belong to the scheduler: a script that got hold of one
-- (through coroutine.running) cannot resume or close it behind its back.
do
  local co_resume, co_close = coroutine.resume, coroutine.close
  coroutine.resume = function(co, ...)
    if task_threads[co] then
      return false, "cannot resume a coroutine that runs an async task"
    end
    return co_resume(co, ...)
  end
  if co_close then
    coroutine.close = function(co)
      if task_threads[co] then
        error("cannot close a coroutine that runs an async task (cancel its promise instead)", 2)
      end
      return co_close(co)
    end
  end
end

local function finally_runner(fn)
  local r = fn()
  if is_promise(r) then await(r) end
end

local function thenable_runner(obj, then_fn, resolve, reject)
  then_fn(obj, resolve, reject)
end

local async = checked(prim.spawn)

methods.await = await

local promise = {
  new = function(executor)
    if type(executor) ~= "function" then
      error(make_error("type", "promise.new() requires an executor function, got " .. type(executor), 2), 2)
    end
    local p, resolve, reject = deferred()
    local ok, e = xpcall(executor, on_error, resolve, reject)
    if not ok then reject(e) end
    return p
  end,
  resolve = prim.resolved,
  reject = prim.rejected,
  all = checked(prim.all),
  all_settled = checked(prim.all_settled),
  race = checked(prim.race),
  any = checked(prim.any),
  timeout = checked(prim.timeout),
}

local all = promise.all

-- map(list, fn, concurrency): workers pull the next index until the list is
-- exhausted; the first error cancels the workers still running.
local function map(list, fn, limit)
  if type(list) ~= "table" then
    error(make_error("type", "map() requires a list, got " .. type(list), 2), 2)
  end
  if type(fn) ~= "function" then
    error(make_error("type", "map() requires a function, got " .. type(fn), 2), 2)
  end
  local n = list.n or #list
  if limit == nil then
    limit = n
  elseif type(limit) ~= "number" or limit ~= limit or limit < 1 or math_floor(limit) ~= limit then
    error(make_error("type", "map() concurrency must be a positive integer, got " .. tostring(limit), 2), 2)
  end
  return async(function()
    local results = { n = n }
    local next_index = 0
    local function worker()
      while next_index < n do
        next_index = next_index + 1
        local i = next_index
        local v = fn(list[i], i)
        if is_promise(v) then v = await(v) end
        results[i] = v
      end
    end
    local workers = {}
    for k = 1, (limit < n and limit or n) do workers[k] = async(worker) end
    local ok, err = pcall(await, all(workers))
    if not ok then
      for k = 1, #workers do workers[k]:cancel() end
      error(err, 0)
    end
    return results
  end)
end

---------------------------------------------------------------- sync
local function check_count(what, n, min)
  if type(n) ~= "number" or n ~= n or n < min or n == math_huge or math_floor(n) ~= n then
    error(make_error("type", what .. " must be an integer >= " .. min .. ", got " .. tostring(n), 3), 3)
  end
end

-- A FIFO queue of waiters; cancelled waiters leave it at once.
local function queue() return { first = 1, last = 0 } end
local function push(q, item) q.last = q.last + 1; q[q.last] = item end
local function pop(q)
  while q.first <= q.last do
    local item = q[q.first]
    q[q.first] = nil
    q.first = q.first + 1
    if item then return item end
  end
end
local function push_front(q, item) q.first = q.first - 1; q[q.first] = item end
local function remove(q, item)
  for i = q.first, q.last do
    if q[i] == item then q[i] = false; return end
  end
end

local Semaphore = {}
Semaphore.__index = Semaphore
Semaphore.__name = "semaphore"

function Semaphore:acquire()
  if self.permits > 0 then
    self.permits = self.permits - 1
    return prim.resolved(true)
  end
  local waiter = {}
  -- A cancelled waiter leaves the queue; one cancelled after it was handed
  -- the permit (before its task resumed) hands it on.
  local p, resolve = deferred(
    function() remove(self.waiters, waiter) end,
    function() self:release() end)
  waiter.resolve = resolve
  push(self.waiters, waiter)
  return p
end

function Semaphore:release()
  local w = pop(self.waiters)
  if w then
    w.resolve(true)
  else
    self.permits = self.permits + 1
  end
end

-- The guard releases on every exit (return, error, cancellation) once the
-- permit was granted; a cancelled acquire never is.
function Semaphore:with(fn, ...)
  local held = false
  local guard <close> = setmetatable({}, {
    __close = function()
      if held then self:release() end
    end,
  })
  await(self:acquire())
  held = true
  return fn(...)
end

function Semaphore:available() return self.permits end

local Channel = {}
Channel.__index = Channel
Channel.__name = "channel"

local function closed_error()
  return make_error("runtime", "send on a closed channel", 3)
end

function Channel:send(v)
  if v == nil then error(make_error("type", "cannot send nil on a channel", 2), 2) end
  if self.closed then return prim.rejected(closed_error()) end
  local r = pop(self.receivers)
  if r then
    r.resolve(v)
    return prim.resolved(true)
  end
  if self.count < self.capacity then
    self.count = self.count + 1
    push(self.buffer, v)
    return prim.resolved(true)
  end
  local sender = { value = v }
  local p, resolve, reject = deferred(function() remove(self.senders, sender) end)
  sender.resolve, sender.reject = resolve, reject
  push(self.senders, sender)
  return p
end

function Channel:recv()
  if self.count > 0 then
    local v = pop(self.buffer)
    self.count = self.count - 1
    local s = pop(self.senders)
    if s then
      self.count = self.count + 1
      push(self.buffer, s.value)
      s.resolve(true)
    end
    return prim.resolved(v)
  end
  local s = pop(self.senders)
  if s then
    s.resolve(true)
    return prim.resolved(s.value)
  end
  if self.closed then return prim.resolved(nil) end
  local receiver = {}
  local p, resolve = deferred(
    function() remove(self.receivers, receiver) end,
    function(v) self:_put_back(v) end)
  receiver.resolve = resolve
  push(self.receivers, receiver)
  return p
end

-- A message handed to a receiver whose task was cancelled before it got
-- it: the next receiver gets it, or it goes back to the head of the buffer.
function Channel:_put_back(v)
  if v == nil then return end
  local r = pop(self.receivers)
  if r then
    r.resolve(v)
  else
    self.count = self.count + 1
    push_front(self.buffer, v)
  end
end

function Channel:close()
  if self.closed then return end
  self.closed = true
  while true do
    local r = pop(self.receivers)
    if not r then break end
    r.resolve(nil)
  end
  while true do
    local s = pop(self.senders)
    if not s then break end
    s.reject(closed_error())
  end
end

function Channel:is_closed() return self.closed end

local sync = {
  semaphore = function(n)
    check_count("semaphore permits", n, 0)
    return setmetatable({ permits = n, waiters = queue() }, Semaphore)
  end,
  channel = function(capacity)
    if capacity == nil then capacity = 0 end
    check_count("channel capacity", capacity, 0)
    return setmetatable({
      capacity = capacity, count = 0, closed = false,
      buffer = queue(), senders = queue(), receivers = queue(),
    }, Channel)
  end,
}

local api = {
  async = async,
  try_async = async,
  await = await,
  promise = promise,
  all = promise.all,
  all_settled = promise.all_settled,
  race = promise.race,
  any = promise.any,
  timeout = promise.timeout,
  map = map,
  sync = sync,
}

return api, runner, finally_runner, thenable_runner, checked
