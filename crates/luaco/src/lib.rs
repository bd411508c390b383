#![doc = include_str!("../../../README.md")]
#![warn(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]

mod config;
mod error;
mod runtime;
mod state;

pub use config::Config;
pub use error::{Error, Result};
#[doc(inline)]
pub use luaco_hooks::{
    Event, Events, HookContext, HookId, HookPoint, Hooks, RejectionLog, SubscriptionId,
    TracingObserver,
};
pub use luaco_sandbox::{ContextBudget, Limit, Limits, SandboxPolicy};
pub use runtime::{PromiseHandle, Runtime};

#[doc(inline)]
pub use luaco_core::{
    ErrorKind, Lifecycle, Observer, PromiseStatus, ScriptContext, ScriptError, ScriptValue,
    TaskInfo,
};
#[doc(inline)]
pub use luaco_sched::PumpStats;

/// Re-exports of the layers below the facade, for hosts that extend luaco.
pub mod core {
    #[doc(inline)]
    pub use luaco_core::*;
}

/// The I/O layer: HTTP and file-system backends, JSON.
pub mod io {
    #[doc(inline)]
    pub use luaco_io::*;
}

/// The hooks layer: hook points, events, tracing.
pub mod hooks {
    #[doc(inline)]
    pub use luaco_hooks::*;
}

/// The scheduler layer.
pub mod sched {
    #[doc(inline)]
    pub use luaco_sched::*;
}

/// A future that completes after `duration`, on the runtime's own timer
/// (async-io's reactor, no tokio): for host futures given to
/// [`Runtime::register_async`], which must not block the loop.
///
/// ```
/// # use std::time::Duration;
/// let rt = luaco::Runtime::new(luaco::Config::default())?;
/// rt.register_async("slow_answer", |_| async {
///     luaco::sleep(Duration::from_millis(5)).await;
///     Ok(luaco::ScriptValue::Integer(42))
/// })?;
/// let p = rt.create_async("return await(slow_answer())", luaco::ScriptContext::new("t"))?;
/// assert_eq!(rt.block_on(&p)?, luaco::ScriptValue::Integer(42));
/// # Ok::<(), luaco::Error>(())
/// ```
pub async fn sleep(duration: std::time::Duration) {
    async_io::Timer::after(duration).await;
}

/// The `mlua` this runtime is built on.
pub use mlua;

/// The items most hosts need.
pub mod prelude {
    pub use crate::{
        Config, Error, ErrorKind, PromiseHandle, PromiseStatus, Runtime, ScriptContext,
        ScriptError, ScriptValue,
    };
}
