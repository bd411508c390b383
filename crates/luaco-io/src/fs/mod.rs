//! Files: the [`FileSystem`] trait, [`RealFs`], [`MemFs`], and the Lua `fs.*` functions.
//!
//! Paths are bytes, as Lua strings are: a path reaches the operating system
//! exactly as the script wrote it, and names come back exactly as the
//! directory holds them (no lossy UTF-8 rewriting). A path the OS cannot
//! represent (one with a NUL byte) is refused with kind `"type"`.
//!
//! [`RealFs`] (`real.rs`) and [`MemFs`] (`mem.rs`) implement [`FileSystem`];
//! `lua.rs` binds it to the `fs.*` functions.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::Error;
use crate::http::LocalBoxFuture;

mod lua;
mod mem;
mod real;

pub(crate) use lua::install;
pub use mem::MemFs;
pub use real::RealFs;

/// What a path is, as `fs.stat` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (stat does not follow the last one).
    Link,
    /// Anything else: a socket, a device, a pipe.
    Other,
}

impl FileType {
    /// The string scripts see in `stat.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::File => "file",
            FileType::Dir => "dir",
            FileType::Link => "link",
            FileType::Other => "other",
        }
    }
}

/// What `fs.stat` returns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    /// File, directory, link or other.
    pub file_type: FileType,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, in milliseconds since the Unix epoch.
    pub modified_ms: Option<f64>,
}

/// File operations as scripts see them. Paths are bytes; every failure
/// names the path. Implement it to give scripts a virtual file system.
pub trait FileSystem {
    /// The whole file; a file larger than `limit` bytes fails with
    /// [`Error::Limit`] before more than `limit + 1` bytes are read.
    fn read(&self, path: &[u8], limit: usize) -> LocalBoxFuture<Result<Vec<u8>, Error>>;
    /// Replaces (or creates) the file. Missing parent directories are an error.
    fn write(&self, path: &[u8], data: Vec<u8>) -> LocalBoxFuture<Result<(), Error>>;
    /// Adds to the end of the file, creating it if needed.
    fn append(&self, path: &[u8], data: Vec<u8>) -> LocalBoxFuture<Result<(), Error>>;
    /// Whether a file or directory exists there.
    fn exists(&self, path: &[u8]) -> LocalBoxFuture<Result<bool, Error>>;
    /// Removes a file or an empty directory.
    fn remove(&self, path: &[u8]) -> LocalBoxFuture<Result<(), Error>>;
    /// Moves `from` to `to`, replacing a file there.
    fn rename(&self, from: &[u8], to: &[u8]) -> LocalBoxFuture<Result<(), Error>>;
    /// Creates a directory; with `parents`, the missing ones above it too
    /// (and an existing directory is then no error).
    fn mkdir(&self, path: &[u8], parents: bool) -> LocalBoxFuture<Result<(), Error>>;
    /// The names of the files and directories in `dir`, sorted bytewise.
    fn list(&self, dir: &[u8]) -> LocalBoxFuture<Result<Vec<Vec<u8>>, Error>>;
    /// What is at `path` (the last component is not followed if it is a link).
    fn stat(&self, path: &[u8]) -> LocalBoxFuture<Result<Stat, Error>>;
}

impl fmt::Debug for dyn FileSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileSystem")
    }
}

/// A path as the script wrote it, for messages.
pub(crate) fn shown(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// The path the OS gets: the same bytes. NUL cannot be represented.
pub(crate) fn os_path(path: &[u8]) -> Result<PathBuf, Error> {
    if path.is_empty() || path.contains(&0) {
        return Err(Error::Invalid(format!(
            "invalid path '{}' (empty, or with a NUL byte)",
            shown(path)
        )));
    }
    Ok(PathBuf::from(OsStr::from_bytes(path)))
}

/// Limits on what one file operation may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsLimits {
    /// The largest file `fs.read` reads, in bytes.
    pub max_read: usize,
}

impl Default for FsLimits {
    fn default() -> Self {
        FsLimits {
            max_read: 256 << 20,
        }
    }
}
