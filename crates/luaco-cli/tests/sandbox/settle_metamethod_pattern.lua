-- args: --sandbox --max-instructions 1000000
-- exit: 3 instruction limit
-- Returning a table runs its __index while the promise settles, on the
-- engine's own thread: the counted pattern functions refuse there too.
return setmetatable({}, { __index = function()
  return ("a"):rep(40):find(("a*"):rep(40) .. "b")
end })
