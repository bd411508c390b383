-- args: --sandbox --allow-fs $DIR
-- exit: 0 ok
assert(await(fs.read("inside.txt")) == "inside")
for _, path in ipairs({ "../outside.txt", "/etc/passwd", "escape/outside.txt", "link.txt" }) do
  local ok, err = pcall(await, fs.read(path))
  assert(not ok and err.kind == "permission", path .. ": " .. tostring(err))
end
print("ok")
