//! Making tasks in C: `async`, and the `track` and `make_ready` that list
//! a task's operations and queue a task.

use std::ffi::c_int;

use mlua::ffi;

use super::*;

/// Upvalues of `spawn` (the queue block first, as for `run`).
const UV_SP_S: c_int = 2;
const UV_SP_PROMISE_MT: c_int = 3;
const UV_SP_DEFAULT_CTX: c_int = 4;
const UV_SP_SLOW: c_int = 5;
const UV_SP_ADD_KID: c_int = 6;
const UV_SP_RQ: c_int = 7;
const UV_SP_KEY_N: c_int = 8;
const UV_SP_KEY_LIMIT: c_int = 9;
const UV_SP_SITES: c_int = 10;
pub(super) const SPAWN_UPVALUES: c_int = 10;

/// [`check_tables`] for those of `async`, `track` and `make_ready`.
///
/// # Safety
/// Called from one of them.
unsafe fn check_spawn_tables(state: *mut ffi::lua_State) {
    // SAFETY: these closures have these upvalues.
    unsafe { check_tables(state, &[UV_SP_S, UV_SP_PROMISE_MT, UV_SP_RQ]) }
}

/// `async(f, ...)`: a task of `f(...)`, a child of the running task,
/// ready from the next turn; its promise. The C half of task.lua's
/// `spawn_with`, which has the say while an observer watches and for a
/// bad argument.
pub(super) unsafe extern "C-unwind" fn spawn(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function called by Lua with its arguments in slots 1 to
    // n + 1; luaL_checkstack makes room for them (copied once into the
    // argument table) and for the records made above them. Memory errors
    // unwind this frame, which holds plain data only; the record is
    // counted (live, serial), filled and queued, then listed under its
    // parent and given its spawn site, in task.lua's order.
    unsafe {
        let top = ffi::lua_gettop(state);
        let q = queue(state);
        if ffi::lua_type(state, 1) != ffi::LUA_TFUNCTION || (*q).slots[Q_OBSERVED] != 0 {
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_SP_SLOW));
            ffi::lua_insert(state, 1);
            ffi::lua_call(state, top, 1);
            return 1;
        }
        ffi::luaL_checkstack(state, 12, std::ptr::null());
        check_spawn_tables(state);
        let s = ffi::lua_upvalueindex(UV_SP_S);
        let n = top - 1;
        // The arguments, packed as table.pack does.
        if n > 0 {
            ffi::lua_createtable(state, n, 1);
            for i in 1..=n {
                ffi::lua_pushvalue(state, i + 1);
                ffi::lua_rawseti(state, -2, ffi::lua_Integer::from(i));
            }
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_SP_KEY_N));
            ffi::lua_pushinteger(state, ffi::lua_Integer::from(n));
            ffi::lua_rawset(state, -3);
        } else {
            ffi::lua_pushboolean(state, 0);
        }
        let args = top + 1;
        // The promise: pending, no source yet, not consumed.
        ffi::lua_createtable(state, 3, 0);
        ffi::lua_pushinteger(state, PENDING);
        ffi::lua_rawseti(state, -2, ST);
        ffi::lua_pushboolean(state, 0);
        ffi::lua_rawseti(state, -2, V);
        ffi::lua_pushboolean(state, 0);
        ffi::lua_rawseti(state, -2, W);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_SP_PROMISE_MT));
        ffi::lua_setmetatable(state, -2);
        let p = top + 2;
        let has_parent = ffi::lua_rawgeti(state, s, S_CUR) == ffi::LUA_TTABLE;
        let parent = top + 3;
        let serial = get_int(state, s, S_SERIAL).wrapping_add(1);
        ffi::lua_pushinteger(state, serial);
        ffi::lua_rawseti(state, s, S_SERIAL);
        let live = get_int(state, s, S_LIVE);
        ffi::lua_pushinteger(state, live.wrapping_add(1));
        ffi::lua_rawseti(state, s, S_LIVE);
        // The record, every slot up to T_LINE from the start.
        ffi::lua_createtable(state, T_SIZE, 0);
        let t = top + 4;
        ffi::lua_pushvalue(state, 1);
        ffi::lua_rawseti(state, t, T_FN);
        ffi::lua_pushvalue(state, p);
        ffi::lua_rawseti(state, t, T_PROMISE);
        set_false(state, t, T_CO);
        if !has_parent || ffi::lua_rawgeti(state, parent, T_CTX) == ffi::LUA_TNIL {
            if has_parent {
                ffi::lua_settop(state, t);
            }
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_SP_DEFAULT_CTX));
        }
        ffi::lua_rawseti(state, t, T_CTX);
        ffi::lua_pushvalue(state, args);
        ffi::lua_rawseti(state, t, T_ARGS);
        ffi::lua_pushinteger(state, serial);
        ffi::lua_rawseti(state, t, T_ID);
        set_false(state, t, T_WAITING);
        set_false(state, t, T_KIDS);
        if has_parent {
            set_false(state, t, T_STATE);
        } else {
            ffi::lua_pushinteger(state, LOOSE);
            ffi::lua_rawseti(state, t, T_STATE);
        }
        set_false(state, t, T_UP);
        set_false(state, t, T_SITE);
        ffi::lua_pushinteger(state, 0);
        ffi::lua_rawseti(state, t, T_LINE);
        ffi::lua_pushvalue(state, t);
        ffi::lua_rawseti(state, p, V);
        // Ready from the next turn.
        let tail = get_int(state, s, S_TAIL).wrapping_add(1);
        ffi::lua_pushinteger(state, tail);
        ffi::lua_rawseti(state, s, S_TAIL);
        ffi::lua_pushvalue(state, t);
        ffi::lua_rawseti(state, ffi::lua_upvalueindex(UV_SP_RQ), tail);
        if has_parent {
            add_kid(state, parent, p);
            if ffi::lua_rawgeti(state, parent, T_QUIET) != ffi::LUA_TNIL
                && ffi::lua_toboolean(state, -1) != 0
            {
                ffi::lua_pushboolean(state, 1);
                ffi::lua_rawseti(state, t, T_QUIET);
            }
            ffi::lua_settop(state, t);
        }
        if ffi::lua_toboolean(state, ffi::lua_upvalueindex(UV_SP_SITES)) != 0 {
            if crate::native::push_site(state, 1) == 2 {
                ffi::lua_rawseti(state, t, T_LINE);
                ffi::lua_rawseti(state, t, T_SITE);
            }
            if has_parent {
                // Chains are cut at MAX_SITE_DEPTH, so a long line of
                // spawns does not keep every ancestor's record alive.
                ffi::lua_pushvalue(state, parent);
                let mut depth = 0;
                while depth < MAX_SITE_DEPTH && ffi::lua_type(state, -1) == ffi::LUA_TTABLE {
                    ffi::lua_rawgeti(state, -1, T_UP);
                    ffi::lua_remove(state, -2);
                    depth += 1;
                }
                ffi::lua_settop(state, t);
                if depth < MAX_SITE_DEPTH {
                    ffi::lua_pushvalue(state, parent);
                    ffi::lua_rawseti(state, t, T_UP);
                }
            }
        }
        ffi::lua_pushvalue(state, p);
        1
    }
}

/// `track(p)` → `p`, made an operation of the running task (cancelled
/// with it): task.lua's `core.track`. Shares `async`'s upvalues.
pub(super) unsafe extern "C-unwind" fn track(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function called by Lua; the running task is pushed at 2
    // (or false) and popped before `p` is returned.
    unsafe {
        ffi::lua_settop(state, 1);
        check_tables(state, &[UV_SP_S]);
        if ffi::lua_rawgeti(state, ffi::lua_upvalueindex(UV_SP_S), S_CUR) == ffi::LUA_TTABLE {
            add_kid(state, 2, 1);
        }
        ffi::lua_settop(state, 1);
        1
    }
}

/// `make_ready(t)`: task record `t` joins the ready queue (task.lua's
/// `make_ready`). Shares `async`'s upvalues.
pub(super) unsafe extern "C-unwind" fn make_ready(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function called by Lua; two values are pushed and
    // popped by the writes. Appending to the queue may grow it (a memory
    // error unwinds a frame holding plain data only, with the tail not yet
    // moved).
    unsafe {
        ffi::lua_settop(state, 1);
        check_tables(state, &[UV_SP_S, UV_SP_RQ]);
        let s = ffi::lua_upvalueindex(UV_SP_S);
        let tail = get_int(state, s, S_TAIL).wrapping_add(1);
        ffi::lua_pushvalue(state, 1);
        ffi::lua_rawseti(state, ffi::lua_upvalueindex(UV_SP_RQ), tail);
        ffi::lua_pushinteger(state, tail);
        ffi::lua_rawseti(state, s, S_TAIL);
        0
    }
}

/// Adds promise `p` to the children of the record at `parent`: task.lua's
/// `add_kid`, whose common cases (no child yet, one settled child, room in
/// a list) are done here.
///
/// # Safety
/// `parent` and `p` are valid absolute indices (a task record, a
/// promise); four stack slots are free.
unsafe fn add_kid(state: *mut ffi::lua_State, parent: c_int, p: c_int) {
    // SAFETY: values are pushed and popped in pairs; the Lua add_kid is
    // called for the rest (a second pending child, a full list).
    unsafe {
        let base = ffi::lua_gettop(state);
        let kind = ffi::lua_rawgeti(state, parent, T_KIDS);
        let kids = base + 1;
        let replace = match kind {
            ffi::LUA_TNIL => true,
            ffi::LUA_TBOOLEAN => ffi::lua_toboolean(state, kids) == 0,
            ffi::LUA_TTABLE => {
                ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_SP_KEY_N));
                if ffi::lua_rawget(state, kids) == ffi::LUA_TNIL {
                    // One child: replaced once it has settled.
                    let st = get_int(state, kids, ST);
                    let numeric = ffi::lua_rawgeti(state, kids, ST) == ffi::LUA_TNUMBER;
                    ffi::lua_settop(state, kids);
                    numeric && st != PENDING
                } else {
                    let n = ffi::lua_tointegerx(state, -1, std::ptr::null_mut());
                    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_SP_KEY_LIMIT));
                    ffi::lua_rawget(state, kids);
                    let limit = ffi::lua_tointegerx(state, -1, std::ptr::null_mut());
                    ffi::lua_settop(state, kids);
                    if n > 0 && n < limit {
                        ffi::lua_pushvalue(state, p);
                        ffi::lua_rawseti(state, kids, n + 1);
                        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_SP_KEY_N));
                        ffi::lua_pushinteger(state, n + 1);
                        ffi::lua_rawset(state, kids);
                        ffi::lua_settop(state, base);
                        return;
                    }
                    false
                }
            }
            _ => false,
        };
        ffi::lua_settop(state, base);
        if replace {
            ffi::lua_pushvalue(state, p);
            ffi::lua_rawseti(state, parent, T_KIDS);
            return;
        }
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_SP_ADD_KID));
        ffi::lua_pushvalue(state, parent);
        ffi::lua_pushvalue(state, p);
        ffi::lua_call(state, 2, 0);
    }
}
