//! The core's only unsafe code: creating a Lua state that may load the
//! `debug` library, which mlua treats as unsafe.
#![allow(unsafe_code)]

use mlua::{Lua, LuaOptions, StdLib};

/// A Lua state with `libs` loaded, `debug` included when asked.
pub(crate) fn new_state(libs: StdLib, options: LuaOptions) -> mlua::Result<Lua> {
    if !libs.contains(StdLib::DEBUG) {
        return Lua::new_with(libs, options);
    }
    // SAFETY: mlua calls a state "unsafe" when scripts can reach `debug` or
    // load C modules, because those can break memory safety from Lua. A
    // trusted host script gets every standard library (SPEC §2, CLI), and
    // the sandbox, not this flag, is what confines untrusted scripts: it
    // gives them environments without `debug`, `package.loadlib` or C
    // module searchers. Nothing else about the state differs.
    Ok(unsafe { Lua::unsafe_new_with(libs, options) })
}
