//! The Rust side of the event emitter: subscribers, patterns, and
//! delivery to the Lua side of every state the hub is attached to.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use luaco_core::{ErrorKind, ScriptError, ScriptValue};
use mlua::{Function, Value};

use crate::registry::Registry;

/// An event as a Rust subscriber sees it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Event<'a> {
    /// Its name, such as `"coroutine.completed"` or `"job.done"`.
    pub name: &'a str,
    /// Its data.
    pub data: &'a ScriptValue,
}

type Subscriber = dyn Fn(&Event<'_>);

/// Names a subscription, for [`Events::off`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubscriptionId(u64);

/// Where an attached state's Lua subscribers are reached.
pub(crate) struct LuaSide {
    /// `deliver(name, data, quiet)` of the state's `events.lua`.
    pub(crate) deliver: RefCell<Option<Function>>,
    /// Lifecycle events (bit = [`Lifecycle`](luaco_core::Lifecycle) index)
    /// with Lua subscribers.
    pub(crate) interest: Cell<u16>,
}

impl LuaSide {
    pub(crate) fn new() -> Rc<LuaSide> {
        Rc::new(LuaSide {
            deliver: RefCell::new(None),
            interest: Cell::new(0),
        })
    }

    /// Schedules the state's handlers of `name`; how many it reached.
    pub(crate) fn deliver(&self, name: &str, data: Value, quiet: bool) -> usize {
        let deliver = self.deliver.borrow().clone();
        match deliver {
            Some(f) => f.call::<usize>((name, data, quiet)).unwrap_or(0),
            None => 0,
        }
    }
}

/// Named events with Rust subscribers; [`Events::emit`] also reaches the
/// Lua subscribers (`events.on`) of every state the hub is attached to.
#[derive(Default)]
pub struct Events {
    /// Rust subscribers by pattern.
    pub(crate) registry: Registry<String, Subscriber>,
    pub(crate) sides: RefCell<Vec<(mlua::WeakLua, Rc<LuaSide>)>>,
    /// Lifecycle events with a Rust subscriber, one bit each.
    lifecycle_mask: Cell<u16>,
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("subscribers", &self.registry.len())
            .finish()
    }
}

/// Checks a subscription pattern: a name, `prefix.*` or `*`.
fn check_pattern(pattern: &str) -> Result<(), ScriptError> {
    let star = pattern.find('*');
    let ok = !pattern.is_empty()
        && match star {
            None => true,
            Some(i) => pattern == "*" || (i == pattern.len() - 1 && pattern.ends_with(".*")),
        };
    match ok {
        true => Ok(()),
        false => Err(ScriptError::new(
            ErrorKind::Type,
            format!("bad event pattern '{pattern}' (a name, 'prefix.*' or '*')"),
        )),
    }
}

/// Whether subscription `pattern` reaches event `name`.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => name.starts_with(prefix) && !name[prefix.len()..].contains('.'),
        None => pattern == name,
    }
}

impl Events {
    /// Calls `subscriber` for every event `pattern` reaches from now on:
    /// an exact name, `prefix.*` (one more name part) or `*` (all). Rust
    /// subscribers are called at once, in subscription order, when the
    /// event happens; they must not run Lua code of the runtime.
    pub fn on(
        &self,
        pattern: &str,
        subscriber: impl Fn(&Event<'_>) + 'static,
    ) -> Result<SubscriptionId, ScriptError> {
        check_pattern(pattern)?;
        let id = SubscriptionId(self.registry.add(pattern.to_owned(), Rc::new(subscriber)));
        self.refresh();
        Ok(id)
    }

    /// Ends a subscription; `true` if it was active.
    pub fn off(&self, id: SubscriptionId) -> bool {
        let removed = self.registry.remove(id.0);
        self.refresh();
        removed
    }

    /// Emits `name` with `data` to the Rust subscribers and to the Lua
    /// subscribers of every attached state (whose handlers run as tasks
    /// on the next turn). Returns how many handlers it reached.
    pub fn emit(&self, name: &str, data: &ScriptValue) -> Result<usize, ScriptError> {
        if name.is_empty() || name.contains('*') {
            return Err(ScriptError::new(
                ErrorKind::Type,
                format!("bad event name '{name}' (a name, not a pattern)"),
            ));
        }
        let mut reached = self.emit_rust(name, data);
        let sides: Vec<_> = self.sides.borrow().clone();
        for (lua, side) in sides {
            let Some(lua) = lua.try_upgrade() else {
                continue;
            };
            let value = data.to_lua_value(&lua).map_err(ScriptError::from)?;
            reached += side.deliver(name, value, false);
        }
        Ok(reached)
    }

    /// Whether a Rust subscriber would hear `name`.
    pub(crate) fn wants(&self, name: &str) -> bool {
        self.registry.any(|pattern| matches(pattern, name))
    }

    /// Calls the Rust subscribers of `name`; how many there were.
    pub(crate) fn emit_rust(&self, name: &str, data: &ScriptValue) -> usize {
        let subs = self.registry.matching(|pattern| matches(pattern, name));
        let event = Event { name, data };
        for sub in &subs {
            sub(&event);
        }
        subs.len()
    }

    pub(crate) fn lifecycle_mask(&self) -> u16 {
        self.lifecycle_mask.get()
    }

    fn refresh(&self) {
        let mut mask = 0;
        for (i, event) in luaco_core::Lifecycle::ALL.iter().enumerate() {
            if self.wants(event.event_name()) {
                mask |= 1 << i;
            }
        }
        self.lifecycle_mask.set(mask);
        self.registry.notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_reach_names_one_part_deep() {
        assert!(matches("coroutine.created", "coroutine.created"));
        assert!(matches("coroutine.*", "coroutine.created"));
        assert!(matches("*", "job.done"));
        assert!(!matches("coroutine.*", "coroutine"));
        assert!(!matches("coroutine.*", "coroutines.created"));
        assert!(!matches("job.*", "job.a.b"));
        assert!(!matches("coroutine.created", "coroutine.started"));
        assert!(check_pattern("a.*").is_ok());
        assert!(check_pattern("*").is_ok());
        assert!(check_pattern("a*").is_err());
        assert!(check_pattern("*.a").is_err());
        assert!(check_pattern("").is_err());
    }
}
