-- Write, list, read and remove files without blocking the loop, and round-trip JSON.
-- Run: cargo run -p luaco-cli -- run examples/files.lua
local dir = (os.getenv("TMPDIR") or "/tmp") .. "/luaco-files-example-" .. math.floor(now() * 1000)
assert(os.execute("mkdir -p '" .. dir .. "'"), "cannot create " .. dir)

-- Write ten files concurrently.
local writes = {}
for i = 1, 10 do
  local record = { id = i, name = "item " .. i, tags = json.array({}) }
  writes[i] = fs.write(dir .. "/item" .. i .. ".json", json.encode(record))
end
await(all(writes))

-- List them (sorted) and read them back concurrently.
local names = await(fs.list(dir))
print(#names .. " files: " .. names[1] .. " ... " .. names[#names])
local records = await(map(names, function(name)
  return json.decode(await(fs.read(dir .. "/" .. name)))
end, 4))
local total = 0
for i = 1, records.n do total = total + records[i].id end
print("sum of ids: " .. total)

-- Errors are values with a kind and the path in the message.
local ok, err = pcall(await, fs.read(dir .. "/missing.json"))
print("missing file: " .. err.kind)

-- Clean up.
local removals = {}
for i, name in ipairs(names) do removals[i] = fs.remove(dir .. "/" .. name) end
await(all(removals))
await(fs.remove(dir))
print("exists after cleanup: " .. tostring(await(fs.exists(dir))))
