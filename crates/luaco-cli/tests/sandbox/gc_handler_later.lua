-- args: --sandbox --max-instructions 5000000
-- exit: 3 instruction limit
-- A __gc added after setmetatable is never a finalizer.
local mt = {}
setmetatable({}, mt)
mt.__gc = function() while true do end end
for _ = 1, 1e9 do local _ = {} end
