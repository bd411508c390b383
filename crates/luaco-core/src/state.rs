//! [`StateBuilder`]: the Lua state a runtime runs in, configured before any
//! thread exists.
//!
//! Layers that need to act on every coroutine (the sandbox's instruction
//! budget) must do so before the first one is made: mlua's global hook
//! covers only threads created after it is installed. The builder is that
//! moment: [`StateBuilder::hook`] installs a count hook on the fresh state,
//! and the engine creates its worker coroutines only later.

use std::fmt;
use std::rc::Rc;

use mlua::{HookTriggers, Lua, LuaOptions, StdLib, VmState};

/// A count hook: called every `every` VM instructions in every coroutine.
pub type CountHook = Rc<dyn Fn(&Lua) -> mlua::Result<VmState>>;

/// Builds the Lua state for an engine.
///
/// ```
/// use luaco_core::StateBuilder;
/// let lua = StateBuilder::new().build()?;
/// assert!(lua.globals().contains_key("debug")?);
/// # Ok::<(), mlua::Error>(())
/// ```
#[derive(Clone)]
pub struct StateBuilder {
    libs: StdLib,
    memory_limit: Option<usize>,
    hook: Option<(u32, CountHook)>,
}

impl Default for StateBuilder {
    fn default() -> Self {
        StateBuilder {
            libs: StdLib::ALL_SAFE | StdLib::DEBUG,
            memory_limit: None,
            hook: None,
        }
    }
}

impl fmt::Debug for StateBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateBuilder")
            .field("libs", &self.libs)
            .field("memory_limit", &self.memory_limit)
            .field("hook_every", &self.hook.as_ref().map(|h| h.0))
            .finish()
    }
}

impl StateBuilder {
    /// Every standard library, `debug` included (what a trusted script gets).
    pub fn new() -> StateBuilder {
        StateBuilder::default()
    }

    /// Loads exactly `libs`. The engine itself uses `debug` internally, so
    /// it is always loaded; without [`StdLib::DEBUG`] here it is removed
    /// from the globals once the engine has taken what it needs.
    pub fn libs(mut self, libs: StdLib) -> Self {
        self.libs = libs;
        self
    }

    /// Limits the Lua heap to `bytes`: an allocation past it fails with a
    /// memory error the runtime reports as kind `"limit"`.
    pub fn memory_limit(mut self, bytes: Option<usize>) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Installs `hook` to run every `every` instructions in every coroutine,
    /// before any coroutine exists.
    pub fn hook(mut self, every: u32, hook: CountHook) -> Self {
        self.hook = Some((every.max(1), hook));
        self
    }

    /// Whether scripts should see `debug` (the engine hides it otherwise).
    pub fn exposes_debug(&self) -> bool {
        self.libs.contains(StdLib::DEBUG)
    }

    /// Creates the state.
    pub fn build(&self) -> mlua::Result<Lua> {
        let lua = crate::native::new_state(self.libs | StdLib::DEBUG, LuaOptions::default())?;
        if !self.exposes_debug() {
            // The engine reads `debug` from the registry's loaded table.
            lua.globals().raw_set("debug", mlua::Value::Nil)?;
        }
        if let Some(limit) = self.memory_limit {
            lua.set_memory_limit(limit)?;
            crate::native::watch_allocator(&lua)?;
        }
        if let Some((every, hook)) = &self.hook {
            let hook = hook.clone();
            lua.set_global_hook(
                HookTriggers::new().every_nth_instruction(*every),
                move |lua, _| hook(lua),
            )?;
        }
        Ok(lua)
    }
}
