//! The facade's error type.

use luaco_core::ScriptError;

/// Errors of a [`Runtime`](crate::Runtime).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Lua VM failed (a syntax error, a memory error, a failed call).
    #[error(transparent)]
    Lua(#[from] mlua::Error),
    /// The script rejected: its error object, as data.
    #[error("{0}")]
    Script(ScriptError),
    /// A value could not be converted between Lua and Rust.
    #[error("conversion failed: {0}")]
    Conversion(String),
    /// The promise has not settled yet.
    #[error("the promise is still pending")]
    Pending,
    /// Nothing is ready or pending, yet the promise has not settled: it never will.
    #[error("the promise can never settle: no task, timer or I/O is left that could settle it")]
    Stalled,
    /// The runtime that owned the promise was dropped.
    #[error("the runtime that ran this script was dropped")]
    RuntimeDropped,
    /// An I/O backend could not be set up (a root certificate in
    /// `Config::http` that does not parse, say).
    #[error("I/O setup: {0}")]
    Io(#[from] luaco_io::Error),
    /// A run-level limit ended the run: `code` names it (`"instructions"`,
    /// `"memory"`; the wall clock is [`Error::Timeout`]).
    #[error("{0}")]
    Limit(ScriptError),
    /// `Config::max_execution_time` passed.
    #[error("timeout: the run exceeded its wall-clock limit")]
    Timeout,
}

impl From<luaco_core::Error> for Error {
    fn from(e: luaco_core::Error) -> Self {
        match e {
            luaco_core::Error::Lua(e) => Error::Lua(e),
            luaco_core::Error::Script(s) => Error::Script(s),
            luaco_core::Error::Conversion(s) => Error::Conversion(s),
            luaco_core::Error::Pending => Error::Pending,
            other => Error::Conversion(other.to_string()),
        }
    }
}

/// The result type of the facade.
pub type Result<T, E = Error> = std::result::Result<T, E>;
