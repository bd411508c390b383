//! [`RealFs`]: the operating system's files, on `blocking`'s thread pool,
//! optionally confined to a directory.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use super::{os_path, shown, FileSystem, FileType, Stat};
use crate::error::Error;
use crate::http::LocalBoxFuture;

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
    // Symlinks: where the path leads once every link in it is followed,
    // the last one included even when what it names does not exist yet
    // (a write would create it), must be inside root.
    match follow_links(&normal) {
        Some(real) if real.starts_with(root) => Ok(normal),
        _ => Err(denied()),
    }
}

/// How many links one path may go through (Linux's own limit).
const MAX_LINK_HOPS: usize = 40;

/// The path `path` (absolute, without `.` or `..`) leads to: each of its
/// parts that is a symlink replaced by its target, recursively, whether or
/// not the final target exists. `None` for a loop of links.
fn follow_links(path: &Path) -> Option<PathBuf> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    let mut rest: VecDeque<OsString> = path
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .map(|c| c.as_os_str().to_owned())
        .collect();
    let mut out = PathBuf::from("/");
    let mut hops = 0;
    while let Some(part) = rest.pop_front() {
        if part == ".." {
            out.pop();
            continue;
        }
        if part == "." || part.is_empty() {
            continue;
        }
        let next = out.join(&part);
        let is_link = std::fs::symlink_metadata(&next).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            out = next;
            continue;
        }
        hops += 1;
        if hops > MAX_LINK_HOPS {
            return None;
        }
        let target = std::fs::read_link(&next).ok()?;
        if target.is_absolute() {
            out = PathBuf::from("/");
        }
        // The target's parts come first; `..` in them is taken literally.
        for c in target.components().rev() {
            match c {
                Component::Normal(p) => rest.push_front(p.to_owned()),
                Component::ParentDir => rest.push_front(OsString::from("..")),
                _ => {}
            }
        }
    }
    Some(out)
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
