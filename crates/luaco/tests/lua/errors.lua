-- Error objects: message with position, kind, traceback with spawn site, tostring.
local function spawn_failing()
  return async(function()
    local x = nil
    await(sleep(1))
    error("it failed")
  end)
end
local p = spawn_failing()
local ok, e = pcall(await, p)
assert(not ok)
assert(getmetatable(e) ~= nil)
assert(e.kind == "runtime")
assert(e.message:match("^errors%.lua:%d+: it failed$"), e.message)
assert(tostring(e) == e.message)
assert(type(e.traceback) == "string")
assert(e.traceback:find("stack traceback", 1, true), e.traceback)
assert(e.traceback:find("[spawned at] errors.lua:", 1, true), "spawn site missing: " .. e.traceback)
assert(p:status() == "rejected")

-- runtime-made errors carry kinds
local _, te = pcall(sleep, -1)
assert(te.kind == "type" and te.message:find("sleep", 1, true))
local _, te2 = pcall(sleep, "10")
assert(te2.kind == "type", "numeric strings are not numbers here")
local _, te3 = pcall(sleep, 0/0)
assert(te3.kind == "type")
local _, te4 = pcall(function() local p = async(42); return p end)
assert(te4.kind == "type" and te4.message:find("^errors%.lua:%d+:"), te4.message)

-- errors in Lua arithmetic etc. inside tasks are wrapped too
local _, ae = pcall(await, async(function() return nil + 1 end))
assert(ae.kind == "runtime" and ae.message:find("arithmetic", 1, true), ae.message)
return "ok"
