//! The standard functions whose C loops no hook interrupts, made
//! stoppable for a run with limits: the pattern functions count their
//! steps against the budget ([`install_counted`]), and `string.rep`,
//! `table.move`, `table.insert` and `table.remove`, which can loop in C
//! over nothing at all, do long work in Lua (`bounded.lua`); `rep`,
//! `upper`, `lower`, `reverse`, `format`, `concat`, `unpack` and `sort`,
//! whose C work is long for one instruction, are charged by its size.

use std::rc::Rc;

use mlua::{Lua, Table};

use crate::guard::Guard;
use crate::pattern::{install_counted, Meter};

/// Charges pattern steps to a guard. It refuses wherever a script's code
/// runs, the state's main thread included (a metamethod run while a
/// promise settles); the engine's own Lua keeps the C functions it took
/// before they were replaced.
struct GuardMeter {
    guard: Guard,
}

impl Meter for GuardMeter {
    fn charge(&self, steps: u64) -> mlua::Result<()> {
        self.guard
            .charge_steps(steps)
            .map_err(mlua::Error::external)
    }
}

impl Guard {
    /// Replaces, in `lua`'s `string` and `table` libraries (the string
    /// metatable's too, which is the same table), the functions that can
    /// run unboundedly in C with versions this guard can stop. Call it
    /// before any script environment copies the libraries.
    pub fn bound_c_functions(&self, lua: &Lua) -> mlua::Result<()> {
        let globals = lua.globals();
        let string: Table = globals.raw_get("string")?;
        let table: Table = globals.raw_get("table")?;
        let guard = self.clone();
        let charge = lua.create_function(move |_, n: f64| {
            guard
                .charge_steps(n.max(0.0) as u64)
                .map_err(mlua::Error::external)
        })?;
        lua.load(include_str!("bounded.lua"))
            .set_name("=luaco/bounded.lua")
            .call::<()>((string.clone(), table, charge))?;
        let meter = GuardMeter {
            guard: self.clone(),
        };
        install_counted(lua, &string, Rc::new(meter))
    }
}
