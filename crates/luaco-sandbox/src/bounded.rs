//! The standard functions whose C loops no hook interrupts, made
//! stoppable for a run with limits: the pattern functions count their
//! steps against the budget ([`install_counted`]), and `string.rep`,
//! `table.move`, `table.insert` and `table.remove`, which can loop in C
//! over nothing at all, do long work in Lua (`bounded.lua`).

use std::rc::Rc;

use mlua::{Lua, Table};

use crate::guard::Guard;
use crate::pattern::{install_counted, Meter};

/// Charges pattern steps to a guard.
struct GuardMeter {
    guard: Guard,
    /// The state's main thread: the engine's own code (tracebacks, error
    /// messages) runs there, never a script's, and must not be refused.
    main: mlua::Thread,
    lua: mlua::WeakLua,
}

impl Meter for GuardMeter {
    fn charge(&self, steps: u64) -> mlua::Result<()> {
        let charged = self.guard.charge_steps(steps);
        match charged {
            Ok(()) => Ok(()),
            Err(error) => {
                match self
                    .lua
                    .try_upgrade()
                    .map(|l| l.current_thread() == self.main)
                {
                    Some(true) => Ok(()),
                    _ => Err(mlua::Error::external(error)),
                }
            }
        }
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
        lua.load(include_str!("bounded.lua"))
            .set_name("=luaco/bounded.lua")
            .call::<()>((string.clone(), table))?;
        let meter = GuardMeter {
            guard: self.clone(),
            main: lua.current_thread(),
            lua: lua.weak(),
        };
        install_counted(lua, &string, Rc::new(meter))
    }
}
