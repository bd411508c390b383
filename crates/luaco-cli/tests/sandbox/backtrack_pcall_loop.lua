-- args: --sandbox --max-instructions 5000000
-- exit: 3 instruction limit
-- The step limit raises where it is hit; catching it buys nothing.
while true do
  pcall(string.gsub, ("a"):rep(40), ("a*"):rep(40) .. "b", "x")
end
