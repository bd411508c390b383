//! The environment an untrusted script runs in: its own globals table with
//! copies of the safe standard libraries, and nothing that reaches the host.

use luaco_core::{Engine, ErrorKind, ScriptError};
use mlua::{Function, Lua, MultiValue, Table, Value};

/// Base functions that touch only the values given to them.
const SAFE_BASE: &[&str] = &[
    "assert",
    "error",
    "getmetatable",
    "ipairs",
    "next",
    "pairs",
    "pcall",
    "print",
    "rawequal",
    "rawget",
    "rawlen",
    "rawset",
    "select",
    "tonumber",
    "tostring",
    "type",
    "xpcall",
    "_VERSION",
];

/// Libraries copied whole: pure functions over their arguments.
const SAFE_LIBS: &[&str] = &["coroutine", "math", "table", "utf8"];

/// The parts of `os` that only read the clock.
const SAFE_OS: &[&str] = &["clock", "date", "difftime", "time"];

/// Builds a fresh globals table for one untrusted script: safe base
/// functions, copies of `string` (without `dump`), `table`, `math`, `utf8`,
/// `coroutine` and the clock part of `os`; `load` of text chunks only, into
/// this environment; `collectgarbage("count")` only; `setmetatable`
/// without `__gc`; the shared string metatable out of `getmetatable`'s
/// reach; and the luaco API from `api`, whose `http` and `fs` obey the
/// [`SandboxPolicy`](crate::SandboxPolicy) through the backends the host
/// installed for it ([`SandboxPolicy::http`](crate::SandboxPolicy::http),
/// a confined [`RealFs`](luaco_io::RealFs)). `require("luaco")` returns the API; nothing else loads.
///
/// Each call makes new tables, so nothing one script changes (a library
/// function replaced, a global set) is seen by another.
///
/// What the sandbox refuses (`__gc`, `collectgarbage` options, modules) is
/// raised as an error object of kind `"permission"` at the script's call.
pub fn safe_environment(lua: &Lua, engine: &Engine) -> mlua::Result<Table> {
    let api = &engine.api();
    let g = lua.globals();
    let env = lua.create_table()?;
    for name in SAFE_BASE {
        env.raw_set(*name, g.raw_get::<Value>(*name)?)?;
    }
    for name in SAFE_LIBS {
        if let Value::Table(lib) = g.raw_get::<Value>(*name)? {
            env.raw_set(*name, copy(lua, &lib, &[])?)?;
        }
    }
    if let Value::Table(string) = g.raw_get::<Value>("string")? {
        env.raw_set("string", copy(lua, &string, &["dump"])?)?;
        protect_string_metatable(lua)?;
    }
    if let Value::Table(os) = g.raw_get::<Value>("os")? {
        let safe = lua.create_table()?;
        for name in SAFE_OS {
            safe.raw_set(*name, os.raw_get::<Value>(*name)?)?;
        }
        env.raw_set("os", safe)?;
    }
    env.raw_set("setmetatable", setmetatable(lua, engine)?)?;
    env.raw_set("collectgarbage", collectgarbage(lua, engine, &g)?)?;
    env.raw_set("load", load(lua, &env)?)?;
    // The API too is this script's own: its tables (`http`, `json`,
    // `sync`, `events`, …) are copies, so replacing a function in one is
    // seen by no other script, and `require("luaco")` returns the copy.
    let api = api_copy(lua, api)?;
    env.raw_set("require", require(lua, engine, &api)?)?;
    for pair in api.pairs::<Value, Value>() {
        let (k, v) = pair?;
        env.raw_set(k, v)?;
    }
    env.raw_set("_G", env.clone())?;
    Ok(env)
}

/// The API table with each of its tables copied (keeping their
/// metatables): the values inside (functions, the `json.null` sentinel)
/// stay the same values.
fn api_copy(lua: &Lua, api: &Table) -> mlua::Result<Table> {
    let out = lua.create_table()?;
    for pair in api.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let v = match v {
            Value::Table(t) => {
                let c = copy(lua, &t, &[])?;
                c.set_metatable(t.metatable())?;
                Value::Table(c)
            }
            other => other,
        };
        out.raw_set(k, v)?;
    }
    Ok(out)
}

/// A shallow copy of `lib` without `skip`.
fn copy(lua: &Lua, lib: &Table, skip: &[&str]) -> mlua::Result<Table> {
    let out = lua.create_table()?;
    for pair in lib.pairs::<Value, Value>() {
        let (k, v) = pair?;
        if let Value::String(name) = &k {
            if skip
                .iter()
                .any(|s| name.as_bytes().as_ref() == s.as_bytes())
            {
                continue;
            }
        }
        out.raw_set(k, v)?;
    }
    Ok(out)
}

/// Strings share one metatable per Lua state, whose `__index` was the
/// real `string` table: `__metatable` keeps `getmetatable("")` from handing
/// it to a script, and `__index` becomes a copy without `dump`, so nothing
/// of the real table is reachable through a string value and no script's
/// changes to a `string` table become every string's methods. (The copy is
/// taken after the sandbox bounded the string functions, so methods are
/// the counted ones.)
fn protect_string_metatable(lua: &Lua) -> mlua::Result<()> {
    if let Some(mt) = lua.type_metatable::<mlua::LuaString>() {
        mt.raw_set("__metatable", "string")?;
        // A table with `dump` is the real one (a copy was made already
        // for an earlier sandboxed environment otherwise).
        if let Value::Table(index) = mt.raw_get::<Value>("__index")? {
            if !index.raw_get::<Value>("dump")?.is_nil() {
                mt.raw_set("__index", copy(lua, &index, &["dump"])?)?;
            }
        }
    }
    Ok(())
}

/// `setmetatable` without finalizers: Lua runs `__gc` with hooks off, so
/// no limit could stop a loop in one. A metatable with `__gc` when it is
/// set is refused (one given `__gc` later is never a finalizer: Lua marks
/// objects only at `setmetatable`).
fn setmetatable(lua: &Lua, engine: &Engine) -> mlua::Result<Function> {
    let real: Function = lua.globals().raw_get("setmetatable")?;
    engine.api_function(lua, move |_, args: MultiValue| {
        if let Some(Value::Table(mt)) = args.get(1) {
            let gc: Value = mt.raw_get("__gc").map_err(ScriptError::from)?;
            if !gc.is_nil() {
                return Err(refused(
                    "setmetatable: __gc metamethods are not allowed in the sandbox",
                ));
            }
        }
        real.call::<Value>(args).map_err(ScriptError::from)
    })
}

/// A refusal of the sandbox, raised at the script's call.
fn refused(message: impl Into<String>) -> ScriptError {
    ScriptError::new(ErrorKind::Permission, message)
}

/// `collectgarbage`: `"count"` (and no argument, a full collection is
/// refused) — anything that changes the collector's behaviour is the host's.
fn collectgarbage(lua: &Lua, engine: &Engine, g: &Table) -> mlua::Result<Function> {
    let real: Function = g.raw_get("collectgarbage")?;
    engine.api_function(lua, move |_, args: MultiValue| {
        let option = match args.front() {
            Some(Value::String(s)) => s.to_string_lossy(),
            None | Some(Value::Nil) => "collect".to_owned(),
            Some(other) => {
                return Err(ScriptError::new(
                    ErrorKind::Type,
                    format!("collectgarbage: bad option of type {}", other.type_name()),
                ))
            }
        };
        match option.as_str() {
            "count" => real.call::<Value>("count").map_err(ScriptError::from),
            other => Err(refused(format!(
                "collectgarbage(\"{other}\") is not allowed in the sandbox (only \"count\")"
            ))),
        }
    })
}

/// `load(chunk [, name [, mode [, env]]])`: text chunks only; without
/// `env`, into the sandbox's own environment.
fn load(lua: &Lua, env: &Table) -> mlua::Result<Function> {
    let real: Function = lua.globals().raw_get("load")?;
    let env = env.clone();
    lua.create_function(move |lua, args: MultiValue| {
        let mut args: Vec<Value> = args.into_iter().collect();
        args.resize(4, Value::Nil);
        // Mode "t": Lua itself refuses binary chunks, from strings and
        // from reader functions alike, whatever mode the script asked for.
        args[2] = Value::String(lua.create_string("t")?);
        if args[3].is_nil() {
            args[3] = Value::Table(env.clone());
        }
        real.call::<MultiValue>(MultiValue::from_iter(args))
    })
}

/// `require(name)`: the luaco API only.
fn require(lua: &Lua, engine: &Engine, api: &Table) -> mlua::Result<Function> {
    let api = api.clone();
    engine.api_function(lua, move |_, args: MultiValue| match args.front() {
        Some(Value::String(s)) if s.as_bytes().as_ref() == b"luaco" => {
            Ok(Value::Table(api.clone()))
        }
        other => Err(refused(format!(
            "require: module '{}' is not available in the sandbox (only \"luaco\")",
            other.and_then(|v| v.to_string().ok()).unwrap_or_default()
        ))),
    })
}
