//! [`Engine`]: binds the Lua half of the core to one Lua state and gives
//! the host its doors into it — running ready tasks, spawning, promises by
//! handle, observers, modules and the stop reason of hook layers.
//!
//! The concepts live in the Lua sources under `lua/`, one file each:
//! `errors.lua` (error objects, failure reasons, tracebacks), `promise.lua`
//! (state, settlement, the effect queue, waiters, thenables), `task.lua`
//! (spawning, the ready queue, worker coroutines, resuming, cancelling,
//! spawn sites, unhandled rejections), `await.lua`, `methods.lua` (the
//! promise methods and `promise.*`), `combinators.lua`, `map.lua`,
//! `sync.lua`, `bridge.lua` (the Lua half of [`Engine::spawn_future`],
//! whose Rust half is the `bridge` module) and `api.lua` (the table scripts
//! see). Rust keeps a fixed number of references into that state, whatever
//! the number of tasks and promises.
//!
//! Beside this file: `engine/prims.rs` (the Rust functions the Lua half
//! calls), `engine/helpers.rs` (argument errors for Rust API functions) and
//! `engine/tests.rs`.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::task::Waker;
use std::time::Instant;

use mlua::{AnyUserData, Function, IntoLuaMulti, Lua, MultiValue, Table, Value, WeakLua};

use crate::context::{ContextData, ScriptContext};
use crate::driver::{Driver, FutureKey};
use crate::error::{Result, ScriptError};
use crate::module::{Module, ModuleContext};
use crate::observer::{Observer, Observers};
use crate::promise::{Outcome, Promise, PromiseStatus};
use crate::stop::Stop;

mod bridge;
mod helpers;
mod prims;
#[cfg(test)]
mod tests;

pub use helpers::{duration_from_ms, located, type_error};

/// The Lua half, in load order: each chunk adds its part to the internals.
const CHUNKS: [(&str, &str); 10] = [
    ("errors", include_str!("lua/errors.lua")),
    ("promise", include_str!("lua/promise.lua")),
    ("task", include_str!("lua/task.lua")),
    ("await", include_str!("lua/await.lua")),
    ("methods", include_str!("lua/methods.lua")),
    ("combinators", include_str!("lua/combinators.lua")),
    ("map", include_str!("lua/map.lua")),
    ("sync", include_str!("lua/sync.lua")),
    ("bridge", include_str!("lua/bridge.lua")),
    ("api", include_str!("lua/api.lua")),
];

/// The slots of a promise table (see `lua/promise.lua`).
const SLOT_STATE: i64 = 1;
const SLOT_VALUE: i64 = 2;

/// Settings of an [`Engine`].
#[derive(Clone, Debug)]
pub struct Options {
    /// How many idle worker coroutines are kept for reuse.
    pub pool_size: usize,
    /// Record the `file:line` of every `async()` call for tracebacks. Costs
    /// one debug-info lookup per spawn.
    pub spawn_sites: bool,
    /// The script name of tasks spawned outside any script context.
    pub default_script_name: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            pool_size: 256,
            spawn_sites: true,
            default_script_name: "luaco".into(),
        }
    }
}

/// What one [`Engine::run_ready`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Tasks of the open turn still to run (0: the turn is over).
    pub left_in_turn: usize,
    /// Tasks ready in all (the rest of this turn and the next).
    pub ready: usize,
    /// Tasks resumed by this call.
    pub resumed: usize,
}

/// A Rust callback run when a promise settles.
pub type SettleCallback = Box<dyn FnOnce(&Engine, &Lua, &Outcome)>;

enum RustWaiter {
    Callback(SettleCallback),
    Waker(Waker),
}

/// The references Rust keeps into the Lua half: a fixed set.
struct LuaHalf {
    internals: Table,
    api: Table,
    pins: Table,
    promise_mt: Table,
    error_mt: Table,
    array_mt: Table,
    run: Function,
    spawn_host: Function,
    new_promise: Function,
    resolve: Function,
    settle: Function,
    cancel: Function,
    add_waiter: Function,
    consume: Function,
    op_begin: Function,
    op_end: Function,
    set_observed: Function,
    halt: Function,
    cancel_all: Function,
    checked: Function,
    counts: Function,
}

struct Inner {
    lua: WeakLua,
    driver: Rc<dyn Driver>,
    options: Options,
    observers: Observers,
    half: OnceCell<LuaHalf>,
    next_id: Cell<i64>,
    waiters: RefCell<HashMap<i64, RustWaiter>>,
    futures: RefCell<HashMap<i64, FutureKey>>,
    stop: Cell<Stop>,
    limit_error: RefCell<Option<ScriptError>>,
    origin: Instant,
}

/// The promise and task engine of one Lua state.
///
/// Cloning gives another handle to the same engine.
#[derive(Clone)]
pub struct Engine(Rc<Inner>);

/// An [`Engine`] handle that does not keep it alive ([`Engine::downgrade`]).
#[derive(Clone, Debug)]
pub struct WeakEngine(std::rc::Weak<Inner>);

impl WeakEngine {
    /// The engine, while it lives.
    pub fn upgrade(&self) -> Option<Engine> {
        self.0.upgrade().map(Engine)
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("tasks", &self.task_count())
            .field("ready", &self.ready_count())
            .field("observers", &self.0.observers.len())
            .finish()
    }
}

/// The result of an API function: `Err` is raised in the script as an error object.
pub type ApiResult<T> = std::result::Result<T, ScriptError>;

/// Stack level of the script that called an API function, as seen from the
/// Rust function: 0 is the Rust function, 1 the `checked` shim.
pub const CALLER: usize = 2;

fn debug_table(lua: &Lua) -> mlua::Result<Table> {
    let loaded: Table = lua.named_registry_value("_LOADED")?;
    match loaded.raw_get::<Value>("debug")? {
        Value::Table(t) => Ok(t),
        _ => Err(mlua::Error::runtime(
            "luaco needs the `debug` library in its Lua state (build it with StateBuilder)",
        )),
    }
}

impl Engine {
    /// Loads the core's Lua half into `lua`, driven by `driver`.
    ///
    /// The state must have the `debug` library loaded ([`StateBuilder`]
    /// makes such states; it can hide `debug` from scripts). Nothing is
    /// installed as globals: [`Engine::api`] returns the table that the
    /// facade installs (as globals and as `require("luaco")`).
    ///
    /// [`StateBuilder`]: crate::StateBuilder
    pub fn new(lua: &Lua, driver: Rc<dyn Driver>, options: Options) -> Result<Engine> {
        let engine = Engine(Rc::new(Inner {
            lua: lua.weak(),
            driver,
            options,
            observers: Observers::default(),
            half: OnceCell::new(),
            next_id: Cell::new(1),
            waiters: RefCell::default(),
            futures: RefCell::default(),
            stop: Cell::new(Stop::Yield),
            limit_error: RefCell::new(None),
            origin: Instant::now(),
        }));
        let internals = lua.create_table()?;
        internals.raw_set("debug", debug_table(lua)?)?;
        let array_mt = lua.create_table()?;
        array_mt.raw_set("__name", crate::value::ARRAY_NAME)?;
        // Shared by every array: scripts may not reach or change it.
        array_mt.raw_set("__metatable", "array")?;
        internals.raw_set("ARRAY_MT", array_mt.clone())?;
        let options = lua.create_table()?;
        options.raw_set("pool_size", engine.0.options.pool_size)?;
        options.raw_set("spawn_sites", engine.0.options.spawn_sites)?;
        let default_ctx = ScriptContext::new(engine.0.options.default_script_name.clone());
        options.raw_set("default_ctx", engine.context_value(lua, &default_ctx)?)?;
        internals.raw_set("options", options)?;
        let prims = engine.primitives(lua)?;
        for (name, source) in CHUNKS {
            lua.load(source)
                .set_name(format!("=luaco/{name}.lua"))
                .call::<()>((internals.clone(), prims.clone()))
                .map_err(|e| mlua::Error::runtime(format!("loading luaco's {name}.lua: {e}")))?;
        }
        let f = |name: &str| internals.raw_get::<Function>(name);
        let half = LuaHalf {
            api: internals.raw_get("api")?,
            pins: lua.create_table()?,
            promise_mt: internals.raw_get("PROMISE_MT")?,
            error_mt: internals.raw_get("ERROR_MT")?,
            array_mt,
            run: f("run")?,
            spawn_host: f("spawn_host")?,
            new_promise: f("new_promise")?,
            resolve: f("resolve")?,
            settle: f("settle")?,
            cancel: f("cancel")?,
            add_waiter: f("add_waiter")?,
            consume: f("consume")?,
            op_begin: f("op_begin")?,
            op_end: f("op_end")?,
            set_observed: f("set_observed")?,
            halt: f("halt")?,
            cancel_all: f("cancel_all")?,
            checked: lua
                .load("local error = error\nreturn function(f) return function(...) local v, e = f(...) if e ~= nil then error(e, 2) end return v end end")
                .set_name("=luaco")
                .eval()?,
            counts: lua
                .load("local c = ...\nreturn function() return c.ready_count(), c.live_tasks(), c.pooled(), c.op_count() end")
                .set_name("=luaco")
                .call(internals.clone())?,
            internals,
        };
        let _ = engine.0.half.set(half);
        Ok(engine)
    }

    fn half(&self) -> &LuaHalf {
        // Set at the end of `new`, before any handle escapes.
        self.0.half.get().expect("engine initialised")
    }

    /// A handle that does not keep the engine alive, for the observers
    /// and modules it holds (which would otherwise hold it in a cycle).
    pub fn downgrade(&self) -> WeakEngine {
        WeakEngine(Rc::downgrade(&self.0))
    }

    /// `true` if both handles are the same engine.
    pub fn same_as(&self, other: &Engine) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// The Lua state, while it is alive.
    pub fn lua(&self) -> Option<Lua> {
        self.0.lua.try_upgrade()
    }

    fn live_lua(&self) -> mlua::Result<Lua> {
        self.lua()
            .ok_or_else(|| mlua::Error::runtime("the engine's Lua state is gone"))
    }

    /// The API table: `async`, `await`, `promise`, `all`, … Modules add
    /// their functions (timers, I/O) to it before it is installed.
    pub fn api(&self) -> Table {
        self.half().api.clone()
    }

    /// The Lua half's internals, for modules with Lua code of their own.
    pub fn internals(&self) -> Table {
        self.half().internals.clone()
    }

    /// The metatable that marks error objects.
    pub fn error_metatable(&self) -> &Table {
        &self.half().error_mt
    }

    /// The metatable that marks arrays (combinator results, `json.array`):
    /// they convert and encode as arrays of their `n` items.
    pub fn array_metatable(&self) -> &Table {
        &self.half().array_mt
    }

    /// The driver this engine was built with.
    pub fn driver(&self) -> &Rc<dyn Driver> {
        &self.0.driver
    }

    /// Installs a Lua API module.
    pub fn install(&self, module: &dyn Module) -> Result<()> {
        let lua = self.live_lua()?;
        let ctx = ModuleContext {
            lua: &lua,
            engine: self,
            api: self.api(),
            internals: self.internals(),
        };
        module.install(&ctx).map_err(|e| {
            crate::Error::Lua(mlua::Error::runtime(format!(
                "installing module {}: {e}",
                module.name()
            )))
        })
    }

    // ------------------------------------------------------------------
    // Observers

    /// Registers an observer of task lifecycles and unhandled rejections,
    /// after those already registered.
    pub fn add_observer(&self, observer: Rc<dyn Observer>) {
        self.0.observers.add(observer);
        self.refresh_observed();
    }

    /// Unregisters `observer`; `true` if it was registered.
    pub fn remove_observer(&self, observer: &Rc<dyn Observer>) -> bool {
        let removed = self.0.observers.remove(observer);
        self.refresh_observed();
        removed
    }

    /// Asks every observer again whether it wants lifecycles: an observer
    /// whose answer to [`Observer::wants_lifecycle`] changed calls this.
    pub fn observers_changed(&self) {
        self.refresh_observed();
    }

    fn refresh_observed(&self) {
        if self.lua().is_none() {
            return;
        }
        let _ = self
            .half()
            .set_observed
            .call::<()>(self.0.observers.wanted_mask());
    }

    /// Reports an error nobody can catch (a failure of the loop itself, a
    /// `__close` handler that raised while its task was cancelled) to the
    /// observers, as an unhandled rejection.
    pub fn report_error(&self, error: &ScriptError) {
        self.report_unhandled(error);
    }

    fn report_unhandled(&self, error: &ScriptError) {
        self.report_unhandled_from(error, None);
    }

    fn report_unhandled_from(
        &self,
        error: &ScriptError,
        origin: Option<&crate::observer::Origin<'_>>,
    ) {
        for o in self.0.observers.snapshot() {
            o.unhandled_rejection_from(error, origin);
        }
    }

    // ------------------------------------------------------------------
    // Running

    /// Runs up to `max` tasks of the current turn. When no turn is open it
    /// opens one first: every task ready at that moment, in the order it
    /// became ready (work made ready meanwhile waits for the next turn).
    /// When the ready queue is empty afterwards, unhandled rejections are
    /// reported.
    pub fn run_ready(&self, max: usize) -> Result<Batch> {
        self.live_lua()?;
        let (left, ready, resumed): (i64, i64, i64) = self.half().run.call(max)?;
        Ok(Batch {
            left_in_turn: left.max(0) as usize,
            ready: ready.max(0) as usize,
            resumed: resumed.max(0) as usize,
        })
    }

    /// Stops running tasks at once, even inside a turn: [`run_ready`]
    /// resumes nothing until [`cancel_all`] ends what is left. How an
    /// error in a main chunk ends the run with nothing running after it.
    ///
    /// [`run_ready`]: Engine::run_ready
    /// [`cancel_all`]: Engine::cancel_all
    pub fn halt(&self) {
        if self.lua().is_some() {
            let _ = self.half().halt.call::<()>(());
        }
    }

    /// Cancels every live task, oldest first: each coroutine is closed, so
    /// its pending `<close>` values run; tasks their cancellation starts
    /// are cancelled too. Empties the ready queue and lifts a [`halt`].
    /// Returns how many tasks were cancelled.
    ///
    /// [`halt`]: Engine::halt
    pub fn cancel_all(&self) -> Result<usize> {
        self.live_lua()?;
        Ok(self.half().cancel_all.call::<usize>(())?)
    }

    fn counts(&self) -> (usize, usize, usize, usize) {
        if self.lua().is_none() {
            return (0, 0, 0, 0);
        }
        self.half()
            .counts
            .call::<(usize, usize, usize, usize)>(())
            .unwrap_or_default()
    }

    /// Tasks waiting to run.
    pub fn ready_count(&self) -> usize {
        self.counts().0
    }

    /// Live tasks: spawned and not yet finished or cancelled.
    pub fn task_count(&self) -> usize {
        self.counts().1
    }

    /// Idle worker coroutines kept for reuse.
    pub fn pooled_threads(&self) -> usize {
        self.counts().2
    }

    /// Rust futures running for scripts.
    pub fn future_count(&self) -> usize {
        self.counts().3
    }

    /// Sets why the running task is about to yield from a hook (the hook
    /// then returns `VmState::Yield`). Read once, then reset to [`Stop::Yield`].
    pub fn set_stop_reason(&self, reason: Stop) {
        self.0.stop.set(reason);
    }

    /// The error a task abandoned with [`Stop::Limit`] rejects with.
    pub fn set_limit_error(&self, error: ScriptError) {
        *self.0.limit_error.borrow_mut() = Some(error);
    }

    // ------------------------------------------------------------------
    // Tasks

    fn context_value(&self, lua: &Lua, ctx: &ScriptContext) -> mlua::Result<AnyUserData> {
        lua.create_any_userdata(ContextData(Rc::new(ctx.clone())))
    }

    /// Spawns `func(args...)` as a top-level task of script `ctx` and
    /// returns its promise. It starts on a later turn. The promise counts
    /// as consumed: the host holds it.
    pub fn spawn(
        &self,
        func: Function,
        args: impl IntoLuaMulti,
        ctx: &ScriptContext,
    ) -> Result<Promise> {
        let lua = self.live_lua()?;
        let mut all = MultiValue::new();
        all.push_back(Value::Function(func));
        all.push_back(Value::UserData(self.context_value(&lua, ctx)?));
        all.push_back(Value::String(lua.create_string(ctx.name())?));
        all.extend(args.into_lua_multi(&lua)?);
        let p: Table = self.half().spawn_host.call(all)?;
        Ok(self.pin(p)?)
    }

    /// The script context of the task running now, if any.
    pub fn current_context(&self) -> Option<Rc<ScriptContext>> {
        self.lua()?;
        let internals = &self.half().internals;
        let current: Function = internals.raw_get("current").ok()?;
        let task: Value = current.call(()).ok()?;
        let task_ctx: Function = internals.raw_get("task_ctx").ok()?;
        match task_ctx.call::<Value>(task).ok()? {
            Value::UserData(ud) => ud.borrow::<ContextData>().ok().map(|c| c.0.clone()),
            _ => None,
        }
    }

    // ------------------------------------------------------------------
    // Promises

    pub(crate) fn pin(&self, table: Table) -> mlua::Result<Promise> {
        let id = self.next_id();
        self.half().pins.raw_set(id, table)?;
        Ok(Promise::from_pin(id, self.clone()))
    }

    pub(crate) fn unpin(&self, id: i64) {
        if self.lua().is_some() {
            let _ = self.half().pins.raw_set(id, Value::Nil);
        }
    }

    pub(crate) fn pinned(&self, id: i64) -> mlua::Result<Table> {
        self.live_lua()?;
        self.half().pins.raw_get(id)
    }

    pub(crate) fn status_of(&self, id: i64) -> Option<PromiseStatus> {
        let t = self.pinned(id).ok()?;
        let code: i64 = t.raw_get(SLOT_STATE).ok()?;
        PromiseStatus::from_code(code)
    }

    pub(crate) fn outcome_of(&self, id: i64) -> Option<Outcome> {
        let t = self.pinned(id).ok()?;
        let code: i64 = t.raw_get(SLOT_STATE).ok()?;
        let value: Value = t.raw_get(SLOT_VALUE).ok()?;
        Outcome::from_parts(code, value)
    }

    fn next_id(&self) -> i64 {
        let id = self.0.next_id.get();
        self.0.next_id.set(id + 1);
        id
    }

    /// A new pending promise; settle it with [`resolve`](Engine::resolve),
    /// [`reject`](Engine::reject) or [`cancel`](Engine::cancel).
    pub fn new_promise(&self) -> Result<Promise> {
        self.live_lua()?;
        let t: Table = self.half().new_promise.call(())?;
        Ok(self.pin(t)?)
    }

    /// The promise behind a Lua value, if it is one.
    pub fn promise_from_value(&self, value: &Value) -> Option<Promise> {
        match value {
            Value::Table(t) if t.metatable().as_ref() == Some(&self.half().promise_mt) => {
                self.pin(t.clone()).ok()
            }
            _ => None,
        }
    }

    /// Resolves `promise` with `value`. A promise value is adopted; a table
    /// with a callable `then` field is treated as a thenable.
    pub fn resolve(&self, promise: &Promise, value: Value) -> Result<()> {
        Ok(self.half().resolve.call((promise.table()?, value))?)
    }

    /// Rejects `promise` with `reason` (used as is).
    pub fn reject(&self, promise: &Promise, reason: Value) -> Result<()> {
        let code = PromiseStatus::Rejected as i64;
        Ok(self
            .half()
            .settle
            .call::<()>((promise.table()?, code, reason))?)
    }

    /// Rejects `promise` with an error object built from `error`.
    pub fn reject_with(&self, promise: &Promise, error: &ScriptError) -> Result<()> {
        let reason = self.error_object(error)?;
        self.reject(promise, reason)
    }

    /// Cancels a pending promise: stops its task, timer or future, then
    /// cancels what was chained from it. `false` if it had already settled.
    pub fn cancel(&self, promise: &Promise) -> bool {
        match promise.table() {
            Ok(t) => self.half().cancel.call::<bool>(t).unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Marks `promise` as consumed.
    pub fn consume(&self, promise: &Promise) {
        if let Ok(t) = promise.table() {
            let _ = self.half().consume.call::<()>(t);
        }
    }

    fn add_rust_waiter(&self, promise: &Promise, waiter: RustWaiter) -> Result<()> {
        let id = self.next_id();
        self.0.waiters.borrow_mut().insert(id, waiter);
        if let Err(e) = self.half().add_waiter.call::<()>((promise.table()?, id)) {
            self.0.waiters.borrow_mut().remove(&id);
            return Err(e.into());
        }
        Ok(())
    }

    /// Calls `callback` once `promise` settles (at once if it has). This
    /// counts as consuming the promise.
    pub fn on_settle(&self, promise: &Promise, callback: SettleCallback) -> Result<()> {
        self.add_rust_waiter(promise, RustWaiter::Callback(callback))
    }

    /// Wakes `waker` once `promise` settles; for Rust futures polling it.
    pub fn register_waker(&self, promise: &Promise, waker: Waker) -> Result<()> {
        self.add_rust_waiter(promise, RustWaiter::Waker(waker))
    }

    // ------------------------------------------------------------------
    // Errors

    /// Builds a script-visible error object.
    pub fn error_object(&self, error: &ScriptError) -> mlua::Result<Value> {
        let lua = self.live_lua()?;
        Ok(Value::Table(
            error.to_lua_object(&lua, &self.half().error_mt)?,
        ))
    }

    /// Reads a rejection reason as a [`ScriptError`].
    pub fn script_error(&self, reason: &Value) -> ScriptError {
        let mut error = ScriptError::from_reason(reason, Some(&self.half().error_mt));
        if let (None, Value::Table(t)) = (&error.traceback, reason) {
            // A raised table stays the reason; where it was raised is kept
            // beside it.
            let raised: mlua::Result<Table> = self.half().internals.raw_get("raised_tracebacks");
            if let Ok(raised) = raised {
                error.traceback = raised.raw_get::<Option<String>>(t.clone()).ok().flatten();
            }
        }
        error
    }

    /// Where the task behind a pending `promise` is suspended: its Lua
    /// stack as a traceback (for a report of what a stalled run waits on).
    /// `None` if the promise is not a pending task's.
    pub fn suspended_traceback(&self, promise: &Promise) -> Option<String> {
        let f: Function = self.half().internals.raw_get("suspended_traceback").ok()?;
        f.call::<Option<String>>(promise.to_lua().ok()?)
            .ok()
            .flatten()
    }

    /// Wraps a Rust API function so bad input raises an error object at the
    /// script's call site. `f` returns `Err` for bad input.
    pub fn api_function<F>(&self, lua: &Lua, f: F) -> mlua::Result<Function>
    where
        F: Fn(&Lua, MultiValue) -> ApiResult<Value> + 'static,
    {
        let weak = Rc::downgrade(&self.0);
        let raw = lua.create_function(move |lua, args: MultiValue| match f(lua, args) {
            Ok(v) => Ok((v, Value::Nil)),
            Err(e) => {
                let mt = weak
                    .upgrade()
                    .and_then(|inner| inner.half.get().map(|h| h.error_mt.clone()));
                let obj = match mt {
                    Some(mt) => Value::Table(e.to_lua_object(lua, &mt)?),
                    None => Value::String(lua.create_string(&e.message)?),
                };
                Ok((Value::Nil, obj))
            }
        })?;
        self.half().checked.call(raw)
    }
}
