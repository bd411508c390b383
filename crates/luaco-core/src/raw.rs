//! The core's only unsafe code: creating a Lua state that may load the
//! `debug` library (which mlua treats as unsafe), and one raw C function on
//! the spawn path.
#![allow(unsafe_code)]

use std::ffi::c_int;

use mlua::{ffi, Function, Lua, LuaOptions, StdLib};

/// A Lua state with `libs` loaded, `debug` included when asked.
pub(crate) fn new_state(libs: StdLib, options: LuaOptions) -> mlua::Result<Lua> {
    if !libs.contains(StdLib::DEBUG) {
        return Lua::new_with(libs, options);
    }
    // SAFETY: mlua calls a state "unsafe" when scripts can reach `debug` or
    // load C modules, because those can break memory safety from Lua. A
    // trusted host script gets every standard library, `debug` included, and
    // the sandbox, not this flag, is what confines untrusted scripts: it
    // gives them environments without `debug`, `package.loadlib` or C
    // module searchers. Nothing else about the state differs.
    Ok(unsafe { Lua::unsafe_new_with(libs, options) })
}

/// `spawn_site()` → the chunk source and current line of the Lua function
/// that called the function calling it (the script that called `async`),
/// or nothing. `debug.getinfo` costs ten times as much: it builds a table
/// and formats the short source on every spawn.
unsafe extern "C-unwind" fn spawn_site(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: `state` is the running thread Lua called us with; a C function
    // has LUA_MINSTACK free slots, and we push at most two values. `ar` is
    // filled by lua_getstack before lua_getinfo reads it. `ar.source` points
    // into the function prototype's source string, which is NUL-terminated
    // and alive while the function is on the stack. lua_pushstring can raise
    // a memory error (a longjmp); nothing in this frame needs dropping.
    unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        if ffi::lua_getstack(state, 2, &mut ar) == 0 {
            return 0;
        }
        if ffi::lua_getinfo(state, c"Sl".as_ptr(), &mut ar) == 0 || ar.source.is_null() {
            return 0;
        }
        // lua_pushstring (not pushlstring) hits Lua's string cache, which is
        // keyed by the C pointer: the same source costs no hashing.
        ffi::lua_pushstring(state, ar.source);
        ffi::lua_pushinteger(state, ffi::lua_Integer::from(ar.currentline));
        2
    }
}

/// The Lua function for [`spawn_site`].
pub(crate) fn spawn_site_function(lua: &Lua) -> mlua::Result<Function> {
    // SAFETY: `spawn_site` follows the lua_CFunction protocol: it reads only
    // the stack of the thread it is given and returns how many values it
    // pushed.
    unsafe { lua.create_c_function(spawn_site) }
}
