//! The hot path of a task in C functions over the Lua stack: `await`, and
//! the loop that resumes ready tasks (`run`).
//!
//! The records stay the Lua tables the Lua half defines (promise.lua: a
//! promise is `{state, value, waiters}` under the promise metatable;
//! task.lua: a task record, and the scheduler's state `S`); these
//! functions read and write their slots directly and hand every case that
//! is not the common one to a Lua function, so the rules live in one place.

use std::ffi::c_int;

use super::interrupt::auxresume;

use mlua::{ffi, Function, Lua, Table};

/// Promise slots and states, as promise.lua numbers them.
const ST: ffi::lua_Integer = 1;
const V: ffi::lua_Integer = 2;
const W: ffi::lua_Integer = 3;
const PENDING: ffi::lua_Integer = 0;
const RESOLVED: ffi::lua_Integer = 1;

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

/// Slots of the scheduler's state `S` (task.lua): what Lua reads on its
/// own hot paths.
const S_RQ: ffi::lua_Integer = 1;
const S_TAIL: ffi::lua_Integer = 2;
const S_CUR: ffi::lua_Integer = 3;
const S_POOL: ffi::lua_Integer = 4;
const S_LIVE: ffi::lua_Integer = 5;
const S_SERIAL: ffi::lua_Integer = 6;

/// The loop's own numbers, in a userdata block (task.lua's `qget`/`qset`
/// reach them by these indices, from 1).
#[repr(C)]
struct Queue {
    magic: u64,
    slots: [ffi::lua_Integer; Q_SLOTS],
}

const QUEUE_MAGIC: u64 = u64::from_be_bytes(*b"luacoRdy");
const Q_SLOTS: usize = 7;
const Q_HEAD: usize = 0;
const Q_BATCH: usize = 1;
const Q_POOL_N: usize = 2;
const Q_POOL_SIZE: usize = 3;
const Q_HALTED: usize = 4;
const Q_OBSERVED: usize = 5;
const Q_UNHANDLED: usize = 6;

/// Fields of a task record (task.lua).
const T_FN: ffi::lua_Integer = 1;
const T_PROMISE: ffi::lua_Integer = 2;
const T_CO: ffi::lua_Integer = 3;
const T_CTX: ffi::lua_Integer = 4;
const T_ARGS: ffi::lua_Integer = 5;
const T_ID: ffi::lua_Integer = 6;
const T_WAITING: ffi::lua_Integer = 7;
const T_KIDS: ffi::lua_Integer = 8;
const T_STATE: ffi::lua_Integer = 9;
const T_UP: ffi::lua_Integer = 10;
const T_SITE: ffi::lua_Integer = 11;
const T_LINE: ffi::lua_Integer = 12;
const T_QUIET: ffi::lua_Integer = 16;
/// The slots a record has from the start (up to T_LINE and one more).
const T_SIZE: c_int = 13;
/// A task with no parent task (task.lua's LOOSE).
const LOOSE: ffi::lua_Integer = 4;
/// How far up a spawn chain a record keeps its ancestors.
const MAX_SITE_DEPTH: usize = 8;
/// Task states (T_STATE) the loop tells apart.
const DONE: ffi::lua_Integer = 2;
const CANCEL_PENDING: ffi::lua_Integer = 3;
/// A promise's slot of the hook that takes back an undelivered value.
const X: ffi::lua_Integer = 4;

/// Where `run` keeps its tables on its own stack, and the last of them:
/// steps work above `BASE`.
const SLOT_S: c_int = 3;
const SLOT_RT: c_int = 4;
const SLOT_POOL: c_int = 5;
const SLOT_RQ: c_int = 6;
const BASE: c_int = 6;

/// Upvalues of `run` (and, the first, of `qget`/`qset`).
const UV_QUEUE: c_int = 1;
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
const RUN_UPVALUES: c_int = 14;

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
const SPAWN_UPVALUES: c_int = 10;

/// The queue block of the running closure, or a Lua error.
///
/// # Safety
/// Called from a closure made by `run_function`, whose upvalue 1 a script
/// with `debug` may have replaced (that is checked). The pointer must not
/// become a reference that lives across a call into Lua, which may call
/// `qset`.
unsafe fn queue(state: *mut ffi::lua_State) -> *mut Queue {
    // SAFETY: the block is read only when the value is a full userdata of
    // a Queue's size carrying the mark; only `run_function` makes those.
    unsafe {
        let idx = ffi::lua_upvalueindex(UV_QUEUE);
        let q = ffi::lua_touserdata(state, idx) as *mut Queue;
        if q.is_null()
            || ffi::lua_type(state, idx) != ffi::LUA_TUSERDATA
            || ffi::lua_rawlen(state, idx) != std::mem::size_of::<Queue>()
            || (*q).magic != QUEUE_MAGIC
        {
            ffi::luaL_error(state, c"luaco: the run queue is gone".as_ptr());
            unreachable!("luaL_error does not return")
        }
        q
    }
}

/// Raises unless each of `upvalues` is a table (a script with `debug` may
/// have replaced one; the C API does not check types).
///
/// # Safety
/// Called from a C closure with at least the upvalues named.
unsafe fn check_tables(state: *mut ffi::lua_State, upvalues: &[c_int]) {
    // SAFETY: lua_type reads the upvalues in place.
    unsafe {
        for &uv in upvalues {
            if ffi::lua_type(state, ffi::lua_upvalueindex(uv)) != ffi::LUA_TTABLE {
                ffi::luaL_error(state, c"luaco: the scheduler's tables are gone".as_ptr());
            }
        }
    }
}

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

/// [`check_tables`] for those of `async`, `track` and `make_ready`.
///
/// # Safety
/// Called from one of them.
unsafe fn check_spawn_tables(state: *mut ffi::lua_State) {
    // SAFETY: these closures have these upvalues.
    unsafe { check_tables(state, &[UV_SP_S, UV_SP_PROMISE_MT, UV_SP_RQ]) }
}

/// The queue slot named by argument 1 (from 1).
///
/// # Safety
/// As [`queue`].
unsafe fn queue_slot(state: *mut ffi::lua_State) -> *mut ffi::lua_Integer {
    // SAFETY: the index is checked to be within the slots.
    unsafe {
        let i = ffi::luaL_checkinteger(state, 1);
        let q = queue(state);
        match usize::try_from(i - 1).ok().filter(|i| *i < Q_SLOTS) {
            Some(i) => std::ptr::addr_of_mut!((*q).slots[i]),
            None => {
                ffi::luaL_argerror(state, 1, c"no such queue slot".as_ptr());
                unreachable!("luaL_argerror does not return")
            }
        }
    }
}

/// `qget(i)` → queue slot `i`.
unsafe extern "C-unwind" fn qget(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function called by Lua; one value is pushed.
    unsafe {
        let v = *queue_slot(state);
        ffi::lua_pushinteger(state, v);
        1
    }
}

/// `qset(i, v)`: sets queue slot `i`.
unsafe extern "C-unwind" fn qset(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function called by Lua; nothing is pushed.
    unsafe {
        let v = ffi::luaL_checkinteger(state, 2);
        *queue_slot(state) = v;
        0
    }
}

/// `t[i]` for the table at `t`, as an integer (0 when it is not one).
///
/// # Safety
/// `t` is a valid index of a table; one stack slot is free.
unsafe fn get_int(state: *mut ffi::lua_State, t: c_int, i: ffi::lua_Integer) -> ffi::lua_Integer {
    // SAFETY: one value is pushed and popped.
    unsafe {
        ffi::lua_rawgeti(state, t, i);
        let v = ffi::lua_tointegerx(state, -1, std::ptr::null_mut());
        ffi::lua_settop(state, -2);
        v
    }
}

/// `t[i] = false` for the table at `t`.
///
/// # Safety
/// `t` is a valid index of a table with slot `i` present (so the write
/// never allocates); one stack slot is free.
unsafe fn set_false(state: *mut ffi::lua_State, t: c_int, i: ffi::lua_Integer) {
    // SAFETY: one value is pushed and popped by lua_rawseti.
    unsafe {
        ffi::lua_pushboolean(state, 0);
        ffi::lua_rawseti(state, t, i);
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
unsafe extern "C-unwind" fn run(state: *mut ffi::lua_State) -> c_int {
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

/// `async(f, ...)`: a task of `f(...)`, a child of the running task,
/// ready from the next turn; its promise. The C half of task.lua's
/// `spawn_with`, which has the say while an observer watches and for a
/// bad argument.
unsafe extern "C-unwind" fn spawn(state: *mut ffi::lua_State) -> c_int {
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
unsafe extern "C-unwind" fn track(state: *mut ffi::lua_State) -> c_int {
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
unsafe extern "C-unwind" fn make_ready(state: *mut ffi::lua_State) -> c_int {
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

/// What [`run_function`] makes, in that order.
pub(crate) type RunFunctions = (Function, Function, Function, Function, Function, Function);

/// `run`, `qget`, `qset`, `async`, `track` and `make_ready` as C closures
/// over a new queue block: `run` also over task.lua's state `S`, the running-task record,
/// the AWAIT and FINISHED markers, the worker body, and the Lua functions
/// of `fns` (`step`, `after_resume`, `finish`, `drained`); `async` over
/// `S`, the promise metatable and what else `fns` has for it (`spawn`,
/// the Lua async; `add_kid`; `default_ctx`; `spawn_sites`).
pub(crate) fn run_function(
    lua: &Lua,
    s: Table,
    running_task: Table,
    markers: (Table, Table),
    worker: Function,
    fns: Table,
    promise_mt: Table,
) -> mlua::Result<RunFunctions> {
    let rq: Table = s.raw_get(S_RQ)?;
    let pool: Table = s.raw_get(S_POOL)?;
    let step: Function = fns.raw_get("step")?;
    let after_resume: Function = fns.raw_get("after_resume")?;
    let finish: Function = fns.raw_get("finish")?;
    let drained: Function = fns.raw_get("drained")?;
    let slow_spawn: Function = fns.raw_get("spawn")?;
    let add_kid: Function = fns.raw_get("add_kid")?;
    let default_ctx: mlua::Value = fns.raw_get("default_ctx")?;
    let sites: bool = fns.raw_get("spawn_sites")?;
    let run_args = (
        s.clone(),
        running_task,
        markers.0,
        markers.1,
        worker,
        step,
        after_resume,
        finish,
        drained,
        rq.clone(),
        pool,
        "co",
        "resumes",
    );

    // SAFETY: run by mlua in a protected call with the thirteen values of
    // `run_args` as its arguments (slots 1 to 13), in upvalue order after
    // the queue. The block is made and filled first, then inserted below
    // them; each closure takes copies of what it closes over. Three
    // closures are left for mlua to return; at most 17 values are on the
    // stack, and luaL_checkstack makes room for them.
    let (run_fn, qget_fn, qset_fn) = unsafe {
        lua.exec_raw::<(Function, Function, Function)>(run_args, |state| {
            ffi::luaL_checkstack(state, 8, std::ptr::null());
            let q = ffi::lua_newuserdatauv(state, std::mem::size_of::<Queue>(), 0) as *mut Queue;
            let mut slots = [0; Q_SLOTS];
            slots[Q_HEAD] = 1;
            q.write(Queue {
                magic: QUEUE_MAGIC,
                slots,
            });
            ffi::lua_insert(state, 1);
            ffi::lua_pushcclosure(state, run, RUN_UPVALUES);
            ffi::lua_pushvalue(state, -1);
            ffi::lua_getupvalue(state, -1, UV_QUEUE);
            ffi::lua_remove(state, -2);
            ffi::lua_pushvalue(state, -1);
            ffi::lua_pushcclosure(state, qget, 1);
            ffi::lua_insert(state, -2);
            ffi::lua_pushcclosure(state, qset, 1);
        })?
    };
    // SAFETY: as above: `run` (argument 1) is replaced by its queue block
    // (its upvalue 1), and with the nine values after it the ten become
    // the upvalues of each of the three closures, made from copies.
    let [spawn_fn, track_fn, ready_fn] = unsafe {
        let spawn_args = (
            run_fn.clone(),
            s,
            promise_mt,
            default_ctx,
            slow_spawn,
            add_kid,
            rq,
            "n",
            "limit",
            sites,
        );
        lua.exec_raw::<(Function, Function, Function)>(spawn_args, |state| {
            ffi::luaL_checkstack(state, 2 * SPAWN_UPVALUES + 4, std::ptr::null());
            ffi::lua_getupvalue(state, 1, UV_QUEUE);
            ffi::lua_replace(state, 1);
            // The closures pile up above the upvalues (slots 1 to 10),
            // which are then removed from under them.
            for f in [spawn, track, make_ready] {
                for i in 1..=SPAWN_UPVALUES {
                    ffi::lua_pushvalue(state, i);
                }
                ffi::lua_pushcclosure(state, f, SPAWN_UPVALUES);
            }
            for _ in 0..SPAWN_UPVALUES {
                ffi::lua_remove(state, 1);
            }
        })
        .map(|(a, b, c)| [a, b, c])?
    };
    Ok((run_fn, qget_fn, qset_fn, spawn_fn, track_fn, ready_fn))
}
