//! Hook points: Rust callbacks the host registers for each point of a
//! task's life, plus unhandled rejections and limit hits.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use luaco_core::{Lifecycle, PromiseStatus, ScriptError, ScriptValue};

use crate::registry::Registry;

/// Where a hook is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HookPoint {
    /// A task was spawned. The only point that can veto: a hook's `Err`
    /// refuses the task, which never runs; its promise rejects with that
    /// error and the task is reported [`Failed`](HookPoint::Failed).
    /// Event-handler tasks, which report no other point (so that watching
    /// makes nothing new to watch), are seen here too, so a quota counts
    /// every task.
    Created,
    /// The task ran for the first time.
    Started,
    /// The task suspended.
    Yielded,
    /// The task was resumed.
    Resumed,
    /// The task returned; [`HookContext::result`] has its value.
    Completed,
    /// The task raised; [`HookContext::error`] has the error.
    Failed,
    /// The task was cancelled.
    Cancelled,
    /// A rejected promise nobody consumed ([`HookContext::error`]); the
    /// task is the one whose promise it was, when there is one (id 0 else).
    UnhandledRejection,
    /// A run-level limit (instructions, memory, time) stopped the task;
    /// [`HookContext::error`] names the limit in its `code`.
    LimitHit,
}

impl HookPoint {
    /// Every point.
    pub const ALL: [HookPoint; 9] = [
        HookPoint::Created,
        HookPoint::Started,
        HookPoint::Yielded,
        HookPoint::Resumed,
        HookPoint::Completed,
        HookPoint::Failed,
        HookPoint::Cancelled,
        HookPoint::UnhandledRejection,
        HookPoint::LimitHit,
    ];

    /// The hook point of a lifecycle point.
    pub fn of(event: Lifecycle) -> HookPoint {
        match event {
            Lifecycle::Created => HookPoint::Created,
            Lifecycle::Started => HookPoint::Started,
            Lifecycle::Yielded => HookPoint::Yielded,
            Lifecycle::Resumed => HookPoint::Resumed,
            Lifecycle::Completed => HookPoint::Completed,
            Lifecycle::Failed => HookPoint::Failed,
            _ => HookPoint::Cancelled,
        }
    }

    /// Whether a hook's `Err` here refuses anything (only at `Created`).
    /// Elsewhere an `Err` is logged as a `tracing` warning and ignored.
    pub fn can_veto(self) -> bool {
        self == HookPoint::Created
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// What a hook learns.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HookContext<'a> {
    /// The point being reported.
    pub point: HookPoint,
    /// The task's id (unique per task in its engine); 0 when no task is
    /// known (an unhandled rejection of a promise no task made).
    pub task_id: u64,
    /// The task's script name.
    pub script_name: &'a str,
    /// The task's promise state.
    pub status: PromiseStatus,
    /// Time the task spent running so far, not counting time suspended.
    pub execution_time: Duration,
    /// Bytes in use by the task's Lua state.
    pub memory_bytes: usize,
    /// Times the task suspended so far.
    pub yield_count: u64,
    /// At `Created`: the task running when this one was made.
    pub parent_id: Option<u64>,
    /// At `Failed`, `UnhandledRejection` and `LimitHit`: the error.
    pub error: Option<&'a ScriptError>,
    pub(crate) value: Option<&'a mlua::Value>,
}

impl HookContext<'_> {
    /// At `Completed`: the task's value as data (`None` if it was not
    /// plain data, such as a function).
    pub fn result(&self) -> Option<ScriptValue> {
        if self.point != HookPoint::Completed {
            return None;
        }
        match self.value {
            Some(v) => ScriptValue::from_lua_value(v).ok(),
            None => Some(ScriptValue::Nil),
        }
    }
}

/// A registered hook.
type HookFn = dyn Fn(&HookContext<'_>) -> Result<(), ScriptError>;

/// Names a registered hook, for [`Hooks::off`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HookId(u64);

/// The hooks of a runtime, called in registration order.
#[derive(Default)]
pub struct Hooks {
    pub(crate) registry: Registry<HookPoint, HookFn>,
    /// One bit per point with a hook.
    mask: Cell<u16>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("count", &self.registry.len())
            .finish()
    }
}

impl Hooks {
    /// Calls `hook` at every `point` from now on. It may return an error
    /// to veto where [`HookPoint::can_veto`] says it can.
    ///
    /// A hook runs inside the engine, between two steps of a task: it must
    /// not run Lua code of the runtime or block.
    pub fn on(
        &self,
        point: HookPoint,
        hook: impl Fn(&HookContext<'_>) -> Result<(), ScriptError> + 'static,
    ) -> HookId {
        let id = HookId(self.registry.add(point, Rc::new(hook)));
        self.refresh();
        id
    }

    /// Removes a hook; `true` if it was registered.
    pub fn off(&self, id: HookId) -> bool {
        let removed = self.registry.remove(id.0);
        self.refresh();
        removed
    }

    /// Whether any hook is registered at `point`.
    pub fn is_hooked(&self, point: HookPoint) -> bool {
        self.mask.get() & point.bit() != 0
    }

    /// Whether any hook is registered at a lifecycle point.
    pub(crate) fn wants_lifecycle(&self) -> bool {
        let lifecycle = HookPoint::ALL[..7].iter().fold(0, |m, p| m | p.bit());
        self.mask.get() & lifecycle != 0
    }

    fn refresh(&self) {
        let mask = HookPoint::ALL
            .iter()
            .filter(|p| self.registry.any(|k| k == *p))
            .fold(0, |m, p| m | p.bit());
        self.mask.set(mask);
        self.registry.notify();
    }

    /// Calls the hooks of `ctx.point`; the first veto, where one counts.
    pub(crate) fn call(&self, ctx: &HookContext<'_>) -> Result<(), ScriptError> {
        for hook in self.registry.matching(|p| *p == ctx.point) {
            if let Err(e) = hook(ctx) {
                if ctx.point.can_veto() {
                    return Err(e);
                }
                tracing::warn!(target: "luaco", point = ?ctx.point, "a hook failed: {}", e.message);
            }
        }
        Ok(())
    }
}
