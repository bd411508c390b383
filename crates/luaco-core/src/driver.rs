//! [`Driver`]: the event loop as the core sees it. The core runs tasks
//! when asked ([`Engine::run_ready`](crate::Engine::run_ready)); it needs
//! the loop only to run Rust futures and to be woken when one settles.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// Identifies a Rust future running on a [`Driver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FutureKey(pub u64);

/// A Rust future that a [`Driver`] runs to completion on the loop's thread.
pub type LocalFuture = Pin<Box<dyn Future<Output = ()> + 'static>>;

/// The event loop that runs an [`Engine`](crate::Engine): `luaco-sched`
/// implements it.
///
/// Every method is called from the loop's own thread and must not call back
/// into the engine or into Lua.
pub trait Driver {
    /// Runs a Rust future on the loop.
    fn spawn(&self, future: LocalFuture) -> FutureKey;
    /// Drops a running future at once; `true` if it was still running.
    fn cancel_future(&self, key: FutureKey) -> bool;
    /// Tasks became ready outside a turn (a future settled a promise): a
    /// loop that sleeps should wake up.
    fn wake(&self) {}
}

impl fmt::Debug for dyn Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Driver")
    }
}

/// A driver for engines that never run Rust futures (tests, pure-Lua
/// hosts): spawning drops the future.
#[derive(Debug, Default)]
pub struct NoFutures;

impl Driver for NoFutures {
    fn spawn(&self, _future: LocalFuture) -> FutureKey {
        FutureKey(u64::MAX)
    }
    fn cancel_future(&self, _key: FutureKey) -> bool {
        false
    }
}
