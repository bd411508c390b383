//! Watching the engine: [`Observer`]s hear about task lifecycles and
//! unhandled rejections. Any number may be registered; adding one never
//! removes another.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use crate::error::ScriptError;
use crate::promise::PromiseStatus;

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
    /// Every point, in the order of the numbers the Lua half reports them by.
    pub const ALL: [Lifecycle; 7] = [
        Lifecycle::Created,
        Lifecycle::Started,
        Lifecycle::Yielded,
        Lifecycle::Resumed,
        Lifecycle::Completed,
        Lifecycle::Failed,
        Lifecycle::Cancelled,
    ];

    /// The point the Lua half numbers `code` (1 = created … 7 = cancelled).
    pub(crate) fn from_code(code: i64) -> Option<Lifecycle> {
        usize::try_from(code - 1)
            .ok()
            .and_then(|i| Lifecycle::ALL.get(i).copied())
    }

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
#[non_exhaustive]
pub struct TaskInfo<'a> {
    /// An integer unique per task in this engine.
    pub thread_id: u64,
    /// The name of the script context the task belongs to.
    pub script_name: &'a str,
    /// The task's promise state.
    pub status: PromiseStatus,
    /// Time spent running the task's Lua code so far (not time suspended).
    pub execution_time: Duration,
    /// How many times the task has suspended.
    pub yield_count: u64,
    /// Bytes in use by the task's Lua state.
    pub memory_bytes: usize,
    /// At [`Lifecycle::Created`]: the task running when it was made (its
    /// parent, or the task whose work started a handler or timer task).
    pub parent_id: Option<u64>,
    /// At [`Lifecycle::Completed`]: the first value the task returned; at
    /// [`Lifecycle::Failed`] and [`Observer::limit_hit`]: the error
    /// (an error object, or the value raised). `None` elsewhere.
    pub value: Option<&'a mlua::Value>,
}

/// Watches the engine. All methods have empty defaults.
pub trait Observer {
    /// Whether [`lifecycle`](Observer::lifecycle) should be called. When no
    /// registered observer wants it, the engine does no lifecycle work at all.
    fn wants_lifecycle(&self) -> bool {
        true
    }
    /// Whether [`lifecycle`](Observer::lifecycle) should be called at
    /// `event` (by default: at every point if
    /// [`wants_lifecycle`](Observer::wants_lifecycle)). The engine reports
    /// only the points some observer wants; [`admit`](Observer::admit) is
    /// asked only when `Created` is wanted.
    fn wants(&self, event: Lifecycle) -> bool {
        let _ = event;
        self.wants_lifecycle()
    }
    /// A task reached a point in its life.
    fn lifecycle(&self, _event: Lifecycle, _task: &TaskInfo<'_>) {}
    /// Called at [`Lifecycle::Created`], before `lifecycle`, when some
    /// observer wants lifecycles: an `Err` refuses the task. It then never
    /// runs, its promise rejects with that error, and the observers see it
    /// [`Failed`](Lifecycle::Failed). The first refusal wins; later
    /// observers are not asked. Quiet tasks (event handlers, which
    /// report no lifecycle) are asked too.
    fn admit(&self, _task: &TaskInfo<'_>) -> Result<(), ScriptError> {
        Ok(())
    }
    /// A run-level limit stopped the task (reported whether or not any
    /// observer wants lifecycles).
    fn limit_hit(&self, _task: &TaskInfo<'_>, _error: &ScriptError) {}
    /// A rejected promise was left unconsumed when the ready queue emptied.
    fn unhandled_rejection(&self, _error: &ScriptError) {}
    /// The same, with where it came from: the task whose promise it was,
    /// when a task's, and whether that task was quiet (an event handler,
    /// which reports no lifecycle). By default calls
    /// [`unhandled_rejection`](Observer::unhandled_rejection).
    fn unhandled_rejection_from(&self, error: &ScriptError, origin: Option<&Origin<'_>>) {
        let _ = origin;
        self.unhandled_rejection(error);
    }
}

/// The task an unhandled rejection came from.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Origin<'a> {
    /// Its id.
    pub thread_id: u64,
    /// Its script's name.
    pub script_name: &'a str,
    /// It was a quiet task: an event handler, which reports no lifecycle
    /// (the Lua half's `spawn_quiet`).
    pub quiet: bool,
}

impl fmt::Debug for dyn Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer")
    }
}

/// The registered observers, in registration order.
#[derive(Default)]
pub(crate) struct Observers {
    list: RefCell<Vec<Rc<dyn Observer>>>,
}

impl Observers {
    pub(crate) fn add(&self, observer: Rc<dyn Observer>) {
        self.list.borrow_mut().push(observer);
    }

    /// Removes `observer` (by identity); `true` if it was registered.
    pub(crate) fn remove(&self, observer: &Rc<dyn Observer>) -> bool {
        let mut list = self.list.borrow_mut();
        let before = list.len();
        list.retain(|o| !Rc::ptr_eq(o, observer));
        before != list.len()
    }

    /// The points some observer wants, bit i for [`Lifecycle::ALL`]`[i]`.
    pub(crate) fn wanted_mask(&self) -> u32 {
        let list = self.list.borrow();
        let mut mask = 0;
        for (i, event) in Lifecycle::ALL.iter().enumerate() {
            if list.iter().any(|o| o.wants(*event)) {
                mask |= 1 << i;
            }
        }
        mask
    }

    /// A copy of the list, so an observer may register another while called.
    pub(crate) fn snapshot(&self) -> Vec<Rc<dyn Observer>> {
        self.list.borrow().clone()
    }

    pub(crate) fn len(&self) -> usize {
        self.list.borrow().len()
    }
}
