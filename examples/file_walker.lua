-- Build a small directory tree in a temp dir, walk it recursively with fs.list
-- and fs.stat, summarise the sizes as JSON, then remove it all again.
-- Run: luaco run examples/file_walker.lua
local root = os.tmpname() -- a fresh unique name; it is created as a file, so reuse it as a dir
await(fs.remove(root))
local files = {
  ["readme.txt"] = "hello\n",
  ["src/main.lua"] = string.rep("print(1)\n", 10),
  ["src/lib/util.lua"] = "return {}\n",
  ["src/lib/deep/data.json"] = json.encode({ 1, 2, 3 }),
  ["logs/empty.log"] = "",
}
await(fs.mkdir(root .. "/src/lib/deep", { parents = true })) -- parents: like mkdir -p
await(fs.mkdir(root .. "/logs"))
local ok, err = pcall(await, fs.mkdir(root .. "/no/such/parent")) -- without parents = true
print("mkdir without parents: " .. err.kind .. " " .. err.code)
assert(not ok and err.kind == "io" and err.code == "ENOENT")
local writes = {}
for rel, data in pairs(files) do writes[#writes + 1] = fs.write(root .. "/" .. rel, data) end
await(all(writes))

-- Depth-first walk; the entries of one directory are stat'ed concurrently.
local function walk(dir, rel, out)
  local names = await(fs.list(dir)) -- sorted names, files and directories alike
  local stats = await(map(names, function(name) return fs.stat(dir .. "/" .. name) end))
  local dir_total = 0
  for i, name in ipairs(names) do
    local path, st = rel .. name, stats[i]
    if st.type == "dir" then
      dir_total = dir_total + walk(dir .. "/" .. name, path .. "/", out)
    else
      out.files[#out.files + 1] = { path = path, size = st.size }
      dir_total = dir_total + st.size
    end
  end
  out.dirs[rel == "" and "." or rel] = dir_total
  return dir_total
end

local summary = { files = json.array({}), dirs = {} }
summary.total = walk(root, "", summary)
print(json.encode(summary))

local expected = 0
for _, data in pairs(files) do expected = expected + #data end
assert(#summary.files == 5 and summary.total == expected)
assert(summary.files[1].path == "logs/empty.log" and summary.files[1].size == 0)
assert(summary.dirs["src/lib/"] == #files["src/lib/util.lua"] + #files["src/lib/deep/data.json"])

-- fs.remove deletes one file or one empty directory: clean up bottom-up.
local function remove_tree(path)
  if (await(fs.stat(path))).type == "dir" then
    for _, name in ipairs(await(fs.list(path))) do remove_tree(path .. "/" .. name) end
  end
  await(fs.remove(path))
end
remove_tree(root)
assert(await(fs.exists(root)) == false)
print("removed " .. root)
