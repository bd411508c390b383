-- Shared by the workload scripts (luaco's and the cqueues peers', both
-- plain Lua 5.4): memory from /proc and the report line that
-- `cargo xtask bench` reads.
local M = {}

-- A field of /proc/self/status, in KB.
local function status_kb(field)
  local f = io.open("/proc/self/status", "r")
  if not f then return 0 end
  local text = f:read("a")
  f:close()
  return tonumber(text:match(field .. ":%s*(%d+)")) or 0
end

-- Peak resident memory.
function M.rss_kb() return status_kb("VmHWM") end

-- Resident memory now.
function M.current_rss_kb() return status_kb("VmRSS") end

-- One line: `result key=value ...`, keys sorted.
function M.report(fields)
  local keys = {}
  for k in pairs(fields) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = { "result" }
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. tostring(fields[k]) end
  print(table.concat(parts, " "))
end

function M.percentile(list, p)
  table.sort(list)
  local i = math.max(1, math.min(#list, math.ceil(#list * p)))
  return list[i]
end

return M
