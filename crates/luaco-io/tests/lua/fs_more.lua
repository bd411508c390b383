-- stat, mkdir, append, rename and errno codes, the same on every backend.
-- DIR is a fresh directory; REAL says whether it is on disk.
local d = DIR

-- mkdir, with and without parents
await(fs.mkdir(d .. "/sub"))
local ok, e = pcall(await, fs.mkdir(d .. "/sub"))
assert(not ok and e.kind == "io" and e.code == "EEXIST", tostring(e) .. " " .. tostring(e.code))
await(fs.mkdir(d .. "/sub", { parents = true })) -- exists: fine with parents
local ok2, e2 = pcall(await, fs.mkdir(d .. "/a/b/c"))
assert(not ok2 and e2.code == "ENOENT", "no parents: " .. tostring(e2.code))
await(fs.mkdir(d .. "/a/b/c", { parents = true }))
assert(await(fs.stat(d .. "/a/b/c")).type == "dir")
local ok3, e3 = pcall(fs.mkdir, d .. "/x", { parent = true })
assert(not ok3 and e3.kind == "type" and e3.message:find("parent", 1, true), "unknown option")

-- stat
await(fs.write(d .. "/f.txt", "12345"))
local st = await(fs.stat(d .. "/f.txt"))
assert(st.type == "file" and st.size == 5, st.type .. " " .. st.size)
if REAL then assert(type(st.modified) == "number" and st.modified > 0) end
local ok4, e4 = pcall(await, fs.stat(d .. "/nope"))
assert(not ok4 and e4.kind == "io" and e4.code == "ENOENT" and e4.message:find("nope", 1, true))

-- append
await(fs.append(d .. "/f.txt", "678"))
await(fs.append(d .. "/new.txt", "first"))
assert(await(fs.read(d .. "/f.txt")) == "12345678")
assert(await(fs.read(d .. "/new.txt")) == "first")

-- rename: a file, replacing; a directory with its contents
await(fs.rename(d .. "/new.txt", d .. "/f.txt"))
assert(await(fs.read(d .. "/f.txt")) == "first")
assert(await(fs.exists(d .. "/new.txt")) == false)
await(fs.write(d .. "/a/b/c/deep.txt", "deep"))
await(fs.rename(d .. "/a", d .. "/moved"))
assert(await(fs.read(d .. "/moved/b/c/deep.txt")) == "deep")
assert(await(fs.exists(d .. "/a")) == false)
local ok5, e5 = pcall(await, fs.rename(d .. "/missing", d .. "/x"))
assert(not ok5 and e5.code == "ENOENT")

-- errno codes a walker tells apart
local ok6, e6 = pcall(await, fs.read(d .. "/sub"))
assert(not ok6 and e6.code == "EISDIR", "read a dir: " .. tostring(e6.code))
local ok7, e7 = pcall(await, fs.list(d .. "/f.txt"))
assert(not ok7 and e7.code == "ENOTDIR", "list a file: " .. tostring(e7.code))
await(fs.write(d .. "/sub/inner", "x"))
local ok8, e8 = pcall(await, fs.remove(d .. "/sub"))
assert(not ok8 and e8.code == "ENOTEMPTY", "remove a full dir: " .. tostring(e8.code))

-- a walker needs no error text: stat says what each entry is
local kinds = {}
for _, name in ipairs(await(fs.list(d))) do
  kinds[#kinds + 1] = name .. "=" .. await(fs.stat(d .. "/" .. name)).type
end
assert(table.concat(kinds, ",") == "f.txt=file,moved=dir,sub=dir", table.concat(kinds, ","))
return "ok"
