-- The Lua half of the bridge for Rust futures: each running future is an
-- operation with an integer id; its promise's source is that id, so
-- cancelling the promise drops the future.
local core, prim = ...

local new_promise, settle, resolve = core.new_promise, core.settle, core.resolve
local ST, V = core.ST, core.V
local PENDING, REJECTED = core.PENDING, core.REJECTED

local ops = {}
local op_count = 0
-- The script line that started each operation (source, line), read when
-- the call is made: an error it ends with names that line, even when a
-- tail call (`return await(http_get(url))`) has left the stack since.
local site_src, site_line = {}, {}
local call_site = prim.call_site
local real_metatable, rawget, rawset, type = core.debug.getmetatable, rawget, rawset, type
local ERROR_MT = core.ERROR_MT

-- A pending promise for future `id`, an operation of the running task.
function core.op_begin(id)
  local p = new_promise(id)
  ops[id] = p
  op_count = op_count + 1
  site_src[id], site_line[id] = call_site()
  core.track(p)
  return p
end

-- An error object made in Rust has no position: it gets the line that
-- started the operation, as Lua's own errors carry theirs.
local function locate(e, src, line)
  if not src or real_metatable(e) ~= ERROR_MT then return end
  local m = rawget(e, "message")
  if type(m) == "string" then rawset(e, "message", src .. ":" .. line .. ": " .. m) end
end

-- Future `id` finished: settle its promise (unless it was cancelled).
function core.op_end(id, ok, v)
  local p = ops[id]
  if not p then return end
  local src, line = site_src[id], site_line[id]
  ops[id], site_src[id], site_line[id] = nil, nil, nil
  op_count = op_count - 1
  if p[ST] ~= PENDING then return end
  p[V] = false
  if ok then
    resolve(p, v)
  else
    locate(v, src, line)
    settle(p, REJECTED, v)
  end
end

-- The promise of future `id` was cancelled.
function core.stop_op(id)
  if ops[id] then
    ops[id], site_src[id], site_line[id] = nil, nil, nil
    op_count = op_count - 1
  end
  prim.cancel_future(id)
end

function core.op_count() return op_count end
