//! [`Hub`]: the hooks and events of a runtime, and the observer that feeds
//! them from each engine it is attached to.

use std::collections::BTreeMap;
use std::fmt;
use std::rc::{Rc, Weak};

use luaco_core::{
    Engine, Lifecycle, Module, ModuleContext, Observer, Origin, PromiseStatus, ScriptError,
    ScriptValue, TaskInfo, WeakEngine,
};
use mlua::{Lua, Value};

use crate::emitter::{Events, LuaSide};
use crate::hooks::{HookContext, HookPoint, Hooks};

/// The hooks and events of one runtime. Attach it to each engine whose
/// tasks it should see; the hooks and Rust subscribers are shared, and
/// each engine's scripts get `events` in their API table.
///
/// Reporting costs nothing while no hook and no subscriber wants a
/// lifecycle point: the engine is told so and skips the reports.
#[derive(Clone, Default)]
pub struct Hub(Rc<Inner>);

#[derive(Default)]
struct Inner {
    hooks: Hooks,
    events: Events,
    engines: std::cell::RefCell<Vec<WeakEngine>>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("hooks", &self.0.hooks)
            .field("events", &self.0.events)
            .finish()
    }
}

impl Hub {
    /// A hub with no hooks and no subscribers.
    pub fn new() -> Hub {
        let hub = Hub::default();
        let weak = Rc::downgrade(&hub.0);
        let changed: Rc<dyn Fn()> = Rc::new(move || {
            if let Some(inner) = weak.upgrade() {
                Inner::tell_engines(&inner);
            }
        });
        *hub.0.hooks.registry.changed.borrow_mut() = Some(changed.clone());
        *hub.0.events.registry.changed.borrow_mut() = Some(changed);
        hub
    }

    /// The hook points.
    pub fn hooks(&self) -> &Hooks {
        &self.0.hooks
    }

    /// The event emitter.
    pub fn events(&self) -> &Events {
        &self.0.events
    }

    /// Installs `events` into `engine`'s API table and starts watching its
    /// tasks. Call before the API is handed to scripts.
    pub fn attach(&self, engine: &Engine) -> luaco_core::Result<()> {
        let side = LuaSide::new();
        engine.install(&EventsModule {
            side: side.clone(),
            hub: Rc::downgrade(&self.0),
        })?;
        let lua = engine.lua().ok_or_else(|| {
            luaco_core::Error::Conversion("the engine's Lua state is gone".into())
        })?;
        self.0
            .events
            .sides
            .borrow_mut()
            .push((lua.weak(), side.clone()));
        self.0.engines.borrow_mut().push(engine.downgrade());
        engine.add_observer(Rc::new(Watch {
            hub: Rc::downgrade(&self.0),
            engine: engine.downgrade(),
            side,
        }) as Rc<dyn Observer>);
        Ok(())
    }
}

impl Inner {
    /// Tells every engine to ask again whether lifecycles are wanted.
    fn tell_engines(inner: &Rc<Inner>) {
        let engines: Vec<Engine> = {
            let mut list = inner.engines.borrow_mut();
            list.retain(|e| e.upgrade().is_some());
            list.iter().filter_map(WeakEngine::upgrade).collect()
        };
        for engine in engines {
            engine.observers_changed();
        }
    }
}

/// Installs the Lua half (`events.lua`).
struct EventsModule {
    side: Rc<LuaSide>,
    hub: Weak<Inner>,
}

impl Module for EventsModule {
    fn name(&self) -> &str {
        "events"
    }

    fn install(&self, ctx: &ModuleContext<'_>) -> mlua::Result<()> {
        let lua = ctx.lua;
        let prims = lua.create_table()?;
        let side = Rc::downgrade(&self.side);
        let engine = ctx.engine.downgrade();
        prims.raw_set(
            "interest",
            lua.create_function(move |_, mask: u16| {
                if let Some(side) = side.upgrade() {
                    if side.interest.replace(mask) != mask {
                        if let Some(engine) = engine.upgrade() {
                            engine.observers_changed();
                        }
                    }
                }
                Ok(())
            })?,
        )?;
        // An event a script emits reaches the host's subscribers too; its
        // data is converted only when one listens.
        let hub = self.hub.clone();
        prims.raw_set(
            "emit_rust",
            lua.create_function(move |_, (name, data): (mlua::LuaString, Value)| {
                let Some(hub) = hub.upgrade() else {
                    return Ok(0);
                };
                let name = name.to_str()?.to_owned();
                if !hub.events.wants(&name) {
                    return Ok(0);
                }
                let data = ScriptValue::from_lua_value(&data).map_err(|e| {
                    mlua::Error::runtime(format!(
                        "bad argument #2 to 'emit' (event data must be plain data: {e})"
                    ))
                })?;
                Ok(hub.events.emit_rust(&name, &data))
            })?,
        )?;
        let (api, deliver): (mlua::Table, mlua::Function) = lua
            .load(include_str!("events.lua"))
            .set_name("=luaco/events.lua")
            .call((ctx.internals.clone(), prims))?;
        *self.side.deliver.borrow_mut() = Some(deliver);
        ctx.api.raw_set("events", api)?;
        Ok(())
    }
}

/// The bit of `event` in the lifecycle masks.
fn lifecycle_bit(event: Lifecycle) -> u16 {
    let i = Lifecycle::ALL.iter().position(|e| *e == event).unwrap_or(0);
    1 << i
}

/// The observer of one engine.
struct Watch {
    hub: Weak<Inner>,
    engine: WeakEngine,
    side: Rc<LuaSide>,
}

/// The fields every task event starts with: `thread_id`, `script_name`.
fn task_fields(thread_id: u64, script_name: &str) -> BTreeMap<String, ScriptValue> {
    let mut m = BTreeMap::new();
    m.insert("thread_id".into(), ScriptValue::Integer(thread_id as i64));
    m.insert(
        "script_name".into(),
        ScriptValue::String(script_name.to_owned()),
    );
    m
}

/// The data of a lifecycle event, with the fields docs/reference.md lists.
fn lifecycle_fields(info: &TaskInfo<'_>) -> BTreeMap<String, ScriptValue> {
    let mut m = task_fields(info.thread_id, info.script_name);
    m.insert(
        "status".into(),
        ScriptValue::String(info.status.as_str().to_owned()),
    );
    m.insert(
        "execution_time_ms".into(),
        ScriptValue::Number(info.execution_time.as_secs_f64() * 1000.0),
    );
    m.insert(
        "memory_usage_bytes".into(),
        ScriptValue::Integer(info.memory_bytes as i64),
    );
    m.insert(
        "yield_count".into(),
        ScriptValue::Integer(info.yield_count as i64),
    );
    m
}

fn lifecycle_table(lua: &Lua, info: &TaskInfo<'_>) -> mlua::Result<mlua::Table> {
    let t = lua.create_table_with_capacity(0, 6)?;
    t.raw_set("thread_id", info.thread_id as i64)?;
    t.raw_set("script_name", info.script_name)?;
    t.raw_set("status", info.status.as_str())?;
    t.raw_set(
        "execution_time_ms",
        info.execution_time.as_secs_f64() * 1000.0,
    )?;
    t.raw_set("memory_usage_bytes", info.memory_bytes as i64)?;
    t.raw_set("yield_count", info.yield_count as i64)?;
    Ok(t)
}

impl Watch {
    fn context<'a>(
        point: HookPoint,
        info: &'a TaskInfo<'a>,
        error: Option<&'a ScriptError>,
    ) -> HookContext<'a> {
        HookContext {
            point,
            task_id: info.thread_id,
            script_name: info.script_name,
            status: info.status,
            execution_time: info.execution_time,
            memory_bytes: info.memory_bytes,
            yield_count: info.yield_count,
            parent_id: info.parent_id,
            error,
            value: info.value,
        }
    }

    /// Sends a runtime event (`runtime.limit`, `runtime.unhandled_rejection`)
    /// to Rust subscribers, and to Lua ones unless it came from a quiet task.
    fn runtime_event(
        &self,
        hub: &Inner,
        name: &str,
        fields: BTreeMap<String, ScriptValue>,
        lua_reason: Option<(&str, Value)>,
        to_lua: bool,
    ) {
        let data = ScriptValue::Map(fields);
        if hub.events.wants(name) {
            hub.events.emit_rust(name, &data);
        }
        if !to_lua {
            return;
        }
        let Some(lua) = self.engine.upgrade().and_then(|e| e.lua()) else {
            return;
        };
        let Ok(Value::Table(t)) = data.to_lua_value(&lua) else {
            return;
        };
        if let Some((key, reason)) = lua_reason {
            let _ = t.raw_set(key, reason);
        }
        self.side.deliver(name, Value::Table(t), true);
    }
}

impl Observer for Watch {
    fn wants_lifecycle(&self) -> bool {
        let Some(hub) = self.hub.upgrade() else {
            return false;
        };
        hub.hooks.wants_lifecycle()
            || hub.events.lifecycle_mask() != 0
            || self.side.interest.get() != 0
    }

    fn wants(&self, event: Lifecycle) -> bool {
        let Some(hub) = self.hub.upgrade() else {
            return false;
        };
        let bit = lifecycle_bit(event);
        hub.hooks.is_hooked(HookPoint::of(event))
            || hub.events.lifecycle_mask() & bit != 0
            || self.side.interest.get() & bit != 0
    }

    fn admit(&self, task: &TaskInfo<'_>) -> Result<(), ScriptError> {
        let Some(hub) = self.hub.upgrade() else {
            return Ok(());
        };
        if !hub.hooks.is_hooked(HookPoint::Created) {
            return Ok(());
        }
        hub.hooks
            .call(&Self::context(HookPoint::Created, task, None))
    }

    fn lifecycle(&self, event: Lifecycle, task: &TaskInfo<'_>) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        let point = HookPoint::of(event);
        // `Created` hooks ran in `admit`, where they may veto.
        if point != HookPoint::Created && hub.hooks.is_hooked(point) {
            let error = match (point, task.value, self.engine.upgrade()) {
                (HookPoint::Failed, Some(v), Some(engine)) => Some(engine.script_error(v)),
                _ => None,
            };
            let _ = hub.hooks.call(&Self::context(point, task, error.as_ref()));
        }
        let bit = lifecycle_bit(event);
        if hub.events.lifecycle_mask() & bit != 0 {
            let data = ScriptValue::Map(lifecycle_fields(task));
            hub.events.emit_rust(event.event_name(), &data);
        }
        if self.side.interest.get() & bit != 0 {
            if let Some(lua) = self.engine.upgrade().and_then(|e| e.lua()) {
                if let Ok(t) = lifecycle_table(&lua, task) {
                    self.side.deliver(event.event_name(), Value::Table(t), true);
                }
            }
        }
    }

    fn limit_hit(&self, task: &TaskInfo<'_>, error: &ScriptError) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        if hub.hooks.is_hooked(HookPoint::LimitHit) {
            let _ = hub
                .hooks
                .call(&Self::context(HookPoint::LimitHit, task, Some(error)));
        }
        let mut fields = task_fields(task.thread_id, task.script_name);
        fields.insert(
            "limit".into(),
            ScriptValue::String(error.code.clone().unwrap_or_default()),
        );
        fields.insert("message".into(), ScriptValue::String(error.message.clone()));
        self.runtime_event(&hub, "runtime.limit", fields, None, true);
    }

    fn unhandled_rejection_from(&self, error: &ScriptError, origin: Option<&Origin<'_>>) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        let (id, name, quiet) =
            origin.map_or((0, "", false), |o| (o.thread_id, o.script_name, o.quiet));
        if hub.hooks.is_hooked(HookPoint::UnhandledRejection) {
            let info = HookContext {
                point: HookPoint::UnhandledRejection,
                task_id: id,
                script_name: name,
                status: PromiseStatus::Rejected,
                execution_time: Default::default(),
                memory_bytes: 0,
                yield_count: 0,
                parent_id: None,
                error: Some(error),
                value: None,
            };
            let _ = hub.hooks.call(&info);
        }
        let mut fields = task_fields(id, name);
        // Rust subscribers get the error as data, Lua ones the error object.
        let mut reason = BTreeMap::new();
        reason.insert("kind".into(), ScriptValue::String(error.kind.to_string()));
        reason.insert("message".into(), ScriptValue::String(error.message.clone()));
        if let Some(code) = &error.code {
            reason.insert("code".into(), ScriptValue::String(code.clone()));
        }
        fields.insert("reason".into(), ScriptValue::Map(reason));
        // Lua subscribers get the error object itself as the reason. A
        // rejection from a quiet task (an event handler) goes to Rust only,
        // so a failing handler of this very event cannot loop.
        let reason = self
            .engine
            .upgrade()
            .and_then(|e| e.error_object(error).ok());
        self.runtime_event(
            &hub,
            "runtime.unhandled_rejection",
            fields,
            reason.map(|r| ("reason", r)),
            !quiet,
        );
    }
}
