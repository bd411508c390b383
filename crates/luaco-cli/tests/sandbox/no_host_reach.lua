-- args: --sandbox
-- exit: 0 ok
assert(os.execute == nil and os.exit == nil and os.getenv == nil)
assert(os.remove == nil and os.rename == nil and os.tmpname == nil)
assert(io == nil and debug == nil and package == nil)
assert(loadfile == nil and dofile == nil and string.dump == nil)
assert(type(os.time()) == "number" and type(os.clock()) == "number")
print("ok")
