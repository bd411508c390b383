//! Untrusted scripts for luaco: what a script may reach
//! ([`SandboxPolicy`] for its I/O, [`safe_environment`] for its globals) and how long it may run
//! ([`Guard`]: an instruction budget enforced from a count hook on every
//! coroutine; a wall-clock deadline and a time slice from a thread that
//! interrupts the running coroutine when its time comes, at no cost
//! before).
//!
//! A run-level limit cannot be survived: when the budget is spent the hook
//! yields the running task, and the engine abandons it (never resumed,
//! never closed, so no `__close` handler or `pcall` gets another
//! instruction), rejecting its promise with a `"limit"` error whose `code`
//! names the limit. Where Lua cannot yield (inside a metamethod or a
//! `string.gsub` callback) the hook raises instead, at every instruction,
//! until the script is back where it can be stopped.
//!
//! No hook runs inside Lua's C pattern matcher, so [`install_counted`]
//! offers `string.find`, `match`, `gmatch` and `gsub` in Rust that charge
//! a [`Meter`] for their steps and stop when it says so;
//! [`Guard::bound_c_functions`] installs them, charged to the guard's
//! budgets, with `string.rep`, `table.move`, `table.insert` and
//! `table.remove` made to do long work in Lua where the hook sees it.
//!
//! # Examples
//!
//! ```
//! use luaco_sandbox::{Guard, Limits};
//! use luaco_sched::Scheduler;
//!
//! let guard = Guard::new(Limits { max_instructions: Some(100_000), ..Limits::default() });
//! let lua = guard.state_builder(luaco_core::StateBuilder::new()).build()?;
//! let sched = Scheduler::new(&lua, Default::default())?;
//! guard.attach(sched.engine())?;
//! let env = luaco_sandbox::safe_environment(&lua, sched.engine())?;
//! let spin = lua.load("while true do pcall(function() end) end").set_environment(env).into_function()?;
//! let p = sched.engine().spawn(spin, (), &luaco_core::ScriptContext::new("spin"))?;
//! sched.run_until(|| !p.is_pending(), None);
//! let Some(luaco_core::Outcome::Rejected(reason)) = p.outcome() else { panic!() };
//! let error = sched.engine().script_error(&reason);
//! assert_eq!((error.kind, error.code.as_deref()), (luaco_core::ErrorKind::Limit, Some("instructions")));
//! # Ok::<(), luaco_core::Error>(())
//! ```
#![warn(missing_docs, missing_debug_implementations)]
#![deny(unsafe_code)]

mod bounded;
mod env;
mod guard;
mod native;
mod pattern;
mod policy;
mod ticker;

pub use env::safe_environment;
pub use guard::{ContextBudget, Guard, Limit, Limits};
pub use pattern::{install_counted, Meter};
pub use policy::{SandboxPolicy, ScopedHttp};
