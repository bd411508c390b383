//! Watching luaco tasks: hook points for the host, an event emitter shared
//! by Rust and Lua, and `tracing` spans.
//!
//! A [`Hub`] holds the [`Hooks`] (Rust callbacks at each point of a task's
//! life: created, started, yielded, resumed, completed, failed, cancelled,
//! unhandled rejection, limit hit; `created` may veto) and the [`Events`]
//! (named events with Rust subscribers; scripts get `events.on`,
//! `events.once` and `events.emit`). Lifecycle points are also events
//! (`coroutine.created` … `coroutine.cancelled`), as are
//! `runtime.unhandled_rejection` and `runtime.limit`. Handler tasks of those
//! events report no lifecycle themselves, so watching makes nothing new to
//! watch. With no hook and no subscriber, the engine skips lifecycle
//! reporting altogether.
//!
//! [`TracingObserver`] puts every task in a `tracing` span whose parent is
//! the span of the task that spawned it.
//!
//! # Examples
//!
//! ```
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use luaco_core::{ScriptContext, StateBuilder};
//! use luaco_hooks::{HookPoint, Hub};
//! use luaco_sched::Scheduler;
//!
//! let lua = StateBuilder::new().build()?;
//! let sched = Scheduler::new(&lua, Default::default())?;
//! let hub = Hub::new();
//! hub.attach(sched.engine())?;
//! let seen = Rc::new(RefCell::new(Vec::new()));
//! let log = seen.clone();
//! hub.hooks().on(HookPoint::Completed, move |ctx| {
//!     log.borrow_mut().push((ctx.script_name.to_owned(), ctx.result()));
//!     Ok(())
//! });
//! lua.globals().set("luaco", sched.engine().api())?;
//! let main = lua.load("luaco.await(luaco.sleep(1)) return 42").into_function()?;
//! let p = sched.engine().spawn(main, (), &ScriptContext::new("answer"))?;
//! sched.run_until(|| !p.is_pending(), None);
//! assert_eq!(
//!     seen.borrow()[0],
//!     ("answer".to_owned(), Some(luaco_core::ScriptValue::Integer(42)))
//! );
//! # Ok::<(), luaco_core::Error>(())
//! ```
#![warn(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]

mod emitter;
mod hooks;
mod hub;
mod log;
mod registry;
mod trace;

pub use emitter::{Event, Events, SubscriptionId};
pub use hooks::{HookContext, HookId, HookPoint, Hooks};
pub use hub::Hub;
pub use log::RejectionLog;
pub use trace::TracingObserver;
