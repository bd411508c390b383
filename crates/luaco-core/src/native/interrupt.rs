//! Stopping running Lua code from another OS thread at no cost until then.
//!
//! Any count hook makes Lua 5.4's VM stop at every instruction (about 2x on
//! CPU-bound code), so deadlines and time slices do not keep one. Instead
//! every resume of a coroutine goes through [`resume`] (and `wrap`,
//! `close`), which publishes the coroutine that runs in a slot of its OS
//! thread. A watcher on another thread that sees a deadline pass asks for
//! an interrupt: it marks the slot and sends the thread `SIGURG`, whose
//! handler sets a one-shot count hook on the published coroutine — what
//! Lua's hook fields are made for (the standalone `lua` does the same from
//! its SIGINT handler). The hook then calls the state's interrupt handler
//! (a Lua function in the registry), which says whether to go on, yield or
//! raise.
//!
//! The handler runs on the Lua thread itself, so nothing is written to a
//! Lua state from another thread; and it only sets hook fields of a
//! coroutine whose `CallInfo` chain is the live one (Lua frees only unused
//! `CallInfo`s, which lie beyond the current one).

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize,
};
use std::sync::OnceLock;

use mlua::{ffi, Function, Lua};

/// How many OS threads can run Lua with interrupts at once. A thread past
/// this gets none (its guard keeps a count hook instead).
const MAX_SLOTS: usize = 256;

/// What one OS thread publishes: the coroutine it runs now, how many
/// turns it has begun and ended, and what a watcher asked of it.
pub(crate) struct Slot {
    used: AtomicBool,
    /// A watcher is sending the owner a signal: the owner's thread waits
    /// for it to finish before it ends (its `pthread_t` must stay valid).
    sending: AtomicBool,
    /// The owning thread's `pthread_t`.
    owner: AtomicU64,
    /// The coroutine being resumed (innermost), or null.
    running: AtomicPtr<ffi::lua_State>,
    resumes: AtomicU64,
    /// Reasons asked for and not yet armed (the signal handler arms them).
    want: AtomicU8,
    /// Reasons armed, for the hook to hand to the handler.
    reason: AtomicU8,
    /// While above zero, every coroutine is hooked as it is resumed (a
    /// limit was hit: nothing may run on).
    stop_all: AtomicU32,
    /// The hook a coroutine had before the one-shot replaced it.
    saved_for: AtomicPtr<ffi::lua_State>,
    saved_hook: AtomicUsize,
    saved_mask: AtomicI32,
    saved_count: AtomicI32,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            used: AtomicBool::new(false),
            sending: AtomicBool::new(false),
            owner: AtomicU64::new(0),
            running: AtomicPtr::new(std::ptr::null_mut()),
            resumes: AtomicU64::new(0),
            want: AtomicU8::new(0),
            reason: AtomicU8::new(0),
            stop_all: AtomicU32::new(0),
            saved_for: AtomicPtr::new(std::ptr::null_mut()),
            saved_hook: AtomicUsize::new(0),
            saved_mask: AtomicI32::new(0),
            saved_count: AtomicI32::new(0),
        }
    }

    /// Publishes `co` as running; the coroutine it replaces.
    fn enter(&self, co: *mut ffi::lua_State) -> *mut ffi::lua_State {
        let prev = self.running.swap(co, AcqRel);
        if prev.is_null() {
            // Only the scheduler's resumes count: a task that resumes a
            // generator of its own is still the same turn to a slice.
            self.resumes.fetch_add(1, Relaxed);
        }
        if self.stop_all.load(Relaxed) > 0 {
            // SAFETY: `co` is a coroutine about to be resumed on this
            // thread; its CallInfo chain is intact.
            unsafe { arm(self, co, 0) };
        }
        prev
    }

    /// Publishes `prev` again once a resume returned to it.
    fn leave(&self, prev: *mut ffi::lua_State) {
        self.running.store(prev, Release);
        if prev.is_null() {
            self.resumes.fetch_add(1, Relaxed);
        }
        if !prev.is_null() && self.stop_all.load(Relaxed) > 0 {
            // SAFETY: `prev` is the coroutine that made the resume, on
            // this thread, and runs again now.
            unsafe { arm(self, prev, 0) };
        }
    }
}

static SLOTS: [Slot; MAX_SLOTS] = [const { Slot::new() }; MAX_SLOTS];

/// Releases a thread's slot when the thread ends.
struct Claim(&'static Slot);

impl Drop for Claim {
    fn drop(&mut self) {
        self.0.running.store(std::ptr::null_mut(), Release);
        self.0.want.store(0, Release);
        self.0.stop_all.store(0, Release);
        // SeqCst with the sender's: each sees the other's flag (a Dekker
        // pair), so no signal is sent to an ending thread.
        self.0.used.store(false, SeqCst);
        while self.0.sending.load(SeqCst) {
            std::hint::spin_loop();
        }
    }
}

thread_local! {
    /// This thread's slot: null until claimed, `NO_SLOT` if none was free.
    static MINE: Cell<*const Slot> = const { Cell::new(std::ptr::null()) };
    static CLAIM: Cell<Option<Claim>> = const { Cell::new(None) };
}

/// A marker for "no slot was free": never dereferenced.
const NO_SLOT: *const Slot = std::ptr::dangling::<Slot>();

/// This thread's slot, claimed on first use.
fn this_slot() -> Option<&'static Slot> {
    let mine = MINE.get();
    if mine == NO_SLOT {
        return None;
    }
    if !mine.is_null() {
        // SAFETY: a non-marker pointer is one of SLOTS, which is static.
        return Some(unsafe { &*mine });
    }
    for slot in &SLOTS {
        if slot
            .used
            .compare_exchange(false, true, AcqRel, Relaxed)
            .is_ok()
        {
            // SAFETY: pthread_self has no preconditions.
            let me = unsafe { libc::pthread_self() } as u64;
            slot.owner.store(me, Release);
            slot.resumes.store(0, Relaxed);
            CLAIM.set(Some(Claim(slot)));
            MINE.set(slot);
            return Some(slot);
        }
    }
    MINE.set(NO_SLOT);
    None
}

/// The signal interrupts are sent with: rarely used, ignored by default
/// (Go's runtime preempts goroutines with it too).
const SIGNAL: c_int = libc::SIGURG;

/// Installs the signal handler once; false if the signal already had a
/// handler of someone else's (then interrupts are unavailable).
fn signal_installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        // SAFETY: sigaction reads and writes the structs given; a zeroed
        // sigaction is a valid value to fill. The handler only touches
        // atomics and the hook fields of a Lua state (see on_signal).
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(SIGNAL, std::ptr::null(), &mut old) != 0 {
                return false;
            }
            if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN {
                return false;
            }
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_signal as extern "C" fn(c_int) as usize;
            act.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(SIGNAL, &act, std::ptr::null_mut()) == 0
        }
    })
}

/// Whether this thread blocks the signal (then it would never arrive).
fn signal_blocked() -> bool {
    // SAFETY: pthread_sigmask with a null new set only reads the mask into
    // the zeroed set given.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set) != 0
            || libc::sigismember(&set, SIGNAL) == 1
    }
}

/// The signal handler: arms what watchers asked of this thread's slots.
/// Async-signal-safe: atomics, `pthread_self` and `lua_sethook`/`lua_gethook*`
/// (which only read and write a state's hook fields and its CallInfos'
/// trap flags).
extern "C" fn on_signal(_signal: c_int) {
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as u64;
    for slot in &SLOTS {
        if !slot.used.load(Acquire) || slot.owner.load(Relaxed) != me {
            continue;
        }
        let want = slot.want.swap(0, AcqRel);
        if want == 0 {
            continue;
        }
        let running = slot.running.load(Acquire);
        if !running.is_null() {
            // SAFETY: `running` is published by this very thread around a
            // resume and unpublished before the resume's coroutine can be
            // collected, so it is alive; the signal arrived between two of
            // its instructions (or of the code around them).
            unsafe { arm(slot, running, want) };
        }
    }
}

/// Sets the one-shot hook on `co`, keeping the hook it had for later.
///
/// # Safety
/// `co` is a live Lua thread whose CallInfo chain is intact, on this OS
/// thread (the slot's owner).
unsafe fn arm(slot: &Slot, co: *mut ffi::lua_State, reasons: u8) {
    slot.reason.fetch_or(reasons, AcqRel);
    // SAFETY: the caller's contract; these calls read and write only the
    // hook fields of `co` and the trap flags of its CallInfos.
    unsafe {
        let current = ffi::lua_gethook(co);
        if current.map(|h| h as usize) != Some(interrupt_hook as ffi::lua_Hook as usize) {
            slot.saved_hook
                .store(current.map_or(0, |h| h as usize), Relaxed);
            slot.saved_mask.store(ffi::lua_gethookmask(co), Relaxed);
            slot.saved_count.store(ffi::lua_gethookcount(co), Relaxed);
            slot.saved_for.store(co, Release);
        }
        ffi::lua_sethook(co, Some(interrupt_hook), ffi::LUA_MASKCOUNT, 1);
    }
}

/// The registry key of a state's interrupt handler.
static HANDLER_KEY: u8 = 0;

fn handler_key() -> *const c_void {
    std::ptr::addr_of!(HANDLER_KEY).cast()
}

/// The registry key of a state's resume-failure check (see
/// [`set_resume_check`]).
static CHECK_KEY: u8 = 0;

fn check_key() -> *const c_void {
    std::ptr::addr_of!(CHECK_KEY).cast()
}

/// The handler's result that asks for a yield (0 is "go on").
const YIELD: ffi::lua_Integer = 1;

/// The one-shot hook: puts the coroutine's own hook back, then asks the
/// handler `handler(reasons, yieldable)` → 0 go on, 1 yield, a string:
/// raise it (and try again at the next instruction, for a stop that could
/// not yield here).
unsafe extern "C-unwind" fn interrupt_hook(state: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    let Some(slot) = this_slot() else {
        // SAFETY: clears the hook of the running thread.
        unsafe { ffi::lua_sethook(state, None, 0, 0) };
        return;
    };
    // SAFETY: `state` is the running thread (a hook gets it); the saved
    // hook was read from this same thread by `arm` (otherwise none is put
    // back). A hook has LUA_MINSTACK free slots; three are pushed. The
    // handler is a Lua function; if it raises, the error unwinds this
    // frame, which holds only plain data. lua_yield in a count hook must be
    // the hook's last act, with no results, as here.
    unsafe {
        if slot.saved_for.load(Acquire) == state {
            let hook = slot.saved_hook.load(Relaxed);
            let hook: Option<ffi::lua_Hook> = match hook {
                0 => None,
                h => Some(std::mem::transmute::<usize, ffi::lua_Hook>(h)),
            };
            slot.saved_for.store(std::ptr::null_mut(), Release);
            ffi::lua_sethook(
                state,
                hook,
                slot.saved_mask.load(Relaxed),
                slot.saved_count.load(Relaxed),
            );
        } else {
            ffi::lua_sethook(state, None, 0, 0);
        }
        let reasons = slot.reason.swap(0, AcqRel);
        if ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, handler_key()) != ffi::LUA_TFUNCTION {
            ffi::lua_pop(state, 1);
            return;
        }
        let yieldable = ffi::lua_isyieldable(state);
        ffi::lua_pushinteger(state, ffi::lua_Integer::from(reasons));
        ffi::lua_pushboolean(state, yieldable);
        ffi::lua_call(state, 2, 1);
        if ffi::lua_type(state, -1) == ffi::LUA_TSTRING {
            arm(slot, state, 0);
            ffi::lua_error(state);
        }
        let asked = ffi::lua_tointegerx(state, -1, std::ptr::null_mut());
        ffi::lua_pop(state, 1);
        if asked == YIELD && yieldable != 0 {
            ffi::lua_yield(state, 0);
        }
    }
}

/// Why an interrupt was asked: bits of the `reasons` a handler gets.
pub mod reason {
    /// A time slice ran out.
    pub const SLICE: u8 = 1;
    /// A deadline passed.
    pub const DEADLINE: u8 = 2;
    /// A limit was hit elsewhere (a C loop's meter, the heap): the
    /// handler decides from its own record.
    pub const STOP: u8 = 4;
}

/// A handle on one OS thread's running Lua code, for a watcher on another
/// thread: what it runs, and a way to interrupt it. See the module docs.
#[derive(Clone, Copy)]
pub struct Interrupter {
    slot: &'static Slot,
}

impl std::fmt::Debug for Interrupter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupter")
            .field("resumes", &self.resumes())
            .field("running", &self.is_running())
            .finish()
    }
}

impl Interrupter {
    /// The interrupter of the calling thread, or `None` where interrupts
    /// are unavailable (not Linux, `SIGURG` has another handler, or too many
    /// threads claimed one).
    pub fn for_this_thread() -> Option<Interrupter> {
        if !cfg!(target_os = "linux") || !signal_installed() || signal_blocked() {
            return None;
        }
        this_slot().map(|slot| Interrupter { slot })
    }

    /// How many times the thread entered or left Lua code it resumed from
    /// outside any coroutine (a scheduler's turns): a watcher that sees the
    /// same count twice knows one turn ran throughout, whatever coroutines
    /// that turn resumed in turn.
    pub fn resumes(&self) -> u64 {
        self.slot.resumes.load(Relaxed)
    }

    /// Whether a coroutine runs (a task, or one a task resumed).
    pub fn is_running(&self) -> bool {
        !self.slot.running.load(Acquire).is_null()
    }

    /// Interrupts the running coroutine, if any, for `reasons` (see
    /// [`reason`]): its interrupt handler runs within one instruction.
    /// Callable from any thread.
    pub fn interrupt(&self, reasons: u8) {
        let slot = self.slot;
        // Only one sender at a time; a thread that ends waits for it.
        while slot
            .sending
            .compare_exchange_weak(false, true, SeqCst, Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        if slot.used.load(SeqCst) {
            slot.want.fetch_or(reasons, AcqRel);
            let owner = slot.owner.load(Acquire) as libc::pthread_t;
            // SAFETY: `owner` is the pthread_t of the thread that holds the
            // slot (`used`), and that thread cannot end while `sending` is
            // set: its slot's release waits for the flag. So the handle is
            // that of a live thread.
            unsafe {
                libc::pthread_kill(owner, SIGNAL);
            }
        }
        slot.sending.store(false, Release);
    }

    /// From now on every coroutine this thread resumes (or returns to) is
    /// interrupted at once, until [`release_stop`](Interrupter::release_stop):
    /// a limit was hit and nothing may run on. Call on the slot's thread.
    pub fn hold_stop(&self) {
        self.slot.stop_all.fetch_add(1, AcqRel);
    }

    /// Undoes one [`hold_stop`](Interrupter::hold_stop).
    pub fn release_stop(&self) {
        let _ = self
            .slot
            .stop_all
            .fetch_update(AcqRel, Relaxed, |n| n.checked_sub(1));
    }
}

/// Makes `handler(reasons, yieldable)` the interrupt handler of `lua`'s
/// state: called inside an interrupted coroutine, it returns 0 to go on,
/// 1 to yield (where the coroutine can), or a message to raise.
pub fn set_handler(lua: &Lua, handler: Function) -> mlua::Result<()> {
    // SAFETY: run by mlua in a protected call; the function is on the
    // stack as argument 1 and lua_rawsetp pops it into the registry.
    unsafe {
        lua.exec_raw::<()>(handler, |state| {
            ffi::lua_rawsetp(state, ffi::LUA_REGISTRYINDEX, handler_key());
        })
    }
}

/// Makes `check(status, error)` run when a script's resume (through
/// `coroutine.resume` or a `coroutine.wrap` function) fails with a memory
/// error status or an error that is not a string: what a heap limit's
/// guard needs to see a limit a script tried to catch. Lua's status code
/// tells a memory error, never the message.
pub fn set_resume_check(lua: &Lua, check: Function) -> mlua::Result<()> {
    // SAFETY: as in set_handler.
    unsafe {
        lua.exec_raw::<()>(check, |state| {
            ffi::lua_rawsetp(state, ffi::LUA_REGISTRYINDEX, check_key());
        })
    }
}

/// Hands a failed resume (its error on top of `state`, `status` the
/// coroutine's error status) to the state's resume check, if any and if
/// the failure could be the heap's.
///
/// # Safety
/// `state` is the running thread with the error value on top.
unsafe fn check_failure(state: *mut ffi::lua_State, status: c_int) {
    // SAFETY: the caller's contract; three values are pushed after a
    // check for room, and popped by the call. The check is a Rust function
    // that does not raise; if it did, the error unwinds plain data only.
    unsafe {
        if status != ffi::LUA_ERRMEM && ffi::lua_type(state, -1) == ffi::LUA_TSTRING {
            return;
        }
        if ffi::lua_checkstack(state, 3) == 0 {
            return;
        }
        if ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, check_key()) != ffi::LUA_TFUNCTION {
            ffi::lua_pop(state, 1);
            return;
        }
        ffi::lua_pushinteger(state, ffi::lua_Integer::from(status));
        ffi::lua_pushvalue(state, -3);
        ffi::lua_call(state, 2, 0);
    }
}

/// Moves `narg` arguments to `co` and resumes it, publishing it meanwhile:
/// its results (count) on `state`, or -1 and an error value there.
///
/// # Safety
/// `state` is the running thread with `narg` values on top; `co` a thread.
pub(crate) unsafe fn auxresume(
    state: *mut ffi::lua_State,
    co: *mut ffi::lua_State,
    narg: c_int,
) -> c_int {
    // SAFETY: the caller's contract. lua_checkstack, lua_xmove and
    // lua_resume do not raise (an error inside `co` comes back as its
    // status); the literal pushes can raise a memory error, which unwinds a
    // frame holding plain data only.
    unsafe {
        if ffi::lua_checkstack(co, narg) == 0 {
            ffi::lua_pushliteral(state, c"too many arguments to resume");
            return -1;
        }
        ffi::lua_xmove(state, co, narg);
        let slot = this_slot();
        let prev = slot.map(|s| s.enter(co));
        let mut nres: c_int = 0;
        let status = ffi::lua_resume(co, state, narg, &mut nres);
        if let (Some(s), Some(prev)) = (slot, prev) {
            s.leave(prev);
        }
        if status == ffi::LUA_OK || status == ffi::LUA_YIELD {
            if ffi::lua_checkstack(state, nres + 1) == 0 {
                ffi::lua_pop(co, nres);
                ffi::lua_pushliteral(state, c"too many results to resume");
                return -1;
            }
            ffi::lua_xmove(co, state, nres);
            nres
        } else {
            ffi::lua_xmove(co, state, 1);
            -1
        }
    }
}

/// Pushes Lua's "thread expected, got X" for argument 1 and raises it
/// as an argument error.
///
/// # Safety
/// `state` is the running thread of a C function call.
unsafe fn coroutine_expected(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: the caller's contract; the message is pushed by a helper
    // that returns (dropping its Rust String) before luaL_argerror raises,
    // so the frames the error unwinds hold plain data only.
    unsafe {
        push_expected(state);
        let msg = ffi::lua_tostring(state, -1);
        ffi::luaL_argerror(state, 1, msg)
    }
}

/// # Safety
/// As [`coroutine_expected`].
unsafe fn push_expected(state: *mut ffi::lua_State) {
    // SAFETY: reads argument 1's type and metatable field (raw), pushes one
    // string; a C function has LUA_MINSTACK free slots.
    unsafe {
        let got: Vec<u8> =
            if ffi::luaL_getmetafield(state, 1, c"__name".as_ptr()) == ffi::LUA_TSTRING {
                let name = std::ffi::CStr::from_ptr(ffi::lua_tostring(state, -1))
                    .to_bytes()
                    .to_vec();
                ffi::lua_pop(state, 1);
                name
            } else if ffi::lua_type(state, 1) == ffi::LUA_TLIGHTUSERDATA {
                b"light userdata".to_vec()
            } else if ffi::lua_type(state, 1) == ffi::LUA_TNONE {
                b"no value".to_vec()
            } else {
                let t = ffi::lua_type(state, 1);
                std::ffi::CStr::from_ptr(ffi::lua_typename(state, t))
                    .to_bytes()
                    .to_vec()
            };
        let mut msg = b"thread expected, got ".to_vec();
        msg.extend_from_slice(&got);
        ffi::lua_pushlstring(state, msg.as_ptr().cast(), msg.len());
    }
}

/// `coroutine.resume` that publishes the coroutine it resumes.
unsafe extern "C-unwind" fn resume(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function's stack holds its arguments; at most two values
    // are pushed beyond what auxresume leaves, within the stack it checked.
    unsafe {
        let co = ffi::lua_tothread(state, 1);
        if co.is_null() {
            return coroutine_expected(state);
        }
        let r = auxresume(state, co, ffi::lua_gettop(state) - 1);
        if r < 0 {
            ffi::lua_pushboolean(state, 0);
            ffi::lua_insert(state, -2);
            2
        } else {
            ffi::lua_pushboolean(state, 1);
            ffi::lua_insert(state, -(r + 1));
            r + 1
        }
    }
}

/// `coroutine.resume` for scripts: as [`resume`], but a suspended task
/// coroutine that the script got hold of (a key of upvalue 1, the
/// engine's table of them) is refused: only the scheduler resumes tasks.
unsafe extern "C-unwind" fn guarded_resume(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: upvalue 1 is the table `guard_resume` closed over; one value
    // is pushed and popped before the plain resume takes the stack as is.
    unsafe {
        let co = ffi::lua_tothread(state, 1);
        if !co.is_null() && ffi::lua_status(co) == ffi::LUA_YIELD {
            ffi::lua_pushvalue(state, 1);
            let exposed = ffi::lua_rawget(state, ffi::lua_upvalueindex(1)) != ffi::LUA_TNIL;
            ffi::lua_pop(state, 1);
            if exposed {
                ffi::lua_pushboolean(state, 0);
                ffi::lua_pushliteral(state, c"cannot resume a coroutine that runs an async task");
                return 2;
            }
        }
        let n = resume(state);
        if n == 2 && ffi::lua_toboolean(state, -2) == 0 && !co.is_null() {
            check_failure(state, ffi::lua_status(co));
        }
        n
    }
}

/// `guard_resume(exposed)` → the [`guarded_resume`] of that table.
unsafe extern "C-unwind" fn guard_resume(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: luaL_checktype raises (plain-data frame) unless argument 1
    // is a table, which becomes the closure's upvalue.
    unsafe {
        ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
        ffi::lua_settop(state, 1);
        ffi::lua_pushcclosure(state, guarded_resume, 1);
        1
    }
}

/// The function `coroutine.wrap` returns: resumes its coroutine (upvalue
/// 1), raising its errors with the caller's position as Lua's does.
unsafe extern "C-unwind" fn wrapped(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: upvalue 1 is the coroutine `wrap` made. An error is raised
    // with lua_error from a frame holding plain data only.
    unsafe {
        let co = ffi::lua_tothread(state, ffi::lua_upvalueindex(1));
        if co.is_null() {
            // Only a script with `debug` replaces the upvalue.
            return ffi::luaL_error(state, c"cannot resume dead coroutine".as_ptr());
        }
        let r = auxresume(state, co, ffi::lua_gettop(state));
        if r >= 0 {
            return r;
        }
        let mut status = ffi::lua_status(co);
        if status != ffi::LUA_OK && status != ffi::LUA_YIELD {
            let slot = this_slot();
            let prev = slot.map(|s| s.enter(co));
            status = ffi::lua_closethread(co, state);
            if let (Some(s), Some(prev)) = (slot, prev) {
                s.leave(prev);
            }
            ffi::lua_xmove(co, state, 1);
        }
        // The status from before lua_closethread, which resets the
        // coroutine's own to LUA_OK: a memory error must still be seen.
        check_failure(state, status);
        if status != ffi::LUA_ERRMEM && ffi::lua_type(state, -1) == ffi::LUA_TSTRING {
            ffi::luaL_where(state, 1);
            ffi::lua_insert(state, -2);
            ffi::lua_concat(state, 2);
        }
        ffi::lua_error(state)
    }
}

/// `coroutine.wrap(f)`, whose resumes publish the coroutine.
unsafe extern "C-unwind" fn wrap(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: luaL_checktype raises (plain-data frame) unless argument 1
    // is a function; the new thread is pushed, then the function moved
    // onto it, then the thread becomes the closure's upvalue.
    unsafe {
        ffi::luaL_checktype(state, 1, ffi::LUA_TFUNCTION);
        let co = ffi::lua_newthread(state);
        ffi::lua_pushvalue(state, 1);
        ffi::lua_xmove(state, co, 1);
        ffi::lua_pushcclosure(state, wrapped, 1);
        1
    }
}

/// `close(co)` → true, or false and the error: closes a suspended or dead
/// coroutine (`lua_closethread`), publishing it while its `__close`
/// handlers run. The caller checks that `co` may be closed.
unsafe extern "C-unwind" fn close(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: argument 1 is checked to be a thread; lua_closethread runs
    // the pending `__close` values protected and leaves any error on `co`.
    unsafe {
        let co = ffi::lua_tothread(state, 1);
        if co.is_null() {
            return coroutine_expected(state);
        }
        let slot = this_slot();
        let prev = slot.map(|s| s.enter(co));
        let status = ffi::lua_closethread(co, state);
        if let (Some(s), Some(prev)) = (slot, prev) {
            s.leave(prev);
        }
        if status == ffi::LUA_OK {
            ffi::lua_pushboolean(state, 1);
            1
        } else {
            ffi::lua_pushboolean(state, 0);
            ffi::lua_xmove(co, state, 1);
            2
        }
    }
}

/// The Lua functions `resume`, `guard_resume`, `wrap` and `close` above.
pub(crate) fn functions(lua: &Lua) -> mlua::Result<[Function; 4]> {
    // SAFETY: each follows the lua_CFunction protocol.
    unsafe {
        Ok([
            lua.create_c_function(resume)?,
            lua.create_c_function(guard_resume)?,
            lua.create_c_function(wrap)?,
            lua.create_c_function(close)?,
        ])
    }
}
