//! The hot path of a task in C functions over the Lua stack: `await`
//! ([`awaiting`]), the loop that resumes ready tasks ([`run`]) and the
//! making of tasks (`async`, `track`, `make_ready`: [`spawn`]). This file
//! holds what they share: the layouts of the Lua records, the queue block,
//! and the constructor that makes the closures.
//!
//! The records stay the Lua tables the Lua half defines (promise.lua: a
//! promise is `{state, value, waiters}` under the promise metatable;
//! task.lua: a task record, and the scheduler's state `S`); these
//! functions read and write their slots directly and hand every case that
//! is not the common one to a Lua function, so the rules live in one place.

mod awaiting;
mod run;
mod spawn;

use std::ffi::c_int;

use mlua::{ffi, Function, Lua, Table};

pub(crate) use awaiting::await_function;
use run::{run, RUN_UPVALUES};
use spawn::{make_ready, spawn, track, SPAWN_UPVALUES};

/// The upvalue every closure made here over the queue block has first.
const UV_QUEUE: c_int = 1;

/// Promise slots and states, as promise.lua numbers them.
const ST: ffi::lua_Integer = 1;
const V: ffi::lua_Integer = 2;
const W: ffi::lua_Integer = 3;
const PENDING: ffi::lua_Integer = 0;
const RESOLVED: ffi::lua_Integer = 1;

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
