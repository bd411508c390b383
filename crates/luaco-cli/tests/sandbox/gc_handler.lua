-- args: --sandbox --max-instructions 5000000
-- exit: 1 __gc metamethods are not allowed
-- Lua runs finalizers with hooks off: the sandbox has none.
setmetatable({}, { __gc = function() while true do end end })
for _ = 1, 1e9 do local _ = {} end
