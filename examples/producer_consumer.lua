-- sync.channel with a bounded buffer: two producers, one consumer, close(),
-- and what recv() gives once the channel is closed and drained.
-- Run: luaco run examples/producer_consumer.lua
local CAP = 2
local ch = sync.channel(CAP)
local sent, received, max_waiting, blocked = 0, 0, 0, 0

-- A producer's send() waits while the buffer is full (backpressure).
local function producer(name, count, ms)
  for i = 1, count do
    await(sleep(ms))
    local t0 = now()
    await(ch:send(name .. i))
    if now() - t0 >= 1 then blocked = blocked + 1 end
    sent = sent + 1
    max_waiting = math.max(max_waiting, sent - received)
  end
  return name .. " done"
end

local producers = { async(producer, "a", 4, 2), async(producer, "b", 3, 3) }
-- Close once both producers are finished; buffered messages stay readable.
local closer = all(producers):next(function()
  print("producers done; closing the channel")
  ch:close()
end)

-- The consumer is slower than the producers, so the buffer fills up.
local got = {}
local consumer = async(function()
  while true do
    local msg = await(ch:recv())
    if msg == nil then break end -- nil means: closed and drained
    got[#got + 1] = msg
    received = received + 1
    await(sleep(5))
  end
  return #got
end)

local n = await(consumer)
await(closer)
print(string.format("consumer got %d messages: %s", n, table.concat(got, " ")))
print(string.format("at most %d sent but not yet received (capacity %d); %d sends had to wait",
  max_waiting, CAP, blocked))
-- In transit: the buffer, plus at most one message handed straight to a waiting recv().
assert(n == 7 and max_waiting <= CAP + 1 and blocked > 0)

-- Each producer's messages arrive in its own order.
local order = table.concat(got, " ")
assert(order:find("a1.*a2.*a3.*a4") and order:find("b1.*b2.*b3"))

-- On a closed channel: recv() resolves nil, send() rejects.
assert(ch:is_closed() and await(ch:recv()) == nil)
local ok, err = pcall(await, ch:send("late"))
print("recv on closed channel: nil; send on closed channel: " .. tostring(ok) .. ", " .. tostring(err))
assert(not ok and tostring(err):find("closed channel", 1, true))
-- nil cannot be sent at all (it would look like "closed").
assert(not pcall(ch.send, ch, nil))
