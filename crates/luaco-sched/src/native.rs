//! The scheduler's only unsafe code: the timer heap, kept in Rust and
//! reached from Lua through C functions over the Lua stack.
//!
//! A timer is an id (a slot of the heap) and the Lua value it stands for
//! (a pending promise, or a timer handle) in the `entries` table at that
//! id. The heap orders `(deadline, creation)` pairs; firing is one pass
//! over the due ones that settles promises and wakes their waiting task
//! directly, calling back into Lua only for what is not that common case
//! (a handle's callback, several waiters, an effect). Nothing per timer
//! holds an mlua reference: a timer costs a heap entry and a table slot.
//!
//! The heap itself lives in a full userdata that only these C closures
//! hold (as their first upvalue), so the Lua state owns and frees it; its
//! finalizer empties it. A trusted script can reach the closures' upvalues
//! through `debug`: every function refuses a userdata that is not a live
//! heap and table upvalues that are not tables, and looks the heap up again
//! after each call into Lua, so such a script gets an error, not a crash.
#![allow(unsafe_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ffi::{c_int, CStr};
use std::rc::Rc;

use mlua::{ffi, Function, Lua};

use crate::clock::{micros, Clock};

/// The metatable name that marks a heap userdata.
const TYPE_NAME: &CStr = c"luaco.timer_heap";

/// Promise slots and states, as luaco-core's promise.lua numbers them.
const ST: ffi::lua_Integer = 1;
const V: ffi::lua_Integer = 2;
const W: ffi::lua_Integer = 3;
const PENDING: ffi::lua_Integer = 0;
const RESOLVED: ffi::lua_Integer = 1;

/// How many stale entries (of cancelled timers) the heap keeps before it
/// drops them all in one pass, at the least.
const MIN_STALE_REBUILD: usize = 64;

/// The timers of one Lua state.
struct Heap {
    clock: Rc<dyn Clock>,
    /// `(deadline µs, sequence, slot)`: the earliest deadline first, ties
    /// in creation order.
    queue: BinaryHeap<Reverse<(i64, u64, u32)>>,
    /// Per slot, the sequence number of the timer holding it (0: free).
    /// A queue entry whose sequence differs is stale (cancelled).
    slots: Vec<u64>,
    free: Vec<u32>,
    next_seq: u64,
    live: usize,
    stale: usize,
    /// The time of the current turn: the base of 0 ms delays, and a floor
    /// for the others.
    turn_us: i64,
}

impl Heap {
    fn new(clock: Rc<dyn Clock>) -> Heap {
        Heap {
            clock,
            queue: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
            live: 0,
            stale: 0,
            turn_us: 0,
        }
    }

    fn now_us(&mut self) -> i64 {
        let now = micros(self.clock.now());
        self.turn_us = self.turn_us.max(now);
        now
    }

    /// A timer due `ms` from now (a 0 ms one from the turn); its id, from 1.
    fn add(&mut self, ms: f64) -> Option<ffi::lua_Integer> {
        let base = if ms > 0.0 {
            self.now_us()
        } else {
            self.turn_us
        };
        // NaN counts as 0; an endless delay (Rust callers may ask for one)
        // saturates to a deadline that never comes.
        let delay = if ms > 0.0 {
            (ms * 1000.0).ceil() as i64
        } else {
            0
        };
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|s| *s < u32::MAX)?;
                self.slots.push(0);
                slot
            }
        };
        self.next_seq += 1;
        self.slots[slot as usize] = self.next_seq;
        self.queue
            .push(Reverse((base.saturating_add(delay), self.next_seq, slot)));
        self.live += 1;
        Some(ffi::lua_Integer::from(slot) + 1)
    }

    /// The slot of id `id`, if a live timer holds it.
    fn live_slot(&self, id: ffi::lua_Integer) -> Option<usize> {
        let slot = usize::try_from(id.checked_sub(1)?).ok()?;
        (self.slots.get(slot).copied().unwrap_or(0) != 0).then_some(slot)
    }

    fn release(&mut self, slot: usize) {
        self.slots[slot] = 0;
        self.free.push(slot as u32);
        self.live -= 1;
    }

    /// Stops timer `id`; false if it was not pending.
    fn cancel(&mut self, id: ffi::lua_Integer) -> bool {
        let Some(slot) = self.live_slot(id) else {
            return false;
        };
        self.release(slot);
        self.stale += 1;
        if self.stale > MIN_STALE_REBUILD && self.stale > self.live {
            let slots = &self.slots;
            self.queue
                .retain(|Reverse((_, seq, slot))| slots[*slot as usize] == *seq);
            self.stale = 0;
        }
        true
    }

    /// The next timer due at `now` that was made before sequence `limit`
    /// (timers made while firing wait for the next turn), taken off.
    fn pop_due(&mut self, now: i64, limit: u64) -> Option<ffi::lua_Integer> {
        while let Some(&Reverse((key, seq, slot))) = self.queue.peek() {
            if key > now || seq > limit {
                return None;
            }
            self.queue.pop();
            if self.slots[slot as usize] != seq {
                self.stale -= 1;
                continue;
            }
            self.release(slot as usize);
            return Some(ffi::lua_Integer::from(slot) + 1);
        }
        None
    }

    /// The earliest pending deadline.
    fn next_deadline(&mut self) -> Option<i64> {
        while let Some(&Reverse((key, seq, slot))) = self.queue.peek() {
            if self.slots[slot as usize] == seq {
                return Some(key);
            }
            self.queue.pop();
            self.stale -= 1;
        }
        None
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.slots.clear();
        self.free.clear();
        self.live = 0;
        self.stale = 0;
    }
}

/// What the heap userdata holds: a mark that tells it from any other
/// userdata without a registry lookup, and the heap (`None` once
/// finalized).
#[repr(C)]
struct Block {
    magic: u64,
    heap: Option<Heap>,
}

const MAGIC: u64 = u64::from_be_bytes(*b"luacoTmr");

/// Upvalues of the closures `bind` makes.
const UV_HEAP: c_int = 1;
const UV_ENTRIES: c_int = 2;
const UV_PROMISE_MT: c_int = 3;
const UV_MAKE_READY: c_int = 4;
const UV_DISPATCH: c_int = 5;
const UV_FIRE_HANDLE: c_int = 6;
const UV_TRACK: c_int = 7;
const UV_BAD_MS: c_int = 8;
const UV_RUN: c_int = 9;
const UPVALUES: c_int = 9;

/// The longest delay a timer takes, in ms (as luaco-core's `check_ms`).
const MAX_MS: f64 = 1e15;

/// The heap of the running closure, or a Lua error.
///
/// # Safety
/// Called from a C function made by `bind` (whose upvalue `UV_HEAP` a
/// script with `debug` may have replaced: that is checked). The pointer
/// returned must not be turned into a reference that lives across a call
/// into Lua, which may reenter these functions.
unsafe fn heap(state: *mut ffi::lua_State) -> *mut Heap {
    // SAFETY: the block is read only when the value is a full userdata
    // exactly a Block's size (so the read is in bounds) carrying the mark;
    // only `timer_heap` makes such blocks. It stays alive while the
    // closure holds it.
    unsafe {
        let idx = ffi::lua_upvalueindex(UV_HEAP);
        let block = ffi::lua_touserdata(state, idx) as *mut Block;
        if !block.is_null()
            && ffi::lua_type(state, idx) == ffi::LUA_TUSERDATA
            && ffi::lua_rawlen(state, idx) == std::mem::size_of::<Block>()
            && (*block).magic == MAGIC
        {
            if let Some(heap) = (*block).heap.as_mut() {
                return heap;
            }
        }
        ffi::luaL_error(state, c"luaco: the timer heap is gone".as_ptr());
        unreachable!("luaL_error does not return")
    }
}

/// Raises unless the table upvalues are tables (a script with `debug` may
/// have replaced them; the C API does not check types).
///
/// # Safety
/// Called from a closure `bind` made.
unsafe fn check_tables(state: *mut ffi::lua_State) {
    // SAFETY: lua_type reads the upvalues in place.
    unsafe {
        if ffi::lua_type(state, ffi::lua_upvalueindex(UV_ENTRIES)) != ffi::LUA_TTABLE
            || ffi::lua_type(state, ffi::lua_upvalueindex(UV_PROMISE_MT)) != ffi::LUA_TTABLE
        {
            ffi::luaL_error(state, c"luaco: the timer heap's tables are gone".as_ptr());
        }
    }
}

/// `add(ms, entry)` → the id of a new timer standing for `entry`.
unsafe extern "C-unwind" fn add(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function called by Lua; at most one value is pushed.
    // The heap borrow ends before lua_rawseti, which may raise a memory
    // error (a longjmp through this frame, which holds nothing to drop).
    unsafe {
        let ms = ffi::luaL_checknumber(state, 1);
        check_tables(state);
        let id = (*heap(state)).add(ms);
        let Some(id) = id else {
            ffi::luaL_error(state, c"luaco: too many timers".as_ptr());
            return 0;
        };
        ffi::lua_settop(state, 2);
        ffi::lua_rawseti(state, ffi::lua_upvalueindex(UV_ENTRIES), id);
        ffi::lua_pushinteger(state, id);
        1
    }
}

/// `cancel(id, entry)` → whether it stopped the pending timer `id` that
/// stands for `entry` (any other timer, or none, is left alone: an id a
/// script forged or kept stops nothing of anyone else's).
unsafe extern "C-unwind" fn cancel(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function called by Lua; the entry is pushed and popped
    // before the write; pushing nil into a table slot never allocates; one
    // value is pushed.
    unsafe {
        let id = ffi::luaL_checkinteger(state, 1);
        check_tables(state);
        ffi::lua_rawgeti(state, ffi::lua_upvalueindex(UV_ENTRIES), id);
        let same = ffi::lua_rawequal(state, -1, 2) != 0 && ffi::lua_type(state, 2) != ffi::LUA_TNIL;
        ffi::lua_settop(state, -2);
        let stopped = same && (*heap(state)).cancel(id);
        if stopped {
            ffi::lua_pushnil(state);
            ffi::lua_rawseti(state, ffi::lua_upvalueindex(UV_ENTRIES), id);
        }
        ffi::lua_pushboolean(state, c_int::from(stopped));
        1
    }
}

/// `fire(now_us)` → how many timers fired: every timer due at `now_us`
/// (made before the call) in deadline order, ties in creation order.
unsafe extern "C-unwind" fn fire(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function called by Lua; one value is pushed.
    unsafe {
        let now = ffi::luaL_checkinteger(state, 1);
        let fired = fire_due(state, now);
        ffi::lua_pushinteger(state, fired);
        1
    }
}

/// Fires what is due at `now`; how many fired.
///
/// # Safety
/// Called from a closure `bind` made, with four stack slots free. Leaves
/// the stack as it found it.
unsafe fn fire_due(state: *mut ffi::lua_State, now: i64) -> ffi::lua_Integer {
    // SAFETY: each pass pushes at most four values and pops them before
    // the next (lua_settop). The heap pointer is dereferenced only in
    // statements that end before any call into Lua (make_ready, dispatch,
    // fire_handle), which may add or cancel timers themselves; a Lua error
    // there unwinds this frame, which holds nothing to drop, and leaves the
    // heap consistent (each timer is off the heap before its effect runs).
    unsafe {
        let h = heap(state);
        (*h).turn_us = (*h).turn_us.max(now);
        let limit = (*h).next_seq;
        let entries = ffi::lua_upvalueindex(UV_ENTRIES);
        let base = ffi::lua_gettop(state);
        let mut fired: ffi::lua_Integer = 0;
        // The heap is looked up again for each timer: the effects run Lua,
        // which may reach it too (and, with `debug`, even finalize it).
        while let Some(id) = (*heap(state)).pop_due(now, limit) {
            ffi::lua_settop(state, base);
            check_tables(state);
            fired += 1;
            // The entry, taken out of the table.
            ffi::lua_rawgeti(state, entries, id);
            ffi::lua_pushnil(state);
            ffi::lua_rawseti(state, entries, id);
            let e = ffi::lua_absindex(state, -1);
            if ffi::lua_type(state, e) != ffi::LUA_TTABLE {
                continue;
            }
            if !is_promise(state, e) {
                // A handle: its callback is spawned in Lua.
                ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_FIRE_HANDLE));
                ffi::lua_pushvalue(state, e);
                ffi::lua_call(state, 1, 0);
                continue;
            }
            ffi::lua_rawgeti(state, e, ST);
            let pending = ffi::lua_tointegerx(state, -1, std::ptr::null_mut()) == PENDING
                && ffi::lua_isinteger(state, -1) != 0;
            if !pending {
                continue;
            }
            // Resolved with nil: the source slot (the timer) is cleared.
            ffi::lua_pushnil(state);
            ffi::lua_rawseti(state, e, V);
            ffi::lua_pushinteger(state, RESOLVED);
            ffi::lua_rawseti(state, e, ST);
            match ffi::lua_rawgeti(state, e, W) {
                // Nobody consumed it, or its waiters were told: a
                // resolution needs nothing more.
                ffi::LUA_TBOOLEAN => {}
                // One waiting task (a task record has no `n`; a list of
                // waiters does): waking it is the whole effect.
                ffi::LUA_TTABLE if !has_n(state, -1) => {
                    ffi::lua_pushboolean(state, 1);
                    ffi::lua_rawseti(state, e, W);
                    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_MAKE_READY));
                    ffi::lua_rotate(state, -2, 1);
                    ffi::lua_call(state, 1, 0);
                }
                _ => {
                    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_DISPATCH));
                    ffi::lua_pushvalue(state, e);
                    ffi::lua_pushinteger(state, RESOLVED);
                    ffi::lua_call(state, 2, 0);
                }
            }
        }
        ffi::lua_settop(state, base);
        fired
    }
}

/// `sleep(ms)` → a promise resolving `nil` after `ms`, an operation of
/// the running task (cancelled with it). A bad `ms` is for the Lua
/// `bad_ms(ms)` to reject.
unsafe extern "C-unwind" fn sleep(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function called by Lua; at most four values are pushed
    // above its argument. Memory errors unwind this frame, which holds
    // nothing to drop; the timer is on the heap only with its entry.
    unsafe {
        ffi::lua_settop(state, 1);
        check_tables(state);
        let ms = ffi::lua_tonumberx(state, 1, std::ptr::null_mut());
        if ffi::lua_type(state, 1) != ffi::LUA_TNUMBER || !(0.0..=MAX_MS).contains(&ms) {
            // It raises.
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_BAD_MS));
            ffi::lua_pushvalue(state, 1);
            ffi::lua_call(state, 1, 0);
            return 0;
        }
        ffi::lua_createtable(state, 3, 0);
        ffi::lua_pushinteger(state, PENDING);
        ffi::lua_rawseti(state, 2, ST);
        ffi::lua_pushboolean(state, 0);
        ffi::lua_rawseti(state, 2, V);
        ffi::lua_pushboolean(state, 0);
        ffi::lua_rawseti(state, 2, W);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_PROMISE_MT));
        ffi::lua_setmetatable(state, 2);
        // The timer, then its entry: should the entry's slot fail to be
        // allocated (a memory error), the timer fires as a no-op.
        let Some(id) = (*heap(state)).add(ms) else {
            ffi::luaL_error(state, c"luaco: too many timers".as_ptr());
            return 0;
        };
        ffi::lua_pushvalue(state, 2);
        ffi::lua_rawseti(state, ffi::lua_upvalueindex(UV_ENTRIES), id);
        // Its source: minus the timer's id (promise.lua's `stop`).
        ffi::lua_pushinteger(state, -id);
        ffi::lua_rawseti(state, 2, V);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_TRACK));
        ffi::lua_pushvalue(state, 2);
        ffi::lua_call(state, 1, 0);
        ffi::lua_settop(state, 2);
        1
    }
}

/// `turn(now_us, fire_due, max)` → what core's `run(max)` returns, then
/// the timers fired, the next deadline (-1 for none) and the pending
/// timer count: the whole of one chunk of a scheduler turn.
unsafe extern "C-unwind" fn turn(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function called by Lua; `run` leaves three values, and
    // three more are pushed.
    unsafe {
        let now = ffi::luaL_checkinteger(state, 1);
        let fire = ffi::lua_toboolean(state, 2) != 0;
        let max = ffi::luaL_checkinteger(state, 3);
        ffi::lua_settop(state, 0);
        let h = heap(state);
        (*h).turn_us = (*h).turn_us.max(now);
        let fired = if fire { fire_due(state, now) } else { 0 };
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(UV_RUN));
        ffi::lua_pushinteger(state, max);
        ffi::lua_call(state, 1, 3);
        let h = heap(state);
        let next = (*h).next_deadline().unwrap_or(-1);
        let live = (*h).live as ffi::lua_Integer;
        ffi::lua_pushinteger(state, fired);
        ffi::lua_pushinteger(state, next);
        ffi::lua_pushinteger(state, live);
        6
    }
}

/// Whether the value at `idx` has the promise metatable.
///
/// # Safety
/// `idx` is a valid stack index; one slot is free on the stack.
unsafe fn is_promise(state: *mut ffi::lua_State, idx: c_int) -> bool {
    // SAFETY: lua_getmetatable pushes only when there is a metatable, and
    // that one value is popped again.
    unsafe {
        if ffi::lua_getmetatable(state, idx) == 0 {
            return false;
        }
        let same = ffi::lua_rawequal(state, -1, ffi::lua_upvalueindex(UV_PROMISE_MT)) != 0;
        ffi::lua_settop(state, -2);
        same
    }
}

/// Whether the table at `idx` has a non-nil `n` field (raw).
///
/// # Safety
/// `idx` is a valid stack index of a table; one slot is free on the stack.
unsafe fn has_n(state: *mut ffi::lua_State, idx: c_int) -> bool {
    // SAFETY: the key string is pushed and replaced by the value, which is
    // popped; "n" is short, so lua_pushstring allocates only the first time
    // (a memory error then unwinds a frame holding nothing to drop).
    unsafe {
        let t = ffi::lua_absindex(state, idx);
        ffi::lua_pushstring(state, c"n".as_ptr());
        let kind = ffi::lua_rawget(state, t);
        ffi::lua_settop(state, -2);
        kind != ffi::LUA_TNIL
    }
}

/// `status()` → the next deadline in µs (-1 for none), the pending count.
unsafe extern "C-unwind" fn status(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function called by Lua; two values are pushed.
    unsafe {
        let h = heap(state);
        let next = (*h).next_deadline().unwrap_or(-1);
        let live = (*h).live as ffi::lua_Integer;
        ffi::lua_pushinteger(state, next);
        ffi::lua_pushinteger(state, live);
        2
    }
}

/// `now_us()` → the clock in µs (and the turn's time moves up to it).
unsafe extern "C-unwind" fn now_us(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function called by Lua; one value is pushed.
    unsafe {
        let now = (*heap(state)).now_us();
        ffi::lua_pushinteger(state, now);
        1
    }
}

/// `set_turn(now_us)`: the time of the turn that starts.
unsafe extern "C-unwind" fn set_turn(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function called by Lua; nothing is pushed.
    unsafe {
        let now = ffi::luaL_checkinteger(state, 1);
        let h = heap(state);
        (*h).turn_us = (*h).turn_us.max(now);
        0
    }
}

/// `clear()`: forgets every timer (the Lua side settles their entries).
unsafe extern "C-unwind" fn clear(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function called by Lua; nothing is pushed.
    unsafe {
        (*heap(state)).clear();
        0
    }
}

/// `bind(entries, promise_mt, make_ready, dispatch, fire_handle, track,
/// bad_ms, run)` → a table of the heap's functions, each closing over the
/// heap (this function's upvalue) and the given values.
unsafe extern "C-unwind" fn bind(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function called by Lua with eight arguments (checked);
    // each closure is made from nine pushed values (within the stack space
    // luaL_checkstack ensures) and stored into the result table.
    unsafe {
        let args = UPVALUES - 1;
        ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
        ffi::luaL_checktype(state, 2, ffi::LUA_TTABLE);
        for arg in 3..=args {
            ffi::luaL_checktype(state, arg, ffi::LUA_TFUNCTION);
        }
        ffi::lua_settop(state, args);
        ffi::luaL_checkstack(state, UPVALUES + 4, std::ptr::null());
        let functions: [(&CStr, ffi::lua_CFunction); 9] = [
            (c"add", add),
            (c"cancel", cancel),
            (c"fire", fire),
            (c"status", status),
            (c"now_us", now_us),
            (c"set_turn", set_turn),
            (c"clear", clear),
            (c"sleep", sleep),
            (c"turn", turn),
        ];
        ffi::lua_createtable(state, 0, functions.len() as c_int);
        for (name, f) in functions {
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
            for arg in 1..=args {
                ffi::lua_pushvalue(state, arg);
            }
            ffi::lua_pushcclosure(state, f, UPVALUES);
            ffi::lua_setfield(state, -2, name.as_ptr());
        }
        1
    }
}

/// The heap's finalizer: drops the heap (the block stays, empty).
unsafe extern "C-unwind" fn finalize(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls a finalizer with its object in slot 1; the check
    // makes sure it is one of our blocks (a script calling `__gc` by hand
    // through `debug` may pass anything).
    unsafe {
        let block = ffi::luaL_testudata(state, 1, TYPE_NAME.as_ptr()) as *mut Block;
        if let Some(block) = block.as_mut() {
            drop(block.heap.take());
        }
        0
    }
}

/// A new heap on `clock`, and the Lua function `bind` over it.
pub(crate) fn timer_heap(lua: &Lua, clock: Rc<dyn Clock>) -> mlua::Result<Function> {
    let mut clock = Some(clock);
    // SAFETY: run by mlua in a protected call. The userdata block is
    // written before anything can fail after it is made (a memory error in
    // luaL_newmetatable then leaves it with no metatable, so no finalizer
    // and a leaked Rc only). The metatable gets `__gc` and `__metatable`
    // (scripts cannot reach or replace it); the closure made last is what
    // mlua returns. At most four values are pushed.
    unsafe {
        lua.exec_raw::<Function>((), |state| {
            let block =
                ffi::lua_newuserdatauv(state, std::mem::size_of::<Block>(), 0) as *mut Block;
            block.write(Block {
                magic: MAGIC,
                heap: clock.take().map(Heap::new),
            });
            if ffi::luaL_newmetatable(state, TYPE_NAME.as_ptr()) != 0 {
                ffi::lua_pushcfunction(state, finalize);
                ffi::lua_setfield(state, -2, c"__gc".as_ptr());
                ffi::lua_pushboolean(state, 0);
                ffi::lua_setfield(state, -2, c"__metatable".as_ptr());
            }
            ffi::lua_setmetatable(state, -2);
            ffi::lua_pushcclosure(state, bind, 1);
        })
    }
}
