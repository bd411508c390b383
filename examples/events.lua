-- Events between tasks: events.on / once / emit, a wildcard subscriber,
-- sub:off(), and a coroutine.completed subscriber counting finished tasks.
-- Run: luaco run examples/events.lua
local seen = {}

-- Handlers run as tasks, in subscription order, with (data, name).
local sub = events.on("order.placed", function(data)
  seen[#seen + 1] = "billing saw order " .. data.id
end)
local wild = events.on("order.*", function(data, name) -- every "order.<something>"
  seen[#seen + 1] = "audit: " .. name .. " #" .. data.id
end)

-- Count lifecycle events: one coroutine.completed per task that finishes.
local completed = 0
local lifecycle = events.on("coroutine.completed", function(data)
  assert(math.type(data.thread_id) == "integer" and data.status == "resolved")
  completed = completed + 1
end)

-- A task waits for the next "order.shipped" with once(); another one emits.
local waiter = async(function()
  local data = await(events.once("order.shipped"))
  return "customer notified: order " .. data.id .. " via " .. data.carrier
end)
local shop = async(function()
  await(sleep(5))
  local n = events.emit("order.placed", { id = 1 })
  await(sleep(5))
  local m = events.emit("order.shipped", { id = 1, carrier = "drone" })
  return { placed = n, shipped = m }
end)
local counts = await(shop)
print(await(waiter))
print(string.format("emit reached %d handlers for order.placed, %d for order.shipped", counts.placed, counts.shipped))
assert(counts.placed == 2 and counts.shipped == 2) -- shipped: the wildcard and the once() waiter

-- off() stops delivery (true the first time); emit() returns how many it reached.
assert(sub:off() == true and sub:off() == false)
assert(events.emit("order.placed", { id = 2 }) == 1) -- only the wildcard is left
assert(wild:off())
assert(events.emit("order.placed", { id = 3 }) == 0)
await(sleep(1)) -- let the handler tasks run
for _, line in ipairs(seen) do print(line) end
assert(#seen == 4 and seen[1] == "billing saw order 1" and seen[2] == "audit: order.placed #1")
assert(seen[3] == "audit: order.shipped #1" and seen[4] == "audit: order.placed #2")

-- Every task that finishes reports once (handler tasks for lifecycle events do not).
local before = completed
local jobs = {}
for i = 1, 5 do jobs[i] = async(function() await(sleep(i)); return i end) end
await(all(jobs))
await(sleep(1))
print(string.format("coroutine.completed: %d events in total, %d from the last 5 tasks", completed, completed - before))
assert(completed - before == 5)
-- Before them: waiter, shop and the 4 handler tasks that emit() started.
assert(before == 6)
lifecycle:off()
