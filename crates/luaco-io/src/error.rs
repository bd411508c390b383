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
    /// A size cap was hit (script kind `"limit"`); the message names the cap.
    #[error("{0}")]
    Limit(String),
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
            Error::Limit(_) => ErrorKind::Limit,
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
        let mut script = ScriptError::new(self.kind(), format!("{operation}: {self}"));
        if let Some(code) = self.code() {
            script = script.with_code(code);
        }
        script.with_source(self)
    }

    /// The errno name of an [`Error::Io`] (`"ENOENT"`, …), if it has one.
    pub fn code(&self) -> Option<&'static str> {
        let Error::Io { source, .. } = self else {
            return None;
        };
        if let Some(code) = source.raw_os_error().and_then(errno_name) {
            return Some(code);
        }
        use std::io::ErrorKind as K;
        Some(match source.kind() {
            K::NotFound => "ENOENT",
            K::AlreadyExists => "EEXIST",
            K::PermissionDenied => "EACCES",
            K::NotADirectory => "ENOTDIR",
            K::IsADirectory => "EISDIR",
            K::DirectoryNotEmpty => "ENOTEMPTY",
            K::InvalidInput => "EINVAL",
            K::CrossesDevices => "EXDEV",
            K::ReadOnlyFilesystem => "EROFS",
            K::StorageFull => "ENOSPC",
            K::InvalidFilename => "ENAMETOOLONG",
            _ => return None,
        })
    }
}

/// The name of a Linux errno value, for the ones file operations give.
#[cfg(target_os = "linux")]
fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        1 => "EPERM",
        2 => "ENOENT",
        5 => "EIO",
        9 => "EBADF",
        12 => "ENOMEM",
        13 => "EACCES",
        16 => "EBUSY",
        17 => "EEXIST",
        18 => "EXDEV",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        23 => "ENFILE",
        24 => "EMFILE",
        26 => "ETXTBSY",
        27 => "EFBIG",
        28 => "ENOSPC",
        30 => "EROFS",
        31 => "EMLINK",
        36 => "ENAMETOOLONG",
        39 => "ENOTEMPTY",
        40 => "ELOOP",
        _ => return None,
    })
}

/// Elsewhere errno numbers differ; the `ErrorKind` fallback names them.
#[cfg(not(target_os = "linux"))]
fn errno_name(_errno: i32) -> Option<&'static str> {
    None
}
