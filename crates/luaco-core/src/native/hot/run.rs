//! The loop that resumes ready tasks: task.lua's `step` and `run` in C.

use std::ffi::c_int;

use mlua::ffi;

use super::*;
use crate::native::interrupt::auxresume;

/// Where `run` keeps its tables on its own stack, and the last of them:
/// steps work above `BASE`.
const SLOT_S: c_int = 3;
const SLOT_RT: c_int = 4;
const SLOT_POOL: c_int = 5;
const SLOT_RQ: c_int = 6;
const BASE: c_int = 6;

/// Upvalues of `run` (and, the first, of `qget`/`qset`).
const UV_S: c_int = 2;
const UV_RT: c_int = 3;
const UV_AWAIT_MARK: c_int = 4;
const UV_FINISHED: c_int = 5;
const UV_WORKER: c_int = 6;
const UV_STEP: c_int = 7;
const UV_AFTER: c_int = 8;
const UV_FINISH: c_int = 9;
const UV_DRAINED: c_int = 10;
const UV_RQ: c_int = 11;
const UV_POOL: c_int = 12;
const UV_KEY_CO: c_int = 13;
const UV_KEY_RESUMES: c_int = 14;
pub(super) const RUN_UPVALUES: c_int = 14;

/// [`check_tables`] for `run`'s.
///
/// # Safety
/// Called from `run`.
unsafe fn check_run_tables(state: *mut ffi::lua_State) {
    // SAFETY: `run` has these upvalues.
    unsafe {
        check_tables(state, &[UV_S, UV_RT, UV_RQ, UV_POOL]);
    }
}

/// `running_task.co = <value at idx>` (and one more resume counted when a
/// task starts running).
///
/// # Safety
/// `idx` is a valid absolute index; three stack slots are free. The record
/// is the engine's table with both fields from the start, so the writes
/// never allocate.
unsafe fn publish(state: *mut ffi::lua_State, idx: c_int, starting: bool) {
    // SAFETY: keys and values are pushed in pairs and popped by rawset.
    unsafe {
        let rt = SLOT_RT;
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_KEY_CO));
        ffi::lua_pushvalue(state, idx);
        ffi::lua_rawset(state, rt);
        if starting {
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_KEY_RESUMES));
            ffi::lua_pushvalue(state, -1);
            ffi::lua_rawget(state, rt);
            let n = ffi::lua_tointegerx(state, -1, std::ptr::null_mut());
            ffi::lua_settop(state, -2);
            ffi::lua_pushinteger(state, n.wrapping_add(1));
            ffi::lua_rawset(state, rt);
        }
    }
}

/// Publishes "no task runs" (`false`).
///
/// # Safety
/// As [`publish`].
unsafe fn unpublish(state: *mut ffi::lua_State) {
    // SAFETY: as publish; the pushed false is popped again.
    unsafe {
        ffi::lua_pushboolean(state, 0);
        publish(state, ffi::lua_absindex(state, -1), false);
        ffi::lua_settop(state, -2);
    }
}

/// Runs the task record at `ti` once: the C half of task.lua's `step`.
///
/// # Safety
/// `ti` is the absolute index of a table on top of the stack, which has
/// room for twenty values above it (ensured by `run`).
unsafe fn step(state: *mut ffi::lua_State, q: *mut Queue, ti: c_int) {
    // SAFETY: every push is matched by a pop or a settop within this call,
    // at most eight values beyond `ti` plus what auxresume checked room
    // for. Lua errors (a memory error in lua_newthread, or one raised by a
    // Lua function called here) unwind through this frame, which holds
    // plain data only; the records stay as consistent as task.lua's own
    // step leaves them at the same points. `q` is read and written in
    // place, never borrowed across a call into Lua.
    unsafe {
        let s = SLOT_S;
        let done = ffi::lua_rawgeti(state, ti, T_STATE) == ffi::LUA_TNUMBER
            && ffi::lua_tointegerx(state, -1, std::ptr::null_mut()) == DONE;
        ffi::lua_settop(state, ti);
        if done {
            return;
        }
        if (*q).slots[Q_OBSERVED] != 0 {
            // Observers want reports and running times: the Lua step.
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_STEP));
            ffi::lua_pushvalue(state, ti);
            ffi::lua_call(state, 1, 0);
            return;
        }
        let ci = ti + 1;
        let nargs = if ffi::lua_rawgeti(state, ti, T_CO) == ffi::LUA_TTHREAD {
            // A suspended task: it runs unless it was woken early.
            if ffi::lua_rawgeti(state, ti, T_WAITING) == ffi::LUA_TTABLE {
                let w = ci + 1;
                if ffi::lua_rawgeti(state, w, ST) == ffi::LUA_TNUMBER
                    && ffi::lua_tointegerx(state, -1, std::ptr::null_mut()) == PENDING
                {
                    ffi::lua_settop(state, ti);
                    return;
                }
                ffi::lua_pushnil(state);
                ffi::lua_rawseti(state, ti, T_WAITING);
                if ffi::lua_rawgeti(state, w, X) != ffi::LUA_TNIL {
                    // The value is delivered now: nothing to take back.
                    ffi::lua_pushnil(state);
                    ffi::lua_rawseti(state, w, X);
                }
            }
            ffi::lua_settop(state, ci);
            0
        } else {
            // A task that starts: a pooled worker coroutine, or a new one.
            ffi::lua_settop(state, ti);
            let pool = SLOT_POOL;
            let pooled = (*q).slots[Q_POOL_N];
            if pooled > 0 && ffi::lua_rawgeti(state, pool, pooled) == ffi::LUA_TTHREAD {
                ffi::lua_pushnil(state);
                ffi::lua_rawseti(state, pool, pooled);
                (*q).slots[Q_POOL_N] = pooled.wrapping_sub(1);
            } else {
                ffi::lua_settop(state, ti);
                let co = ffi::lua_newthread(state);
                ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_WORKER));
                ffi::lua_xmove(state, co, 1);
            }
            ffi::lua_pushvalue(state, ci);
            ffi::lua_rawseti(state, ti, T_CO);
            ffi::lua_pushvalue(state, ti);
            1
        };
        let co = ffi::lua_tothread(state, ci);
        ffi::lua_pushvalue(state, ti);
        ffi::lua_rawseti(state, s, S_CUR);
        publish(state, ci, true);
        let r = auxresume(state, co, nargs);
        set_false(state, s, S_CUR);
        unpublish(state);
        if r < 0 {
            // The task raised: its error is on top.
            ffi::lua_pushboolean(state, 0);
            ffi::lua_insert(state, -2);
            return after(state, ti, 2);
        }
        // Only the first three results count (as in task.lua).
        if r > 3 {
            ffi::lua_settop(state, -(r - 3) - 1);
        }
        let r = r.min(3);
        let ok = ci + 1;
        ffi::lua_pushboolean(state, 1);
        ffi::lua_insert(state, ok);
        // An observer may have come while the task ran.
        if (*q).slots[Q_OBSERVED] != 0 || r == 0 {
            return after(state, ti, r + 1);
        }
        let (a, b) = (ok + 1, ok + 2);
        let kind = ffi::lua_rawgeti(state, ti, T_STATE);
        let listed = kind == ffi::LUA_TBOOLEAN;
        let cancel_pending = kind == ffi::LUA_TNUMBER
            && ffi::lua_tointegerx(state, -1, std::ptr::null_mut()) == CANCEL_PENDING;
        ffi::lua_settop(state, -2);
        if cancel_pending {
            return after(state, ti, r + 1);
        }
        if ffi::lua_rawequal(state, a, ffi::lua_upvalueindex(UV_FINISHED)) != 0 {
            let pooled = (*q).slots[Q_POOL_N];
            if pooled >= (*q).slots[Q_POOL_SIZE] {
                return after(state, ti, r + 1);
            }
            // Back to the pool; the task's promise settles in Lua.
            ffi::lua_pushvalue(state, ci);
            ffi::lua_rawseti(state, SLOT_POOL, pooled.wrapping_add(1));
            (*q).slots[Q_POOL_N] = pooled.wrapping_add(1);
            set_false(state, ti, T_CO);
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_FINISH));
            ffi::lua_pushvalue(state, ti);
            ffi::lua_pushboolean(state, 1);
            if r >= 2 {
                ffi::lua_pushvalue(state, b);
            } else {
                ffi::lua_pushnil(state);
            }
            ffi::lua_call(state, 3, 0);
            return;
        }
        // A listed task awaiting a promise that nobody else waits on;
        // LOOSE tasks (listed under root once they first await) and the
        // rest take the Lua path.
        let awaits = r >= 2
            && listed
            && ffi::lua_rawequal(state, a, ffi::lua_upvalueindex(UV_AWAIT_MARK)) != 0
            && ffi::lua_type(state, b) == ffi::LUA_TTABLE;
        if !awaits {
            return after(state, ti, r + 1);
        }
        let alone = ffi::lua_rawgeti(state, b, W) == ffi::LUA_TBOOLEAN;
        ffi::lua_settop(state, -2);
        if !alone {
            return after(state, ti, r + 1);
        }
        ffi::lua_pushvalue(state, b);
        ffi::lua_rawseti(state, ti, T_WAITING);
        ffi::lua_pushvalue(state, ti);
        ffi::lua_rawseti(state, b, W);
    }
}

/// Hands what a resume gave to task.lua's `after_resume(t, co, ok, ...)`:
/// the `n` values on top of the stack (`ok` first), with the record at
/// `ti` and its coroutine at `ti + 1`.
///
/// # Safety
/// As [`step`]; the stack holds `ti`, the coroutine, then the `n` values.
unsafe fn after(state: *mut ffi::lua_State, ti: c_int, n: c_int) {
    // SAFETY: the function is inserted below the record, so the call takes
    // the record, the coroutine and the values as its arguments.
    unsafe {
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_AFTER));
        ffi::lua_insert(state, ti);
        ffi::lua_call(state, n + 2, 0);
    }
}

/// `run(max)` → how many tasks of the batch are left, how many are ready
/// in all, and how many ran: task.lua's loop over the ready queue.
pub(super) unsafe extern "C-unwind" fn run(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function called by Lua; the stack is checked for room
    // for a step's values. Each pass starts from the same stack top. The
    // queue block is read and written in place (never borrowed across a
    // call into Lua, which may call qset).
    unsafe {
        let max = ffi::luaL_checkinteger(state, 1);
        ffi::lua_settop(state, 1);
        ffi::luaL_checkstack(state, 24, std::ptr::null());
        let q = queue(state);
        // On the stack (slots 2 to BASE), the block stays alive and the
        // tables stay tables whatever a task does to the closure's
        // upvalues (with `debug`).
        check_run_tables(state);
        for uv in [UV_QUEUE, UV_S, UV_RT, UV_POOL, UV_RQ] {
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(uv));
        }
        let (s, rq) = (SLOT_S, SLOT_RQ);
        set_false(state, s, S_CUR);
        unpublish(state);
        if (*q).slots[Q_HALTED] != 0 {
            for _ in 0..3 {
                ffi::lua_pushinteger(state, 0);
            }
            return 3;
        }
        let head = (*q).slots[Q_HEAD];
        if head > (*q).slots[Q_BATCH] {
            // A new turn. What became ready during the last one moves to
            // the front, so the queue stays a dense array.
            let mut tail = get_int(state, s, S_TAIL);
            if head > 1 {
                let n = tail.wrapping_sub(head).wrapping_add(1).max(0);
                for i in 0..n {
                    ffi::lua_rawgeti(state, rq, head.wrapping_add(i));
                    ffi::lua_rawseti(state, rq, 1 + i);
                }
                for i in n + 1..=tail {
                    ffi::lua_pushnil(state);
                    ffi::lua_rawseti(state, rq, i);
                }
                (*q).slots[Q_HEAD] = 1;
                ffi::lua_pushinteger(state, n);
                ffi::lua_rawseti(state, s, S_TAIL);
                tail = n;
            }
            (*q).slots[Q_BATCH] = tail;
        }
        let mut ran: ffi::lua_Integer = 0;
        // Read each time: a step may end the batch (a halt).
        while ran < max && (*q).slots[Q_HEAD] <= (*q).slots[Q_BATCH] {
            let head = (*q).slots[Q_HEAD];
            let kind = ffi::lua_rawgeti(state, rq, head);
            ffi::lua_pushnil(state);
            ffi::lua_rawseti(state, rq, head);
            (*q).slots[Q_HEAD] = head.wrapping_add(1);
            if kind == ffi::LUA_TTABLE {
                step(state, q, BASE + 1);
            }
            ffi::lua_settop(state, BASE);
            ran += 1;
        }
        let mut tail = get_int(state, s, S_TAIL);
        if (*q).slots[Q_HEAD] > tail {
            (*q).slots[Q_HEAD] = 1;
            (*q).slots[Q_BATCH] = 0;
            ffi::lua_pushinteger(state, 0);
            ffi::lua_rawseti(state, s, S_TAIL);
            if (*q).slots[Q_UNHANDLED] > 0 {
                ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_DRAINED));
                ffi::lua_call(state, 0, 0);
            }
            tail = get_int(state, s, S_TAIL);
        }
        let (head, batch) = ((*q).slots[Q_HEAD], (*q).slots[Q_BATCH]);
        ffi::lua_pushinteger(state, batch - head + 1);
        ffi::lua_pushinteger(state, tail - head + 1);
        ffi::lua_pushinteger(state, ran);
        3
    }
}
