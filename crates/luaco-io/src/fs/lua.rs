//! The Lua `fs.*` functions over a [`FileSystem`].

use std::rc::Rc;

use luaco_core::{type_error, ApiResult, Engine, ErrorKind, ScriptError};
use mlua::{Lua, MultiValue, Table, Value};

use super::{shown, FileSystem, FsLimits, Stat};
use crate::error::Error;
use crate::http::LocalBoxFuture;

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
        &'static str,
    ) -> ApiResult<LocalBoxFuture<Result<Out, Error>>>;
    let calls: [(&'static str, &'static str, Start); 9] = [
        ("read", "fs.read", |lua, fs, args, limits, f| {
            let p = path_arg(lua, f, args, 1)?;
            Ok(data(fs.read(&p, limits.max_read), Out::Bytes))
        }),
        ("write", "fs.write", |lua, fs, args, _, f| {
            let p = path_arg(lua, f, args, 1)?;
            let d = data_arg(lua, f, args)?;
            Ok(data(fs.write(&p, d), |()| Out::Nil))
        }),
        ("append", "fs.append", |lua, fs, args, _, f| {
            let p = path_arg(lua, f, args, 1)?;
            let d = data_arg(lua, f, args)?;
            Ok(data(fs.append(&p, d), |()| Out::Nil))
        }),
        ("exists", "fs.exists", |lua, fs, args, _, f| {
            let p = path_arg(lua, f, args, 1)?;
            Ok(data(fs.exists(&p), Out::Bool))
        }),
        ("remove", "fs.remove", |lua, fs, args, _, f| {
            let p = path_arg(lua, f, args, 1)?;
            Ok(data(fs.remove(&p), |()| Out::Nil))
        }),
        ("rename", "fs.rename", |lua, fs, args, _, f| {
            let from = path_arg(lua, f, args, 1)?;
            let to = path_arg(lua, f, args, 2)?;
            Ok(data(fs.rename(&from, &to), |()| Out::Nil))
        }),
        ("mkdir", "fs.mkdir", |lua, fs, args, _, f| {
            let p = path_arg(lua, f, args, 1)?;
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
                                        "{}: unknown option '{}'",
                                        f,
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
                other => return Err(type_error(lua, f, 2, "table", other)),
            };
            Ok(data(fs.mkdir(&p, parents), |()| Out::Nil))
        }),
        ("list", "fs.list", |lua, fs, args, _, f| {
            let p = path_arg(lua, f, args, 1)?;
            Ok(data(fs.list(&p), Out::Names))
        }),
        ("stat", "fs.stat", |lua, fs, args, _, f| {
            let p = path_arg(lua, f, args, 1)?;
            Ok(data(fs.stat(&p), Out::Stat))
        }),
    ];
    for (name, full, start) in calls {
        let (engine2, fs2) = (engine.clone(), fs.clone());
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
            let fut = start(lua, &**fs, &args, limits, full)?;
            operation(&engine2, full, fut, out_to_lua)
        })?;
        table.raw_set(name, f)?;
    }
    api.raw_set("fs", table)?;
    Ok(())
}
