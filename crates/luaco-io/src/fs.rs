//! Files: the [`FileSystem`] trait, [`RealFs`], [`MemFs`], and the Lua `fs.*` functions.
//!
//! Paths are bytes, as Lua strings are: a path reaches the operating system
//! exactly as the script wrote it, and names come back exactly as the
//! directory holds them (no lossy UTF-8 rewriting). A path the OS cannot
//! represent (one with a NUL byte) is refused with kind `"type"`.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt;
use std::io::{ErrorKind as IoKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::time::SystemTime;

use luaco_core::{type_error, ApiResult, Engine, ErrorKind, ScriptError};
use mlua::{Lua, MultiValue, Table, Value};

use crate::error::Error;
use crate::http::LocalBoxFuture;

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
fn shown(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// The path the OS gets: the same bytes. NUL cannot be represented.
fn os_path(path: &[u8]) -> Result<PathBuf, Error> {
    if path.is_empty() || path.contains(&0) {
        return Err(Error::Invalid(format!(
            "invalid path '{}' (empty, or with a NUL byte)",
            shown(path)
        )));
    }
    Ok(PathBuf::from(OsStr::from_bytes(path)))
}

fn read_limited(path: &Path, limit: usize) -> Result<Vec<u8>, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    let declared = file.metadata().map(|m| m.len()).unwrap_or(0);
    let too_big = || {
        Error::Limit(format!(
            "{}: file is larger than the read limit of {limit} bytes",
            path.display()
        ))
    };
    if declared > limit as u64 {
        return Err(too_big());
    }
    // Read at most one byte past the limit: a file that grew since the
    // metadata was read is caught too, and memory stays bounded.
    let mut data = Vec::new();
    data.try_reserve(declared as usize)
        .map_err(|_| Error::Limit(format!("{}: not enough memory to read it", path.display())))?;
    file.take(limit as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::io(path.display().to_string(), e))?;
    if data.len() > limit {
        return Err(too_big());
    }
    Ok(data)
}

fn stat_of(meta: &std::fs::Metadata) -> Stat {
    let ft = meta.file_type();
    let file_type = if ft.is_symlink() {
        FileType::Link
    } else if ft.is_dir() {
        FileType::Dir
    } else if ft.is_file() {
        FileType::File
    } else {
        FileType::Other
    };
    let modified_ms = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64() * 1000.0);
    Stat {
        file_type,
        size: meta.len(),
        modified_ms,
    }
}

/// The real file system. Each operation runs on `blocking`'s thread pool, so
/// the loop never waits on the disk.
///
/// With a root ([`RealFs::confined`]) every path is taken relative to it and
/// must stay inside it: `..` and symlinks that lead out are refused with
/// [`Error::Permission`], for `exists` as for the rest.
#[derive(Clone, Debug, Default)]
pub struct RealFs {
    root: Option<PathBuf>,
}

impl RealFs {
    /// Unconfined: paths are used as given (relative to the working directory).
    pub fn new() -> RealFs {
        RealFs::default()
    }

    /// Confined to `root`, which must exist.
    pub fn confined(root: impl AsRef<Path>) -> std::io::Result<RealFs> {
        Ok(RealFs {
            root: Some(std::fs::canonicalize(root)?),
        })
    }

    /// The root, when confined.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    fn run<T: Send + 'static>(
        &self,
        path: &[u8],
        op: impl FnOnce(&Path) -> std::io::Result<T> + Send + 'static,
    ) -> LocalBoxFuture<Result<T, Error>> {
        let root = self.root.clone();
        let path = path.to_vec();
        Box::pin(blocking::unblock(move || {
            let real = resolve(root.as_deref(), &path)?;
            op(&real).map_err(|e| Error::io(shown(&path), e))
        }))
    }
}

/// Maps a script's path to a real one, refusing escapes from `root`.
fn resolve(root: Option<&Path>, path: &[u8]) -> Result<PathBuf, Error> {
    let given = os_path(path)?;
    let Some(root) = root else {
        return Ok(given);
    };
    let denied = || Error::Permission(format!("{}: outside the allowed directory", shown(path)));
    let joined = if given.is_absolute() {
        given
    } else {
        root.join(given)
    };
    let mut normal = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::ParentDir => {
                if !normal.pop() {
                    return Err(denied());
                }
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    if !normal.starts_with(root) {
        return Err(denied());
    }
    // Symlinks: the deepest part of the path that exists must resolve inside root.
    let mut probe = normal.clone();
    loop {
        match std::fs::canonicalize(&probe) {
            Ok(real) => {
                if !real.starts_with(root) {
                    return Err(denied());
                }
                break;
            }
            Err(_) => {
                if !probe.pop() {
                    break;
                }
            }
        }
    }
    Ok(normal)
}

impl FileSystem for RealFs {
    fn read(&self, path: &[u8], limit: usize) -> LocalBoxFuture<Result<Vec<u8>, Error>> {
        let root = self.root.clone();
        let path = path.to_vec();
        Box::pin(blocking::unblock(move || {
            let real = resolve(root.as_deref(), &path)?;
            read_limited(&real, limit).map_err(|e| match e {
                Error::Io { source, .. } => Error::io(shown(&path), source),
                Error::Limit(_) => Error::Limit(format!(
                    "{}: file is larger than the read limit of {limit} bytes",
                    shown(&path)
                )),
                other => other,
            })
        }))
    }

    fn write(&self, path: &[u8], data: Vec<u8>) -> LocalBoxFuture<Result<(), Error>> {
        self.run(path, move |p| std::fs::write(p, data))
    }

    fn append(&self, path: &[u8], data: Vec<u8>) -> LocalBoxFuture<Result<(), Error>> {
        self.run(path, move |p| {
            use std::io::Write;
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(p)?
                .write_all(&data)
        })
    }

    fn exists(&self, path: &[u8]) -> LocalBoxFuture<Result<bool, Error>> {
        self.run(path, |p| p.try_exists())
    }

    fn remove(&self, path: &[u8]) -> LocalBoxFuture<Result<(), Error>> {
        self.run(path, |p| {
            if std::fs::symlink_metadata(p)?.is_dir() {
                std::fs::remove_dir(p)
            } else {
                std::fs::remove_file(p)
            }
        })
    }

    fn rename(&self, from: &[u8], to: &[u8]) -> LocalBoxFuture<Result<(), Error>> {
        let root = self.root.clone();
        let (from, to) = (from.to_vec(), to.to_vec());
        Box::pin(blocking::unblock(move || {
            let a = resolve(root.as_deref(), &from)?;
            let b = resolve(root.as_deref(), &to)?;
            std::fs::rename(&a, &b).map_err(|e| Error::io(shown(&from), e))
        }))
    }

    fn mkdir(&self, path: &[u8], parents: bool) -> LocalBoxFuture<Result<(), Error>> {
        self.run(path, move |p| {
            if parents {
                std::fs::create_dir_all(p)
            } else {
                std::fs::create_dir(p)
            }
        })
    }

    fn list(&self, dir: &[u8]) -> LocalBoxFuture<Result<Vec<Vec<u8>>, Error>> {
        self.run(dir, |p| {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(p)? {
                names.push(entry?.file_name().as_bytes().to_vec());
            }
            names.sort();
            Ok(names)
        })
    }

    fn stat(&self, path: &[u8]) -> LocalBoxFuture<Result<Stat, Error>> {
        self.run(path, |p| std::fs::symlink_metadata(p).map(|m| stat_of(&m)))
    }
}

/// An in-memory file system, for tests and for scripts that must not touch
/// the disk. Paths are `/`-separated; relative paths start at `/`.
///
/// ```
/// use luaco_io::{FileSystem, MemFs};
/// let fs = MemFs::new();
/// fs.create_dir("/data");
/// futures_lite::future::block_on(fs.write(b"/data/a.txt", b"hi".to_vec())).unwrap();
/// let names = futures_lite::future::block_on(fs.list(b"/data")).unwrap();
/// assert_eq!(names, vec![b"a.txt".to_vec()]);
/// ```
#[derive(Debug)]
pub struct MemFs {
    files: RefCell<BTreeMap<PathBuf, Vec<u8>>>,
    dirs: RefCell<BTreeSet<PathBuf>>,
}

impl Default for MemFs {
    fn default() -> Self {
        MemFs {
            files: RefCell::default(),
            dirs: RefCell::new(BTreeSet::from([PathBuf::from("/")])),
        }
    }
}

fn io_error(path: &[u8], kind: IoKind, what: &str) -> Error {
    Error::io(shown(path), std::io::Error::new(kind, what.to_owned()))
}

impl MemFs {
    /// An empty file system holding only `/`.
    pub fn new() -> MemFs {
        MemFs::default()
    }

    /// Creates `path` and its missing parents.
    pub fn create_dir(&self, path: &str) {
        let mut dirs = self.dirs.borrow_mut();
        let mut p = normalize(Path::new(path));
        loop {
            dirs.insert(p.clone());
            if !p.pop() {
                break;
            }
        }
    }

    fn now<T: 'static>(&self, result: Result<T, Error>) -> LocalBoxFuture<Result<T, Error>> {
        Box::pin(async move { result })
    }

    fn is_dir(&self, p: &Path) -> bool {
        self.dirs.borrow().contains(p)
    }

    fn is_file(&self, p: &Path) -> bool {
        self.files.borrow().contains_key(p)
    }

    /// The normalized path, or the error for a path the OS could not take.
    fn path(&self, path: &[u8]) -> Result<PathBuf, Error> {
        Ok(normalize(&os_path(path)?))
    }

    /// Checks that `p` may be created as a file: its parent is a directory
    /// and it is not one itself.
    fn creatable(&self, raw: &[u8], p: &Path) -> Result<(), Error> {
        if self.is_dir(p) {
            return Err(io_error(raw, IoKind::IsADirectory, "is a directory"));
        }
        match p.parent() {
            Some(d) if self.is_dir(d) => Ok(()),
            Some(d) if self.is_file(d) => {
                Err(io_error(raw, IoKind::NotADirectory, "not a directory"))
            }
            _ => Err(io_error(raw, IoKind::NotFound, "no such file or directory")),
        }
    }
}

/// `/`-rooted, with `.` and `..` resolved (`..` at the root stays there).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in path.components() {
        match part {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn not_found(path: &[u8]) -> Error {
    io_error(path, IoKind::NotFound, "no such file or directory")
}

impl FileSystem for MemFs {
    fn read(&self, path: &[u8], limit: usize) -> LocalBoxFuture<Result<Vec<u8>, Error>> {
        let result = self
            .path(path)
            .and_then(|p| match self.files.borrow().get(&p) {
                Some(data) if data.len() > limit => Err(Error::Limit(format!(
                    "{}: file is larger than the read limit of {limit} bytes",
                    shown(path)
                ))),
                Some(data) => Ok(data.clone()),
                None if self.is_dir(&p) => {
                    Err(io_error(path, IoKind::IsADirectory, "is a directory"))
                }
                None => Err(not_found(path)),
            });
        self.now(result)
    }

    fn write(&self, path: &[u8], data: Vec<u8>) -> LocalBoxFuture<Result<(), Error>> {
        let result = self.path(path).and_then(|p| {
            self.creatable(path, &p)?;
            self.files.borrow_mut().insert(p, data);
            Ok(())
        });
        self.now(result)
    }

    fn append(&self, path: &[u8], data: Vec<u8>) -> LocalBoxFuture<Result<(), Error>> {
        let result = self.path(path).and_then(|p| {
            self.creatable(path, &p)?;
            self.files.borrow_mut().entry(p).or_default().extend(data);
            Ok(())
        });
        self.now(result)
    }

    fn exists(&self, path: &[u8]) -> LocalBoxFuture<Result<bool, Error>> {
        let result = self.path(path).map(|p| self.is_file(&p) || self.is_dir(&p));
        self.now(result)
    }

    fn remove(&self, path: &[u8]) -> LocalBoxFuture<Result<(), Error>> {
        let result = self.path(path).and_then(|p| {
            if self.files.borrow_mut().remove(&p).is_some() {
                return Ok(());
            }
            if !self.is_dir(&p) {
                return Err(not_found(path));
            }
            let has_children = self.files.borrow().keys().any(|f| f.parent() == Some(&p))
                || self.dirs.borrow().iter().any(|d| d.parent() == Some(&p));
            if has_children || p == Path::new("/") {
                return Err(io_error(
                    path,
                    IoKind::DirectoryNotEmpty,
                    "directory not empty",
                ));
            }
            self.dirs.borrow_mut().remove(&p);
            Ok(())
        });
        self.now(result)
    }

    fn rename(&self, from: &[u8], to: &[u8]) -> LocalBoxFuture<Result<(), Error>> {
        let result = self.path(from).and_then(|a| {
            let b = self.path(to)?;
            if self.is_file(&a) {
                self.creatable(to, &b)?;
                let data = self.files.borrow_mut().remove(&a).unwrap_or_default();
                self.files.borrow_mut().insert(b, data);
                Ok(())
            } else if self.is_dir(&a) {
                if b.starts_with(&a) {
                    return Err(io_error(
                        to,
                        IoKind::InvalidInput,
                        "cannot move a directory into itself",
                    ));
                }
                if self.is_file(&b) || (self.is_dir(&b) && b != a) {
                    return Err(io_error(to, IoKind::AlreadyExists, "already exists"));
                }
                if !b.parent().is_some_and(|d| self.is_dir(d)) {
                    return Err(not_found(to));
                }
                let moved = |p: &PathBuf| p.strip_prefix(&a).ok().map(|rest| b.join(rest));
                let dirs: Vec<PathBuf> = self.dirs.borrow().iter().cloned().collect();
                let mut new_dirs = BTreeSet::new();
                for d in dirs {
                    new_dirs.insert(moved(&d).unwrap_or(d));
                }
                *self.dirs.borrow_mut() = new_dirs;
                let files = std::mem::take(&mut *self.files.borrow_mut());
                *self.files.borrow_mut() = files
                    .into_iter()
                    .map(|(p, data)| (moved(&p).unwrap_or(p), data))
                    .collect();
                Ok(())
            } else {
                Err(not_found(from))
            }
        });
        self.now(result)
    }

    fn mkdir(&self, path: &[u8], parents: bool) -> LocalBoxFuture<Result<(), Error>> {
        let result = self.path(path).and_then(|p| {
            if self.is_file(&p) {
                return Err(io_error(path, IoKind::AlreadyExists, "already exists"));
            }
            if self.is_dir(&p) {
                return if parents {
                    Ok(())
                } else {
                    Err(io_error(path, IoKind::AlreadyExists, "already exists"))
                };
            }
            if parents {
                let mut ancestors: Vec<&Path> = p.ancestors().collect();
                ancestors.reverse();
                for a in ancestors {
                    if self.is_file(a) {
                        return Err(io_error(path, IoKind::NotADirectory, "not a directory"));
                    }
                    self.dirs.borrow_mut().insert(a.to_path_buf());
                }
                return Ok(());
            }
            self.creatable(path, &p)?;
            self.dirs.borrow_mut().insert(p);
            Ok(())
        });
        self.now(result)
    }

    fn list(&self, dir: &[u8]) -> LocalBoxFuture<Result<Vec<Vec<u8>>, Error>> {
        let result = self.path(dir).and_then(|p| {
            if !self.is_dir(&p) {
                return Err(if self.is_file(&p) {
                    io_error(dir, IoKind::NotADirectory, "not a directory")
                } else {
                    not_found(dir)
                });
            }
            let child = |q: &PathBuf| {
                (q.parent() == Some(&p))
                    .then(|| q.file_name().map(|n| n.as_bytes().to_vec()))
                    .flatten()
            };
            let mut names: Vec<Vec<u8>> = self
                .files
                .borrow()
                .keys()
                .chain(self.dirs.borrow().iter())
                .filter_map(child)
                .collect();
            names.sort();
            Ok(names)
        });
        self.now(result)
    }

    fn stat(&self, path: &[u8]) -> LocalBoxFuture<Result<Stat, Error>> {
        let result = self.path(path).and_then(|p| {
            if let Some(data) = self.files.borrow().get(&p) {
                return Ok(Stat {
                    file_type: FileType::File,
                    size: data.len() as u64,
                    modified_ms: None,
                });
            }
            if self.is_dir(&p) {
                return Ok(Stat {
                    file_type: FileType::Dir,
                    size: 0,
                    modified_ms: None,
                });
            }
            Err(not_found(path))
        });
        self.now(result)
    }
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

/// Argument `n` as a path: the string's bytes, exactly.
fn path_arg(lua: &Lua, func: &str, args: &MultiValue, n: usize) -> ApiResult<Vec<u8>> {
    match args.get(n - 1) {
        Some(Value::String(s)) => {
            let bytes = s.as_bytes().to_vec();
            if bytes.contains(&0) || bytes.is_empty() {
                return Err(ScriptError::new(
                    ErrorKind::Type,
                    luaco_core::located(
                        lua,
                        luaco_core::CALLER,
                        &format!("bad argument #{n} to '{func}' (a path cannot be empty or hold a NUL byte)"),
                    ),
                ));
            }
            Ok(bytes)
        }
        other => Err(type_error(lua, func, n, "string", other)),
    }
}

fn data_arg(lua: &Lua, func: &str, args: &MultiValue) -> ApiResult<Vec<u8>> {
    match args.get(1) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        other => Err(type_error(lua, func, 2, "string", other)),
    }
}

/// Runs a file operation as a promise of a Lua value.
fn operation<T: 'static>(
    engine: &Engine,
    name: &'static str,
    future: LocalBoxFuture<Result<T, Error>>,
    to_lua: impl FnOnce(&Lua, T) -> mlua::Result<Value> + 'static,
) -> ApiResult<Value> {
    let future = async move { future.await.map_err(|e| e.into_script(name)) };
    engine
        .spawn_future(future, to_lua)
        .map_err(ScriptError::from)
}

/// Futures cannot hold a `Lua`; these carry plain data out and the
/// conversion runs once the operation is done.
enum Out {
    Nil,
    Bytes(Vec<u8>),
    Bool(bool),
    Names(Vec<Vec<u8>>),
    Stat(Stat),
}

fn out_to_lua(lua: &Lua, out: Out) -> mlua::Result<Value> {
    Ok(match out {
        Out::Nil => Value::Nil,
        Out::Bytes(b) => Value::String(lua.create_string(&b)?),
        Out::Bool(b) => Value::Boolean(b),
        Out::Names(names) => {
            let t = lua.create_table_with_capacity(names.len(), 0)?;
            for (i, name) in names.into_iter().enumerate() {
                t.raw_set(i + 1, lua.create_string(&name)?)?;
            }
            Value::Table(t)
        }
        Out::Stat(s) => {
            let t = lua.create_table_with_capacity(0, 3)?;
            t.raw_set("type", s.file_type.as_str())?;
            t.raw_set("size", s.size)?;
            if let Some(ms) = s.modified_ms {
                t.raw_set("modified", ms)?;
            }
            Value::Table(t)
        }
    })
}

fn data<T: 'static>(
    f: LocalBoxFuture<Result<T, Error>>,
    wrap: fn(T) -> Out,
) -> LocalBoxFuture<Result<Out, Error>> {
    Box::pin(async move { f.await.map(wrap) })
}

pub(crate) fn install(
    engine: &Engine,
    lua: &Lua,
    api: &Table,
    fs: Option<Rc<dyn FileSystem>>,
    limits: FsLimits,
) -> mlua::Result<()> {
    let table = lua.create_table()?;
    type Start = fn(
        &Lua,
        &dyn FileSystem,
        &MultiValue,
        FsLimits,
    ) -> ApiResult<LocalBoxFuture<Result<Out, Error>>>;
    let calls: [(&'static str, Start); 9] = [
        ("read", |lua, fs, args, limits| {
            let p = path_arg(lua, "fs.read", args, 1)?;
            Ok(data(fs.read(&p, limits.max_read), Out::Bytes))
        }),
        ("write", |lua, fs, args, _| {
            let p = path_arg(lua, "fs.write", args, 1)?;
            let d = data_arg(lua, "fs.write", args)?;
            Ok(data(fs.write(&p, d), |()| Out::Nil))
        }),
        ("append", |lua, fs, args, _| {
            let p = path_arg(lua, "fs.append", args, 1)?;
            let d = data_arg(lua, "fs.append", args)?;
            Ok(data(fs.append(&p, d), |()| Out::Nil))
        }),
        ("exists", |lua, fs, args, _| {
            let p = path_arg(lua, "fs.exists", args, 1)?;
            Ok(data(fs.exists(&p), Out::Bool))
        }),
        ("remove", |lua, fs, args, _| {
            let p = path_arg(lua, "fs.remove", args, 1)?;
            Ok(data(fs.remove(&p), |()| Out::Nil))
        }),
        ("rename", |lua, fs, args, _| {
            let from = path_arg(lua, "fs.rename", args, 1)?;
            let to = path_arg(lua, "fs.rename", args, 2)?;
            Ok(data(fs.rename(&from, &to), |()| Out::Nil))
        }),
        ("mkdir", |lua, fs, args, _| {
            let p = path_arg(lua, "fs.mkdir", args, 1)?;
            let parents = match args.get(1) {
                None | Some(Value::Nil) => false,
                Some(Value::Table(t)) => {
                    for pair in t.pairs::<Value, Value>() {
                        let (k, _) = pair.map_err(ScriptError::from)?;
                        if !matches!(&k, Value::String(s) if s.as_bytes().as_ref() == b"parents") {
                            return Err(ScriptError::new(
                                ErrorKind::Type,
                                luaco_core::located(
                                    lua,
                                    luaco_core::CALLER,
                                    &format!(
                                        "fs.mkdir: unknown option '{}'",
                                        k.to_string().unwrap_or_default()
                                    ),
                                ),
                            ));
                        }
                    }
                    t.raw_get::<Option<bool>>("parents")
                        .map_err(ScriptError::from)?
                        .unwrap_or(false)
                }
                other => return Err(type_error(lua, "fs.mkdir", 2, "table", other)),
            };
            Ok(data(fs.mkdir(&p, parents), |()| Out::Nil))
        }),
        ("list", |lua, fs, args, _| {
            let p = path_arg(lua, "fs.list", args, 1)?;
            Ok(data(fs.list(&p), Out::Names))
        }),
        ("stat", |lua, fs, args, _| {
            let p = path_arg(lua, "fs.stat", args, 1)?;
            Ok(data(fs.stat(&p), Out::Stat))
        }),
    ];
    for (name, start) in calls {
        let (engine2, fs2) = (engine.clone(), fs.clone());
        let full: &'static str = match name {
            "read" => "fs.read",
            "write" => "fs.write",
            "append" => "fs.append",
            "exists" => "fs.exists",
            "remove" => "fs.remove",
            "rename" => "fs.rename",
            "mkdir" => "fs.mkdir",
            "list" => "fs.list",
            _ => "fs.stat",
        };
        let f = engine.api_function(lua, move |lua, args| {
            let Some(fs) = fs2.as_ref() else {
                // Arguments are checked first, as with a backend.
                let path = path_arg(lua, full, &args, 1)?;
                let err = Error::Permission(format!(
                    "{}: file system access is not allowed",
                    shown(&path)
                ));
                let denied: LocalBoxFuture<Result<Out, Error>> = Box::pin(async move { Err(err) });
                return operation(&engine2, full, denied, out_to_lua);
            };
            let fut = start(lua, &**fs, &args, limits)?;
            operation(&engine2, full, fut, out_to_lua)
        })?;
        table.raw_set(name, f)?;
    }
    api.raw_set("fs", table)?;
    Ok(())
}
