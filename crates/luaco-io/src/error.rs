//! The I/O error type and how it reaches scripts.

use luaco_core::{ErrorKind, ScriptError};

/// An I/O failure, as a backend reports it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request or path is malformed (script kind `"type"`).
    #[error("{0}")]
    Invalid(String),
    /// The connection failed: refused, reset, DNS (script kind `"network"`).
    #[error("{0}")]
    Network(String),
    /// A deadline passed (script kind `"timeout"`).
    #[error("{0}")]
    Timeout(String),
    /// The operation is not allowed here (script kind `"permission"`).
    #[error("{0}")]
    Permission(String),
    /// A file operation failed (script kind `"io"`); the message names the path.
    #[error("{path}: {source}")]
    Io {
        /// The path the operation was about.
        path: String,
        /// What the operating system (or the in-memory backend) said.
        #[source]
        source: std::io::Error,
    },
}

/// The result type of luaco-io.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The kind scripts see in `err.kind`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) => ErrorKind::Type,
            Error::Network(_) => ErrorKind::Network,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Permission(_) => ErrorKind::Permission,
            Error::Io { .. } => ErrorKind::Io,
        }
    }

    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The error object scripts receive, its message prefixed with the
    /// operation (`fs.read: /tmp/x: No such file or directory`); this error
    /// stays attached as its source.
    pub fn into_script(self, operation: &str) -> ScriptError {
        ScriptError::new(self.kind(), format!("{operation}: {self}")).with_source(self)
    }
}
