//! Lua 5.4's `string.find`, `match`, `gmatch` and `gsub` with a matcher
//! that can be stopped: [`install_counted`] puts them in a string table,
//! charging a [`Meter`] as they go.
//!
//! Lua's own matcher runs in C, where no hook runs, so a backtracking
//! pattern (`("a"):rep(30)` against `("a*"):rep(30) .. "b"`) can run for
//! minutes past any instruction budget or deadline. These versions count
//! their steps (one per character tried, one per backtrack) and ask the
//! meter after every 1024 of them whether to go on.
//!
//! Each function is a small Lua wrapper around a Rust one, so that errors
//! reach scripts as Lua's do: a plain string with the caller's position,
//! and a replacement function's error value untouched. The meter's error
//! is the exception: it is returned to mlua as it is.

mod args;
mod functions;
mod matcher;

use std::rc::Rc;

use mlua::{Function, Lua, MultiValue, Table};

use functions::Shared;

/// Decides whether pattern matching may go on. Shared by every call of
/// the functions [`install_counted`] makes.
pub trait Meter {
    /// Records `steps` more steps, counted since the previous charge. An
    /// error stops the matching at once and is raised to the script
    /// unchanged (not wrapped, not turned into a string).
    fn charge(&self, steps: u64) -> mlua::Result<()>;
}

/// Raises a wrapper's error values as Lua would: at level 0, because the
/// message already carries the position `luaL_error` gives.
const WRAPPERS: &str = r#"
local string, find, match, gmatch, gsub, RAISE, error, select, unpack = ...
local function check(...)
  if ... == RAISE then error((select(2, ...)), 0) end
  return ...
end
string.find = function(...) return check(find(...)) end
string.match = function(...) return check(match(...)) end
string.gsub = function(...) return check(gsub(...)) end
-- The Rust side refills the buffer with the captures of the next few
-- matches, `width` values each.
string.gmatch = function(...)
  local fill = check(gmatch(...))
  local buffer, at, size, width = {}, 1, 0, 1
  return function()
    if at > size then
      size, width = check(fill(buffer))
      if size == 0 then return end
      at = 1
    end
    local i = at
    at = i + width
    if width == 1 then return buffer[i] end
    return unpack(buffer, i, at - 1)
  end
end
"#;

/// Replaces `find`, `match`, `gmatch` and `gsub` in `string` with
/// versions that behave as Lua 5.4's (results, argument handling, error
/// messages) and charge `meter` for their matching steps: every 1024
/// steps and at the end of each call.
///
/// A string's methods (`s:find(p)`) come from the string metatable's
/// `__index`, which is the table given here only if it is the one the
/// metatable names. Needs the base library's `pcall`, `error` and
/// `select`, and `table.unpack`, in the globals when it is called.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use luaco_sandbox::{install_counted, Meter};
///
/// struct Budget(std::cell::Cell<u64>);
/// impl Meter for Budget {
///     fn charge(&self, steps: u64) -> mlua::Result<()> {
///         let left = self.0.get().checked_sub(steps);
///         self.0.set(left.unwrap_or(0));
///         left.map(|_| ()).ok_or_else(|| mlua::Error::runtime("out of steps"))
///     }
/// }
///
/// let lua = mlua::Lua::new();
/// install_counted(&lua, &lua.globals().get("string")?, Rc::new(Budget(1_000_000.into())))?;
/// assert_eq!(lua.load(r#"return ("key = value"):match("(%w+) = (%w+)")"#).eval::<(String, String)>()?,
///     ("key".to_string(), "value".to_string()));
/// let runaway = lua.load(r#"return string.find(("a"):rep(30), ("a*"):rep(30) .. "b")"#).exec();
/// assert!(runaway.unwrap_err().to_string().contains("out of steps"));
/// # Ok::<(), mlua::Error>(())
/// ```
pub fn install_counted(lua: &Lua, string: &Table, meter: Rc<dyn Meter>) -> mlua::Result<()> {
    let globals = lua.globals();
    let index = lua
        .load("return function(t, k) return t[k] end")
        .set_name("=luaco/pattern")
        .eval::<Function>()?;
    let shared = Rc::new(Shared {
        meter,
        pcall: globals.raw_get("pcall")?,
        index,
        raise: lua.create_table()?,
    });
    let find = {
        let shared = shared.clone();
        lua.create_function(move |lua, args: MultiValue| {
            shared.respond(lua, functions::find(lua, &shared, &args, true))
        })?
    };
    let match_ = {
        let shared = shared.clone();
        lua.create_function(move |lua, args: MultiValue| {
            shared.respond(lua, functions::find(lua, &shared, &args, false))
        })?
    };
    let gmatch = {
        let shared = shared.clone();
        lua.create_function(move |lua, args: MultiValue| {
            shared.respond(lua, functions::gmatch(lua, &shared, &args))
        })?
    };
    let gsub = {
        let shared = shared.clone();
        lua.create_function(move |lua, args: MultiValue| {
            shared.respond(lua, functions::gsub(lua, &shared, &args))
        })?
    };
    let error: Function = globals.raw_get("error")?;
    let select: Function = globals.raw_get("select")?;
    let unpack: Function = globals.raw_get::<Table>("table")?.raw_get("unpack")?;
    lua.load(WRAPPERS).set_name("=luaco/pattern").call::<()>((
        string.clone(),
        find,
        match_,
        gmatch,
        gsub,
        shared.raise.clone(),
        error,
        select,
        unpack,
    ))
}
