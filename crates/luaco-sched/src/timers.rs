//! The timer module: `sleep`, `set_timeout`, `set_interval` and `now`, and
//! the timer door of the core (`timeout()` and HTTP time-outs use it).
//!
//! The Lua half (`lua/timers.lua`) keeps the entries of each deadline's
//! bucket; Rust keeps only the ordered set of bucket keys (deadlines in
//! whole microseconds), so the number of references Rust holds does not
//! grow with the number of timers.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use luaco_core::{Module, ModuleContext};
use mlua::Function;

use crate::clock::Clock;

/// The ordered set of bucket keys, shared with the scheduler.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    keys: RefCell<BTreeSet<i64>>,
}

impl Deadlines {
    /// The earliest deadline, as time on the loop's clock.
    pub(crate) fn first(&self) -> Option<Duration> {
        self.keys
            .borrow()
            .first()
            .map(|&us| Duration::from_micros(us.max(0) as u64))
    }
}

/// The Lua functions the scheduler calls each turn.
pub(crate) struct TimerFns {
    pub(crate) fire: Function,
    pub(crate) count: Function,
}

pub(crate) struct Timers {
    pub(crate) deadlines: Rc<Deadlines>,
    pub(crate) clock: Rc<dyn Clock>,
    pub(crate) fns: RefCell<Option<TimerFns>>,
}

impl Module for Timers {
    fn name(&self) -> &str {
        "timers"
    }

    fn install(&self, ctx: &ModuleContext<'_>) -> mlua::Result<()> {
        let lua = ctx.lua;
        let prims = lua.create_table()?;
        let d = self.deadlines.clone();
        prims.raw_set(
            "add_key",
            lua.create_function(move |_, k: i64| {
                d.keys.borrow_mut().insert(k);
                Ok(())
            })?,
        )?;
        let d = self.deadlines.clone();
        prims.raw_set(
            "remove_key",
            lua.create_function(move |_, k: i64| {
                d.keys.borrow_mut().remove(&k);
                Ok(())
            })?,
        )?;
        let d = self.deadlines.clone();
        prims.raw_set(
            "pop_due",
            lua.create_function(move |_, now: i64| {
                let mut keys = d.keys.borrow_mut();
                match keys.first() {
                    Some(&k) if k <= now => Ok(keys.pop_first()),
                    _ => Ok(None),
                }
            })?,
        )?;
        let clock = self.clock.clone();
        prims.raw_set(
            "now",
            lua.create_function(move |_, ()| Ok(clock.now().as_secs_f64() * 1000.0))?,
        )?;
        let (fire, count): (Function, Function) = lua
            .load(include_str!("lua/timers.lua"))
            .set_name("=luaco")
            .call((ctx.internals.clone(), prims))?;
        *self.fns.borrow_mut() = Some(TimerFns { fire, count });
        Ok(())
    }
}
