//! One Lua state of a runtime with everything luaco puts in it: the
//! engine, the I/O module, the hooks, the guard that enforces its limits,
//! and the environment its scripts see. A runtime has one; a script whose
//! [`ContextBudget`](luaco_sandbox::ContextBudget) limits memory or grants
//! its own I/O gets another (Lua limits memory per state), driven by the
//! same loop.

use std::rc::Rc;

use luaco_core::{Engine, Observer, ScriptError, StateBuilder};
use luaco_io::IoConfig;
use luaco_sandbox::{Guard, Limit, Limits};
use mlua::{Lua, Table, Value};

use luaco_hooks::{Hub, TracingObserver};

use crate::config::Config;
use crate::error::Result;

/// What differs between the states of one runtime.
pub(crate) struct Settings<'a> {
    pub(crate) config: &'a Config,
    pub(crate) io: &'a IoConfig,
    /// The runtime's hooks and events, attached to every state.
    pub(crate) hub: &'a Hub,
    /// The run-level limits its guard enforces (`max_memory` sizes the heap).
    pub(crate) limits: Limits,
    /// The guard also enforces each script's `ContextBudget`.
    pub(crate) contexts: bool,
    /// Scripts get a safe environment even if the runtime is not sandboxed.
    pub(crate) untrusted: bool,
}

/// A Lua state built for luaco.
pub(crate) struct State {
    pub(crate) lua: Lua,
    pub(crate) engine: Engine,
    pub(crate) api: Table,
    pub(crate) guard: Guard,
    /// The scripts' globals when they run sandboxed.
    pub(crate) env: Option<Table>,
}

impl State {
    /// Builds the state; `engine` makes its engine (and puts it in a loop).
    pub(crate) fn build(
        settings: Settings<'_>,
        engine: impl FnOnce(&Lua) -> Result<Engine>,
    ) -> Result<State> {
        let Settings {
            config,
            io,
            hub,
            limits,
            contexts,
            untrusted,
        } = settings;
        let guard = if contexts {
            Guard::with_contexts(limits)
        } else {
            Guard::new(limits)
        };
        let lua = guard
            .state_builder(StateBuilder::new().memory_limit(limits.max_memory))
            .build()?;
        let engine = engine(&lua)?;
        engine.add_observer(Rc::new(TracingObserver::new()) as Rc<dyn Observer>);
        guard.attach(&engine)?;
        if limits.max_memory.is_some() {
            engine.add_observer(Rc::new(MemoryWatch {
                guard: guard.clone(),
                lua: lua.weak(),
            }) as Rc<dyn Observer>);
        }
        luaco_io::install(&engine, &lua, io.clone())?;
        hub.attach(&engine)?;
        let api = engine.api();
        // After the engine and modules took their own copies of the
        // libraries (they stay unbounded), before any script environment
        // copies them.
        if guard.is_needed() {
            guard.bound_c_functions(&lua)?;
        }
        if guard.is_needed() || limits.max_memory.is_some() {
            guard.harden(&lua, &lua.globals(), limits.max_memory.is_some())?;
        }
        let env = match config.sandbox.is_some() || untrusted {
            true => Some(luaco_sandbox::safe_environment(&lua, &engine)?),
            false => None,
        };
        if config.globals && env.is_none() {
            let globals = lua.globals();
            for pair in api.pairs::<Value, Value>() {
                let (k, v) = pair?;
                globals.raw_set(k, v)?;
            }
        }
        if let Ok(Value::Table(loaded)) = lua.named_registry_value::<Value>("_LOADED") {
            loaded.raw_set("luaco", api.clone())?;
        }
        Ok(State {
            lua,
            engine,
            api,
            guard,
            env,
        })
    }

    /// The error the scripts of this state fail with once its guard tripped.
    pub(crate) fn limit_error(&self) -> Option<ScriptError> {
        self.guard.tripped().map(|limit| self.guard.error(limit))
    }
}

/// Ends the run when the heap limit makes a task fail (handled or not), or an
/// allocation failure was caught inside the engine and reported: a run
/// whose memory ran out cannot be trusted to go on (and its pending timers
/// would otherwise keep it alive).
struct MemoryWatch {
    guard: Guard,
    lua: mlua::WeakLua,
}

impl Observer for MemoryWatch {
    fn wants_lifecycle(&self) -> bool {
        false
    }

    fn limit_hit(&self, _task: &luaco_core::TaskInfo<'_>, error: &ScriptError) {
        if Limit::of(error) == Some(Limit::Memory) {
            self.unhandled_rejection(error);
        }
    }

    fn unhandled_rejection(&self, error: &ScriptError) {
        // Typed, and only if the allocator really refused: a script that
        // raises Lua's memory message itself hits no limit.
        if Limit::of(error) != Some(Limit::Memory) {
            return;
        }
        if let Some(lua) = self.lua.try_upgrade() {
            if luaco_core::memory_refused(&lua) {
                self.guard.trip_memory(&lua);
            }
        }
    }
}
