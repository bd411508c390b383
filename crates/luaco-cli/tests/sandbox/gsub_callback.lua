-- args: --sandbox --max-instructions 2000000
-- exit: 3 instruction limit
-- A callback from C cannot yield: the hook raises there instead.
string.gsub("abc", ".", function() while true do end end)
