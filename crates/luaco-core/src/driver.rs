//! The small traits through which the core reaches the outside: the event
//! loop that runs it ([`Driver`]) and whoever watches its tasks ([`Observer`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::ScriptError;
use crate::promise::Promise;

/// Identifies a live task. Stale ids (of finished tasks) are recognised as
/// such, never confused with a newer task in the same slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// Identifies a timer registered with a [`Driver`]: its deadline, then a
/// sequence number, so keys sort in firing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerKey {
    /// When the timer fires, as time since the loop started.
    pub deadline: Duration,
    /// Creation order among timers with the same deadline.
    pub seq: u64,
}

/// Identifies a Rust future running on a [`Driver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FutureKey(pub u64);

/// A Rust future that a [`Driver`] runs to completion on the loop's thread.
pub type LocalFuture = Pin<Box<dyn Future<Output = ()> + 'static>>;

/// The event loop as the core sees it: a ready queue, a clock, timers and a
/// way to run Rust futures. `luaco-sched` implements it.
///
/// Every method is called from the loop's own thread and must not call back
/// into the core or into Lua.
pub trait Driver {
    /// Queues `task` to be resumed. Tasks queued during a turn run in the
    /// next one, in the order they were queued.
    fn ready(&self, task: TaskId);
    /// Time since the loop started, on a monotonic clock.
    fn now(&self) -> Duration;
    /// Resolves `promise` with `nil` once `now() >= deadline`. Timers with
    /// equal deadlines fire in the order they were added.
    fn add_timer(&self, deadline: Duration, promise: Promise) -> TimerKey;
    /// Stops a timer; `true` if it was still pending.
    fn cancel_timer(&self, key: TimerKey) -> bool;
    /// Runs a Rust future on the loop.
    fn spawn(&self, future: LocalFuture) -> FutureKey;
    /// Drops a running future at once; `true` if it was still running.
    fn cancel_future(&self, key: FutureKey) -> bool;
}

/// A point in a task's life, as reported to an [`Observer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Lifecycle {
    /// The task was spawned; it starts on a later turn.
    Created,
    /// The task ran for the first time.
    Started,
    /// The task suspended (awaiting, or a bare `coroutine.yield`).
    Yielded,
    /// The task was resumed after a suspension.
    Resumed,
    /// The task returned.
    Completed,
    /// The task raised an error.
    Failed,
    /// The task was cancelled.
    Cancelled,
}

impl Lifecycle {
    /// The event name scripts subscribe to, such as `"coroutine.created"`.
    pub fn event_name(self) -> &'static str {
        match self {
            Lifecycle::Created => "coroutine.created",
            Lifecycle::Started => "coroutine.started",
            Lifecycle::Yielded => "coroutine.yielded",
            Lifecycle::Resumed => "coroutine.resumed",
            Lifecycle::Completed => "coroutine.completed",
            Lifecycle::Failed => "coroutine.failed",
            Lifecycle::Cancelled => "coroutine.cancelled",
        }
    }
}

/// What an [`Observer`] learns about a task at a [`Lifecycle`] point.
#[derive(Clone, Debug)]
pub struct TaskInfo<'a> {
    /// An integer unique per task in this engine.
    pub thread_id: u64,
    /// The name of the script context the task belongs to.
    pub script_name: &'a str,
    /// The task's promise state.
    pub status: crate::PromiseStatus,
    /// Time spent running the task's Lua code so far.
    pub execution_time: Duration,
    /// How many times the task has suspended.
    pub yield_count: u64,
}

/// Watches the engine. All methods have empty defaults; with no observer
/// installed the engine does no work for them at all.
pub trait Observer {
    /// Whether [`lifecycle`](Observer::lifecycle) should be called. An
    /// observer that only wants unhandled rejections returns `false`, and
    /// the engine then skips the per-resume bookkeeping (timing, events).
    fn wants_lifecycle(&self) -> bool {
        true
    }
    /// A task reached a point in its life.
    fn lifecycle(&self, _event: Lifecycle, _task: &TaskInfo<'_>) {}
    /// A rejected promise was left unconsumed when the ready queue emptied.
    fn unhandled_rejection(&self, _error: &ScriptError) {}
}

impl fmt::Debug for dyn Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Driver")
    }
}

impl fmt::Debug for dyn Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer")
    }
}
