//! The sandbox's only unsafe code: `pcall` and `xpcall` as C functions
//! over the Lua C API, so that making limits final leaves nothing a script
//! can see. They behave as Lua's own (same results, yieldable through a
//! continuation, `[C]: in function 'pcall'` in tracebacks, the name
//! `debug.getinfo` reports), and when the protected call failed they hand
//! the status and the error to `check` (upvalue 1), a Rust function that
//! decides from the status (`LUA_ERRMEM`) and the error's type whether the
//! heap limit was hit. `xpcall`'s guarded form also skips the message
//! handler while `stopping()` (upvalue 2) says a limit is stopping the
//! script, because Lua runs the handler with hooks off.
//!
//! No Rust value with a destructor lives in these frames: every Lua call
//! here may raise (a longjmp through them), so they hold only integers and
//! pointers.
#![allow(unsafe_code)]

use std::ffi::c_int;

use mlua::{ffi, Function, Lua};

/// Calls `check(status, err)` (upvalue 1) for a failed protected call
/// whose error could be a heap-limit failure: status `LUA_ERRMEM`, or an
/// error that is not a string (a Rust error, an error object).
///
/// # Safety
/// `state` is inside one of this module's C functions, with the error
/// object on top of its stack.
unsafe fn report_failure(state: *mut ffi::lua_State, status: c_int) {
    // SAFETY: the caller's frame is a C closure of this module, so upvalue
    // 1 exists; lua_checkstack makes room for the three values pushed (a
    // failure to get it skips the check: nothing is left half-pushed).
    unsafe {
        let err_type = ffi::lua_type(state, -1);
        if status != ffi::LUA_ERRMEM && err_type == ffi::LUA_TSTRING {
            return;
        }
        if ffi::lua_checkstack(state, 3) == 0 {
            return;
        }
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_pushinteger(state, ffi::lua_Integer::from(status));
        ffi::lua_pushvalue(state, -3);
        ffi::lua_call(state, 2, 0);
    }
}

/// What `pcall` and `xpcall` return, now or when resumed after a yield
/// inside the protected call (`extra`: values below the results that are
/// not results: 0 for pcall, 2 for xpcall's function and handler).
unsafe extern "C-unwind" fn finish(
    state: *mut ffi::lua_State,
    status: c_int,
    extra: ffi::lua_KContext,
) -> c_int {
    // SAFETY: called by `pcall`/`xpcall` below or by Lua as their
    // continuation, on their own frame: on failure the error object is on
    // top; on success the results sit above `extra` slots and the `true`
    // pushed before the call. Pushing two values after report_failure is
    // within the LUA_MINSTACK slots a C function has, since a failed call
    // leaves only the error on the stack above its first slots.
    unsafe {
        if status != ffi::LUA_OK && status != ffi::LUA_YIELD {
            report_failure(state, status);
            ffi::lua_pushboolean(state, 0);
            ffi::lua_pushvalue(state, -2);
            return 2;
        }
        ffi::lua_gettop(state) - extra as c_int
    }
}

/// `pcall(f, ...)`.
unsafe extern "C-unwind" fn pcall(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua's calling convention: the arguments are slots 1..top.
    // luaL_checkany raises through this frame, which holds nothing to drop.
    // One value is pushed (within LUA_MINSTACK), then moved below `f`.
    unsafe {
        ffi::luaL_checkany(state, 1);
        ffi::lua_pushboolean(state, 1);
        ffi::lua_insert(state, 1);
        let nargs = ffi::lua_gettop(state) - 2;
        let status = ffi::lua_pcallk(state, nargs, ffi::LUA_MULTRET, 0, 0, Some(finish));
        finish(state, status, 0)
    }
}

/// Arranges `f, handler, ...` as `f, handler, true, f, ...` and calls `f`
/// protected, with the message handler at slot 2.
///
/// # Safety
/// `state` is in an `xpcall` frame whose slot 2 holds a function.
unsafe fn xpcall_with_handler_at_2(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: two values are pushed (within LUA_MINSTACK) and rotated into
    // place, as Lua's own xpcall does.
    unsafe {
        let n = ffi::lua_gettop(state);
        ffi::lua_pushboolean(state, 1);
        ffi::lua_pushvalue(state, 1);
        ffi::lua_rotate(state, 3, 2);
        let status = ffi::lua_pcallk(state, n - 2, ffi::LUA_MULTRET, 2, 2, Some(finish));
        finish(state, status, 2)
    }
}

/// `xpcall(f, handler, ...)` that only checks failures.
unsafe extern "C-unwind" fn xpcall(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: luaL_checktype raises through a frame holding nothing to drop.
    unsafe {
        ffi::luaL_checktype(state, 2, ffi::LUA_TFUNCTION);
        xpcall_with_handler_at_2(state)
    }
}

/// `xpcall` whose handler does not run while a limit stops the script.
unsafe extern "C-unwind" fn xpcall_guarded(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `xpcall`; the closure made here takes the handler and
    // `stopping` (this closure's upvalue 2) off the stack, two slots.
    unsafe {
        ffi::luaL_checktype(state, 2, ffi::LUA_TFUNCTION);
        ffi::lua_pushvalue(state, 2);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(2));
        ffi::lua_pushcclosure(state, guarded_handler, 2);
        ffi::lua_replace(state, 2);
        xpcall_with_handler_at_2(state)
    }
}

/// The message handler `xpcall_guarded` installs: the script's handler
/// (upvalue 1), unless `stopping()` (upvalue 2).
unsafe extern "C-unwind" fn guarded_handler(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls a message handler with the error as its one
    // argument; at most two values are pushed beyond it.
    unsafe {
        ffi::lua_settop(state, 1);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(2));
        ffi::lua_call(state, 0, 1);
        let stopping = ffi::lua_toboolean(state, -1) != 0;
        ffi::lua_settop(state, 1);
        if stopping {
            return 1;
        }
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_insert(state, 1);
        ffi::lua_call(state, 1, 1);
        1
    }
}

pub(crate) use luaco_core::STATUS_MEMORY;

/// `pcall` and `xpcall` (guarded when `stopping` is given), as closures
/// over `check` (and `stopping`).
pub(crate) fn protected_calls(
    lua: &Lua,
    check: Function,
    stopping: Option<Function>,
) -> mlua::Result<(Function, Function)> {
    // SAFETY: each function follows the lua_CFunction protocol and reads
    // only its own stack and upvalues; mlua pushes the upvalues given here
    // before making each closure, in this order.
    unsafe {
        let pcall = lua.exec_raw::<Function>(check.clone(), |state| {
            ffi::lua_pushcclosure(state, pcall, 1);
        })?;
        let xpcall = match stopping {
            Some(stopping) => lua.exec_raw::<Function>((check, stopping), |state| {
                ffi::lua_pushcclosure(state, xpcall_guarded, 2);
            })?,
            None => lua.exec_raw::<Function>(check, |state| {
                ffi::lua_pushcclosure(state, xpcall, 1);
            })?,
        };
        Ok((pcall, xpcall))
    }
}
