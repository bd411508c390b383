-- args: --sandbox --max-instructions 2000000
-- exit: 3 instruction limit
string.gsub("abc", ".", function()
  while true do pcall(function() while true do end end) end
end)
