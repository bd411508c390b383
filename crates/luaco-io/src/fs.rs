//! Files: the [`FileSystem`] trait, [`RealFs`], [`MemFs`], and the Lua `fs.*` functions.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::ErrorKind as IoKind;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use luaco_core::{type_error, ApiResult, Engine, ScriptError};
use mlua::{Lua, MultiValue, Table, Value};

use crate::error::Error;
use crate::http::LocalBoxFuture;

/// File operations as scripts see them. Paths are strings; every failure
/// names the path. Implement it to give scripts a virtual file system.
pub trait FileSystem {
    /// The whole file.
    fn read(&self, path: &str) -> LocalBoxFuture<Result<Vec<u8>, Error>>;
    /// Replaces (or creates) the file. Missing parent directories are an error.
    fn write(&self, path: &str, data: Vec<u8>) -> LocalBoxFuture<Result<(), Error>>;
    /// Whether a file or directory exists there.
    fn exists(&self, path: &str) -> LocalBoxFuture<Result<bool, Error>>;
    /// Removes a file or an empty directory.
    fn remove(&self, path: &str) -> LocalBoxFuture<Result<(), Error>>;
    /// The names of the files and directories in `dir`, sorted.
    fn list(&self, dir: &str) -> LocalBoxFuture<Result<Vec<String>, Error>>;
}

impl fmt::Debug for dyn FileSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileSystem")
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
        path: &str,
        op: impl FnOnce(&Path) -> std::io::Result<T> + Send + 'static,
    ) -> LocalBoxFuture<Result<T, Error>> {
        let root = self.root.clone();
        let shown = path.to_owned();
        Box::pin(blocking::unblock(move || {
            let real = resolve(root.as_deref(), &shown)?;
            op(&real).map_err(|e| Error::io(shown, e))
        }))
    }
}

/// Maps a script's path to a real one, refusing escapes from `root`.
fn resolve(root: Option<&Path>, path: &str) -> Result<PathBuf, Error> {
    if path.is_empty() || path.contains('\0') {
        return Err(Error::Invalid(format!("invalid path '{path}'")));
    }
    let Some(root) = root else {
        return Ok(PathBuf::from(path));
    };
    let denied = || Error::Permission(format!("{path}: outside the allowed directory"));
    let given = Path::new(path);
    let joined = if given.is_absolute() {
        given.to_path_buf()
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
    fn read(&self, path: &str) -> LocalBoxFuture<Result<Vec<u8>, Error>> {
        self.run(path, |p| std::fs::read(p))
    }

    fn write(&self, path: &str, data: Vec<u8>) -> LocalBoxFuture<Result<(), Error>> {
        self.run(path, move |p| std::fs::write(p, data))
    }

    fn exists(&self, path: &str) -> LocalBoxFuture<Result<bool, Error>> {
        self.run(path, |p| p.try_exists())
    }

    fn remove(&self, path: &str) -> LocalBoxFuture<Result<(), Error>> {
        self.run(path, |p| {
            if std::fs::symlink_metadata(p)?.is_dir() {
                std::fs::remove_dir(p)
            } else {
                std::fs::remove_file(p)
            }
        })
    }

    fn list(&self, dir: &str) -> LocalBoxFuture<Result<Vec<String>, Error>> {
        self.run(dir, |p| {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(p)? {
                names.push(entry?.file_name().to_string_lossy().into_owned());
            }
            names.sort();
            Ok(names)
        })
    }
}

/// An in-memory file system, for tests and for scripts that must not touch
/// the disk. Paths are `/`-separated; relative paths start at `/`.
///
/// ```
/// use luaco_io::{FileSystem, MemFs};
/// let fs = MemFs::new();
/// fs.create_dir("/data");
/// futures_lite::future::block_on(fs.write("/data/a.txt", b"hi".to_vec())).unwrap();
/// let names = futures_lite::future::block_on(fs.list("/data")).unwrap();
/// assert_eq!(names, vec!["a.txt".to_string()]);
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

impl MemFs {
    /// An empty file system holding only `/`.
    pub fn new() -> MemFs {
        MemFs::default()
    }

    /// Creates `path` and its missing parents.
    pub fn create_dir(&self, path: &str) {
        let mut dirs = self.dirs.borrow_mut();
        let mut p = normalize(path);
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
}

/// `/`-rooted, with `.` and `..` resolved (`..` at the root stays there).
fn normalize(path: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in Path::new(path).components() {
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

fn not_found(path: &str) -> Error {
    Error::io(
        path,
        std::io::Error::new(IoKind::NotFound, "no such file or directory"),
    )
}

impl FileSystem for MemFs {
    fn read(&self, path: &str) -> LocalBoxFuture<Result<Vec<u8>, Error>> {
        let p = normalize(path);
        let result = match self.files.borrow().get(&p) {
            Some(data) => Ok(data.clone()),
            None if self.dirs.borrow().contains(&p) => Err(Error::io(
                path,
                std::io::Error::new(IoKind::IsADirectory, "is a directory"),
            )),
            None => Err(not_found(path)),
        };
        self.now(result)
    }

    fn write(&self, path: &str, data: Vec<u8>) -> LocalBoxFuture<Result<(), Error>> {
        let p = normalize(path);
        let parent_ok = p.parent().is_some_and(|d| self.dirs.borrow().contains(d));
        let result = if self.dirs.borrow().contains(&p) {
            Err(Error::io(
                path,
                std::io::Error::new(IoKind::IsADirectory, "is a directory"),
            ))
        } else if !parent_ok {
            Err(not_found(path))
        } else {
            self.files.borrow_mut().insert(p, data);
            Ok(())
        };
        self.now(result)
    }

    fn exists(&self, path: &str) -> LocalBoxFuture<Result<bool, Error>> {
        let p = normalize(path);
        let found = self.files.borrow().contains_key(&p) || self.dirs.borrow().contains(&p);
        self.now(Ok(found))
    }

    fn remove(&self, path: &str) -> LocalBoxFuture<Result<(), Error>> {
        let p = normalize(path);
        let result = if self.files.borrow_mut().remove(&p).is_some() {
            Ok(())
        } else if self.dirs.borrow().contains(&p) {
            let has_children = self.files.borrow().keys().any(|f| f.parent() == Some(&p))
                || self.dirs.borrow().iter().any(|d| d.parent() == Some(&p));
            if has_children || p == Path::new("/") {
                Err(Error::io(
                    path,
                    std::io::Error::new(IoKind::DirectoryNotEmpty, "directory not empty"),
                ))
            } else {
                self.dirs.borrow_mut().remove(&p);
                Ok(())
            }
        } else {
            Err(not_found(path))
        };
        self.now(result)
    }

    fn list(&self, dir: &str) -> LocalBoxFuture<Result<Vec<String>, Error>> {
        let p = normalize(dir);
        let result = if !self.dirs.borrow().contains(&p) {
            Err(not_found(dir))
        } else {
            let child = |q: &PathBuf| {
                (q.parent() == Some(&p))
                    .then(|| q.file_name().map(|n| n.to_string_lossy().into_owned()))
            };
            let mut names: Vec<String> = self
                .files
                .borrow()
                .keys()
                .chain(self.dirs.borrow().iter())
                .filter_map(child)
                .flatten()
                .collect();
            names.sort();
            Ok(names)
        };
        self.now(result)
    }
}

fn path_arg(lua: &Lua, func: &str, args: &MultiValue) -> ApiResult<String> {
    match args.front() {
        Some(Value::String(s)) => Ok(s.to_string_lossy().to_string()),
        other => Err(type_error(lua, func, 1, "string", other)),
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

pub(crate) fn install(
    engine: &Engine,
    lua: &Lua,
    api: &Table,
    fs: Option<Rc<dyn FileSystem>>,
) -> mlua::Result<()> {
    let table = lua.create_table()?;
    let denied = |name: &'static str, path: &str| {
        Error::Permission(format!("{path}: file system access is not allowed")).into_script(name)
    };
    macro_rules! define {
        ($name:literal, |$lua:ident, $fs:ident, $path:ident, $args:ident| $body:expr) => {{
            let (engine2, fs2) = (engine.clone(), fs.clone());
            let f = engine.api_function(lua, move |$lua, $args| {
                let $path = path_arg($lua, concat!("fs.", $name), &$args)?;
                let Some($fs) = fs2.as_ref() else {
                    let err = denied(concat!("fs.", $name), &$path);
                    let f: LocalBoxFuture<Result<Value, Error>> =
                        Box::pin(async { Ok(Value::Nil) });
                    return operation(&engine2, concat!("fs.", $name), f, move |_, _| {
                        Err(mlua::Error::external(err))
                    });
                };
                let (fut, conv) = $body;
                operation(&engine2, concat!("fs.", $name), fut, conv)
            })?;
            table.raw_set($name, f)?;
        }};
    }
    define!("read", |lua, fs, path, args| (
        fs.read(&path),
        |lua: &Lua, data: Vec<u8>| { lua.create_string(&data).map(Value::String) }
    ));
    define!("exists", |lua, fs, path, args| (
        fs.exists(&path),
        |_: &Lua, found: bool| { Ok(Value::Boolean(found)) }
    ));
    define!("remove", |lua, fs, path, args| (
        fs.remove(&path),
        |_: &Lua, (): ()| Ok(Value::Nil)
    ));
    define!("list", |lua, fs, path, args| (
        fs.list(&path),
        |lua: &Lua, names: Vec<String>| {
            let t = lua.create_table_with_capacity(names.len(), 0)?;
            for (i, name) in names.into_iter().enumerate() {
                t.raw_set(i + 1, name)?;
            }
            Ok(Value::Table(t))
        }
    ));
    define!("write", |lua, fs, path, args| {
        let data = match args.get(1) {
            Some(Value::String(s)) => s.as_bytes().to_vec(),
            other => return Err(type_error(lua, "fs.write", 2, "string", other)),
        };
        (fs.write(&path, data), |_: &Lua, (): ()| Ok(Value::Nil))
    });
    api.raw_set("fs", table)?;
    Ok(())
}
