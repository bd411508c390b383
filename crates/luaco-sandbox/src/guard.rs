//! [`Guard`]: run-level limits (an instruction budget over every coroutine,
//! a wall-clock deadline, a time slice). An instruction budget needs a
//! count hook; a deadline and a slice alone are watched from another
//! thread, which interrupts the running coroutine only when its time
//! comes (see [`crate::ticker`]), so until then they cost nothing.

use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use luaco_core::{
    interrupt_reason, Engine, ErrorKind, Interrupter, ScriptError, StateBuilder, Stop,
};
use mlua::{HookTriggers, Lua, VmState};

use crate::ticker::Watch;

/// How often the hook runs, in VM instructions. Each coroutine's counter
/// starts at zero, so a script that makes many short coroutines runs up to
/// this many instructions in each unseen; small enough to keep that slack
/// within a few percent of a budget, large enough to cost little.
const EVERY: u32 = 1000;

/// Run-level limits. `None` is no limit. Build with struct-update
/// syntax, ending with `..Limits::default()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// VM instructions for the whole run, every task and coroutine together.
    pub max_instructions: Option<u64>,
    /// Wall-clock time for the whole run, counted from [`Guard::attach`];
    /// also stops a task that never awaits.
    pub timeout: Option<Duration>,
    /// Preempt a task that runs this long without awaiting: it goes to
    /// the back of the ready queue, so a busy loop cannot starve the rest.
    pub time_slice: Option<Duration>,
    /// Lua heap bytes. Lua limits memory per state, so the guard does not
    /// enforce this itself: the state is built with it (for a
    /// [`ContextBudget`], the host gives that script a state of its own),
    /// and the guard's errors name it.
    pub max_memory: Option<usize>,
}

/// Which run-level limit ended a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// The instruction budget was spent.
    Instructions,
    /// The Lua heap limit was reached.
    Memory,
    /// The wall clock passed its limit.
    Time,
}

impl Limit {
    /// The limit a [`Guard::signal`] value stands for.
    pub fn from_signal(value: u8) -> Option<Limit> {
        match value {
            1 => Some(Limit::Instructions),
            2 => Some(Limit::Memory),
            3 => Some(Limit::Time),
            _ => None,
        }
    }

    fn signal_value(self) -> u8 {
        match self {
            Limit::Instructions => 1,
            Limit::Memory => 2,
            Limit::Time => 3,
        }
    }

    /// The name the `runtime.limit` event and `ScriptError::code` use:
    /// `"instructions"`, `"memory"`, `"time"`.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Instructions => "instructions",
            Limit::Memory => "memory",
            Limit::Time => "time",
        }
    }

    /// What the CLI prints: `"instruction limit"`, `"memory limit"`, `"timeout"`.
    pub fn describe(self) -> &'static str {
        match self {
            Limit::Instructions => "instruction limit",
            Limit::Memory => "memory limit",
            Limit::Time => "timeout",
        }
    }

    /// Reads the limit back from an error made by [`Limit::error`].
    pub fn of(error: &ScriptError) -> Option<Limit> {
        if error.kind != ErrorKind::Limit {
            return None;
        }
        match error.code.as_deref() {
            Some("instructions") => Some(Limit::Instructions),
            Some("memory") => Some(Limit::Memory),
            Some("time") => Some(Limit::Time),
            _ => None,
        }
    }

    /// The error a task stopped by this limit rejects with: kind `"limit"`,
    /// `code` the limit's name.
    pub fn error(self, detail: &str) -> ScriptError {
        ScriptError::new(ErrorKind::Limit, format!("{}: {detail}", self.describe()))
            .with_code(self.name())
    }
}

/// One script's own limits, carried in its [`ScriptContext`] policy slot
/// (`ScriptContext::new("job").with_policy(Rc::new(ContextBudget::new(limits)))`):
/// every task of that script counts against them, and hitting them stops
/// that script's tasks only. Needs a guard made with [`Guard::with_contexts`].
///
/// [`ScriptContext`]: luaco_core::ScriptContext
#[derive(Debug)]
pub struct ContextBudget {
    limits: Limits,
    untrusted: bool,
    policy: Option<crate::SandboxPolicy>,
    remaining: Cell<i64>,
    deadline: Option<Instant>,
    tripped: Cell<Option<Limit>>,
}

impl ContextBudget {
    /// A budget of `limits`, its wall clock starting now
    /// (`time_slice` is the runtime's, not a context's).
    pub fn new(limits: Limits) -> ContextBudget {
        ContextBudget {
            limits,
            untrusted: false,
            policy: None,
            remaining: Cell::new(budget_of(&limits)),
            deadline: limits.timeout.map(|t| Instant::now() + t),
            tripped: Cell::new(None),
        }
    }

    /// The same budget for a script that also runs untrusted: its chunk
    /// gets a safe environment of its own (its I/O is still the
    /// runtime's backends).
    pub fn untrusted(mut self) -> ContextBudget {
        self.untrusted = true;
        self
    }

    /// The same budget for an untrusted script with grants of its own:
    /// it runs in a Lua state of its own whose `http` and `fs` obey
    /// `policy` (within what the runtime itself allows).
    pub fn sandboxed(mut self, policy: crate::SandboxPolicy) -> ContextBudget {
        self.untrusted = true;
        self.policy = Some(policy);
        self
    }

    /// The script's own grants, if it has them ([`ContextBudget::sandboxed`]).
    pub fn policy(&self) -> Option<&crate::SandboxPolicy> {
        self.policy.as_ref()
    }

    /// Whether the script runs untrusted, in a safe environment.
    pub fn is_untrusted(&self) -> bool {
        self.untrusted
    }

    /// The limits it was made with.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Time left on its wall clock, if it has one.
    pub fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The limit this script hit, if any.
    pub fn tripped(&self) -> Option<Limit> {
        self.tripped.get()
    }

    /// The error its tasks reject with for `limit`.
    pub fn error(&self, limit: Limit) -> ScriptError {
        limit.error(&detail(limit, &self.limits))
    }

    /// Counts one hook period (or a C function's steps); the limit hit, if any.
    fn charge(&self, work: u64) -> Option<Limit> {
        if let Some(limit) = self.tripped.get() {
            return Some(limit);
        }
        let left = self
            .remaining
            .get()
            .saturating_sub(i64::try_from(work).unwrap_or(i64::MAX));
        self.remaining.set(left);
        let hit = if left <= 0 {
            Some(Limit::Instructions)
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Some(Limit::Time)
        } else {
            None
        };
        self.tripped.set(hit);
        hit
    }
}

fn budget_of(limits: &Limits) -> i64 {
    limits
        .max_instructions
        .map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

struct State {
    limits: Limits,
    /// Look for a [`ContextBudget`] in the running task's context.
    contexts: bool,
    /// Instructions left; counts down by [`EVERY`] per hook call.
    remaining: Cell<i64>,
    deadline: Cell<Option<Instant>>,
    engine: OnceCell<Engine>,
    tripped: Cell<Option<Limit>>,
    /// The same, for a watchdog on another thread: 0 none, else 1 + the
    /// limit's index.
    signal: Arc<AtomicU8>,
    /// The engine's record of the running task (`co`, `resumes`).
    running_task: OnceCell<mlua::Table>,
    /// The resume the time slice is being measured for, and its start.
    slice_mark: Cell<(i64, Instant)>,
    /// The thread given a hook after it caught a heap-limit error.
    memory_hooked: RefCell<Option<mlua::Thread>>,
    /// The thread the last stop was attempted in: a second hook call in
    /// the same thread means Lua could not yield there.
    tried: RefCell<Option<mlua::Thread>>,
    /// Deadlines and slices without a count hook: this thread's
    /// interrupter, when the limits allow it (no instruction budget, no
    /// per-script budgets) and the platform has one.
    interrupter: Option<Interrupter>,
    /// What the ticker thread watches, from [`Guard::attach`].
    watch: RefCell<Option<Arc<Watch>>>,
    /// A hit limit holds every resume of this thread to a stop.
    holding: Cell<bool>,
}

impl Drop for State {
    fn drop(&mut self) {
        if let (true, Some(i)) = (self.holding.get(), self.interrupter) {
            i.release_stop();
        }
    }
}

/// Enforces [`Limits`] on one Lua state. Install its hook with
/// [`Guard::state_builder`] (before any coroutine exists), then give it the
/// engine with [`Guard::attach`].
#[derive(Clone)]
pub struct Guard {
    state: Rc<State>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("limits", &self.state.limits)
            .field("tripped", &self.state.tripped.get())
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// A guard for `limits`.
    pub fn new(limits: Limits) -> Guard {
        Self::make(limits, false)
    }

    /// A guard for `limits` that also enforces each script's own
    /// [`ContextBudget`]. Its hook runs even when `limits` sets nothing,
    /// and reads the running task's context at every period (about 1 µs
    /// per 1,000 instructions).
    pub fn with_contexts(limits: Limits) -> Guard {
        Self::make(limits, true)
    }

    fn make(limits: Limits, contexts: bool) -> Guard {
        let budget = budget_of(&limits);
        let timed = limits.timeout.is_some() || limits.time_slice.is_some();
        let interrupter = match !contexts && limits.max_instructions.is_none() && timed {
            true => Interrupter::for_this_thread(),
            false => None,
        };
        Guard {
            state: Rc::new(State {
                limits,
                contexts,
                remaining: Cell::new(budget),
                deadline: Cell::new(None),
                engine: OnceCell::new(),
                tripped: Cell::new(None),
                signal: Arc::new(AtomicU8::new(0)),
                running_task: OnceCell::new(),
                slice_mark: Cell::new((0, Instant::now())),
                tried: RefCell::new(None),
                memory_hooked: RefCell::new(None),
                interrupter,
                watch: RefCell::new(None),
                holding: Cell::new(false),
            }),
        }
    }

    /// True when some limit needs the hook.
    pub fn is_needed(&self) -> bool {
        let l = &self.state.limits;
        self.state.contexts
            || l.max_instructions.is_some()
            || l.timeout.is_some()
            || l.time_slice.is_some()
    }

    /// True when the limits are enforced from a count hook; false when
    /// none needs one, or a deadline and a slice are watched from another
    /// thread instead (an instruction budget or per-script budgets count
    /// instructions, so they keep the hook).
    pub fn uses_count_hook(&self) -> bool {
        self.is_needed() && self.state.interrupter.is_none()
    }

    /// `builder` with this guard's count hook installed (when a limit needs it).
    pub fn state_builder(&self, builder: StateBuilder) -> StateBuilder {
        if !self.uses_count_hook() {
            return builder;
        }
        let state = self.state.clone();
        builder.hook(EVERY, Rc::new(move |lua| hook(&state, lua)))
    }

    /// Connects the guard to the engine whose tasks it stops, and starts
    /// the wall clock.
    ///
    /// # Errors
    /// When the guard stops code by interrupting it and cannot install the
    /// engine's interrupt handler (the engine's state is gone, or out of
    /// memory): no count hook stands in for it, so a deadline would not
    /// hold and the state must not run scripts.
    pub fn attach(&self, engine: &Engine) -> mlua::Result<()> {
        let _ = self.state.engine.set(engine.clone());
        if let Ok(t) = engine.internals().raw_get::<mlua::Table>("running_task") {
            let _ = self.state.running_task.set(t);
        }
        self.state
            .deadline
            .set(self.state.limits.timeout.map(|t| Instant::now() + t));
        let Some(interrupter) = self.state.interrupter else {
            return Ok(());
        };
        if !self.is_needed() {
            return Ok(());
        }
        let lua = engine
            .lua()
            .ok_or_else(|| mlua::Error::runtime("luaco: the guard's engine has no Lua state"))?;
        let state = self.state.clone();
        let handler = lua.create_function(move |_, (reasons, yieldable): (u8, bool)| {
            Ok(interrupted(&state, reasons, yieldable))
        })?;
        luaco_core::set_interrupt_handler(&lua, handler)?;
        let watch = Watch::start(
            interrupter,
            self.state.deadline.get(),
            self.state.limits.time_slice,
        );
        *self.state.watch.borrow_mut() = Some(watch);
        Ok(())
    }

    /// Starts a new call, for a host that runs one call at a time: as
    /// [`restart_clock`](Guard::restart_clock), and a previous call's
    /// memory limit no longer stops anything either (its tasks were
    /// abandoned, and what they held can be collected). A spent
    /// instruction budget stays spent: it is for the whole run.
    pub fn start_call(&self) {
        if self.state.tripped.get() == Some(Limit::Memory) {
            self.clear_trip();
            if let Some(lua) = self.state.engine.get().and_then(Engine::lua) {
                luaco_core::forgive_memory_refusal(&lua);
            }
        }
        self.restart_clock();
    }

    fn clear_trip(&self) {
        let state = &self.state;
        if let (true, Some(i)) = (state.holding.replace(false), state.interrupter) {
            i.release_stop();
        }
        state.tripped.set(None);
        state.signal.store(0, Ordering::SeqCst);
        *state.tried.borrow_mut() = None;
    }

    /// Starts the wall clock again, for a host that runs one call at a
    /// time under [`Limits::timeout`]: the deadline counts from now, and a
    /// previous call's time limit no longer stops anything (its tasks were
    /// abandoned). An instruction or memory limit stays hit.
    pub fn restart_clock(&self) {
        let state = &self.state;
        if state.tripped.get() == Some(Limit::Time) {
            self.clear_trip();
        }
        state
            .deadline
            .set(state.limits.timeout.map(|t| Instant::now() + t));
        if let Some(watch) = state.watch.borrow().as_ref() {
            watch.set_deadline(state.deadline.get());
        }
    }

    /// The limit that was hit, if any.
    pub fn tripped(&self) -> Option<Limit> {
        self.state.tripped.get()
    }

    /// The error for `limit` under this guard's limits (kind `"limit"`,
    /// `code` the limit's name, the message naming the cap).
    pub fn error(&self, limit: Limit) -> ScriptError {
        limit.error(&detail(limit, &self.state.limits))
    }

    /// Marks `limit` as hit from outside the hook (the heap limit, a
    /// deadline seen by the loop): every task stops at its next hook.
    pub fn trip(&self, limit: Limit) {
        trip(&self.state, limit);
    }

    /// A flag another thread can watch: it reads [`Limit::from_signal`]
    /// of its value. A watchdog uses it to end a process whose script
    /// escaped the hook (a loop in an `xpcall` message handler, a long C
    /// call) instead of stopping.
    pub fn signal(&self) -> Arc<AtomicU8> {
        self.state.signal.clone()
    }
}

impl Guard {
    /// Charges `steps` of work done in C (a pattern match) as that many
    /// instructions, to the run and to the running script's own budget,
    /// and checks the wall clock: the error of the limit hit, if any. The
    /// next hook then stops the task as usual.
    pub(crate) fn charge_steps(&self, steps: u64) -> Result<(), ScriptError> {
        let state = &self.state;
        if let Some(limit) = charge_run(state, steps) {
            return Err(self.error(limit));
        }
        if state.contexts {
            let context = state.engine.get().and_then(Engine::current_context);
            if let Some(budget) = context.as_deref().and_then(|c| c.policy::<ContextBudget>()) {
                if let Some(limit) = budget.charge(steps) {
                    return Err(budget.error(limit));
                }
            }
        }
        Ok(())
    }
}

fn trip(state: &State, limit: Limit) {
    if state.tripped.get().is_none() {
        state.tripped.set(Some(limit));
        state.signal.store(limit.signal_value(), Ordering::SeqCst);
    }
    if let Some(i) = state.interrupter {
        if !state.holding.replace(true) {
            // With no count hook, nothing else would stop the coroutine
            // running now (a script that caught a limit error in a pcall)
            // nor those resumed after it.
            i.hold_stop();
            i.interrupt(interrupt_reason::STOP);
        }
    }
}

/// The interrupt handler (see [`luaco_core::Interrupter`]): what the
/// interrupted coroutine does. A hit limit, or a deadline passed, stops
/// it: a yield the engine turns into abandoning the task, or where Lua
/// cannot yield the limit's error, raised (the hook tries again at the
/// next instruction). A slice spent in the task's own coroutine yields
/// it to the back of the ready queue; in a coroutine the script made it
/// waits (a yield would go to the script's resume), and the ticker asks
/// again a slice later.
fn interrupted(state: &Rc<State>, reasons: u8, yieldable: bool) -> mlua::Value {
    const GO_ON: i64 = 0;
    const YIELD: i64 = 1;
    let engine = state.engine.get();
    let passed = state.deadline.get().is_some_and(|d| Instant::now() >= d);
    if passed && state.tripped.get().is_none() {
        trip(state, Limit::Time);
    }
    if let Some(limit) = state.tripped.get() {
        let error = limit.error(&detail(limit, &state.limits));
        if !yieldable {
            let lua = engine.and_then(Engine::lua);
            return match lua.and_then(|lua| lua.create_string(&error.message).ok()) {
                Some(message) => mlua::Value::String(message),
                None => mlua::Value::Integer(GO_ON),
            };
        }
        if let Some(engine) = engine {
            engine.set_stop_reason(Stop::Limit);
            engine.set_limit_error(error);
        }
        return mlua::Value::Integer(YIELD);
    }
    if reasons & interrupt_reason::SLICE != 0 && yieldable && state.limits.time_slice.is_some() {
        let own = state.running_task.get().is_some_and(|running| {
            let lua = engine.and_then(Engine::lua);
            match (running.raw_get::<mlua::Value>("co"), lua) {
                (Ok(mlua::Value::Thread(co)), Some(lua)) => co == lua.current_thread(),
                _ => false,
            }
        });
        if own {
            if let Some(engine) = engine {
                engine.set_stop_reason(Stop::Preempted);
            }
            return mlua::Value::Integer(YIELD);
        }
    }
    mlua::Value::Integer(GO_ON)
}

fn detail(limit: Limit, limits: &Limits) -> String {
    match limit {
        Limit::Instructions => format!(
            "the run used its {} VM instructions",
            limits.max_instructions.unwrap_or_default()
        ),
        Limit::Time => format!(
            "the run passed its wall-clock limit of {} ms",
            limits.timeout.map_or(0, |t| t.as_millis())
        ),
        Limit::Memory => match limits.max_memory {
            Some(bytes) => format!("the Lua heap is full (its limit is {bytes} bytes)"),
            None => "the Lua heap is full".to_owned(),
        },
    }
}

/// Counts `work` instructions against the run's budget and looks at its
/// clock; the limit the run has hit, if any.
fn charge_run(state: &State, work: u64) -> Option<Limit> {
    let left = state
        .remaining
        .get()
        .saturating_sub(i64::try_from(work).unwrap_or(i64::MAX));
    state.remaining.set(left);
    if state.tripped.get().is_none() {
        if left <= 0 {
            trip(state, Limit::Instructions);
        } else if state.deadline.get().is_some_and(|d| Instant::now() >= d) {
            trip(state, Limit::Time);
        }
    }
    state.tripped.get()
}

fn hook(state: &Rc<State>, lua: &Lua) -> mlua::Result<VmState> {
    if let Some(limit) = charge_run(state, u64::from(EVERY)) {
        return stop(state, lua, limit);
    }
    if state.contexts {
        if let Some(r) = context_stop(state, lua) {
            return r;
        }
    }
    match state.limits.time_slice {
        Some(slice) => preempt(state, lua, slice),
        None => Ok(VmState::Continue),
    }
}

/// Yields the running task if it has run `slice` since it was resumed, and
/// only from the task's own coroutine: a yield inside a coroutine the
/// script made would go to the script's `coroutine.resume`, so there the
/// task waits for the next hook back in its own.
fn preempt(state: &State, lua: &Lua, slice: Duration) -> mlua::Result<VmState> {
    let Some(running) = state.running_task.get() else {
        return Ok(VmState::Continue);
    };
    let resumes: i64 = running.raw_get("resumes")?;
    let now = Instant::now();
    let (seen, since) = state.slice_mark.get();
    if seen != resumes {
        state.slice_mark.set((resumes, now));
        return Ok(VmState::Continue);
    }
    if now.duration_since(since) < slice {
        return Ok(VmState::Continue);
    }
    let own = match running.raw_get::<mlua::Value>("co")? {
        mlua::Value::Thread(co) => co == lua.current_thread(),
        _ => false,
    };
    if !own {
        return Ok(VmState::Continue);
    }
    if let Some(engine) = state.engine.get() {
        engine.set_stop_reason(Stop::Preempted);
    }
    Ok(VmState::Yield)
}

/// Charges the running task's own [`ContextBudget`], and stops the task
/// when its script is over budget.
fn context_stop(state: &Rc<State>, lua: &Lua) -> Option<mlua::Result<VmState>> {
    let context = state.engine.get()?.current_context()?;
    let budget = context.policy::<ContextBudget>()?;
    let limit = budget.charge(u64::from(EVERY))?;
    let error = budget.error(limit);
    Some(stop_with(state, lua, error))
}

/// Stops the running task for `limit`: first by yielding (the engine then
/// abandons it); where Lua could not yield, by raising, with this thread's
/// hook re-armed to every instruction, alternating raise and yield until
/// the error has unwound to a point that can yield.
fn stop(state: &Rc<State>, lua: &Lua, limit: Limit) -> mlua::Result<VmState> {
    stop_with(state, lua, limit.error(&detail(limit, &state.limits)))
}

fn stop_with(state: &Rc<State>, lua: &Lua, error: ScriptError) -> mlua::Result<VmState> {
    let current = lua.current_thread();
    let retried = state.tried.borrow().as_ref() == Some(&current);
    if !retried {
        // mlua yields only where Lua can; if it cannot, the hook runs
        // again in this same thread and takes the other branch.
        *state.tried.borrow_mut() = Some(current);
        if let Some(engine) = state.engine.get() {
            engine.set_stop_reason(Stop::Limit);
            engine.set_limit_error(error);
        }
        return Ok(VmState::Yield);
    }
    *state.tried.borrow_mut() = None;
    let again = state.clone();
    let retry = error.clone();
    let _ = current.set_hook(
        HookTriggers::new().every_nth_instruction(1),
        move |lua, _| stop_with(&again, lua, retry.clone()),
    );
    Err(mlua::Error::runtime(error.message))
}

/// Whether a failed protected call failed for the heap limit: the
/// allocator refused memory (its own record, since `error("not enough
/// memory")` gets the same status from Lua), and the failure is a memory
/// error by its status or its type, never its message: one raised by the
/// VM, an mlua memory error from a Rust function, or the runtime's
/// memory-limit error object.
fn memory_failure(lua: &Lua, status: i64, error: &mlua::Value) -> bool {
    let limit = |e: &ScriptError| e.kind == ErrorKind::Limit && e.code.as_deref() == Some("memory");
    let typed = status == crate::native::STATUS_MEMORY
        || match error {
            mlua::Value::Error(e) => limit(&ScriptError::from(&**e)),
            mlua::Value::Table(t) => {
                t.raw_get::<Option<String>>("kind")
                    .ok()
                    .flatten()
                    .as_deref()
                    == Some("limit")
                    && t.raw_get::<Option<String>>("code")
                        .ok()
                        .flatten()
                        .as_deref()
                        == Some("memory")
            }
            _ => false,
        };
    typed && luaco_core::memory_refused(lua)
}

impl Guard {
    /// Marks the heap limit as hit from code that caught the allocation
    /// failure (a script's `pcall`, the engine's own protected calls). The
    /// run may have no count hook (a memory limit alone needs none), so
    /// the running thread gets one and stops soon; the loop ends the rest
    /// at the next turn. Once per thread: setting a hook restarts its count.
    pub fn trip_memory(&self, lua: &Lua) {
        let state = &self.state;
        trip(state, Limit::Memory);
        let current = lua.current_thread();
        if state.memory_hooked.borrow().as_ref() != Some(&current) {
            let again = state.clone();
            let _ = current.set_hook(
                HookTriggers::new().every_nth_instruction(EVERY),
                move |lua, _| stop(&again, lua, Limit::Memory),
            );
            *state.memory_hooked.borrow_mut() = Some(current);
        }
    }

    /// Makes the protected calls of `env` unable to outlast a run-level
    /// limit: a script may observe the limit, not survive it. With
    /// `memory` (the state has a heap limit), a heap-limit failure caught
    /// by `pcall`, `xpcall` or `coroutine.resume` ends the run anyway;
    /// when a limit needs the hook, an `xpcall` message handler is skipped
    /// for the error that stops a script (Lua runs it with hooks off, so
    /// one that loops would run for ever). `pcall` and `xpcall` become C
    /// functions that behave as Lua's own, so nothing of this shows in
    /// tracebacks or `debug.getinfo`. Call it on the state's globals
    /// before environments copy them.
    pub fn harden(&self, lua: &Lua, env: &mlua::Table, memory: bool) -> mlua::Result<()> {
        let hooked = self.is_needed();
        if !memory && !hooked {
            return Ok(());
        }
        let guard = self.clone();
        let check = lua.create_function(move |lua, (status, error): (i64, mlua::Value)| {
            if memory && memory_failure(lua, status, &error) {
                guard.trip_memory(lua);
            }
            Ok(())
        })?;
        let stopping = match hooked {
            true => {
                let guard = self.clone();
                Some(lua.create_function(move |_, ()| Ok(guard.stopping()))?)
            }
            false => None,
        };
        let (pcall, xpcall) = crate::native::protected_calls(lua, check.clone(), stopping)?;
        env.raw_set("xpcall", xpcall)?;
        if memory {
            env.raw_set("pcall", pcall)?;
            // A script's `coroutine.resume` and `coroutine.wrap` functions
            // hand a failure that could be the heap's to the same check
            // (the core's C resume calls it: no frame a script could see).
            luaco_core::set_resume_check(lua, check)?;
        }
        Ok(())
    }

    /// Whether the running script is being stopped: a run-level limit, or
    /// the running task's own budget, was hit.
    fn stopping(&self) -> bool {
        let state = &self.state;
        if state.tripped.get().is_some() {
            return true;
        }
        state.contexts
            && state
                .engine
                .get()
                .and_then(Engine::current_context)
                .is_some_and(|c| {
                    c.policy::<ContextBudget>()
                        .is_some_and(|b| b.tripped().is_some())
                })
    }
}
