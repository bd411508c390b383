//! The core's only unsafe code: creating a Lua state that may load the
//! `debug` library (which mlua treats as unsafe), one raw C function on
//! the spawn path and one that finds the script line of an I/O call, one
//! that reads a thread's status code, a watch on the state's allocator
//! that records when it refused memory, and the resumes that publish the
//! running coroutine so another thread can interrupt it ([`interrupt`]).
#![allow(unsafe_code)]

pub(crate) mod hot;
pub(crate) mod interrupt;

use std::cell::Cell;
use std::ffi::{c_int, c_void};

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

/// `spawn_site(level)` → the chunk source and current line of the Lua
/// function `level` frames up (2, the default: the caller of the function
/// calling this, the script that called `async`), or nothing.
/// `debug.getinfo` costs ten times as much: it builds a table and formats
/// the short source on every spawn.
unsafe extern "C-unwind" fn spawn_site(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: `state` is the running thread Lua called us with.
    unsafe {
        let level = ffi::luaL_optinteger(state, 1, 2);
        let level = c_int::try_from(level).unwrap_or(c_int::MAX);
        push_site(state, level)
    }
}

/// Pushes the source and current line of the function `level` frames up
/// from the running C function (0); how many values it pushed (0 or 2).
///
/// # Safety
/// `state` is the running thread of a C function call, with two stack
/// slots free.
pub(crate) unsafe fn push_site(state: *mut ffi::lua_State, level: c_int) -> c_int {
    // SAFETY: `ar` is filled by lua_getstack before lua_getinfo reads it.
    // `ar.source` points into the function prototype's source string, which
    // is NUL-terminated and alive while the function is on the stack.
    // lua_pushstring can raise a memory error (a longjmp); nothing in this
    // frame needs dropping.
    unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        if ffi::lua_getstack(state, level, &mut ar) == 0 {
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

/// `thread_status(co)` → Lua's status code of a thread; for a dead one,
/// the error it died of (`LUA_ERRMEM` for a memory error).
unsafe extern "C-unwind" fn thread_status(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: luaL_checktype raises (a longjmp through a frame that holds
    // nothing to drop) unless slot 1 is a thread, which lua_tothread then
    // returns; one value is pushed, within LUA_MINSTACK.
    unsafe {
        ffi::luaL_checktype(state, 1, ffi::LUA_TTHREAD);
        let co = ffi::lua_tothread(state, 1);
        ffi::lua_pushinteger(state, ffi::lua_Integer::from(ffi::lua_status(co)));
        1
    }
}

/// The Lua function for [`thread_status`].
pub(crate) fn thread_status_function(lua: &Lua) -> mlua::Result<Function> {
    // SAFETY: `thread_status` follows the lua_CFunction protocol.
    unsafe { lua.create_c_function(thread_status) }
}

/// Lua's status code for a memory error, as `thread_status` reports it.
pub(crate) const STATUS_MEMORY: i64 = ffi::LUA_ERRMEM as i64;

/// What the allocator watch keeps, in a userdata of the state it watches:
/// the allocator it wraps (mlua's, which enforces the heap limit) and
/// whether that allocator refused since the flag was last cleared.
#[repr(C)]
struct AllocWatch {
    inner: ffi::lua_Alloc,
    inner_ud: *mut c_void,
    refused: Cell<bool>,
}

/// The address of a state's [`AllocWatch`], kept as app data.
struct WatchAddress(usize);

unsafe extern "C" fn watching_alloc(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    // SAFETY: `ud` is the AllocWatch installed with this function by
    // `watch_allocator`; it lives in a userdata the registry holds until
    // `lua_close`, whose finalizer puts the inner allocator back before
    // that memory is freed. The inner allocator gets its own arguments.
    unsafe {
        let watch = &*(ud as *const AllocWatch);
        let out = (watch.inner)(watch.inner_ud, ptr, osize, nsize);
        if out.is_null() && nsize > 0 {
            watch.refused.set(true);
        }
        out
    }
}

/// The watch's finalizer: runs at `lua_close` only (the registry holds the
/// watch), and gives the state its inner allocator back, so the frees that
/// follow (this userdata's among them) never reach a freed watch.
unsafe extern "C-unwind" fn unwatch(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls a finalizer with its object in slot 1; the
    // allocator is swapped only if it is still this watch's.
    unsafe {
        let watch = ffi::lua_touserdata(state, 1) as *const AllocWatch;
        let mut ud = std::ptr::null_mut();
        let _ = ffi::lua_getallocf(state, &mut ud);
        if !watch.is_null() && ud == watch as *mut c_void {
            ffi::lua_setallocf(state, (*watch).inner, (*watch).inner_ud);
        }
        0
    }
}

/// Wraps the state's allocator so that a refusal (the heap limit) is
/// recorded: what tells a real memory error from a script that raises
/// Lua's memory message itself. Call once, after the limit is set.
pub(crate) fn watch_allocator(lua: &Lua) -> mlua::Result<()> {
    if lua.app_data_ref::<WatchAddress>().is_some() {
        return Ok(());
    }
    let mut address = 0usize;
    // SAFETY: run by mlua in a protected call on the state's stack. The
    // userdata is made and filled before the allocator changes; it gets a
    // metatable with only `__gc` (scripts never see it: it is reachable
    // from the registry alone) and a registry reference that is never
    // released. Five values at most are pushed, within LUA_MINSTACK.
    unsafe {
        lua.exec_raw::<()>((), |state| {
            let mut inner_ud = std::ptr::null_mut();
            let inner = ffi::lua_getallocf(state, &mut inner_ud);
            let size = std::mem::size_of::<AllocWatch>();
            let watch = ffi::lua_newuserdatauv(state, size, 0) as *mut AllocWatch;
            watch.write(AllocWatch {
                inner,
                inner_ud,
                refused: Cell::new(false),
            });
            ffi::lua_createtable(state, 0, 1);
            ffi::lua_pushcfunction(state, unwatch);
            ffi::lua_setfield(state, -2, c"__gc".as_ptr());
            ffi::lua_setmetatable(state, -2);
            ffi::luaL_ref(state, ffi::LUA_REGISTRYINDEX);
            ffi::lua_setallocf(state, watching_alloc, watch as *mut c_void);
            address = watch as usize;
        })?;
    }
    lua.set_app_data(WatchAddress(address));
    Ok(())
}

/// The watch of `lua`'s allocator, if it has one.
fn with_watch<R>(lua: &Lua, f: impl FnOnce(&AllocWatch) -> R) -> Option<R> {
    let address = lua.app_data_ref::<WatchAddress>()?.0;
    // SAFETY: the address is that of the AllocWatch in a userdata the
    // registry holds until the state closes, and `lua` (so the state) is
    // alive while this borrows it.
    Some(f(unsafe { &*(address as *const AllocWatch) }))
}

/// Whether the allocator refused memory since [`forgive_refusal`].
pub(crate) fn allocator_refused(lua: &Lua) -> bool {
    with_watch(lua, |w| w.refused.get()).unwrap_or(false)
}

/// Clears the record of refusals.
pub(crate) fn forgive_refusal(lua: &Lua) {
    with_watch(lua, |w| w.refused.set(false));
}

/// How many frames `call_site` looks through for the script's own.
const MAX_SITE_FRAMES: c_int = 16;

/// `call_site()` → the short source and line of the innermost Lua function
/// on the stack that is not the runtime's own (whose chunks are named
/// `=luaco...`): the script line that made an API call, found when the
/// call is made, so that a tail call cannot hide it later.
unsafe extern "C-unwind" fn call_site(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: `state` is the running thread Lua called us with. `ar` is
    // filled by lua_getstack before lua_getinfo reads it; `ar.source` and
    // `ar.short_src` are NUL-terminated (the source lives in the function
    // prototype, which is on the stack; short_src is ar's own buffer). At
    // most two values are pushed, within LUA_MINSTACK; a memory error in
    // lua_pushstring unwinds a frame holding nothing to drop.
    unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        for level in 1..MAX_SITE_FRAMES {
            if ffi::lua_getstack(state, level, &mut ar) == 0 {
                return 0;
            }
            if ffi::lua_getinfo(state, c"Sl".as_ptr(), &mut ar) == 0
                || ar.source.is_null()
                || ar.currentline <= 0
            {
                continue;
            }
            let source = std::ffi::CStr::from_ptr(ar.source).to_bytes();
            if source.starts_with(b"=luaco") {
                continue;
            }
            ffi::lua_pushstring(state, ar.short_src.as_ptr());
            ffi::lua_pushinteger(state, ffi::lua_Integer::from(ar.currentline));
            return 2;
        }
        0
    }
}

/// The Lua function for [`call_site`].
pub(crate) fn call_site_function(lua: &Lua) -> mlua::Result<Function> {
    // SAFETY: `call_site` follows the lua_CFunction protocol.
    unsafe { lua.create_c_function(call_site) }
}
