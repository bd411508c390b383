//! `await` in C: a resolved promise's value without a Lua frame, a yield
//! for a pending one, the Lua rules for the rest.

use std::ffi::c_int;

use mlua::{ffi, Function, Lua, Table};

use super::{PENDING, RESOLVED, ST, V, W};

/// Upvalues of `await`.
const UV_RUNNING_TASK: c_int = 1;
const UV_PROMISE_MT: c_int = 2;
const UV_AWAIT: c_int = 3;
const UV_SLOW: c_int = 4;

/// `await(p)`: the value of a resolved promise at once; for a pending one
/// the task yields `(AWAIT, p)` to the scheduler until `p` has settled.
/// Outside the running task's own coroutine, for a value that is not a
/// promise, and for a rejection or a cancellation, the Lua `slow(p)` has
/// the say (it raises).
unsafe extern "C-unwind" fn await_c(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function called by Lua. Slot 1 exists after lua_settop;
    // at most three values are pushed above it before they are popped or
    // returned, within LUA_MINSTACK. lua_yieldk does not return here (the
    // continuation takes over), and this frame holds nothing to drop.
    unsafe {
        ffi::lua_settop(state, 1);
        if !in_running_task(state) || !is_promise(state) {
            return slow(state);
        }
        if ffi::lua_rawgeti(state, 1, W) == ffi::LUA_TBOOLEAN && ffi::lua_toboolean(state, -1) == 0
        {
            // Consumed from now on: a rejection is no longer unhandled.
            ffi::lua_pushboolean(state, 1);
            ffi::lua_rawseti(state, 1, W);
        }
        ffi::lua_settop(state, 1);
        settled_or_yield(state)
    }
}

/// After a resume of a task that yielded in `await`.
unsafe extern "C-unwind" fn await_k(
    state: *mut ffi::lua_State,
    _status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: the continuation gets the stack of `await_c` (the promise in
    // slot 1) with what the resume passed on top, which is dropped.
    unsafe {
        ffi::lua_settop(state, 1);
        settled_or_yield(state)
    }
}

/// The value of the settled promise in slot 1, or a yield until it is.
///
/// # Safety
/// Called from `await_c` or `await_k` with only the promise on the stack.
unsafe fn settled_or_yield(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: see the callers; two values are pushed for the yield, one
    // for the value.
    unsafe {
        ffi::lua_rawgeti(state, 1, ST);
        let mut isnum = 0;
        let st = ffi::lua_tointegerx(state, -1, &mut isnum);
        ffi::lua_settop(state, 1);
        if isnum == 0 {
            // Not a state this runtime wrote: the Lua rules say what it is.
            return slow(state);
        }
        if st == PENDING {
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_AWAIT));
            ffi::lua_pushvalue(state, 1);
            return ffi::lua_yieldk(state, 2, 0, Some(await_k));
        }
        if st == RESOLVED {
            ffi::lua_rawgeti(state, 1, V);
            return 1;
        }
        slow(state)
    }
}

/// Whether the running coroutine is the running task's (only the
/// scheduler resumes those, so then the caller is the task itself).
///
/// # Safety
/// Two stack slots are free.
unsafe fn in_running_task(state: *mut ffi::lua_State) -> bool {
    // SAFETY: the running thread and the record's `co` are pushed, then
    // both popped; the record is a table (the Lua half's, checked).
    unsafe {
        if ffi::lua_type(state, ffi::lua_upvalueindex(UV_RUNNING_TASK)) != ffi::LUA_TTABLE {
            return false;
        }
        ffi::lua_pushthread(state);
        ffi::lua_getfield(
            state,
            ffi::lua_upvalueindex(UV_RUNNING_TASK),
            c"co".as_ptr(),
        );
        let same = ffi::lua_rawequal(state, -1, -2) != 0;
        ffi::lua_settop(state, -3);
        same
    }
}

/// Whether slot 1 holds a promise (its metatable is the promise one).
///
/// # Safety
/// One stack slot is free.
unsafe fn is_promise(state: *mut ffi::lua_State) -> bool {
    // SAFETY: lua_getmetatable pushes only when there is one; it is popped.
    unsafe {
        if ffi::lua_type(state, 1) != ffi::LUA_TTABLE || ffi::lua_getmetatable(state, 1) == 0 {
            return false;
        }
        let same = ffi::lua_rawequal(state, -1, ffi::lua_upvalueindex(UV_PROMISE_MT)) != 0;
        ffi::lua_settop(state, -2);
        same
    }
}

/// Hands slot 1 to the Lua `slow(p)` and returns what it returns.
///
/// # Safety
/// Slot 1 exists; two stack slots are free.
unsafe fn slow(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: the function and its argument are pushed and called; its
    // error (the usual outcome) unwinds this frame, which holds nothing
    // to drop.
    unsafe {
        ffi::lua_settop(state, 1);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_SLOW));
        ffi::lua_pushvalue(state, 1);
        ffi::lua_call(state, 1, 1);
        1
    }
}

/// `await` as a C closure over the running-task record, the promise
/// metatable, the AWAIT marker the scheduler knows a wait by, and the Lua
/// `slow(p)` for the rest.
pub(crate) fn await_function(
    lua: &Lua,
    running_task: Table,
    promise_mt: Table,
    marker: Table,
    slow_path: Function,
) -> mlua::Result<Function> {
    // SAFETY: run by mlua in a protected call with the four values as its
    // arguments, which become the closure's upvalues (lua_pushcclosure
    // pops them); the closure is the one value left for mlua to return.
    unsafe {
        lua.exec_raw::<Function>((running_task, promise_mt, marker, slow_path), |state| {
            ffi::lua_pushcclosure(state, await_c, 4);
        })
    }
}
