-- The Lua half of the bridge for Rust futures: each running future is an
-- operation with an integer id; its promise's source is that id, so
-- cancelling the promise drops the future.
local core, prim = ...

local new_promise, settle, resolve = core.new_promise, core.settle, core.resolve
local ST, V = core.ST, core.V
local PENDING, REJECTED = core.PENDING, core.REJECTED

local ops = {}
local op_count = 0

-- A pending promise for future `id`, an operation of the running task.
function core.op_begin(id)
  local p = new_promise(id)
  ops[id] = p
  op_count = op_count + 1
  core.track(p)
  return p
end

-- Future `id` finished: settle its promise (unless it was cancelled).
function core.op_end(id, ok, v)
  local p = ops[id]
  if not p then return end
  ops[id] = nil
  op_count = op_count - 1
  if p[ST] ~= PENDING then return end
  p[V] = false
  if ok then resolve(p, v) else settle(p, REJECTED, v) end
end

-- The promise of future `id` was cancelled.
function core.stop_op(id)
  if ops[id] then
    ops[id] = nil
    op_count = op_count - 1
  end
  prim.cancel_future(id)
end

function core.op_count() return op_count end
