-- sync.semaphore and sync.channel. Waiters queue in FIFO order; a cancelled
-- waiter leaves its queue at once, and one cancelled after it was handed a
-- permit or a message (before its task resumed) hands it back.
local core = ...

local type, setmetatable, error, tostring, floor, huge = type, setmetatable, error, tostring, math.floor, math.huge
local deferred, await = core.deferred, core.await
local promise = core.promise

local function check_count(what, n, min)
  if type(n) ~= "number" or n ~= n or n < min or n == huge or floor(n) ~= n then
    core.raise("type", what .. " must be an integer >= " .. min .. ", got " .. tostring(n), 3)
  end
end

-- A FIFO queue whose removed items leave a HOLE (not `false`: a channel
-- carries `false` values).
local HOLE = {}
local function queue() return { first = 1, last = 0 } end
local function push(q, item) q.last = q.last + 1; q[q.last] = item end
local function pop(q)
  while q.first <= q.last do
    local item = q[q.first]
    q[q.first] = nil
    q.first = q.first + 1
    if item ~= HOLE then return item end
  end
  if q.first > q.last then q.first, q.last = 1, 0 end
end
local function push_front(q, item) q.first = q.first - 1; q[q.first] = item end
local function remove(q, item)
  for i = q.first, q.last do
    if q[i] == item then q[i] = HOLE; return end
  end
end

local real_metatable = core.debug.getmetatable
local function method_check(self, mt, name)
  if real_metatable(self) ~= mt then
    core.raise("type", mt.__name .. ":" .. name .. "() must be called on a " .. mt.__name
      .. " (use ':' to call a method)", 3)
  end
end

local maxinteger = math.maxinteger
local Semaphore = { __name = "semaphore", __metatable = "semaphore" }
Semaphore.__index = Semaphore

function Semaphore:acquire()
  method_check(self, Semaphore, "acquire")
  if self.permits > 0 then
    self.permits = self.permits - 1
    return promise.resolve(true)
  end
  local waiter = {}
  local p, resolve = deferred(
    function() remove(self.waiters, waiter) end,
    function() self:release() end)
  waiter.resolve = resolve
  push(self.waiters, waiter)
  return p
end

function Semaphore:release()
  method_check(self, Semaphore, "release")
  local w = pop(self.waiters)
  if w then
    w.resolve(true)
  elseif self.permits ~= maxinteger then
    -- Saturates: a release past the largest count keeps it (an integer
    -- would wrap negative, and then no acquire would ever be granted).
    self.permits = self.permits + 1
  end
end

-- The guard releases on every exit (return, error, cancellation) once the
-- permit was granted; a cancelled acquire never is.
function Semaphore:with(fn, ...)
  method_check(self, Semaphore, "with")
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

function Semaphore:available()
  method_check(self, Semaphore, "available")
  return self.permits
end

local Channel = { __name = "channel", __metatable = "channel" }
Channel.__index = Channel

local function closed_error()
  return core.new_error("runtime", core.located("send on a closed channel", 3))
end

function Channel:send(v)
  method_check(self, Channel, "send")
  if v == nil then core.raise("type", "cannot send nil on a channel", 2) end
  if self.closed then return promise.reject(closed_error()) end
  local r = pop(self.receivers)
  if r then
    r.resolve(v)
    return promise.resolve(true)
  end
  if self.count < self.capacity then
    self.count = self.count + 1
    push(self.buffer, v)
    return promise.resolve(true)
  end
  local sender = { value = v }
  local p, resolve, reject = deferred(function() remove(self.senders, sender) end)
  sender.resolve, sender.reject = resolve, reject
  push(self.senders, sender)
  return p
end

function Channel:recv()
  method_check(self, Channel, "recv")
  if self.count > 0 then
    local v = pop(self.buffer)
    self.count = self.count - 1
    local s = pop(self.senders)
    if s then
      self.count = self.count + 1
      push(self.buffer, s.value)
      s.resolve(true)
    end
    return promise.resolve(v)
  end
  local s = pop(self.senders)
  if s then
    s.resolve(true)
    return promise.resolve(s.value)
  end
  if self.closed then return promise.resolve(nil) end
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
  method_check(self, Channel, "close")
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

function Channel:is_closed()
  method_check(self, Channel, "is_closed")
  return self.closed
end

core.sync = {
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
