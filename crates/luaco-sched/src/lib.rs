//! Event loop of luaco: a FIFO ready queue, a timer map, Rust futures, and
//! `pump` with a time budget.
//!
//! A [`Scheduler`] owns a Lua state's [`Engine`] and runs it by SPEC's
//! "Turn" rule: at the start of a turn, due timers fire (deadline order, ties
//! in creation order); then every task ready at that moment is resumed once,
//! in the order it became ready. Work made ready during the turn waits for
//! the next one. Rust futures run on an [`async_executor::LocalExecutor`]
//! with `async-io`'s reactor; there is no tokio and no helper thread.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use luaco_sched::Scheduler;
//!
//! let lua = mlua::Lua::new();
//! let sched = Scheduler::new(&lua, Default::default())?;
//! lua.globals().set("luaco", sched.engine().api())?;
//! let main = lua.load(r#"
//!     local t0 = luaco.now()
//!     luaco.await(luaco.sleep(5))
//!     return luaco.now() - t0 >= 5
//! "#).into_function()?;
//! let p = sched.engine().spawn(&lua, main, (), "example")?;
//! sched.run_until(|| !p.is_pending(), None);
//! assert_eq!(p.status(), luaco_core::PromiseStatus::Resolved);
//! # Ok::<(), luaco_core::Error>(())
//! ```
#![warn(missing_docs, missing_debug_implementations)]

mod clock;
mod timers;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;
use luaco_core::{
    Driver, Engine, FutureKey, LocalFuture, Options, Promise, ScriptError, ScriptValue, Source,
    TaskId, TimerKey,
};
use mlua::{Lua, Value, WeakLua};

pub use clock::{Clock, ManualClock, SystemClock};

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
    ready: RefCell<VecDeque<TaskId>>,
    timers: RefCell<BTreeMap<TimerKey, Promise>>,
    seq: Cell<u64>,
    clock: Rc<dyn Clock>,
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
    /// Woken when a task becomes ready or a future ends while the loop waits.
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
    fn ready(&self, task: TaskId) {
        self.ready.borrow_mut().push_back(task);
        self.signals.notify();
    }

    fn now(&self) -> Duration {
        self.clock.now()
    }

    fn add_timer(&self, deadline: Duration, promise: Promise) -> TimerKey {
        let seq = self.seq.get();
        self.seq.set(seq + 1);
        let key = TimerKey { deadline, seq };
        self.timers.borrow_mut().insert(key, promise);
        key
    }

    fn cancel_timer(&self, key: TimerKey) -> bool {
        self.timers.borrow_mut().remove(&key).is_some()
    }

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

/// The event loop of one Lua state.
pub struct Scheduler {
    lua: WeakLua,
    engine: Engine,
    shared: Rc<Shared>,
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("ready", &self.shared.ready.borrow().len())
            .field("timers", &self.shared.timers.borrow().len())
            .field("futures", &self.shared.futures.borrow().len())
            .field("engine", &self.engine)
            .finish()
    }
}

impl Scheduler {
    /// Builds the engine in `lua` and adds the timer functions (`sleep`,
    /// `set_timeout`, `set_interval`, `now`) to its API table.
    pub fn new(lua: &Lua, options: SchedulerOptions) -> luaco_core::Result<Scheduler> {
        let clock = options
            .clock
            .unwrap_or_else(|| Rc::new(SystemClock::new()) as Rc<dyn Clock>);
        let shared = Rc::new(Shared {
            ready: RefCell::new(VecDeque::new()),
            timers: RefCell::new(BTreeMap::new()),
            seq: Cell::new(0),
            clock,
            executor: Rc::new(LocalExecutor::new()),
            futures: RefCell::new(HashMap::new()),
            next_future: Cell::new(0),
            needs_tick: Cell::new(false),
            signals: Rc::new(Signals::default()),
        });
        let engine = Engine::new(lua, shared.clone(), options.engine)?;
        timers::install(&engine, lua)?;
        Ok(Scheduler {
            lua: lua.weak(),
            engine,
            shared,
        })
    }

    /// The engine this scheduler runs.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Time since the loop started, on its clock.
    pub fn now(&self) -> Duration {
        self.shared.clock.now()
    }

    /// Tasks waiting to run in the next turn.
    pub fn ready_count(&self) -> usize {
        self.shared.ready.borrow().len()
    }

    /// Pending timers.
    pub fn timer_count(&self) -> usize {
        self.shared.timers.borrow().len()
    }

    /// Rust futures still running.
    pub fn future_count(&self) -> usize {
        self.shared.futures.borrow().len()
    }

    /// `true` when nothing is ready and nothing is pending: no timers, no futures.
    pub fn is_idle(&self) -> bool {
        self.ready_count() == 0 && self.timer_count() == 0 && self.future_count() == 0
    }

    /// The earliest timer deadline, if any.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.shared
            .timers
            .borrow()
            .keys()
            .next()
            .map(|k| k.deadline)
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
        let Some(lua) = self.lua.try_upgrade() else {
            return stats;
        };
        loop {
            if poll {
                self.poll_futures();
            }
            stats.timers_fired += self.fire_timers(&lua);
            let batch = self.shared.ready.borrow().len();
            if batch == 0 {
                self.engine.check_unhandled();
                break;
            }
            for _ in 0..batch {
                let next = self.shared.ready.borrow_mut().pop_front();
                let Some(id) = next else { break };
                self.engine.run(&lua, id);
                stats.tasks_resumed += 1;
            }
            stats.batches += 1;
            if self.shared.ready.borrow().is_empty() {
                self.engine.check_unhandled();
            }
            if start.elapsed() >= budget {
                break;
            }
        }
        stats.elapsed = start.elapsed();
        stats
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
                if self.ready_count() > 0 {
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

    /// A future that completes when a task is ready, a future finished, the
    /// next timer is due, or `until` passes.
    fn wait_for_work(&self, until: Option<Instant>) -> WaitForWork<'_> {
        let due_now = self
            .next_deadline()
            .is_some_and(|d| d <= self.shared.clock.now());
        let timer_due = self.next_deadline().map(|d| {
            let now = self.shared.clock.now();
            Instant::now() + d.saturating_sub(now)
        });
        let wake_at = match (timer_due, until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        WaitForWork {
            shared: &self.shared,
            timer: if due_now {
                None
            } else {
                wake_at.map(async_io::Timer::at)
            },
            ready_now: due_now,
        }
    }

    /// Blocks until a task is ready, the next timer is due, or `until`.
    pub fn wait(&self, until: Option<Instant>) {
        if self.ready_count() > 0 {
            return;
        }
        let wait = self.wait_for_work(until);
        let executor = self.shared.executor.clone();
        async_io::block_on(executor.run(wait));
        self.reap_futures();
    }

    /// Runs a Rust future on the loop; its result settles the returned
    /// promise. The promise is an operation of the running task (cancelling
    /// the task drops the future).
    pub fn spawn_promise<F>(&self, lua: &Lua, future: F) -> Promise
    where
        F: Future<Output = Result<ScriptValue, ScriptError>> + 'static,
    {
        spawn_promise(&self.engine, lua, future)
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

    fn fire_timers(&self, lua: &Lua) -> u64 {
        let now = self.shared.clock.now();
        let mut fired = 0;
        loop {
            let due = {
                let mut timers = self.shared.timers.borrow_mut();
                match timers.first_key_value() {
                    Some((key, _)) if key.deadline <= now => timers.pop_first(),
                    _ => None,
                }
            };
            let Some((_, promise)) = due else { break };
            fired += 1;
            promise.set_source(Source::None);
            self.engine.resolve(lua, &promise, Value::Nil);
        }
        fired
    }
}

/// See [`Scheduler::spawn_promise`]; usable from inside Lua callbacks, where
/// only the engine is at hand.
pub fn spawn_promise<F>(engine: &Engine, lua: &Lua, future: F) -> Promise
where
    F: Future<Output = Result<ScriptValue, ScriptError>> + 'static,
{
    spawn_converted(engine, lua, future, |lua, value| value.to_lua_value(lua))
}

/// Runs `future` on the loop and settles the returned promise with its
/// output, turned into a Lua value by `convert` once it is ready. Like
/// [`spawn_promise`], for results that are not plain data (a response
/// table, file contents as a Lua string).
pub fn spawn_converted<F, T, C>(engine: &Engine, lua: &Lua, future: F, convert: C) -> Promise
where
    F: Future<Output = Result<T, ScriptError>> + 'static,
    T: 'static,
    C: FnOnce(&Lua, T) -> mlua::Result<Value> + 'static,
{
    let weak = lua.weak();
    spawn_lua_promise(engine, lua, async move {
        let output = future.await?;
        let lua = weak.try_upgrade().ok_or_else(|| {
            ScriptError::new(luaco_core::ErrorKind::Runtime, "the Lua state is gone")
        })?;
        convert(&lua, output).map_err(|e| luaco_core::rust_error_to_script(&e))
    })
}

/// Like [`spawn_promise`], for futures that build their Lua value
/// themselves (a response table, say). The future must hold only a
/// [`WeakLua`], never the Lua state itself.
pub fn spawn_lua_promise<F>(engine: &Engine, lua: &Lua, future: F) -> Promise
where
    F: Future<Output = Result<Value, ScriptError>> + 'static,
{
    let promise = engine.new_operation(Source::None);
    let (weak, target, settle_engine) = (lua.weak(), promise.clone(), engine.clone());
    let key = engine.driver().spawn(Box::pin(async move {
        let result = future.await;
        let Some(lua) = weak.try_upgrade() else {
            return;
        };
        target.set_source(Source::None);
        match result {
            Ok(value) => settle_engine.resolve(&lua, &target, value),
            Err(err) => settle_engine.reject_with(&lua, &target, &err),
        }
    }));
    promise.set_source(Source::Future(key));
    promise
}

/// Completes when a task is ready or the timer fires, while the executor
/// that polls it runs the loop's futures.
struct WaitForWork<'a> {
    shared: &'a Shared,
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
        let signals = &self.shared.signals;
        if !self.shared.ready.borrow().is_empty() || !signals.finished.borrow().is_empty() {
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
