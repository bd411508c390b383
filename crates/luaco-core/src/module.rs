//! [`Module`]: how a Lua API module (timers, I/O, events) is installed into
//! an engine. Adding a module is one impl, installed with
//! [`Engine::install`](crate::Engine::install).

use mlua::{Lua, Table};

use crate::engine::Engine;

/// A part of the Lua API. `install` adds its functions to the API table and
/// may load Lua code of its own against the engine's internals.
pub trait Module {
    /// A short name, for error messages.
    fn name(&self) -> &str;
    /// Adds the module to `ctx.api`.
    fn install(&self, ctx: &ModuleContext<'_>) -> mlua::Result<()>;
}

/// What a [`Module`] gets to install itself with.
#[derive(Debug)]
pub struct ModuleContext<'a> {
    /// The Lua state.
    pub lua: &'a Lua,
    /// The engine.
    pub engine: &'a Engine,
    /// The API table scripts see (as globals and as `require("luaco")`).
    pub api: Table,
    /// The Lua half's internals (`new_promise`, `settle`, `track`, …), for
    /// modules with Lua code of their own. Its fields are documented in
    /// the core's Lua sources; they are not a stable interface.
    pub internals: Table,
}

impl ModuleContext<'_> {
    /// Runs a chunk of the module's Lua code with `(internals, extra)` as `...`.
    pub fn load(&self, name: &str, source: &str, extra: impl mlua::IntoLua) -> mlua::Result<()> {
        self.lua
            .load(source)
            .set_name(format!("={name}"))
            .call::<()>((self.internals.clone(), extra))
    }
}
