-- Cancellation: closes the coroutine before cancel() returns, cancels the
-- awaited operation and descendants, chains, finally, await on cancelled.
local events = {}
local function note(s) events[#events + 1] = s end
local child
local parent = async(function()
  local guard <close> = setmetatable({}, { __close = function() note("parent closed") end })
  child = async(function()
    local g <close> = setmetatable({}, { __close = function() note("child closed") end })
    await(sleep(10000))
  end)
  await(sleep(10000))
end)
-- Two turns, not a time: the parent starts in the first, the child in the
-- second, before main resumes (a 1 ms sleep can fire first on a slow run).
await(sleep(0))
await(sleep(0))
assert(parent:status() == "pending" and child:status() == "pending")
assert(parent:cancel() == true)
assert(events[1] == "parent closed", "coroutine closed before cancel() returned")
assert(events[2] == "child closed", "descendants cancelled")
assert(child:status() == "cancelled")
assert(parent:cancel() == false, "second cancel is a no-op")
local ok, e = pcall(await, parent)
assert(not ok and e.kind == "cancelled")

-- cancelling a settled promise returns false
assert(promise.resolve(1):cancel() == false)

-- chained promises: catch does not run, finally does, derived is cancelled
local caught, finalized = false, false
local base = async(function() await(sleep(10000)) end)
local d1 = base:catch(function() caught = true end)
local d2 = base:finally(function() finalized = true end)
base:cancel()
await(sleep(1))
assert(not caught and finalized)
assert(d1:status() == "cancelled", d1:status())
assert(d2:status() == "cancelled", d2:status())

-- cancelling a derived promise never cancels its parent
local par = async(function() await(sleep(5)); return "parent ok" end)
local der = par:next(function(v) return v end)
der:cancel()
assert(await(par) == "parent ok")

-- cancelling a promise that adopted another cancels only the adopting one
local adopted = async(function() await(sleep(5)); return "adopted" end)
local adopter = promise.resolve(adopted)
adopter:cancel()
assert(adopter:status() == "cancelled")
assert(await(adopted) == "adopted")

-- a task cancelling itself: promise cancelled at once, coroutine closed when it stops
local self_p
local closed_self = false
self_p = async(function()
  local g <close> = setmetatable({}, { __close = function() closed_self = true end })
  await(sleep(0))
  self_p:cancel()
  await(sleep(0))
  error("must not get here")
end)
await(sleep(5))
assert(self_p:status() == "cancelled" and closed_self)

-- cancel a task that has not started yet
local never = false
local nstart = async(function() never = true end)
assert(nstart:cancel())
await(sleep(1))
assert(not never)
return "ok"
