//! [`MemFs`]: an in-memory file system with the same rules as the real one.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind as IoKind;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::{os_path, shown, FileSystem, FileType, Stat};
use crate::error::Error;
use crate::http::LocalBoxFuture;

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
