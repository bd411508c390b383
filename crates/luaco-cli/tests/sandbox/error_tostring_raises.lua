-- args: --sandbox
-- exit: 1 error
error(setmetatable({}, { __tostring = function() error("boom") end }))
