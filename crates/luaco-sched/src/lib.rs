//! Event loop of luaco: turns of ready tasks, timers, Rust futures, and
//! `pump` with a time budget.
//!
//! A [`Scheduler`] owns a Lua state's [`Engine`] and runs it by the
//! turn rule: at the start of a turn, due timers fire (deadline order, ties
//! in creation order); then every task ready at that moment is resumed once,
//! in the order it became ready. Work made ready during the turn waits for
//! the next one. The clock is read once per turn. Rust futures run on an
//! [`async_executor::LocalExecutor`] with `async-io`'s reactor; there is no
//! tokio and no helper thread.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use luaco_core::{ScriptContext, StateBuilder};
//! use luaco_sched::Scheduler;
//!
//! let lua = StateBuilder::new().build()?;
//! let sched = Scheduler::new(&lua, Default::default())?;
//! lua.globals().set("luaco", sched.engine().api())?;
//! let main = lua.load(r#"
//!     local t0 = luaco.now()
//!     luaco.await(luaco.sleep(5))
//!     return luaco.now() - t0 >= 5
//! "#).into_function()?;
//! let p = sched.engine().spawn(main, (), &ScriptContext::new("example"))?;
//! sched.run_until(|| !p.is_pending(), None);
//! assert_eq!(p.status(), luaco_core::PromiseStatus::Resolved);
//! # Ok::<(), luaco_core::Error>(())
//! ```
#![warn(missing_docs, missing_debug_implementations)]
#![deny(unsafe_code)]

mod clock;
mod native;
mod timers;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;
use luaco_core::{Driver, Engine, FutureKey, LocalFuture, Options};
use mlua::Lua;

use clock::micros;
pub use clock::{Clock, ManualClock, SystemClock};
use timers::Timers;

/// Tasks resumed between two looks at the clock inside a turn.
const RESUMES_PER_CLOCK_CHECK: usize = 16;

/// What one [`Scheduler::pump`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PumpStats {
    /// Task resumptions (a task resumed twice counts twice).
    pub tasks_resumed: u64,
    /// Timers that fired.
    pub timers_fired: u64,
    /// Turns that resumed at least one task.
    pub batches: u64,
    /// Wall-clock time spent in the call.
    pub elapsed: Duration,
}

/// Why [`Scheduler::run_until`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// The condition became true.
    Done,
    /// Nothing is ready and nothing is pending (no timers, no futures):
    /// the condition can never become true.
    Idle,
    /// The deadline passed first.
    DeadlinePassed,
}

/// The loop state the engine reaches through [`Driver`].
struct Shared {
    executor: Rc<LocalExecutor<'static>>,
    futures: RefCell<HashMap<u64, (FutureSlot, async_executor::Task<()>)>>,
    next_future: Cell<u64>,
    /// A cancelled future waits for the executor to drop it: tick even if
    /// no future is left running.
    needs_tick: Cell<bool>,
    signals: Rc<Signals>,
}

/// How futures tell a waiting loop that something happened.
#[derive(Default)]
struct Signals {
    /// Futures that completed and can be forgotten.
    finished: RefCell<Vec<u64>>,
    /// A future settled a promise: tasks may be ready.
    woken: Cell<bool>,
    /// Woken when something happens while the loop waits.
    waker: RefCell<Option<Waker>>,
}

impl Signals {
    fn notify(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

impl Driver for Shared {
    fn spawn(&self, future: LocalFuture) -> FutureKey {
        let id = self.next_future.get();
        self.next_future.set(id + 1);
        let signals = self.signals.clone();
        // The future sits in a slot the loop can empty: cancelling drops it
        // right away, not on the executor's next tick.
        let slot: FutureSlot = Rc::new(RefCell::new(Some(future)));
        let polled = slot.clone();
        let task = self.executor.spawn(async move {
            std::future::poll_fn(|cx| match polled.try_borrow_mut() {
                Ok(mut guard) => match guard.as_mut() {
                    Some(f) => f.as_mut().poll(cx),
                    None => Poll::Ready(()),
                },
                Err(_) => Poll::Ready(()),
            })
            .await;
            polled.borrow_mut().take();
            signals.finished.borrow_mut().push(id);
            signals.notify();
        });
        self.futures.borrow_mut().insert(id, (slot, task));
        FutureKey(id)
    }

    fn cancel_future(&self, key: FutureKey) -> bool {
        let entry = self.futures.borrow_mut().remove(&key.0);
        let Some((slot, task)) = entry else {
            return false;
        };
        // Drop the future now (closing its connections, say). If it is the
        // one being polled right now, dropping the task handle ends it.
        let future = slot.try_borrow_mut().ok().and_then(|mut s| s.take());
        drop(future);
        drop(task);
        self.needs_tick.set(true);
        self.signals.notify();
        true
    }

    fn wake(&self) {
        self.signals.woken.set(true);
        self.signals.notify();
    }
}

/// A spawned future's slot, shared by its executor task and the loop.
type FutureSlot = Rc<RefCell<Option<LocalFuture>>>;

/// Settings of a [`Scheduler`].
#[derive(Clone, Debug, Default)]
pub struct SchedulerOptions {
    /// Settings of the engine.
    pub engine: Options,
    /// The clock; the system's monotonic clock when `None`.
    pub clock: Option<Rc<dyn Clock>>,
}

/// The event loop of one Lua state, or of several ([`Scheduler::add_state`]):
/// one executor, one reactor and one clock drive every state's turns.
pub struct Scheduler {
    shared: Rc<Shared>,
    clock: Rc<dyn Clock>,
    /// The state the scheduler was made for; it never leaves.
    main: Lane,
    /// States added later, each with its own engine and timers.
    extra: RefCell<Vec<Rc<Lane>>>,
}

/// One Lua state's part of the loop.
struct Lane {
    engine: Engine,
    timers: Rc<Timers>,
    /// A turn was cut short by the pump budget: its rest runs first.
    turn_open: Cell<bool>,
    /// The next timer deadline as the last turn left it (µs).
    next_key: Cell<Option<i64>>,
}

/// How one state's batch of a turn ended.
enum Batch {
    /// The batch ran to its end; this many tasks were ready after it.
    Ran(usize),
    /// The pump budget ran out inside the batch.
    Cut,
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("ready", &self.ready_count())
            .field("timers", &self.timer_count())
            .field("futures", &self.future_count())
            .field("states", &(1 + self.extra.borrow().len()))
            .field("engine", &self.main.engine)
            .finish()
    }
}

impl Lane {
    fn new(
        lua: &Lua,
        shared: &Rc<Shared>,
        clock: &Rc<dyn Clock>,
        options: Options,
    ) -> luaco_core::Result<Lane> {
        let engine = Engine::new(lua, shared.clone(), options)?;
        let timers = Rc::new(Timers {
            clock: clock.clone(),
            fns: RefCell::new(None),
        });
        engine.install(&*timers)?;
        Ok(Lane {
            engine,
            timers,
            turn_open: Cell::new(false),
            next_key: Cell::new(None),
        })
    }

    fn timer_status(&self) -> (Option<i64>, usize) {
        if self.engine.lua().is_none() {
            return (None, 0);
        }
        self.timers
            .fns
            .borrow()
            .as_ref()
            .map_or((None, 0), |f| f.status())
    }

    fn ready_count(&self) -> usize {
        if self.engine.lua().is_none() {
            return 0;
        }
        self.engine.ready_count()
    }

    /// One call of the Lua turn: the clock is read (the base of deadlines
    /// made in this chunk) and, with `fire`, due timers fire before the
    /// batch runs.
    fn turn(&self, fire: bool, max: usize) -> Option<timers::TurnOut> {
        // The Lua state belongs to the host: once it is gone, nothing runs.
        self.engine.lua()?;
        let now = micros(self.timers.clock.now());
        let fns = self.timers.fns.borrow();
        let fns = fns.as_ref()?;
        match fns.turn(now, fire, max) {
            Ok(out) => {
                self.next_key.set(out.next);
                self.turn_open.set(out.left > 0);
                Some(out)
            }
            Err(e) => {
                self.turn_open.set(false);
                self.engine.report_error(&luaco_core::ScriptError::from(e));
                None
            }
        }
    }

    /// This state's batch of the current turn (its rest, if the last pump
    /// cut it short), adding to `stats`.
    fn batch(&self, start: Instant, budget: Duration, stats: &mut PumpStats) -> Batch {
        let mut fire = !self.turn_open.get();
        let mut resumed = 0;
        let ready = loop {
            let Some(out) = self.turn(fire, RESUMES_PER_CLOCK_CHECK) else {
                break 0;
            };
            fire = false;
            stats.timers_fired += out.fired;
            resumed += out.resumed;
            if out.left == 0 {
                break out.ready;
            }
            if start.elapsed() >= budget {
                // The rest of this turn's batch runs first next time.
                stats.tasks_resumed += resumed as u64;
                stats.batches += 1;
                return Batch::Cut;
            }
        };
        stats.tasks_resumed += resumed as u64;
        if resumed > 0 {
            stats.batches += 1;
        }
        Batch::Ran(ready)
    }

    /// A timer of this state is due already.
    fn timer_due(&self) -> bool {
        let now = micros(self.timers.clock.now());
        self.next_key.get().is_some_and(|k| k <= now)
    }
}

impl Scheduler {
    /// Builds the engine in `lua` and installs the timer module (`sleep`,
    /// `set_timeout`, `set_interval`, `now`) into its API table.
    pub fn new(lua: &Lua, options: SchedulerOptions) -> luaco_core::Result<Scheduler> {
        let clock = options
            .clock
            .unwrap_or_else(|| Rc::new(SystemClock::new()) as Rc<dyn Clock>);
        let shared = Rc::new(Shared {
            executor: Rc::new(LocalExecutor::new()),
            futures: RefCell::new(HashMap::new()),
            next_future: Cell::new(0),
            needs_tick: Cell::new(false),
            signals: Rc::new(Signals::default()),
        });
        let main = Lane::new(lua, &shared, &clock, options.engine)?;
        Ok(Scheduler {
            shared,
            clock,
            main,
            extra: RefCell::new(Vec::new()),
        })
    }

    /// Adds another Lua state to this loop and returns its engine (with the
    /// timer module installed, as [`Scheduler::new`] does). Its tasks take
    /// their turns after the first state's, on the same clock; its futures
    /// run on the same executor. A host gives a script a state of its own
    /// when it needs a limit Lua keeps per state, such as the heap limit.
    ///
    /// The state leaves the loop when it is dropped or
    /// [`removed`](Scheduler::remove_state).
    pub fn add_state(&self, lua: &Lua, options: Options) -> luaco_core::Result<Engine> {
        let lane = Lane::new(lua, &self.shared, &self.clock, options)?;
        let engine = lane.engine.clone();
        self.extra.borrow_mut().push(Rc::new(lane));
        Ok(engine)
    }

    /// Takes a state added by [`add_state`](Scheduler::add_state) out of
    /// the loop: its tasks and timers never run again (its futures run to
    /// their end, settling nothing anyone waits on). `false` if `engine`
    /// was not one of them.
    pub fn remove_state(&self, engine: &Engine) -> bool {
        let mut extra = self.extra.borrow_mut();
        let before = extra.len();
        extra.retain(|lane| !lane.engine.same_as(engine));
        extra.len() != before
    }

    /// Whether the state of `engine` has nothing left to run: no task
    /// ready or alive, no timer. (Futures are shared by every state.) A
    /// state that is not in the loop is idle.
    pub fn state_is_idle(&self, engine: &Engine) -> bool {
        let lanes = self.lanes();
        let lane = std::iter::once(&self.main)
            .chain(lanes.iter().map(|l| &**l))
            .find(|l| l.engine.same_as(engine));
        match lane {
            Some(lane) => {
                lane.ready_count() == 0
                    && lane.timer_status().1 == 0
                    && lane.engine.task_count() == 0
            }
            None => true,
        }
    }

    /// Every state's part of the loop, the first state first; states whose
    /// Lua is gone are forgotten on the way.
    fn lanes(&self) -> Vec<Rc<Lane>> {
        let mut extra = self.extra.borrow_mut();
        extra.retain(|lane| lane.engine.lua().is_some());
        extra.clone()
    }

    /// Folds `f` over every state's part, the first state first. With one
    /// state (the common case) nothing is allocated: these run every time
    /// the loop looks at what is left.
    fn fold_lanes<T>(&self, init: T, mut f: impl FnMut(T, &Lane) -> T) -> T {
        let first = f(init, &self.main);
        if self.extra.borrow().is_empty() {
            return first;
        }
        self.lanes().iter().fold(first, |acc, lane| f(acc, lane))
    }

    /// The engine of the state the scheduler was made for.
    pub fn engine(&self) -> &Engine {
        &self.main.engine
    }

    /// Time since the loop started, on its clock.
    pub fn now(&self) -> Duration {
        self.clock.now()
    }

    /// Tasks waiting to run, in every state.
    pub fn ready_count(&self) -> usize {
        self.fold_lanes(0, |n, lane| n + lane.ready_count())
    }

    /// Pending timers (sleeps, timeouts, intervals), in every state.
    pub fn timer_count(&self) -> usize {
        self.fold_lanes(0, |n, lane| n + lane.timer_status().1)
    }

    /// Rust futures still running.
    pub fn future_count(&self) -> usize {
        self.shared.futures.borrow().len()
    }

    /// `true` when nothing is ready and nothing is pending: no timers, no futures.
    pub fn is_idle(&self) -> bool {
        self.ready_count() == 0 && self.timer_count() == 0 && self.future_count() == 0
    }

    /// The earliest timer deadline of any state, if any.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.fold_lanes(None, |min: Option<i64>, lane| {
            match (min, lane.timer_status().0) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        })
        .map(|us| Duration::from_micros(us.max(0) as u64))
    }

    fn turn_open(&self) -> bool {
        self.fold_lanes(false, |open, lane| open || lane.turn_open.get())
    }

    /// Runs turns until `budget` is spent or nothing is ready. Never blocks:
    /// futures are polled only if they are ready to make progress.
    pub fn pump(&self, budget: Duration) -> PumpStats {
        self.turns(budget, true)
    }

    /// The turns of [`pump`](Scheduler::pump). With `poll`, ready futures
    /// are polled before each turn; without, the caller is the executor.
    fn turns(&self, budget: Duration, poll: bool) -> PumpStats {
        let start = Instant::now();
        let mut stats = PumpStats::default();
        let extra = self.lanes();
        loop {
            if poll {
                self.poll_futures();
            }
            self.shared.signals.woken.set(false);
            // Another turn only if some state has a task ready or a timer
            // due already.
            let mut more = false;
            for lane in std::iter::once(&self.main).chain(extra.iter().map(|l| &**l)) {
                match lane.batch(start, budget, &mut stats) {
                    Batch::Cut => {
                        stats.elapsed = start.elapsed();
                        return stats;
                    }
                    Batch::Ran(ready) => more |= ready > 0 || lane.timer_due(),
                }
            }
            if start.elapsed() >= budget || !more {
                break;
            }
        }
        stats.elapsed = start.elapsed();
        stats
    }

    /// Ends everything in every state: each live task is cancelled (its
    /// `<close>` values run), each timer stopped, and tasks run again only
    /// when new ones are spawned. Returns how many tasks were cancelled.
    /// What follows an error in a main chunk, as an uncaught error ends a
    /// Node program.
    pub fn stop(&self) -> usize {
        let lanes = self.lanes();
        let mut cancelled = 0;
        for lane in std::iter::once(&self.main).chain(lanes.iter().map(|l| &**l)) {
            if lane.engine.lua().is_none() {
                continue;
            }
            // Timers first: what their cancellation wakes or starts is
            // among the tasks cancelled next, so nothing is left queued.
            if let Some(fns) = lane.timers.fns.borrow().as_ref() {
                if let Err(e) = fns.clear.call::<()>(()) {
                    lane.engine.report_error(&luaco_core::ScriptError::from(e));
                }
            }
            cancelled += lane.engine.cancel_all().unwrap_or(0);
            lane.turn_open.set(false);
            lane.next_key.set(None);
        }
        cancelled
    }

    /// Runs the loop until `done()` holds, nothing can happen any more, or
    /// the real-time `deadline` passes. Sleeps (in the I/O reactor) while
    /// nothing is ready.
    ///
    /// The whole run happens inside one executor run: the Lua turns are its
    /// main future, and Rust futures progress whenever the turns wait, with
    /// no round trip out of the reactor per completed request.
    pub fn run_until(&self, done: impl Fn() -> bool, deadline: Option<Instant>) -> RunEnd {
        let executor = self.shared.executor.clone();
        let end = async_io::block_on(executor.run(async {
            loop {
                self.turns(Duration::from_millis(5), false);
                self.reap_futures();
                if done() {
                    return RunEnd::Done;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return RunEnd::DeadlinePassed;
                }
                if self.turn_open() || self.ready_count() > 0 {
                    // A long burst of Lua work: let I/O move before the next.
                    futures_lite::future::yield_now().await;
                    continue;
                }
                if self.is_idle() {
                    return RunEnd::Idle;
                }
                self.wait_for_work(deadline).await;
            }
        }));
        self.reap_futures();
        end
    }

    /// A future that completes when a task may be ready, a future finished,
    /// the next timer is due, or `until` passes.
    fn wait_for_work(&self, until: Option<Instant>) -> WaitForWork<'_> {
        let now = self.clock.now();
        let next = self.next_deadline();
        let due_now = next.is_some_and(|d| d <= now);
        let timer_due = next.map(|d| Instant::now() + d.saturating_sub(now));
        let wake_at = match (timer_due, until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        WaitForWork {
            signals: &self.shared.signals,
            timer: if due_now {
                None
            } else {
                wake_at.map(async_io::Timer::at)
            },
            ready_now: due_now,
        }
    }

    /// Blocks until a task may be ready, the next timer is due, or `until`.
    pub fn wait(&self, until: Option<Instant>) {
        if self.turn_open() || self.ready_count() > 0 {
            return;
        }
        let wait = self.wait_for_work(until);
        let executor = self.shared.executor.clone();
        async_io::block_on(executor.run(wait));
        self.reap_futures();
    }

    fn poll_futures(&self) {
        if self.shared.futures.borrow().is_empty() && !self.shared.needs_tick.replace(false) {
            return;
        }
        // Bounded, so a future that keeps waking itself cannot stall the turn.
        for _ in 0..1024 {
            if !self.shared.executor.try_tick() {
                break;
            }
        }
        self.reap_futures();
    }

    fn reap_futures(&self) {
        let done = std::mem::take(&mut *self.shared.signals.finished.borrow_mut());
        if !done.is_empty() {
            let mut futures = self.shared.futures.borrow_mut();
            for id in done {
                futures.remove(&id);
            }
        }
    }
}

/// Completes when a future settled something or the timer fires, while the
/// executor that polls it runs the loop's futures.
struct WaitForWork<'a> {
    signals: &'a Signals,
    timer: Option<async_io::Timer>,
    /// A timer is already due: complete at once.
    ready_now: bool,
}

impl Future for WaitForWork<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.ready_now {
            return Poll::Ready(());
        }
        let signals = self.signals;
        if signals.woken.get() || !signals.finished.borrow().is_empty() {
            return Poll::Ready(());
        }
        if let Some(timer) = self.timer.as_mut() {
            if Pin::new(timer).poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        *signals.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}
