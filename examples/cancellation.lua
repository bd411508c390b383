-- Cancellation: p:cancel() on a task sleeping inside a function that holds a
-- `<close>` resource. The close handler runs before cancel() returns, and the
-- tasks it spawned are cancelled with it. Run: luaco run examples/cancellation.lua
local log = {}
local function say(s) log[#log + 1] = s; print(s) end

-- A "resource" whose __close handler reports when (and why) it is released.
local function open_resource(name)
  say("open " .. name)
  return setmetatable({ name = name }, {
    __close = function(self, err) say("close " .. self.name .. (err and " (error)" or "")) end,
  })
end

local child
local worker = async(function()
  local conn <close> = open_resource("connection")
  -- A child task, with a resource of its own; it is cancelled along with its parent.
  child = async(function()
    local file <close> = open_resource("child file")
    await(sleep(10000))
    say("child finished (should not happen)")
  end)
  await(sleep(10000)) -- cancelled while waiting here
  say("worker finished (should not happen)")
end)
local watched = worker:finally(function() say("finally ran") end)
local caught = worker:catch(function() say("catch ran (should not happen)") end)

await(sleep(20)) -- let both tasks start and block
assert(worker:status() == "pending" and child:status() == "pending")
say("cancelling")
local t0 = now()
assert(worker:cancel() == true)
say("cancel() returned: worker " .. worker:status() .. ", child " .. child:status())
-- Both close handlers ran inside cancel(), the worker's and its child's.
assert(log[#log - 2] == "close connection" and log[#log - 1] == "close child file")
assert(child:status() == "cancelled")
assert(worker:cancel() == false) -- already settled

-- Awaiting a cancelled promise raises an error of kind "cancelled".
local ok, err = pcall(await, worker)
say("await(worker): " .. tostring(ok) .. " " .. err.kind)
assert(not ok and err.kind == "cancelled")
-- :finally ran and the chained promise is cancelled too; :catch did not run.
local ok2, err2 = pcall(await, watched)
assert(not ok2 and err2.kind == "cancelled" and caught:status() == "cancelled")
assert(now() - t0 < 1000, "nothing waited for the 10 s sleeps")

local text = table.concat(log, "\n")
for _, want in ipairs({ "close connection", "close child file", "finally ran" }) do
  assert(text:find(want, 1, true), "missing: " .. want)
end
assert(not text:find("should not happen", 1, true))
print("ok")
