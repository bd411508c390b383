//! The timer module: `sleep`, `set_timeout`, `set_interval` and `now`, and
//! the timer door of the core (`timeout()` and HTTP time-outs use it).
//!
//! The heap of deadlines is Rust's ([`native`]), reached from the Lua half
//! (`lua/timers.lua`) through C functions; what a timer stands for (a
//! promise, a handle) stays a Lua value in a table slot. Rust holds three
//! Lua functions, whatever the number of timers, and calls one per turn.

use std::cell::RefCell;
use std::rc::Rc;

use luaco_core::{Module, ModuleContext};
use mlua::Function;

use crate::clock::Clock;
use crate::native;

/// What one call of the Lua `turn` did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TurnOut {
    pub(crate) left: usize,
    pub(crate) ready: usize,
    pub(crate) resumed: usize,
    pub(crate) fired: u64,
    /// The next deadline in microseconds, if any timer is pending.
    pub(crate) next: Option<i64>,
}

/// The Lua functions the scheduler calls.
pub(crate) struct TimerFns {
    /// `turn(now_us, fire_due, max)`: fire due timers (at the start of a
    /// turn), then run the batch.
    pub(crate) turn: Function,
    /// `status()` → next deadline (or -1), pending timer count.
    pub(crate) status: Function,
    /// `clear()`: stop every timer.
    pub(crate) clear: Function,
}

impl TimerFns {
    pub(crate) fn turn(&self, now_us: i64, fire_due: bool, max: usize) -> mlua::Result<TurnOut> {
        let (left, ready, resumed, fired, next, _live): (i64, i64, i64, u64, i64, i64) =
            self.turn.call((now_us, fire_due, max))?;
        Ok(TurnOut {
            left: left.max(0) as usize,
            ready: ready.max(0) as usize,
            resumed: resumed.max(0) as usize,
            fired,
            next: (next >= 0).then_some(next),
        })
    }

    pub(crate) fn status(&self) -> (Option<i64>, usize) {
        match self.status.call::<(i64, i64)>(()) {
            Ok((next, live)) => ((next >= 0).then_some(next), live.max(0) as usize),
            Err(_) => (None, 0),
        }
    }
}

pub(crate) struct Timers {
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
        prims.raw_set("heap", native::timer_heap(lua, self.clock.clone())?)?;
        let (turn, status, clear): (Function, Function, Function) = lua
            .load(include_str!("lua/timers.lua"))
            .set_name("=luaco/timers.lua")
            .call((ctx.internals.clone(), prims))?;
        *self.fns.borrow_mut() = Some(TimerFns {
            turn,
            status,
            clear,
        });
        Ok(())
    }
}
