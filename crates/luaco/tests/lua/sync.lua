-- sync.semaphore and sync.channel, including cancelled waiters.
local sem = sync.semaphore(2)
local active, peak = 0, 0
local tasks = {}
for i = 1, 6 do
  tasks[i] = async(function()
    return sem:with(function()
      active = active + 1
      if active > peak then peak = active end
      await(sleep(2))
      active = active - 1
      return i
    end)
  end)
end
local r = await(all(tasks))
assert(peak == 2, "peak=" .. peak)
assert(r[6] == 6)
assert(sem:available() == 2)

-- with() releases on error
local okw = pcall(await, async(function() sem:with(function() error("inside") end) end))
assert(not okw and sem:available() == 2)

-- a cancelled waiter never holds a permit
local one = sync.semaphore(1)
await(one:acquire())
local waiter = async(function() await(one:acquire()); return "got it" end)
await(sleep(1))
waiter:cancel()
one:release()
assert(one:available() == 1, "permit went back, not to the cancelled waiter")
-- a cancelled task inside with() gives its permit back
local holder = async(function() one:with(function() await(sleep(10000)) end) end)
await(sleep(1))
assert(one:available() == 0)
holder:cancel()
assert(one:available() == 1)
assert(not pcall(sync.semaphore, -1))

-- a permit handed to a waiter whose task is cancelled before it resumes
-- goes back: nobody ends up holding it
local handoff = sync.semaphore(1)
await(handoff:acquire())
local late = async(function() await(handoff:acquire()); return "got" end)
await(sleep(1))
handoff:release()            -- the permit goes to `late`, which has not run yet
assert(late:cancel())
assert(handoff:available() == 1, "permit lost: " .. handoff:available())
-- with(): cancelled between grant and resumption, the permit comes back once
local w = sync.semaphore(1)
await(w:acquire())
local inside = async(function() return w:with(function() return "ran" end) end)
await(sleep(1))
w:release()
inside:cancel()
assert(w:available() == 1, "with() after handoff: " .. w:available())

-- channels: buffered, FIFO, close drains then gives nil
local ch = sync.channel(2)
await(ch:send(1)); await(ch:send(2))
local third = ch:send(3)
assert(third:status() == "pending", "full channel blocks the sender")
assert(await(ch:recv()) == 1)
assert(await(third) == true)
assert(await(ch:recv()) == 2 and await(ch:recv()) == 3)
-- a receiver waits for a sender
local got = async(function() return await(ch:recv()) end)
await(sleep(1))
ch:send("hello")
assert(await(got) == "hello")
-- a cancelled receiver never swallows a message
local lost = async(function() return await(ch:recv()) end)
await(sleep(1))
lost:cancel()
ch:send("kept")
assert(await(ch:recv()) == "kept")
-- a message handed to a receiver cancelled before it resumed is not lost
local handed = async(function() return await(ch:recv()) end)
await(sleep(1))
ch:send("not lost")          -- goes straight to `handed`'s waiter
assert(handed:cancel())
assert(await(ch:recv()) == "not lost")
-- close: buffered values still arrive, then nil; sends reject
ch:send("last")
ch:close()
assert(await(ch:recv()) == "last")
assert(await(ch:recv()) == nil)
local oks, es = pcall(await, ch:send("x"))
assert(not oks and es.message:find("closed", 1, true))
local ok_nil = pcall(ch.send, ch, nil)
assert(not ok_nil)
-- unbuffered channel: rendezvous
local rv = sync.channel()
local sender = async(function() await(rv:send("ping")); return "delivered" end)
assert(await(rv:recv()) == "ping")
assert(await(sender) == "delivered")
-- close wakes waiting receivers with nil
local waiting = async(function() return await(rv:recv()) end)
await(sleep(1))
rv:close()
assert(await(waiting) == nil)
return "ok"
