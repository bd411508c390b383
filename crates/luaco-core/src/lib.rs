//! Promise and task core of luaco: Lua coroutines as tasks, `await`,
//! promises, combinators and the coroutine pool.
//!
//! The core knows nothing of timers, I/O or sandboxes. It drives tasks
//! through the small [`Driver`] trait (a ready queue, a clock, timers, Rust
//! futures) that `luaco-sched` implements, and reports to an optional
//! [`Observer`]. Most users want the `luaco` facade instead.
//!
//! # Examples
//!
//! A minimal driver that runs ready tasks from a queue is enough to run
//! scripts that do not use timers:
//!
//! ```
//! use std::{cell::RefCell, collections::VecDeque, rc::Rc, time::Duration};
//! use luaco_core::{Driver, Engine, FutureKey, LocalFuture, Options, Promise, TaskId, TimerKey};
//!
//! #[derive(Default)]
//! struct Queue(RefCell<VecDeque<TaskId>>);
//! impl Driver for Queue {
//!     fn ready(&self, task: TaskId) { self.0.borrow_mut().push_back(task) }
//!     fn now(&self) -> Duration { Duration::ZERO }
//!     fn add_timer(&self, d: Duration, _: Promise) -> TimerKey { TimerKey { deadline: d, seq: 0 } }
//!     fn cancel_timer(&self, _: TimerKey) -> bool { false }
//!     fn spawn(&self, _: LocalFuture) -> FutureKey { FutureKey(0) }
//!     fn cancel_future(&self, _: FutureKey) -> bool { false }
//! }
//!
//! let lua = mlua::Lua::new();
//! let queue = Rc::new(Queue::default());
//! let engine = Engine::new(&lua, queue.clone(), Options::default())?;
//! lua.globals().set("luaco", engine.api())?;
//! let main = lua.load(r#"
//!     local a = luaco.async(function(x) return x * 2 end, 21)
//!     return luaco.await(a) + 0
//! "#).into_function()?;
//! let p = engine.spawn(&lua, main, (), "example")?;
//! loop {
//!     let next = queue.0.borrow_mut().pop_front();
//!     let Some(task) = next else { break };
//!     engine.run(&lua, task);
//! }
//! assert_eq!(p.status(), luaco_core::PromiseStatus::Resolved);
//! # Ok::<(), luaco_core::Error>(())
//! ```
#![warn(missing_docs, missing_debug_implementations)]

mod combinators;
mod driver;
mod engine;
mod error;
mod promise;
mod task;
mod value;

pub use driver::{Driver, FutureKey, Lifecycle, LocalFuture, Observer, TaskId, TaskInfo, TimerKey};
pub use engine::{
    duration_from_ms, rust_error_to_script, type_error, ApiResult, Engine, Options, CALLER,
};
pub use error::{Error, ErrorKind, Result, ScriptError};
pub use promise::{Outcome, Promise, PromiseStatus, SettleCallback, Source};
pub use value::ScriptValue;
