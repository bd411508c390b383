//! Promise and task core of luaco: Lua coroutines as tasks, `await`,
//! promises, combinators, and the bridge that turns Rust futures into
//! promises.
//!
//! The core knows nothing of timers, I/O, sandboxes or hooks. Its hot half
//! is Lua (promises are plain tables, tasks run on pooled worker
//! coroutines, `await` never calls into Rust); the Rust half is the
//! [`Engine`], which an event loop (`luaco-sched`) drives through
//! [`Engine::run_ready`] and which reaches the loop only through the small
//! [`Driver`] trait. Most users want the `luaco` facade instead.
//!
//! # Doors for the layers above
//! - **The Lua state** is made by [`StateBuilder`], which chooses the
//!   standard libraries, a memory limit and a count hook *before any
//!   coroutine exists* (mlua's global hook covers only coroutines made
//!   after it), so a budget holds in every coroutine a script creates.
//! - **Why a task stopped**: a hook that suspends a task sets a [`Stop`]
//!   with [`Engine::set_stop_reason`] and yields; [`Stop::Preempted`] puts
//!   the task at the back of the ready queue, [`Stop::Limit`] abandons its
//!   coroutine and rejects its promise with [`Engine::set_limit_error`]'s error.
//! - **Script contexts**: every task carries the [`ScriptContext`] of the
//!   host call that started it (name, arguments, a policy slot), inherited
//!   by everything it spawns; [`Engine::current_context`] reads it.
//! - **Observers compose**: [`Engine::add_observer`] registers any number;
//!   with none that wants lifecycles, no lifecycle work is done at all.
//! - **Modules**: a [`Module`] installs one part of the Lua API
//!   ([`Engine::install`]); timers, I/O and events are modules.
//!
//! # Examples
//!
//! A loop that only runs ready tasks is enough for scripts that use no
//! timers or I/O:
//!
//! ```
//! use std::rc::Rc;
//! use luaco_core::{Engine, NoFutures, Options, PromiseStatus, ScriptContext, StateBuilder};
//!
//! let lua = StateBuilder::new().build()?;
//! let engine = Engine::new(&lua, Rc::new(NoFutures), Options::default())?;
//! lua.globals().set("luaco", engine.api())?;
//! let main = lua.load(r#"
//!     local a = luaco.async(function(x) return x * 2 end, 21)
//!     return luaco.await(a) + 0
//! "#).into_function()?;
//! let p = engine.spawn(main, (), &ScriptContext::new("example"))?;
//! while engine.run_ready(64)?.ready > 0 {}
//! assert_eq!(p.status(), PromiseStatus::Resolved);
//! # Ok::<(), luaco_core::Error>(())
//! ```
#![warn(missing_docs, missing_debug_implementations)]

mod context;
mod driver;
mod engine;
mod error;
mod module;
mod native;
mod observer;
mod promise;
mod state;
mod stop;
mod value;

pub use context::ScriptContext;
pub use driver::{Driver, FutureKey, LocalFuture, NoFutures};
pub use engine::{
    duration_from_ms, located, type_error, ApiResult, Batch, Engine, Options, SettleCallback,
    WeakEngine, CALLER,
};
pub use error::{Error, ErrorKind, Result, ScriptError};
pub use module::{Module, ModuleContext};
pub use native::interrupt::{
    reason as interrupt_reason, set_handler as set_interrupt_handler, set_resume_check, Interrupter,
};
pub use observer::{Lifecycle, Observer, Origin, TaskInfo};
pub use promise::{Outcome, Promise, PromiseStatus};
pub use state::{CountHook, StateBuilder};
pub use stop::Stop;
pub use value::ScriptValue;

/// Lua's status code for a memory error (`LUA_ERRMEM`).
pub const STATUS_MEMORY: i64 = native::STATUS_MEMORY;

/// Whether the heap limit of a state made by [`StateBuilder`] with a
/// memory limit refused an allocation since [`forgive_memory_refusal`]:
/// the allocator's own record, which is what tells a real memory error
/// from `error("not enough memory")` (Lua gives both the same status).
pub fn memory_refused(lua: &mlua::Lua) -> bool {
    native::allocator_refused(lua)
}

/// Clears the record [`memory_refused`] reads, for a host that forgives a
/// spent heap limit at its next call.
pub fn forgive_memory_refusal(lua: &mlua::Lua) {
    native::forgive_refusal(lua)
}
