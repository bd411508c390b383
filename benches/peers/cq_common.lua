-- Shared by the cqueues peer programs (Lua 5.4 + cqueues).
local M = {}
function M.rss_kb()
  local f = io.open("/proc/self/status", "r")
  local text = f:read("a")
  f:close()
  return tonumber(text:match("VmHWM:%s*(%d+)")) or 0
end
function M.current_rss_kb()
  local f = io.open("/proc/self/status", "r")
  local text = f:read("a")
  f:close()
  return tonumber(text:match("VmRSS:%s*(%d+)")) or 0
end
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
  return list[math.max(1, math.min(#list, math.ceil(#list * p)))]
end
return M
