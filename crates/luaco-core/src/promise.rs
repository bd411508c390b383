//! The promise state machine: pending → resolved | rejected | cancelled,
//! settled once. The operations that settle a promise live on
//! [`Engine`](crate::Engine), because settling wakes tasks and spawns handlers.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::task::Waker;

use mlua::{Function, Lua, Value};

use crate::driver::{FutureKey, TaskId, TimerKey};
use crate::engine::Engine;

/// The state of a promise as scripts and hosts see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PromiseStatus {
    /// Not settled yet.
    Pending,
    /// Settled with a value.
    Resolved,
    /// Settled with a reason.
    Rejected,
    /// Cancelled before it settled.
    Cancelled,
}

impl PromiseStatus {
    /// The string `p:status()` returns.
    pub fn as_str(self) -> &'static str {
        match self {
            PromiseStatus::Pending => "pending",
            PromiseStatus::Resolved => "resolved",
            PromiseStatus::Rejected => "rejected",
            PromiseStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for PromiseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a promise settled.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// With this value.
    Resolved(Value),
    /// With this reason.
    Rejected(Value),
    /// It was cancelled.
    Cancelled,
}

impl Outcome {
    /// The status this outcome gives a promise.
    pub fn status(&self) -> PromiseStatus {
        match self {
            Outcome::Resolved(_) => PromiseStatus::Resolved,
            Outcome::Rejected(_) => PromiseStatus::Rejected,
            Outcome::Cancelled => PromiseStatus::Cancelled,
        }
    }
}

/// What cancelling a pending promise must also stop.
#[derive(Debug, Default)]
pub enum Source {
    /// Nothing: the promise is settled by whoever holds its resolvers.
    #[default]
    None,
    /// The task whose result this is.
    Task(TaskId),
    /// A timer that resolves it.
    Timer(TimerKey),
    /// A Rust future that settles it.
    Future(FutureKey),
    /// Another promise that exists only to settle this one.
    Linked(Promise),
}

/// A Rust callback run when a promise settles.
pub type SettleCallback = Box<dyn FnOnce(&Engine, &Lua, &Outcome)>;

/// Who is told when a promise settles.
pub(crate) enum Waiter {
    /// A task suspended in `await`.
    Task(TaskId),
    /// `:next(on_ok, on_err)`: the handler runs as a task settling `derived`.
    Then {
        derived: Promise,
        on_ok: Option<Function>,
        on_err: Option<Function>,
    },
    /// `:finally(f)`.
    Finally { derived: Promise, handler: Function },
    /// `derived` adopted this promise and settles the same way.
    Adopt(Promise),
    /// Rust code (combinators, the host).
    Callback(SettleCallback),
    /// A Rust future polling the promise.
    Waker(Waker),
}

/// The waiters of a pending promise. Most promises have at most one (the
/// task awaiting it), kept inline so awaiting allocates nothing.
#[derive(Default)]
pub(crate) enum Waiters {
    #[default]
    Empty,
    One(Waiter),
    Many(Vec<Waiter>),
}

impl Waiters {
    pub(crate) fn push(&mut self, waiter: Waiter) {
        *self = match std::mem::take(self) {
            Waiters::Empty => Waiters::One(waiter),
            Waiters::One(first) => Waiters::Many(vec![first, waiter]),
            Waiters::Many(mut all) => {
                all.push(waiter);
                Waiters::Many(all)
            }
        };
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Waiters::Empty)
    }

    /// Appends every waiter, in order, each with its copy of `outcome`.
    pub(crate) fn queue_into(self, queue: &mut VecDeque<(Waiter, Outcome)>, outcome: &Outcome) {
        match self {
            Waiters::Empty => {}
            Waiters::One(w) => queue.push_back((w, outcome.clone())),
            Waiters::Many(all) => {
                for w in all {
                    queue.push_back((w, outcome.clone()));
                }
            }
        }
    }
}

pub(crate) enum State {
    Pending { waiters: Waiters, source: Source },
    Settled(Outcome),
}

pub(crate) struct Inner {
    pub(crate) state: RefCell<State>,
    /// Something consumed the outcome (await, a handler, a combinator, the host).
    pub(crate) handled: Cell<bool>,
    /// Called with the value if the task awaiting this promise is cancelled
    /// after it resolved but before the task got the value (a semaphore
    /// permit or a channel message goes back instead of being lost).
    pub(crate) undelivered: RefCell<Option<Box<Function>>>,
}

/// A promise: a shared handle to one settle-once state machine.
///
/// Cloning is cheap and gives another handle to the same promise. Scripts
/// see promises as userdata with the methods of SPEC §2.
#[derive(Clone)]
pub struct Promise(pub(crate) Rc<Inner>);

impl Promise {
    pub(crate) fn with_source(source: Source) -> Promise {
        Promise(Rc::new(Inner {
            state: RefCell::new(State::Pending {
                waiters: Waiters::Empty,
                source,
            }),
            handled: Cell::new(false),
            undelivered: RefCell::new(None),
        }))
    }

    pub(crate) fn settled(outcome: Outcome) -> Promise {
        Promise(Rc::new(Inner {
            state: RefCell::new(State::Settled(outcome)),
            handled: Cell::new(false),
            undelivered: RefCell::new(None),
        }))
    }

    /// The current state.
    pub fn status(&self) -> PromiseStatus {
        match &*self.0.state.borrow() {
            State::Pending { .. } => PromiseStatus::Pending,
            State::Settled(o) => o.status(),
        }
    }

    /// `true` while not settled.
    pub fn is_pending(&self) -> bool {
        matches!(&*self.0.state.borrow(), State::Pending { .. })
    }

    /// The outcome, once settled.
    pub fn outcome(&self) -> Option<Outcome> {
        match &*self.0.state.borrow() {
            State::Pending { .. } => None,
            State::Settled(o) => Some(o.clone()),
        }
    }

    /// Marks the outcome as consumed, so a rejection is not reported as unhandled.
    pub fn set_handled(&self) {
        self.0.handled.set(true);
    }

    /// Whether something consumed (or will consume) the outcome.
    pub fn is_handled(&self) -> bool {
        self.0.handled.get()
    }

    /// `true` if both handles refer to the same promise.
    pub fn ptr_eq(&self, other: &Promise) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// Replaces the source of a pending promise (what cancelling it stops).
    pub fn set_source(&self, new: Source) {
        if let State::Pending { source, .. } = &mut *self.0.state.borrow_mut() {
            *source = new;
        }
    }

    /// Adds a waiter; gives it back if the promise is already settled.
    pub(crate) fn push_waiter(&self, waiter: Waiter) -> Option<(Waiter, Outcome)> {
        self.0.handled.set(true);
        match &mut *self.0.state.borrow_mut() {
            State::Pending { waiters, .. } => {
                waiters.push(waiter);
                None
            }
            State::Settled(o) => Some((waiter, o.clone())),
        }
    }

    /// Settles a pending promise; returns what was waiting on it, or `None`
    /// if it had already settled.
    pub(crate) fn take_for_settle(&self, outcome: Outcome) -> Option<(Waiters, Source)> {
        let mut state = self.0.state.borrow_mut();
        if !matches!(&*state, State::Pending { .. }) {
            return None;
        }
        match std::mem::replace(&mut *state, State::Settled(outcome)) {
            State::Pending { waiters, source } => Some((waiters, source)),
            State::Settled(_) => None,
        }
    }
}

impl fmt::Debug for Promise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise")
            .field("status", &self.status())
            .field("handled", &self.is_handled())
            .finish()
    }
}
