//! The engine: promises, tasks and the Lua API bound to one Lua state.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::ffi::c_void;
use std::fmt;
use std::rc::Rc;
use std::task::Waker;
use std::time::{Duration, Instant};

use mlua::thread::ThreadStatus;
use mlua::{Function, IntoLuaMulti, LightUserData, Lua, MultiValue, Table, Thread, Value};

use crate::driver::{Driver, Lifecycle, Observer, TaskId, TaskInfo};
use crate::error::{ErrorKind, Result, ScriptError};
use crate::promise::{
    Outcome, Promise, PromiseStatus, SettleCallback, Source, State, Waiter, Waiters,
};
use crate::task::{SpawnSite, Task, Tasks};

const PRELUDE: &str = include_str!("prelude.lua");
const OUTSIDE_TASK: &str = "await() called outside an async task";

// Addresses of these statics are the identities of two light userdata
// sentinels: what `await` yields, and what only the engine resumes it with.
static AWAIT_SENTINEL: u8 = 0;
static RESUME_KEY: u8 = 0;

fn sentinel(s: &'static u8) -> LightUserData {
    LightUserData(s as *const u8 as *mut c_void)
}

/// Settings of an [`Engine`].
#[derive(Clone, Debug)]
pub struct Options {
    /// How many finished coroutines are kept for reuse.
    pub pool_size: usize,
    /// Record the `file:line` of every `async()` call for tracebacks. Costs
    /// one debug-info lookup per spawn.
    pub spawn_sites: bool,
    /// The script name given to tasks spawned outside any task.
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

struct LuaItems {
    runner: Function,
    finally_runner: Function,
    thenable_runner: Function,
    checked: Function,
    api: Table,
}

struct Inner {
    tasks: RefCell<Tasks>,
    pool: RefCell<Vec<Thread>>,
    options: Options,
    default_name: Rc<str>,
    current: Cell<Option<TaskId>>,
    current_thread: Cell<*const c_void>,
    driver: Rc<dyn Driver>,
    observer: RefCell<Option<Rc<dyn Observer>>>,
    /// The observer wants lifecycle events: time resumes and report them.
    lifecycle: Cell<bool>,
    unhandled: RefCell<Vec<Promise>>,
    /// Interned chunk names of spawn sites.
    source_names: RefCell<std::collections::HashSet<Rc<str>>>,
    dispatch_queue: RefCell<VecDeque<(Waiter, Outcome)>>,
    dispatching: Cell<bool>,
    serial: Cell<u64>,
    error_mt: Table,
    /// The set of coroutines that run tasks (live or pooled): `await` checks
    /// that it runs in one without a call into Rust. Not weak: weak tables
    /// make every GC cycle pay for them; threads leave it when discarded.
    task_threads: Table,
    items: OnceCell<LuaItems>,
}

/// The promise and task engine of one Lua state.
///
/// It owns the tasks and the coroutine pool, settles promises, and provides
/// the Lua API (`async`, `await`, `promise.*`, combinators, `map`, `sync`).
/// A [`Driver`] (the event loop in `luaco-sched`) decides when tasks run.
/// Cloning gives another handle to the same engine.
#[derive(Clone)]
pub struct Engine(Rc<Inner>);

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("tasks", &self.0.tasks.borrow().len())
            .field("pooled_threads", &self.0.pool.borrow().len())
            .finish()
    }
}

/// The result of an API function: `Err` is raised in the script as an error object.
pub type ApiResult<T> = std::result::Result<T, ScriptError>;

/// Stack level of the script that called an API function, as seen from the
/// Rust function: 0 is the Rust function, 1 the `checked` shim.
pub const CALLER: usize = 2;

impl Engine {
    /// Builds the engine and its Lua API in `lua`.
    ///
    /// Nothing is installed as globals: [`Engine::api`] returns the table
    /// that the facade installs (as globals and as `require("luaco")`).
    pub fn new(lua: &Lua, driver: Rc<dyn Driver>, options: Options) -> Result<Engine> {
        let error_mt = lua.create_table()?;
        let tostring: Function = lua
            .load("local rawget, tostring = rawget, tostring\nreturn function(e) return tostring(rawget(e, 'message')) end")
            .set_name("=luaco")
            .eval()?;
        error_mt.raw_set("__tostring", tostring)?;
        error_mt.raw_set("__name", "error")?;
        let default_name: Rc<str> = Rc::from(options.default_script_name.as_str());
        let task_threads = lua.create_table()?;
        let engine = Engine(Rc::new(Inner {
            tasks: RefCell::new(Tasks::default()),
            pool: RefCell::new(Vec::new()),
            options,
            default_name,
            current: Cell::new(None),
            current_thread: Cell::new(std::ptr::null()),
            driver,
            observer: RefCell::new(None),
            lifecycle: Cell::new(false),
            unhandled: RefCell::new(Vec::new()),
            source_names: RefCell::new(std::collections::HashSet::new()),
            dispatch_queue: RefCell::new(VecDeque::new()),
            dispatching: Cell::new(false),
            serial: Cell::new(0),
            error_mt,
            task_threads,
            items: OnceCell::new(),
        }));
        let methods = engine.promise_methods(lua)?;
        let tostring = lua.create_function(|_, p: mlua::UserDataRef<Promise>| {
            Ok(format!("promise ({})", p.status()))
        })?;
        let index = methods.clone();
        lua.register_userdata_type::<Promise>(move |reg| {
            use mlua::UserDataFields;
            reg.add_meta_field("__index", index);
            reg.add_meta_field("__tostring", tostring);
            reg.add_meta_field("__name", "promise");
        })?;
        let prims = engine.primitives(lua)?;
        let (api, runner, finally_runner, thenable_runner, checked): (
            Table,
            Function,
            Function,
            Function,
            Function,
        ) = lua.load(PRELUDE).set_name("=luaco").call((
            prims,
            engine.0.error_mt.clone(),
            sentinel(&AWAIT_SENTINEL),
            sentinel(&RESUME_KEY),
            methods,
            engine.0.task_threads.clone(),
        ))?;
        let _ = engine.0.items.set(LuaItems {
            runner,
            finally_runner,
            thenable_runner,
            checked,
            api,
        });
        Ok(engine)
    }

    fn items(&self) -> &LuaItems {
        // Set at the end of `new`, before any handle escapes.
        self.0.items.get().expect("engine initialised")
    }

    /// The API table: `async`, `await`, `promise`, `all`, … Other crates add
    /// their functions (timers, I/O) to it before it is installed.
    pub fn api(&self) -> Table {
        self.items().api.clone()
    }

    /// The metatable that marks error objects.
    pub fn error_metatable(&self) -> &Table {
        &self.0.error_mt
    }

    /// The driver this engine was built with.
    pub fn driver(&self) -> &Rc<dyn Driver> {
        &self.0.driver
    }

    /// Installs (or removes) the observer of task lifecycles and unhandled rejections.
    pub fn set_observer(&self, observer: Option<Rc<dyn Observer>>) {
        self.0
            .lifecycle
            .set(observer.as_ref().is_some_and(|o| o.wants_lifecycle()));
        *self.0.observer.borrow_mut() = observer;
    }

    /// Number of live tasks (spawned and not yet finished or cancelled).
    pub fn task_count(&self) -> usize {
        self.0.tasks.borrow().len()
    }

    /// Number of finished coroutines waiting for reuse.
    pub fn pooled_threads(&self) -> usize {
        self.0.pool.borrow().len()
    }

    /// The task running right now, if any.
    pub fn current_task(&self) -> Option<TaskId> {
        self.0.current.get()
    }

    // ------------------------------------------------------------------
    // Lua helpers

    /// Wraps a Rust API function so bad input raises an error object at the
    /// script's call site. `f` returns `Err` for bad input.
    pub fn api_function<F>(&self, lua: &Lua, f: F) -> mlua::Result<Function>
    where
        F: Fn(&Lua, MultiValue) -> ApiResult<Value> + 'static,
    {
        let raw = self.raw_api_function(lua, f)?;
        self.items().checked.call(raw)
    }

    /// The unwrapped form of [`api_function`](Engine::api_function): returns
    /// `(value, nil)` or `(nil, error)` to Lua.
    pub(crate) fn raw_api_function<F>(&self, lua: &Lua, f: F) -> mlua::Result<Function>
    where
        F: Fn(&Lua, MultiValue) -> ApiResult<Value> + 'static,
    {
        let mt = self.0.error_mt.clone();
        lua.create_function(move |lua, args: MultiValue| match f(lua, args) {
            Ok(v) => Ok((v, Value::Nil)),
            Err(e) => Ok((Value::Nil, Value::Table(e.to_lua_object(lua, &mt)?))),
        })
    }

    /// Builds a script-visible error object.
    pub fn error_object(&self, lua: &Lua, error: &ScriptError) -> mlua::Result<Value> {
        Ok(Value::Table(error.to_lua_object(lua, &self.0.error_mt)?))
    }

    /// Reads a rejection reason as a [`ScriptError`].
    pub fn script_error(&self, reason: &Value) -> ScriptError {
        ScriptError::from_reason(reason, Some(&self.0.error_mt))
    }

    /// The promise behind a Lua value, if it is one.
    pub fn promise_from_value(&self, value: &Value) -> Option<Promise> {
        match value {
            Value::UserData(ud) => ud.borrow::<Promise>().ok().map(|p| p.clone()),
            _ => None,
        }
    }

    /// Makes a Lua value (userdata) for `promise`.
    pub fn promise_to_lua(&self, lua: &Lua, promise: Promise) -> mlua::Result<Value> {
        Ok(Value::UserData(lua.create_any_userdata(promise)?))
    }

    /// [`promise_to_lua`](Engine::promise_to_lua) for API functions: a
    /// failure becomes the script-visible error.
    pub fn promise_value(&self, lua: &Lua, promise: Promise) -> ApiResult<Value> {
        self.promise_to_lua(lua, promise)
            .map_err(|e| rust_error_to_script(&e))
    }

    fn cancelled_error(&self, lua: &Lua) -> mlua::Result<Value> {
        self.error_object(
            lua,
            &ScriptError::new(ErrorKind::Cancelled, "the promise was cancelled"),
        )
    }

    // ------------------------------------------------------------------
    // Promises

    /// A new pending promise with no source; settle it with
    /// [`resolve`](Engine::resolve) or [`reject`](Engine::reject).
    pub fn new_promise(&self) -> Promise {
        Promise::with_source(Source::None)
    }

    /// A new pending promise for an operation (a timer, a Rust future) of the
    /// running task: cancelling the task cancels it.
    pub fn new_operation(&self, source: Source) -> Promise {
        let p = Promise::with_source(source);
        self.track(&p);
        p
    }

    /// Makes `promise` a child of the running task, cancelled with it.
    pub fn track(&self, promise: &Promise) {
        if let Some(id) = self.0.current.get() {
            if let Some(task) = self.0.tasks.borrow_mut().get_mut(id) {
                task.add_child(promise.clone());
            }
        }
    }

    /// Resolves `promise` with `value`. A promise value is adopted; a table
    /// with a callable `then` field is treated as a thenable.
    pub fn resolve(&self, lua: &Lua, promise: &Promise, value: Value) {
        if !promise.is_pending() {
            return;
        }
        if let Some(other) = self.promise_from_value(&value) {
            if other.ptr_eq(promise) {
                let err = ScriptError::new(ErrorKind::Type, "a promise cannot resolve to itself");
                let reason = self.error_object(lua, &err).unwrap_or(Value::Nil);
                self.settle(lua, promise, Outcome::Rejected(reason));
                return;
            }
            promise.set_source(Source::None);
            self.subscribe(lua, &other, Waiter::Adopt(promise.clone()));
            return;
        }
        if let Value::Table(t) = &value {
            // `then` is read exactly once; a metatable may compute it.
            let then = if t.metatable().is_none() {
                t.raw_get::<Value>("then")
            } else {
                t.get::<Value>("then")
            };
            match then {
                Ok(Value::Function(then_fn)) => {
                    self.adopt_thenable(lua, promise, value.clone(), then_fn);
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    let reason = self.lua_error_value(lua, e);
                    self.settle(lua, promise, Outcome::Rejected(reason));
                    return;
                }
            }
        }
        self.settle(lua, promise, Outcome::Resolved(value));
    }

    /// Rejects `promise` with `reason` (used as is).
    pub fn reject(&self, lua: &Lua, promise: &Promise, reason: Value) {
        self.settle(lua, promise, Outcome::Rejected(reason));
    }

    /// Rejects `promise` with an error object built from `error`.
    pub fn reject_with(&self, lua: &Lua, promise: &Promise, error: &ScriptError) {
        let reason = self.error_object(lua, error).unwrap_or(Value::Nil);
        self.reject(lua, promise, reason);
    }

    /// Settles a pending promise with `outcome` (no adoption). Returns
    /// `false` if it had already settled. Cancelling goes through
    /// [`cancel`](Engine::cancel) so the source is stopped too.
    pub fn settle(&self, lua: &Lua, promise: &Promise, outcome: Outcome) -> bool {
        if matches!(outcome, Outcome::Cancelled) {
            return self.cancel(lua, promise);
        }
        let Some((waiters, _source)) = promise.take_for_settle(outcome.clone()) else {
            return false;
        };
        if matches!(outcome, Outcome::Rejected(_)) && waiters.is_empty() && !promise.is_handled() {
            self.0.unhandled.borrow_mut().push(promise.clone());
        }
        self.dispatch_all(lua, waiters, outcome);
        true
    }

    /// Cancels a pending promise: stops its task, timer or future, then
    /// cancels what was chained from it. `false` if it had already settled.
    pub fn cancel(&self, lua: &Lua, promise: &Promise) -> bool {
        let Some((waiters, source)) = promise.take_for_settle(Outcome::Cancelled) else {
            return false;
        };
        match source {
            Source::None => {}
            Source::Task(id) => self.cancel_task(lua, id),
            Source::Timer(key) => {
                self.0.driver.cancel_timer(key);
            }
            Source::Future(key) => {
                self.0.driver.cancel_future(key);
            }
            Source::Linked(other) => {
                self.cancel(lua, &other);
            }
        }
        self.dispatch_all(lua, waiters, Outcome::Cancelled);
        true
    }

    /// Calls `callback` once `promise` settles (at once if it has). This
    /// counts as consuming the promise.
    pub fn on_settle(&self, lua: &Lua, promise: &Promise, callback: SettleCallback) {
        self.subscribe(lua, promise, Waiter::Callback(callback));
    }

    /// Wakes `waker` once `promise` settles; for Rust futures polling it.
    pub fn register_waker(&self, lua: &Lua, promise: &Promise, waker: Waker) {
        self.subscribe(lua, promise, Waiter::Waker(waker));
    }

    fn subscribe(&self, lua: &Lua, promise: &Promise, waiter: Waiter) {
        if let Some((waiter, outcome)) = promise.push_waiter(waiter) {
            self.dispatch_all(lua, Waiters::One(waiter), outcome);
        }
    }

    /// Runs waiters iteratively, so long adoption chains cannot overflow the stack.
    fn dispatch_all(&self, lua: &Lua, waiters: Waiters, outcome: Outcome) {
        if waiters.is_empty() {
            return;
        }
        waiters.queue_into(&mut self.0.dispatch_queue.borrow_mut(), &outcome);
        if self.0.dispatching.replace(true) {
            return;
        }
        loop {
            let next = self.0.dispatch_queue.borrow_mut().pop_front();
            let Some((waiter, outcome)) = next else {
                break;
            };
            self.dispatch(lua, waiter, &outcome);
        }
        self.0.dispatching.set(false);
    }

    fn dispatch(&self, lua: &Lua, waiter: Waiter, outcome: &Outcome) {
        match waiter {
            Waiter::Task(id) => self.0.driver.ready(id),
            Waiter::Then {
                derived,
                on_ok,
                on_err,
            } => {
                let (handler, arg) = match outcome {
                    Outcome::Resolved(v) => (on_ok, v),
                    Outcome::Rejected(e) => (on_err, e),
                    Outcome::Cancelled => {
                        self.cancel(lua, &derived);
                        return;
                    }
                };
                match handler {
                    Some(f) => {
                        let args = MultiValue::from_iter([arg.clone()]);
                        self.spawn_or_fail(lua, f, args, &derived, None);
                    }
                    None => {
                        self.settle(lua, &derived, outcome.clone());
                    }
                }
            }
            Waiter::Finally { derived, handler } => {
                let inner = self.new_promise();
                inner.set_handled();
                derived.set_source(Source::Linked(inner.clone()));
                let original = outcome.clone();
                let target = derived.clone();
                self.subscribe(
                    lua,
                    &inner,
                    Waiter::Callback(Box::new(move |engine, lua, done| {
                        let result = match (done, original) {
                            (_, Outcome::Cancelled) | (Outcome::Cancelled, _) => Outcome::Cancelled,
                            (Outcome::Rejected(e), _) => Outcome::Rejected(e.clone()),
                            (Outcome::Resolved(_), original) => original,
                        };
                        engine.settle(lua, &target, result);
                    })),
                );
                let runner = self.items().finally_runner.clone();
                let args = MultiValue::from_iter([Value::Function(handler)]);
                self.spawn_or_fail(lua, runner, args, &inner, None);
            }
            Waiter::Adopt(derived) => {
                self.settle(lua, &derived, outcome.clone());
            }
            Waiter::Callback(cb) => cb(self, lua, outcome),
            Waiter::Waker(w) => w.wake(),
        }
    }

    fn adopt_thenable(&self, lua: &Lua, promise: &Promise, obj: Value, then_fn: Function) {
        let done = Rc::new(Cell::new(false));
        let make = |reject: bool| {
            let engine = self.clone();
            let target = promise.clone();
            let done = done.clone();
            lua.create_function(move |lua, v: Value| {
                if !done.replace(true) {
                    if reject {
                        engine.reject(lua, &target, v);
                    } else {
                        engine.resolve(lua, &target, v);
                    }
                }
                Ok(())
            })
        };
        let (resolve, reject) = match (make(false), make(true)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                let reason = self.lua_error_value(lua, e);
                self.settle(lua, promise, Outcome::Rejected(reason));
                return;
            }
        };
        // An error raised by `then` before it settled anything rejects.
        let inner = self.new_promise();
        inner.set_handled();
        let reject_fn = reject.clone();
        self.subscribe(
            lua,
            &inner,
            Waiter::Callback(Box::new(move |_, _, outcome| {
                if let Outcome::Rejected(e) = outcome {
                    let _ = reject_fn.call::<()>(e.clone());
                }
            })),
        );
        let args = MultiValue::from_iter([
            obj,
            Value::Function(then_fn),
            Value::Function(resolve),
            Value::Function(reject),
        ]);
        let runner = self.items().thenable_runner.clone();
        self.spawn_or_fail(lua, runner, args, &inner, None);
    }

    /// Turns an mlua error into a rejection reason.
    pub(crate) fn lua_error_value(&self, lua: &Lua, error: mlua::Error) -> Value {
        let script = rust_error_to_script(&error);
        self.error_object(lua, &script).unwrap_or(Value::Nil)
    }

    /// Reports rejected promises that nothing consumed. The driver calls this
    /// whenever its ready queue becomes empty.
    pub fn check_unhandled(&self) -> usize {
        let candidates = std::mem::take(&mut *self.0.unhandled.borrow_mut());
        let mut reported = 0;
        for p in candidates {
            if p.is_handled() {
                continue;
            }
            p.set_handled();
            if let Some(Outcome::Rejected(reason)) = p.outcome() {
                reported += 1;
                let error = self.script_error(&reason);
                let observer = self.0.observer.borrow().clone();
                if let Some(o) = observer {
                    o.unhandled_rejection(&error);
                }
            }
        }
        reported
    }

    // ------------------------------------------------------------------
    // Tasks

    /// Spawns `func(args...)` as a new top-level task (no parent) and
    /// returns its promise. It starts on a later turn. The promise counts as
    /// consumed: the host holds it.
    pub fn spawn(
        &self,
        lua: &Lua,
        func: Function,
        args: impl IntoLuaMulti,
        script_name: &str,
    ) -> Result<Promise> {
        let promise = self.new_promise();
        promise.set_handled();
        let args = args.into_lua_multi(lua)?;
        let site = Some(SpawnSite::new(
            Rc::from(format!("{script_name} (by the host)")),
            0,
            None,
        ));
        self.spawn_task(
            lua,
            func,
            args,
            &promise,
            None,
            site,
            Some(Rc::from(script_name)),
        )?;
        Ok(promise)
    }

    /// Spawns `func(args...)` as a task of its own (no parent, such as a
    /// timer callback). Unlike [`spawn`](Engine::spawn), nothing consumes its
    /// promise: if it fails, that is an unhandled rejection.
    pub fn spawn_detached(&self, lua: &Lua, func: Function, args: MultiValue) -> Promise {
        let promise = self.new_promise();
        self.spawn_or_fail(lua, func, args, &promise, None);
        promise
    }

    fn spawn_or_fail(
        &self,
        lua: &Lua,
        func: Function,
        args: MultiValue,
        promise: &Promise,
        site: Option<Rc<SpawnSite>>,
    ) {
        if let Err(e) = self.spawn_task(lua, func, args, promise, None, site, None) {
            let reason = self.lua_error_value(lua, e);
            self.settle(lua, promise, Outcome::Rejected(reason));
        }
    }

    fn take_thread(&self, lua: &Lua) -> mlua::Result<Thread> {
        let runner = self.items().runner.clone();
        let pooled = self.0.pool.borrow_mut().pop();
        if let Some(thread) = pooled {
            if thread.reset(runner.clone()).is_ok() {
                return Ok(thread);
            }
            self.discard(thread);
        }
        let thread = lua.create_thread(runner)?;
        self.0.task_threads.raw_set(thread.clone(), true)?;
        Ok(thread)
    }

    fn recycle(&self, thread: Thread) {
        let mut pool = self.0.pool.borrow_mut();
        if pool.len() < self.0.options.pool_size {
            pool.push(thread);
        } else {
            drop(pool);
            self.discard(thread);
        }
    }

    /// Forgets a task thread for good; the GC takes it from here.
    fn discard(&self, thread: Thread) {
        let _ = self.0.task_threads.raw_set(thread, Value::Nil);
    }

    /// Spawns a task; without a `name` it takes its parent's script name
    /// (or the running task's, for handlers), else the default.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn spawn_task(
        &self,
        lua: &Lua,
        func: Function,
        args: MultiValue,
        promise: &Promise,
        parent: Option<TaskId>,
        spawn_site: Option<Rc<SpawnSite>>,
        name: Option<Rc<str>>,
    ) -> mlua::Result<TaskId> {
        let thread = self.take_thread(lua)?;
        let serial = self.0.serial.get() + 1;
        self.0.serial.set(serial);
        let script_name = name
            .or_else(|| {
                let tasks = self.0.tasks.borrow();
                parent
                    .or(self.0.current.get())
                    .and_then(|p| tasks.get(p).map(|t| t.script_name.clone()))
            })
            .unwrap_or_else(|| self.0.default_name.clone());
        let id = {
            let mut tasks = self.0.tasks.borrow_mut();
            let id = tasks.insert(Task {
                serial,
                thread,
                promise: promise.clone(),
                start: Some((func, args)),
                pending_await: None,
                waiting_on: None,
                children: Vec::new(),
                compact_at: 16,
                cancelled: false,
                script_name,
                spawn_site,
                yields: 0,
                run_time: Duration::ZERO,
            });
            if let Some(parent) = parent.and_then(|p| tasks.get_mut(p)) {
                parent.add_child(promise.clone());
            }
            id
        };
        promise.set_source(Source::Task(id));
        self.emit(Lifecycle::Created, id);
        self.0.driver.ready(id);
        Ok(id)
    }

    /// Resumes a ready task once. The driver calls this for each task it
    /// dequeues; stale ids (finished or cancelled tasks) are ignored.
    pub fn run(&self, lua: &Lua, id: TaskId) {
        enum Input {
            Start(Function, MultiValue),
            Settled(Outcome),
            Continue,
        }
        let (thread, input) = {
            let mut tasks = self.0.tasks.borrow_mut();
            let Some(task) = tasks.get_mut(id) else {
                return;
            };
            let input = if let Some((f, args)) = task.start.take() {
                Input::Start(f, args)
            } else if let Some(p) = &task.waiting_on {
                match p.outcome() {
                    // Woken before the promise settled: keep waiting.
                    None => return,
                    Some(o) => {
                        // The task gets the value now: it is delivered.
                        p.0.undelivered.borrow_mut().take();
                        task.waiting_on = None;
                        Input::Settled(o)
                    }
                }
            } else {
                Input::Continue
            };
            (task.thread.clone(), input)
        };
        let observed = self.0.lifecycle.get();
        if observed {
            let event = if matches!(input, Input::Start(..)) {
                Lifecycle::Started
            } else {
                Lifecycle::Resumed
            };
            self.emit(event, id);
        }
        let started = observed.then(Instant::now);
        let previous = self.0.current.replace(Some(id));
        let previous_thread = self.0.current_thread.replace(thread.to_pointer());
        let result = match input {
            Input::Start(f, args) => thread.resume::<(Value, Value)>((f, args)),
            Input::Settled(outcome) => {
                let (code, value) = match outcome {
                    Outcome::Resolved(v) => (1, v),
                    Outcome::Rejected(v) => (2, v),
                    Outcome::Cancelled => (2, self.cancelled_error(lua).unwrap_or(Value::Nil)),
                };
                thread.resume::<(Value, Value)>((sentinel(&RESUME_KEY), code, value))
            }
            Input::Continue => thread.resume::<(Value, Value)>(()),
        };
        self.0.current.set(previous);
        self.0.current_thread.set(previous_thread);
        if let Some(started) = started {
            if let Some(task) = self.0.tasks.borrow_mut().get_mut(id) {
                task.run_time += started.elapsed();
            }
        }
        self.after_resume(lua, id, thread, result);
    }

    fn after_resume(
        &self,
        lua: &Lua,
        id: TaskId,
        thread: Thread,
        result: mlua::Result<(Value, Value)>,
    ) {
        let status = thread.status();
        match (result, status) {
            (Ok((first, _)), ThreadStatus::Resumable) => {
                let awaited = {
                    let mut tasks = self.0.tasks.borrow_mut();
                    let Some(task) = tasks.get_mut(id) else {
                        return;
                    };
                    if task.cancelled {
                        drop(tasks);
                        self.finish_cancelled(id);
                        return;
                    }
                    task.yields += 1;
                    let is_await = matches!(first, Value::LightUserData(ud) if ud == sentinel(&AWAIT_SENTINEL));
                    let awaited = if is_await {
                        task.pending_await.take()
                    } else {
                        None
                    };
                    task.waiting_on = awaited.clone();
                    awaited
                };
                self.emit(Lifecycle::Yielded, id);
                match awaited {
                    Some(p) => self.subscribe(lua, &p, Waiter::Task(id)),
                    // A bare `coroutine.yield` (or a hook yield): next turn.
                    None => self.0.driver.ready(id),
                }
            }
            (Ok((ok, value)), ThreadStatus::Finished) => {
                let ok = matches!(ok, Value::Boolean(true));
                self.complete(lua, id, true, ok, value);
            }
            (Ok(_), _) => {
                let err =
                    ScriptError::new(ErrorKind::Runtime, "task thread in an unexpected state");
                let reason = self.error_object(lua, &err).unwrap_or(Value::Nil);
                self.complete(lua, id, false, false, reason);
            }
            (Err(e), _) => {
                // Errors escaping the runner: memory errors, or a coroutine
                // closed behind the engine's back. The thread is not reused.
                let reason = self.lua_error_value(lua, e);
                self.complete(lua, id, false, false, reason);
            }
        }
    }

    /// A task's coroutine stopped for good. `reusable` says whether it
    /// finished cleanly (and may go back to the pool).
    fn complete(&self, lua: &Lua, id: TaskId, reusable: bool, ok: bool, value: Value) {
        let Some(task) = self.0.tasks.borrow_mut().remove(id) else {
            return;
        };
        if reusable {
            self.recycle(task.thread.clone());
        } else {
            self.discard(task.thread.clone());
        }
        if task.cancelled {
            return;
        }
        if self.0.lifecycle.get() {
            let event = if ok {
                Lifecycle::Completed
            } else {
                Lifecycle::Failed
            };
            self.emit_for(
                event,
                &task,
                if ok {
                    PromiseStatus::Resolved
                } else {
                    PromiseStatus::Rejected
                },
            );
        }
        if ok {
            self.resolve(lua, &task.promise, value);
        } else if is_memory_error(&value) {
            // Lua does not call the message handler for memory errors, so the
            // reason arrives as a bare string. Free what the task left behind
            // before building the error object.
            let _ = lua.gc_collect();
            let err = ScriptError::new(ErrorKind::Limit, "memory limit: not enough memory");
            self.reject_with(lua, &task.promise, &err);
        } else {
            self.reject(lua, &task.promise, value);
        }
    }

    fn cancel_task(&self, lua: &Lua, id: TaskId) {
        let running = self.0.current.get() == Some(id);
        let (removed, children) = {
            let mut tasks = self.0.tasks.borrow_mut();
            if running {
                let Some(task) = tasks.get_mut(id) else {
                    return;
                };
                task.cancelled = true;
                (None, std::mem::take(&mut task.children))
            } else {
                let Some(mut task) = tasks.remove(id) else {
                    return;
                };
                let children = std::mem::take(&mut task.children);
                (Some(task), children)
            }
        };
        if let Some(task) = removed {
            if self.0.lifecycle.get() {
                self.emit_for(Lifecycle::Cancelled, &task, PromiseStatus::Cancelled);
            }
            self.close_thread(task.thread);
            // Woken but never resumed: what it was given goes back.
            if let Some(p) = task.waiting_on {
                if let Some(Outcome::Resolved(v)) = p.outcome() {
                    let hook = p.0.undelivered.borrow_mut().take();
                    if let Some(hook) = hook {
                        let _ = hook.call::<()>(v);
                    }
                }
            }
        }
        for child in children {
            self.cancel(lua, &child);
        }
    }

    /// A task cancelled while it ran has now stopped: close it.
    fn finish_cancelled(&self, id: TaskId) {
        let task = self.0.tasks.borrow_mut().remove(id);
        if let Some(task) = task {
            if self.0.lifecycle.get() {
                self.emit_for(Lifecycle::Cancelled, &task, PromiseStatus::Cancelled);
            }
            self.close_thread(task.thread);
        }
    }

    /// Closes a suspended coroutine, running its pending `__close` handlers.
    fn close_thread(&self, thread: Thread) {
        let runner = self.items().runner.clone();
        match thread.reset(runner) {
            Ok(()) => self.recycle(thread),
            Err(e) => {
                self.discard(thread);
                // A `__close` handler raised while the task was being
                // cancelled: nobody can catch it, so report it.
                let mut err = rust_error_to_script(&e);
                err.message = format!("error while closing a cancelled task: {}", err.message);
                let observer = self.0.observer.borrow().clone();
                if let Some(o) = observer {
                    o.unhandled_rejection(&err);
                }
            }
        }
    }

    fn emit(&self, event: Lifecycle, id: TaskId) {
        if !self.0.lifecycle.get() {
            return;
        }
        let observer = self.0.observer.borrow().clone();
        let Some(observer) = observer else {
            return;
        };
        // Copy what the observer sees, so it may call back into the engine.
        let snapshot = {
            let tasks = self.0.tasks.borrow();
            tasks.get(id).map(|t| {
                let info = task_info(t, t.promise.status());
                (
                    info.thread_id,
                    t.script_name.clone(),
                    info.status,
                    info.execution_time,
                    info.yield_count,
                )
            })
        };
        if let Some((thread_id, name, status, execution_time, yield_count)) = snapshot {
            let info = TaskInfo {
                thread_id,
                script_name: &name,
                status,
                execution_time,
                yield_count,
            };
            observer.lifecycle(event, &info);
        }
    }

    fn emit_for(&self, event: Lifecycle, task: &Task, status: PromiseStatus) {
        let observer = self.0.observer.borrow().clone();
        if let Some(observer) = observer {
            observer.lifecycle(event, &task_info(task, status));
        }
    }

    // ------------------------------------------------------------------
    // The Lua API

    /// The fast half of `await`: the Lua side has already checked that it
    /// runs in a task thread.
    fn peek(&self, lua: &Lua, promise: &Promise) -> mlua::Result<(i32, Value)> {
        promise.set_handled();
        let state = promise.0.state.borrow();
        match &*state {
            State::Pending { .. } => {
                drop(state);
                let Some(id) = self.0.current.get() else {
                    return self.raise_code(lua, ErrorKind::Runtime, OUTSIDE_TASK);
                };
                if let Some(task) = self.0.tasks.borrow_mut().get_mut(id) {
                    task.pending_await = Some(promise.clone());
                }
                Ok((0, Value::Nil))
            }
            State::Settled(Outcome::Resolved(v)) => Ok((1, v.clone())),
            State::Settled(Outcome::Rejected(v)) => Ok((2, v.clone())),
            State::Settled(Outcome::Cancelled) => Ok((2, self.cancelled_error(lua)?)),
        }
    }

    fn raise_code(&self, lua: &Lua, kind: ErrorKind, message: &str) -> mlua::Result<(i32, Value)> {
        let err = ScriptError::new(kind, located(lua, 2, message));
        Ok((3, self.error_object(lua, &err)?))
    }

    fn spawn_site(&self, lua: &Lua, level: usize) -> Option<Rc<SpawnSite>> {
        if !self.0.options.spawn_sites {
            return None;
        }
        // Chunk names are interned: a spawn in a loop allocates only its site.
        let (source, line) = lua
            .inspect_stack(level, |d| {
                let line = d.current_line()? as u32;
                let src = d.source();
                let short = src.short_src.as_deref().unwrap_or("?");
                let mut names = self.0.source_names.borrow_mut();
                let name = match names.get(short) {
                    Some(name) => name.clone(),
                    None => {
                        let name: Rc<str> = Rc::from(short);
                        if names.len() < 1024 {
                            names.insert(name.clone());
                        }
                        name
                    }
                };
                Some((name, line))
            })
            .flatten()?;
        let parent = self.0.current.get().and_then(|id| {
            self.0
                .tasks
                .borrow()
                .get(id)
                .and_then(|t| t.spawn_site.clone())
        });
        Some(SpawnSite::new(source, line, parent))
    }

    fn lua_spawn(&self, lua: &Lua, args: MultiValue) -> ApiResult<Value> {
        let mut args = args.into_iter();
        let func = match args.next() {
            Some(Value::Function(f)) => f,
            other => {
                return Err(type_error(lua, "async", 1, "function", other.as_ref()));
            }
        };
        let promise = self.new_promise();
        let site = self.spawn_site(lua, CALLER);
        let parent = self.0.current.get();
        self.spawn_task(lua, func, args.collect(), &promise, parent, site, None)
            .map_err(|e| rust_error_to_script(&e))?;
        self.promise_value(lua, promise)
    }

    fn promise_methods(&self, lua: &Lua) -> mlua::Result<Table> {
        let methods = lua.create_table()?;
        let engine = self.clone();
        let next = lua.create_function(
            move |lua, (this, on_ok, on_err): (mlua::UserDataRef<Promise>, Value, Value)| {
                let derived = engine.new_promise();
                let as_fn = |v: Value| match v {
                    Value::Function(f) => Some(f),
                    _ => None,
                };
                engine.subscribe(
                    lua,
                    &this,
                    Waiter::Then {
                        derived: derived.clone(),
                        on_ok: as_fn(on_ok),
                        on_err: as_fn(on_err),
                    },
                );
                engine.promise_to_lua(lua, derived)
            },
        )?;
        methods.raw_set("next", next.clone())?;
        methods.raw_set("and_then", next.clone())?;
        methods.raw_set("then", next.clone())?;
        let catch: Function = lua
            .load("local next = ...\nreturn function(p, on_err) return next(p, nil, on_err) end")
            .set_name("=luaco")
            .call(next)?;
        methods.raw_set("catch", catch)?;
        let engine = self.clone();
        methods.raw_set(
            "finally",
            lua.create_function(
                move |lua, (this, handler): (mlua::UserDataRef<Promise>, Value)| {
                    let derived = engine.new_promise();
                    let waiter = match handler {
                        Value::Function(handler) => Waiter::Finally {
                            derived: derived.clone(),
                            handler,
                        },
                        _ => Waiter::Adopt(derived.clone()),
                    };
                    engine.subscribe(lua, &this, waiter);
                    engine.promise_to_lua(lua, derived)
                },
            )?,
        )?;
        methods.raw_set(
            "status",
            lua.create_function(|_, this: mlua::UserDataRef<Promise>| Ok(this.status().as_str()))?,
        )?;
        let engine = self.clone();
        methods.raw_set(
            "cancel",
            lua.create_function(move |lua, this: mlua::UserDataRef<Promise>| {
                let p = this.clone();
                drop(this);
                Ok(engine.cancel(lua, &p))
            })?,
        )?;
        Ok(methods)
    }

    fn primitives(&self, lua: &Lua) -> mlua::Result<Table> {
        let prims = lua.create_table()?;
        let engine = self.clone();
        prims.raw_set(
            "peek",
            // `Either` reads a promise straight off the Lua stack (no
            // reference is made); anything else falls through to the error.
            lua.create_function(
                move |lua, p: mlua::Either<mlua::UserDataRef<Promise>, Value>| match p {
                    mlua::Either::Left(p) => engine.peek(lua, &p),
                    mlua::Either::Right(_) => engine.raise_code(
                        lua,
                        ErrorKind::Type,
                        "await() requires a promise argument",
                    ),
                },
            )?,
        )?;
        let engine = self.clone();
        prims.raw_set(
            "spawn",
            self.raw_api_function(lua, move |lua, args| engine.lua_spawn(lua, args))?,
        )?;
        let engine = self.clone();
        prims.raw_set(
            "spawn_chain",
            lua.create_function(move |_, ()| {
                let tasks = engine.0.tasks.borrow();
                Ok(engine
                    .0
                    .current
                    .get()
                    .and_then(|id| tasks.get(id))
                    .and_then(|t| t.spawn_site.as_ref().map(|s| s.describe()))
                    .unwrap_or_default())
            })?,
        )?;
        prims.raw_set(
            "traceback",
            lua.create_function(|lua, level: usize| {
                let tb = lua.traceback(None, level)?.to_string_lossy();
                Ok(strip_runner_frames(&tb).to_owned())
            })?,
        )?;
        let engine = self.clone();
        prims.raw_set(
            "convert_error",
            lua.create_function(move |lua, v: Value| match v {
                Value::Error(e) => engine.error_object(lua, &rust_error_to_script(&e)),
                other => Ok(other),
            })?,
        )?;
        let engine = self.clone();
        prims.raw_set(
            "make_error",
            lua.create_function(
                move |lua, (kind, message, level): (String, String, Option<usize>)| {
                    let kind = ErrorKind::from_name(&kind).unwrap_or(ErrorKind::Runtime);
                    let message = match level {
                        Some(level) => located(lua, level, &message),
                        None => message,
                    };
                    engine.error_object(lua, &ScriptError::new(kind, message))
                },
            )?,
        )?;
        let engine = self.clone();
        prims.raw_set(
            "is_promise",
            lua.create_function(move |_, v: Value| Ok(engine.promise_from_value(&v).is_some()))?,
        )?;
        let engine = self.clone();
        prims.raw_set(
            "deferred",
            lua.create_function(
                move |lua, (on_cancel, on_undelivered): (Option<Function>, Option<Function>)| {
                    let p = engine.new_promise();
                    if let Some(hook) = on_undelivered {
                        *p.0.undelivered.borrow_mut() = Some(Box::new(hook));
                    }
                    if let Some(on_cancel) = on_cancel {
                        // An operation with clean-up: part of the running task.
                        engine.track(&p);
                        p.0.state
                            .borrow_mut()
                            .push_watcher(Waiter::Callback(Box::new(move |_, _, outcome| {
                                if matches!(outcome, Outcome::Cancelled) {
                                    let _ = on_cancel.call::<()>(());
                                }
                            })));
                    }
                    let (a, b) = (engine.clone(), p.clone());
                    let resolve = lua.create_function(move |lua, v: Value| {
                        a.resolve(lua, &b, v);
                        Ok(())
                    })?;
                    let (a, b) = (engine.clone(), p.clone());
                    let reject = lua.create_function(move |lua, v: Value| {
                        a.reject(lua, &b, v);
                        Ok(())
                    })?;
                    Ok((engine.promise_to_lua(lua, p)?, resolve, reject))
                },
            )?,
        )?;
        let engine = self.clone();
        prims.raw_set(
            "resolved",
            lua.create_function(move |lua, v: Value| {
                let p = engine.new_promise();
                engine.resolve(lua, &p, v);
                engine.promise_to_lua(lua, p)
            })?,
        )?;
        let engine = self.clone();
        prims.raw_set(
            "rejected",
            lua.create_function(move |lua, v: Value| {
                let p = Promise::settled(Outcome::Rejected(v));
                engine.0.unhandled.borrow_mut().push(p.clone());
                engine.promise_to_lua(lua, p)
            })?,
        )?;
        crate::combinators::install(self, lua, &prims)?;
        Ok(prims)
    }
}

impl State {
    /// Adds a waiter that does not count as consuming the promise.
    pub(crate) fn push_watcher(&mut self, waiter: Waiter) {
        if let State::Pending { waiters, .. } = self {
            waiters.push(waiter);
        }
    }
}

fn is_memory_error(value: &Value) -> bool {
    matches!(value, Value::String(s) if s.as_bytes().as_ref() == b"not enough memory")
}

/// Drops the two frames every task has at its bottom (`xpcall` and the
/// runner); they say nothing about the script.
fn strip_runner_frames(traceback: &str) -> &str {
    let mut end = traceback.len();
    for marker in ["\n\tluaco:", "\n\t[C]: in function 'xpcall'"] {
        match traceback[..end].rfind(marker) {
            Some(at) => end = at,
            None => return traceback,
        }
    }
    &traceback[..end]
}

fn task_info(task: &Task, status: PromiseStatus) -> TaskInfo<'_> {
    TaskInfo {
        thread_id: task.serial,
        script_name: &task.script_name,
        status,
        execution_time: task.run_time,
        yield_count: task.yields,
    }
}

/// `file:line` of the function `level` frames up, if it is Lua code.
pub(crate) fn caller_place(lua: &Lua, level: usize) -> Option<String> {
    lua.inspect_stack(level, |d| {
        let line = d.current_line()?;
        let src = d.source();
        Some(format!(
            "{}:{}",
            src.short_src.as_deref().unwrap_or("?"),
            line
        ))
    })
    .flatten()
}

/// Prefixes `message` with the `file:line:` of the frame `level` up.
pub(crate) fn located(lua: &Lua, level: usize, message: &str) -> String {
    match caller_place(lua, level) {
        Some(place) => format!("{place}: {message}"),
        None => message.to_owned(),
    }
}

/// A type error for argument `n` of `func`, positioned at the script's call.
pub fn type_error(
    lua: &Lua,
    func: &str,
    n: usize,
    expected: &str,
    got: Option<&Value>,
) -> ScriptError {
    let got = got.map_or("no value", |v| v.type_name());
    ScriptError::new(
        ErrorKind::Type,
        located(
            lua,
            CALLER,
            &format!("bad argument #{n} to '{func}' ({expected} expected, got {got})"),
        ),
    )
}

/// Reads an mlua error as a script error, keeping a kind we raised ourselves.
pub fn rust_error_to_script(error: &mlua::Error) -> ScriptError {
    match error {
        mlua::Error::CallbackError { cause, .. } => rust_error_to_script(cause),
        mlua::Error::WithContext { cause, .. } => rust_error_to_script(cause),
        mlua::Error::ExternalError(e) => match e.downcast_ref::<ScriptError>() {
            Some(script) => script.clone(),
            None => ScriptError::new(ErrorKind::Runtime, e.to_string()),
        },
        mlua::Error::MemoryError(m) => {
            ScriptError::new(ErrorKind::Limit, format!("memory limit: {m}"))
        }
        mlua::Error::RuntimeError(m) => ScriptError::new(ErrorKind::Runtime, m.clone()),
        other => ScriptError::new(ErrorKind::Runtime, other.to_string()),
    }
}

/// Validates a millisecond count: a finite number ≥ 0 (fractions allowed),
/// never a string. `func` names the function in the error message.
pub fn duration_from_ms(
    lua: &Lua,
    func: &str,
    n: usize,
    value: Option<&Value>,
) -> ApiResult<Duration> {
    let ms = match value {
        Some(Value::Integer(i)) => *i as f64,
        Some(Value::Number(f)) => *f,
        other => return Err(type_error(lua, func, n, "number", other)),
    };
    if !(0.0..=1e15).contains(&ms) {
        return Err(ScriptError::new(
            ErrorKind::Type,
            located(
                lua,
                CALLER,
                &format!("bad argument #{n} to '{func}' (finite number >= 0 expected, got {ms})"),
            ),
        ));
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}
