//! The host's side of promises: [`PromiseStatus`], [`Outcome`] and
//! [`Promise`], a handle that keeps one Lua promise alive for Rust.
//!
//! Promises themselves are plain Lua tables (see `lua/promise.lua`); Rust
//! holds none of them by reference except through a [`Promise`] handle,
//! which pins its table in one engine-wide table under an integer key.

use std::fmt;
use std::rc::Rc;

use mlua::{Table, Value};

use crate::engine::Engine;

/// The state of a promise as scripts and hosts see it. The discriminants
/// are the numbers the Lua half stores (`PENDING` … `CANCELLED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PromiseStatus {
    /// Not settled yet.
    Pending = 0,
    /// Settled with a value.
    Resolved = 1,
    /// Settled with a reason.
    Rejected = 2,
    /// Cancelled before it settled.
    Cancelled = 3,
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

    /// The status the Lua half numbers `code`.
    pub fn from_code(code: i64) -> Option<PromiseStatus> {
        Some(match code {
            0 => PromiseStatus::Pending,
            1 => PromiseStatus::Resolved,
            2 => PromiseStatus::Rejected,
            3 => PromiseStatus::Cancelled,
            _ => return None,
        })
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

    pub(crate) fn from_parts(status: i64, value: Value) -> Option<Outcome> {
        match PromiseStatus::from_code(status)? {
            PromiseStatus::Pending => None,
            PromiseStatus::Resolved => Some(Outcome::Resolved(value)),
            PromiseStatus::Rejected => Some(Outcome::Rejected(value)),
            PromiseStatus::Cancelled => Some(Outcome::Cancelled),
        }
    }
}

/// A Rust handle to a Lua promise. Cloning is cheap and gives another
/// handle to the same promise; the promise stays alive while a handle does.
///
/// Once the engine's Lua state is gone, a handle reads as
/// [`PromiseStatus::Cancelled`] with no outcome.
#[derive(Clone)]
pub struct Promise(Rc<Pin>);

pub(crate) struct Pin {
    pub(crate) id: i64,
    pub(crate) engine: Engine,
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.engine.unpin(self.id);
    }
}

impl Promise {
    pub(crate) fn from_pin(id: i64, engine: Engine) -> Promise {
        Promise(Rc::new(Pin { id, engine }))
    }

    /// The promise's Lua table.
    pub fn table(&self) -> mlua::Result<Table> {
        self.0.engine.pinned(self.0.id)
    }

    /// The promise as a Lua value, to hand to a script.
    pub fn to_lua(&self) -> mlua::Result<Value> {
        self.table().map(Value::Table)
    }

    /// The current state.
    pub fn status(&self) -> PromiseStatus {
        self.0
            .engine
            .status_of(self.0.id)
            .unwrap_or(PromiseStatus::Cancelled)
    }

    /// `true` while not settled.
    pub fn is_pending(&self) -> bool {
        self.status() == PromiseStatus::Pending
    }

    /// The outcome, once settled.
    pub fn outcome(&self) -> Option<Outcome> {
        self.0.engine.outcome_of(self.0.id)
    }

    /// Marks the outcome as consumed, so a rejection is not reported as unhandled.
    pub fn set_handled(&self) {
        self.0.engine.consume(self);
    }

    /// `true` if both handles refer to the same promise.
    pub fn ptr_eq(&self, other: &Promise) -> bool {
        match (self.table(), other.table()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }

    /// The engine this promise belongs to.
    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }
}

impl fmt::Debug for Promise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise")
            .field("status", &self.status())
            .finish()
    }
}
