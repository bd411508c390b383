-- args: --sandbox --max-instructions 2000000
-- exit: 3 instruction limit
do
  local x <close> = setmetatable({}, { __close = function() while true do end end })
end
