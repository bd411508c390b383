//! Arguments checked as Lua's auxiliary library checks them, and errors
//! worded as it words them, position prefix and function name included.

use std::borrow::Cow;

use mlua::{Function, Lua, LuaString, MultiValue, Table, Value};

/// What a string function raises instead of returning.
pub(crate) enum Raise {
    /// A message for Lua to raise as a plain string, as `luaL_error` would.
    Message(String),
    /// An error value from Lua code we called (a replacement function, an
    /// `__index`), to be raised again exactly as it was.
    Value(Value),
    /// The meter's error, or mlua's: handed back to mlua untouched.
    Rust(mlua::Error),
}

impl From<mlua::Error> for Raise {
    fn from(e: mlua::Error) -> Self {
        Raise::Rust(e)
    }
}

/// `luaL_where(L, 1)` as seen from the wrapper: level 0 is the Rust
/// function, 1 the Lua wrapper around it, 2 the caller the C function
/// would have had. A tail call to the wrapper replaced that caller's
/// frame (a C function's would not have): its line is lost, and the frame
/// below would name the wrong one, so there is no position then.
pub(crate) fn position(lua: &Lua) -> String {
    if lua.inspect_stack(1, |d| d.is_tail_call()).unwrap_or(false) {
        return String::new();
    }
    lua.inspect_stack(2, |d| {
        let line = d.current_line().filter(|&l| l > 0)?;
        let source = d.source();
        Some(format!(
            "{}:{line}: ",
            source.short_src.as_deref().unwrap_or("?")
        ))
    })
    .flatten()
    .unwrap_or_default()
}

/// A raise of `message` at the caller's position.
pub(crate) fn message(lua: &Lua, message: &str) -> Raise {
    Raise::Message(format!("{}{message}", position(lua)))
}

/// `luaL_typename`.
pub(crate) fn type_name(value: Option<&Value>) -> &'static str {
    match value {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::LightUserData(_) | Value::UserData(_) | Value::Error(_)) => "userdata",
        Some(Value::Integer(_) | Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        Some(_) => "?",
    }
}

/// One call's arguments, for the function Lua would name `name`.
pub(crate) struct Args<'a> {
    lua: &'a Lua,
    values: &'a MultiValue,
    name: &'static str,
}

impl<'a> Args<'a> {
    pub(crate) fn new(lua: &'a Lua, values: &'a MultiValue, name: &'static str) -> Self {
        Args { lua, values, name }
    }

    /// Argument `n`, counted from 1; `None` past the last one given.
    pub(crate) fn get(&self, n: usize) -> Option<&'a Value> {
        self.values.get(n - 1)
    }

    /// `luaL_checklstring`: a string, or a number turned into one.
    /// Borrowed when it is a string: each copy of a string reference
    /// costs a slot in mlua's reference thread.
    pub(crate) fn string(&self, n: usize) -> Result<Cow<'a, LuaString>, Raise> {
        match self.get(n) {
            Some(Value::String(s)) => Ok(Cow::Borrowed(s)),
            Some(v @ (Value::Integer(_) | Value::Number(_))) => self
                .lua
                .coerce_string(v.clone())?
                .map(Cow::Owned)
                .ok_or_else(|| self.type_error(n, "string")),
            _ => Err(self.type_error(n, "string")),
        }
    }

    /// `luaL_optinteger`: `default` for nil or nothing.
    pub(crate) fn opt_integer(&self, n: usize, default: i64) -> Result<i64, Raise> {
        match self.get(n) {
            None | Some(Value::Nil) => Ok(default),
            Some(Value::Integer(i)) => Ok(*i),
            Some(v) => {
                if let Some(i) = self.lua.coerce_integer(v.clone())? {
                    Ok(i)
                } else if self.lua.coerce_number(v.clone())?.is_some() {
                    Err(self.arg_error(n, "number has no integer representation"))
                } else {
                    Err(self.type_error(n, "number"))
                }
            }
        }
    }

    /// `lua_toboolean`.
    pub(crate) fn truthy(&self, n: usize) -> bool {
        !matches!(self.get(n), None | Some(Value::Nil | Value::Boolean(false)))
    }

    /// `luaL_typeerror`: a metatable's `__name` names the type if it can.
    pub(crate) fn type_error(&self, n: usize, expected: &str) -> Raise {
        let value = self.get(n);
        let named = match value {
            Some(Value::Table(t)) => t
                .metatable()
                .and_then(|m| m.raw_get::<LuaString>("__name").ok()),
            Some(Value::UserData(u)) => u
                .metatable()
                .ok()
                .and_then(|m| m.get::<LuaString>("__name").ok()),
            _ => None,
        };
        let got = match (&named, value) {
            (Some(name), _) => name.to_string_lossy(),
            (None, Some(Value::LightUserData(_))) => "light userdata".into(),
            (None, v) => type_name(v).into(),
        };
        self.arg_error(n, &format!("{expected} expected, got {got}"))
    }

    /// `luaL_argerror`: named as the caller called the function, with the
    /// self argument left out of the count of a method call.
    pub(crate) fn arg_error(&self, n: usize, extra: &str) -> Raise {
        let called = self.lua.inspect_stack(1, |d| {
            let names = d.names();
            let name = names.name.map(|s| s.into_owned());
            (name, names.name_what == Some("method"), d.function())
        });
        let Some((name, method, function)) = called else {
            return message(self.lua, &format!("bad argument #{n} ({extra})"));
        };
        let mut n = n;
        if method {
            n -= 1;
            if n == 0 {
                let name = name.unwrap_or_else(|| "?".into());
                return message(self.lua, &format!("calling '{name}' on bad self ({extra})"));
            }
        }
        let name = name
            .or_else(|| global_name(self.lua, &function))
            // A sandbox's copy of the string library is in no loaded
            // module, but the C function it replaced was, as `string.*`.
            .unwrap_or_else(|| format!("string.{}", self.name));
        message(
            self.lua,
            &format!("bad argument #{n} to '{name}' ({extra})"),
        )
    }
}

/// `pushglobalfuncname`: `module.field` for a function found two levels
/// down `package.loaded`, without a leading `_G.`.
fn global_name(lua: &Lua, function: &Function) -> Option<String> {
    let loaded: Table = lua.named_registry_value("_LOADED").ok()?;
    let found = loaded
        .pairs::<Value, Value>()
        .flatten()
        .find_map(|(k, v)| {
            let Value::String(module) = k else {
                return None;
            };
            let module = module.to_string_lossy();
            match v {
                Value::Function(f) if f == *function => Some(module),
                Value::Table(t) => {
                    t.pairs::<Value, Value>()
                        .flatten()
                        .find_map(|(k, v)| match (k, v) {
                            (Value::String(field), Value::Function(f)) if f == *function => {
                                Some(format!("{module}.{}", field.to_string_lossy()))
                            }
                            _ => None,
                        })
                }
                _ => None,
            }
        })?;
    Some(
        found
            .strip_prefix("_G.")
            .map(str::to_owned)
            .unwrap_or(found),
    )
}
