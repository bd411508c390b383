-- args: --sandbox --max-instructions 2000000
-- exit: 3 instruction limit
-- pcall cannot swallow the limit: the task is stopped, not raised into.
while true do pcall(function() while true do end end) end
