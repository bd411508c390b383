//! Exports the Lua C API (`lua_*`, `luaL_*`, `luaopen_*`) from the `luaco`
//! binary, as the system's `lua5.4` does, so that C modules built for it
//! (LuaFileSystem, LPeg, lua-cjson from Debian or LuaRocks) resolve their
//! Lua symbols against luaco's own Lua when `require` loads them.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "linux" && os != "freebsd" {
        return;
    }
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return;
    };
    let list = out.join("lua-api.list");
    let symbols = "{\n  lua_*;\n  luaL_*;\n  luaopen_*;\n};\n";
    if std::fs::write(&list, symbols).is_ok() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--dynamic-list={}",
            list.display()
        );
    }
}
