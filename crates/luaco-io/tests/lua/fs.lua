-- The same behaviour on every FileSystem backend. DIR is a fresh directory.
local p = DIR .. "/a.txt"
assert(await(fs.exists(p)) == false)
assert(await(fs.write(p, "hello\0world")) == nil)
assert(await(fs.exists(p)) == true)
assert(await(fs.read(p)) == "hello\0world", "binary-safe")
await(fs.write(p, "replaced"))
assert(await(fs.read(p)) == "replaced")
await(fs.write(DIR .. "/c.txt", "c"))
await(fs.write(DIR .. "/b.txt", "b"))
local names = await(fs.list(DIR))
assert(table.concat(names, ",") == "a.txt,b.txt,c.txt", table.concat(names, ","))

-- failures reject with kind "io" and name the path
local ok, e = pcall(await, fs.read(DIR .. "/missing.txt"))
assert(not ok and e.kind == "io" and e.message:find("missing.txt", 1, true), tostring(e))
local ok2, e2 = pcall(await, fs.write(DIR .. "/no/such/dir/x.txt", "x"))
assert(not ok2 and e2.kind == "io", "write does not create parents: " .. tostring(e2))
local ok3, e3 = pcall(await, fs.list(DIR .. "/nothing"))
assert(not ok3 and e3.kind == "io")
local ok4, e4 = pcall(await, fs.remove(DIR .. "/missing.txt"))
assert(not ok4 and e4.kind == "io" and e4.message:find("missing.txt", 1, true))

await(fs.remove(p))
assert(await(fs.exists(p)) == false)

-- bad arguments raise at once
local ok5, e5 = pcall(fs.read, 42)
assert(not ok5 and e5.kind == "type")
local ok6, e6 = pcall(fs.write, DIR .. "/x", {})
assert(not ok6 and e6.kind == "type")

-- many files concurrently
local writes = {}
for i = 1, 50 do writes[i] = fs.write(DIR .. "/f" .. i, tostring(i)) end
await(all(writes))
local reads = {}
for i = 1, 50 do reads[i] = fs.read(DIR .. "/f" .. i) end
local got = await(all(reads))
for i = 1, 50 do assert(got[i] == tostring(i)) end
return "ok"
