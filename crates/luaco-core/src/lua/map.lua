-- map(list, fn, concurrency): at most `concurrency` worker tasks pull the
-- next index until the list is exhausted; the first error cancels the
-- workers still running.
local core = ...

local type, pcall, error, tostring, floor, rawget = type, pcall, error, tostring, math.floor, rawget
local spawn, await, is_promise, all = core.spawn, core.await, core.is_promise, core.promise.all

function core.map(list, fn, limit)
  if type(list) ~= "table" then core.raise("type", "map() requires a list, got " .. type(list), 2) end
  if type(fn) ~= "function" then core.raise("type", "map() requires a function, got " .. type(fn), 2) end
  local n = core.list_length(list, "map")
  if limit == nil then
    limit = n
  elseif type(limit) ~= "number" or limit ~= limit or limit < 1 or floor(limit) ~= limit then
    core.raise("type", "map() concurrency must be a positive integer, got " .. tostring(limit), 2)
  end
  return spawn(function()
    local results = core.array(n)
    local next_index = 0
    local function worker()
      while next_index < n do
        next_index = next_index + 1
        local i = next_index
        local v = fn(rawget(list, i), i)
        if is_promise(v) then v = await(v) end
        results[i] = v
      end
    end
    local workers = {}
    for k = 1, (limit < n and limit or n) do workers[k] = spawn(worker) end
    local ok, err = pcall(await, all(workers))
    if not ok then
      for k = 1, #workers do workers[k]:cancel() end
      -- Returning a rejected promise (not raising) keeps the reason itself:
      -- a string is not wrapped a second time.
      return core.promise.reject(err)
    end
    return results
  end)
end
