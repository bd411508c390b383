//! [`Runtime`], [`Config`], [`ScriptContext`] and [`PromiseHandle`].

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use luaco_core::{
    Engine, ErrorKind, Observer, Outcome, Promise, PromiseStatus, ScriptContext, ScriptError,
    ScriptValue,
};
use luaco_hooks::{Events, Hooks, Hub};
use luaco_io::{FileSystem, FsLimits, HttpClient, HyperClient, IoConfig, RealFs};
use luaco_sandbox::{ContextBudget, Limit, Limits, SandboxPolicy};
use luaco_sched::{PumpStats, RunEnd, Scheduler, SchedulerOptions};
use mlua::{Lua, MultiValue, Value};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::state::{Settings, State};

/// A Lua state with luaco's API, its engine and its event loop.
///
/// Single-threaded: a runtime and everything it hands out stay on the
/// thread that made it.
pub struct Runtime {
    sched: Scheduler,
    config: Config,
    main: State,
    /// The backends, for the states scripts get of their own.
    io: IoConfig,
    hub: Hub,
    /// States of scripts with a memory limit of their own.
    own_states: RefCell<Vec<Rc<State>>>,
    /// What the host added with [`Runtime::add_observer`], for those states.
    observers: RefCell<Vec<Rc<dyn Observer>>>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .field("scheduler", &self.sched)
            .finish()
    }
}

impl Runtime {
    /// A runtime with the standard Lua libraries and luaco's API.
    pub fn new(config: Config) -> Result<Runtime> {
        let http = match (&config.http_client, config.allow_net) {
            (_, false) => None,
            (Some(client), true) => Some(client.clone()),
            (None, true) => {
                Some(Rc::new(HyperClient::with_config(config.http.clone())?) as Rc<dyn HttpClient>)
            }
        };
        let fs = config.allow_fs.then(|| {
            config
                .file_system
                .clone()
                .unwrap_or_else(|| Rc::new(RealFs::new()) as Rc<dyn FileSystem>)
        });
        let mut io = IoConfig {
            http,
            http_limits: config.request_limits,
            fs,
            fs_limits: FsLimits {
                max_read: config.max_file_read,
            },
        };
        if let Some(policy) = &config.sandbox {
            io = scoped_io(&io, policy, config.file_system.is_none())?;
        }
        // The wall clock is checked by the loop between turns and by the
        // hook inside a task that never awaits.
        let limits = Limits {
            max_instructions: config.max_instructions,
            timeout: config.max_execution_time,
            time_slice: config.time_slice,
            max_memory: config.max_memory,
        };
        let hub = Hub::new();
        let mut sched = None;
        let settings = Settings {
            config: &config,
            io: &io,
            hub: &hub,
            limits,
            contexts: config.context_limits,
            untrusted: false,
        };
        let main = State::build(settings, |lua| {
            let made = Scheduler::new(
                lua,
                SchedulerOptions {
                    engine: config.engine_options(),
                    clock: None,
                },
            )?;
            let engine = made.engine().clone();
            sched = Some(made);
            Ok(engine)
        })?;
        let sched = sched.ok_or_else(|| Error::Conversion("no scheduler was made".into()))?;
        Ok(Runtime {
            sched,
            config,
            main,
            io,
            hub,
            own_states: RefCell::new(Vec::new()),
            observers: RefCell::new(Vec::new()),
        })
    }

    /// The Lua state, for hosts that add their own functions.
    pub fn lua(&self) -> &Lua {
        &self.main.lua
    }

    /// The engine (promises and tasks).
    pub fn engine(&self) -> &Engine {
        self.sched.engine()
    }

    /// The event loop.
    pub fn scheduler(&self) -> &Scheduler {
        &self.sched
    }

    /// The hook points: Rust callbacks at each point of every task's life
    /// (see [`HookPoint`](luaco_hooks::HookPoint)).
    pub fn hooks(&self) -> &Hooks {
        self.hub.hooks()
    }

    /// The event emitter scripts share with the host (`events.on` in Lua):
    /// lifecycle, runtime and script events.
    pub fn events(&self) -> &Events {
        self.hub.events()
    }

    /// The settings this runtime was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Registers an observer of task lifecycles and unhandled rejections.
    /// Observers compose: the default tracing observer and every observer
    /// registered before stay registered.
    /// Scripts in a state of their own (a [`ContextBudget`] with
    /// `max_memory`) report to it too.
    pub fn add_observer(&self, observer: Rc<dyn Observer>) {
        for state in self.own_states.borrow().iter() {
            state.engine.add_observer(observer.clone());
        }
        self.engine().add_observer(observer.clone());
        self.observers.borrow_mut().push(observer);
    }

    /// Compiles `source` and runs it as a task (top-level `await` works).
    /// Returns at once; the task starts on the next [`pump`](Runtime::pump).
    ///
    /// A context whose [`ContextBudget`] sets `max_memory` runs in a Lua
    /// state of its own with that heap limit, driven by this runtime's
    /// loop: running out of memory there ends that script only. (Values
    /// cannot cross states: its promise is read through the handle.)
    pub fn create_async(
        &self,
        source: impl AsRef<[u8]>,
        context: ScriptContext,
    ) -> Result<PromiseHandle> {
        let name = format!("={}", context.name());
        let budget = context.policy::<ContextBudget>();
        let untrusted = budget.is_some_and(ContextBudget::is_untrusted);
        let own_state = budget.filter(|b| b.limits().max_memory.is_some() || b.policy().is_some());
        let (state, own) = match own_state {
            Some(budget) => (Some(self.own_state(budget)?), None),
            // An untrusted script of a trusted host: globals of its own.
            None if untrusted => (
                None,
                Some(luaco_sandbox::safe_environment(
                    &self.main.lua,
                    &self.main.engine,
                )?),
            ),
            // A sandboxed runtime: each script has globals of its own too,
            // falling back to the sandbox's table for what the host added.
            None => match &self.main.env {
                Some(shared) => (None, Some(self.script_env(shared)?)),
                None => (None, None),
            },
        };
        let target = state.as_deref().unwrap_or(&self.main);
        let env = own.as_ref().or(target.env.as_ref());
        let source = with_arg_table(source.as_ref(), context.name());
        let chunk = load_in(
            &target.lua,
            &source,
            &name,
            env,
            mlua::chunk::ChunkMode::Text,
        )?;
        let mut args = MultiValue::new();
        for a in context.args() {
            args.push_back(Value::String(target.lua.create_string(a)?));
        }
        let promise = self.spawn_in(target, chunk, args, &context)?;
        Ok(PromiseHandle {
            promise,
            engine: target.engine.clone(),
            lua: target.lua.weak(),
            state,
        })
    }

    /// Fresh safe globals for one script of a sandboxed runtime; what the
    /// host put in the shared sandbox table ([`Runtime::globals`]) is read
    /// through, never written (the metatable is out of the script's reach).
    fn script_env(&self, shared: &mlua::Table) -> Result<mlua::Table> {
        let env = luaco_sandbox::safe_environment(&self.main.lua, &self.main.engine)?;
        // Only what the script's own globals never had is read through: a
        // script that sets `string = nil` must not reach the shared copy
        // (and change it for every other script).
        let own_keys = self.main.lua.create_table()?;
        for pair in env.pairs::<Value, Value>() {
            let (k, _) = pair?;
            own_keys.raw_set(k, true)?;
        }
        let index: mlua::Function = self
            .main
            .lua
            .load("local shared, own = ... return function(_, k) if own[k] == nil then return shared[k] end end")
            .set_name("=luaco/script_env")
            .call((shared.clone(), own_keys))?;
        let mt = self.main.lua.create_table()?;
        mt.raw_set("__index", index)?;
        mt.raw_set("__metatable", false)?;
        env.set_metatable(Some(mt))?;
        Ok(env)
    }

    /// A new state in this runtime's loop for one script, with the heap
    /// limit and grants of its `budget`.
    fn own_state(&self, budget: &ContextBudget) -> Result<Rc<State>> {
        let io = match budget.policy() {
            Some(policy) => scoped_io(
                &self.io,
                policy,
                self.config.file_system.is_none() && self.config.sandbox.is_none(),
            )?,
            None => self.io.clone(),
        };
        let settings = Settings {
            config: &self.config,
            io: &io,
            hub: &self.hub,
            limits: Limits {
                // The runtime's budget too, counted in this state alone.
                max_instructions: self.config.max_instructions,
                timeout: self.config.max_execution_time,
                time_slice: self.config.time_slice,
                max_memory: budget.limits().max_memory,
            },
            contexts: true,
            untrusted: budget.is_untrusted(),
        };
        let state = Rc::new(State::build(settings, |lua| {
            Ok(self.sched.add_state(lua, self.config.engine_options())?)
        })?);
        for observer in self.observers.borrow().iter() {
            state.engine.add_observer(observer.clone());
        }
        state.guard.restart_clock();
        self.own_states.borrow_mut().push(state.clone());
        Ok(state)
    }

    /// Compiles `source` (text only) as a chunk named `chunk_name`, in the
    /// sandbox's environment when there is one. Sources are bytes, as Lua
    /// reads them: any encoding, not only UTF-8.
    pub fn load(&self, source: impl AsRef<[u8]>, chunk_name: &str) -> Result<mlua::Function> {
        load_in(
            &self.main.lua,
            source.as_ref(),
            chunk_name,
            self.main.env.as_ref(),
            mlua::chunk::ChunkMode::Text,
        )
    }

    /// Loads a precompiled (binary) chunk, as `lua5.4` runs one. Bytecode
    /// is not checked by Lua and can break the state, so only a runtime
    /// without [`Config::sandbox`] loads it; a sandboxed one refuses with
    /// [`Error::Script`] of kind `permission`.
    pub fn load_binary(&self, chunk: &[u8], chunk_name: &str) -> Result<mlua::Function> {
        if self.config.sandbox.is_some() {
            return Err(Error::Script(ScriptError::new(
                ErrorKind::Permission,
                "binary (precompiled) chunks are not allowed in a sandboxed runtime",
            )));
        }
        load_in(
            &self.main.lua,
            chunk,
            chunk_name,
            None,
            mlua::chunk::ChunkMode::Binary,
        )
    }

    /// The globals scripts see: under [`Config::sandbox`], the sandbox's
    /// table (each script of [`create_async`](Runtime::create_async) has
    /// its own globals and reads what the host put here through them),
    /// else the state's globals.
    pub fn globals(&self) -> mlua::Table {
        self.main
            .env
            .clone()
            .unwrap_or_else(|| self.main.lua.globals())
    }

    /// The run-level limit that ended the run, if one did.
    pub fn limit_hit(&self) -> Option<Limit> {
        self.main.guard.tripped()
    }

    /// A flag another thread can read with [`Limit::from_signal`]: set the
    /// moment a run-level limit is hit. The CLI's watchdog ends the process
    /// if the script does not stop soon after (see [`luaco_sandbox::Guard::signal`]).
    pub fn limit_signal(&self) -> std::sync::Arc<std::sync::atomic::AtomicU8> {
        self.main.guard.signal()
    }

    fn limit_error(&self) -> Option<Error> {
        match self.main.guard.tripped()? {
            Limit::Time => Some(Error::Timeout),
            limit => Some(Error::Limit(self.main.guard.error(limit))),
        }
    }

    /// Runs a Lua function as a task with `args`, like [`create_async`](Runtime::create_async).
    pub fn spawn_function(
        &self,
        function: mlua::Function,
        args: MultiValue,
        context: &ScriptContext,
    ) -> Result<PromiseHandle> {
        let promise = self.spawn_in(&self.main, function, args, context)?;
        Ok(PromiseHandle {
            promise,
            engine: self.main.engine.clone(),
            lua: self.main.lua.weak(),
            state: None,
        })
    }

    fn spawn_in(
        &self,
        state: &State,
        function: mlua::Function,
        args: MultiValue,
        context: &ScriptContext,
    ) -> Result<Promise> {
        let engine = &state.engine;
        let promise = engine.spawn(function, args, context)?;
        match context.policy::<ContextBudget>() {
            // A script's own wall clock also ends it while it sleeps, when
            // no hook runs: its promise rejects with the limit and the task
            // is cancelled (any code it runs then meets the spent budget).
            Some(budget) if budget.limits().timeout.is_some() => {
                let left = budget.time_left().unwrap_or_default();
                let error = engine.error_object(&budget.error(Limit::Time))?;
                let timeout_with: mlua::Function = engine.internals().raw_get("timeout_with")?;
                let raced: Value =
                    timeout_with.call((promise.to_lua()?, left.as_secs_f64() * 1000.0, error))?;
                engine
                    .promise_from_value(&raced)
                    .ok_or_else(|| Error::Conversion("timeout_with returned no promise".into()))
            }
            _ => Ok(promise),
        }
    }

    /// Runs turns for up to `budget`, returning what was done. Never blocks.
    pub fn pump(&self, budget: Duration) -> Result<PumpStats> {
        let stats = self.sched.pump(budget);
        self.retire_states();
        Ok(stats)
    }

    /// A new call: the wall clock of every state's guard starts again, and
    /// the runtime's own heap limit is forgiven (a script's own state,
    /// once out of memory, stays over).
    fn restart_clocks(&self) {
        self.main.guard.start_call();
        for state in self.own_states.borrow().iter() {
            state.guard.restart_clock();
        }
    }

    /// Takes the states of scripts that hit a run-level limit out of the
    /// loop (their abandoned tasks never run again), and drops those no
    /// handle holds once they hit a limit or have nothing left to run (no
    /// task, timer or handler).
    fn retire_states(&self) {
        self.own_states.borrow_mut().retain(|state| {
            let tripped = state.guard.tripped().is_some();
            if tripped {
                self.sched.remove_state(&state.engine);
            }
            let held = Rc::strong_count(state) > 1;
            held || (!tripped && !self.sched.state_is_idle(&state.engine))
        });
    }

    /// Runs the loop until `promise` settles, then returns its result.
    ///
    /// Fails with [`Error::Stalled`] if nothing left could settle it, and
    /// with [`Error::Timeout`] past [`Config::max_execution_time`].
    pub fn block_on(&self, promise: &PromiseHandle) -> Result<ScriptValue> {
        // The wall clock is per call, as it always was for the loop; the
        // hook enforces the same deadline inside a task that never awaits.
        self.restart_clocks();
        let deadline = self.config.max_execution_time.map(|d| Instant::now() + d);
        let guard = &self.main.guard;
        let end = self.sched.run_until(
            || {
                self.retire_states();
                !promise.promise.is_pending()
                    || guard.tripped().is_some()
                    || promise.own_limit().is_some()
            },
            deadline,
        );
        self.retire_states();
        if let Some(e) = self.limit_error() {
            return Err(e);
        }
        if let Some(e) = promise.own_limit() {
            return Err(Error::Script(e));
        }
        match end {
            RunEnd::Done => promise.result(),
            RunEnd::Idle => Err(Error::Stalled),
            RunEnd::DeadlinePassed => Err(Error::Timeout),
        }
    }

    /// Runs the loop until nothing is ready or pending: every task, timer
    /// and future started has finished.
    pub fn run(&self) -> Result<()> {
        self.restart_clocks();
        let deadline = self.config.max_execution_time.map(|d| Instant::now() + d);
        let guard = &self.main.guard;
        let end = self.sched.run_until(
            || {
                self.retire_states();
                guard.tripped().is_some()
            },
            deadline,
        );
        self.retire_states();
        if let Some(e) = self.limit_error() {
            return Err(e);
        }
        match end {
            RunEnd::DeadlinePassed => Err(Error::Timeout),
            RunEnd::Done | RunEnd::Idle => Ok(()),
        }
    }

    /// Runs the loop like [`run`](Runtime::run), but an error in `main`
    /// ends the run: the moment `main` rejects, no other task runs, and
    /// this returns. What is left stays as it was until [`stop`](Runtime::stop)
    /// cancels it; report the error first, as the CLI does, so that output
    /// from `<close>` handlers follows it.
    pub fn run_main(&self, main: &PromiseHandle) -> Result<()> {
        let engine = main.engine.clone();
        let failed = Rc::new(Cell::new(false));
        let seen = failed.clone();
        engine.on_settle(
            &main.promise,
            Box::new(move |engine, _, outcome| {
                // A limit ends the run its own way: its observers and
                // `runtime.limit` handlers still hear of it.
                if let Outcome::Rejected(reason) = outcome {
                    if engine.script_error(reason).kind != ErrorKind::Limit {
                        seen.set(true);
                        engine.halt();
                    }
                }
            }),
        )?;
        self.restart_clocks();
        let deadline = self.config.max_execution_time.map(|d| Instant::now() + d);
        let guard = &self.main.guard;
        let end = self.sched.run_until(
            || {
                self.retire_states();
                failed.get() || guard.tripped().is_some()
            },
            deadline,
        );
        self.retire_states();
        if let Some(e) = self.limit_error() {
            return Err(e);
        }
        match end {
            RunEnd::DeadlinePassed => Err(Error::Timeout),
            RunEnd::Done | RunEnd::Idle => Ok(()),
        }
    }

    /// Ends everything the runtime runs: every live task is cancelled (its
    /// coroutine closed, so its `<close>` values run) and every timer
    /// stopped. Returns how many tasks were cancelled. The runtime stays
    /// usable: new tasks run as usual.
    pub fn stop(&self) -> usize {
        self.sched.stop()
    }

    /// Exposes a Rust async function to Lua as `name`: calling it returns a
    /// promise settled by the future. Arguments arrive as [`ScriptValue`]s;
    /// an `Err` rejects the promise with that error object.
    ///
    /// The function is added to the API table (`require("luaco").name`) and,
    /// with [`Config::globals`], as a global.
    pub fn register_async<F, Fut>(&self, name: &str, f: F) -> Result<()>
    where
        F: Fn(Vec<ScriptValue>) -> Fut + 'static,
        Fut: Future<Output = std::result::Result<ScriptValue, ScriptError>> + 'static,
    {
        let engine = self.engine().clone();
        let fname = name.to_owned();
        let function = self
            .engine()
            .api_function(&self.main.lua, move |lua, args| {
                let mut values = Vec::with_capacity(args.len());
                for (i, v) in args.iter().enumerate() {
                    let value = ScriptValue::from_lua_value(v).map_err(|e| {
                        ScriptError::new(
                            ErrorKind::Type,
                            format!("bad argument #{} to '{fname}' ({e})", i + 1),
                        )
                    })?;
                    values.push(value);
                }
                let _ = lua;
                engine.spawn_data(f(values)).map_err(ScriptError::from)
            })?;
        self.main.api.raw_set(name, function.clone())?;
        if self.config.globals {
            self.main.lua.globals().raw_set(name, function)?;
        }
        Ok(())
    }
}

/// The backends of `base` narrowed to what `policy` grants: no network
/// unless allowed (and then only to its allow-list), no file system
/// unless it names a root, and then a real one confined to that root —
/// only if the runtime's own is the real, unconfined one (`real_fs`): a
/// host that gave the runtime another file system (in memory, confined)
/// never has a policy reach the disk past it.
fn scoped_io(base: &IoConfig, policy: &SandboxPolicy, real_fs: bool) -> Result<IoConfig> {
    let http = base.http.clone().and_then(|client| policy.http(client));
    let fs = match (&policy.fs_root, &base.fs) {
        (Some(root), Some(_)) if real_fs => Some(Rc::new(
            RealFs::confined(root)
                .map_err(|e| luaco_io::Error::io(root.display().to_string(), e))?,
        ) as Rc<dyn FileSystem>),
        _ => None,
    };
    Ok(IoConfig {
        http,
        fs,
        ..base.clone()
    })
}

/// Compiles `source` (text only) in `lua`, in `env` when given.
/// `source` with `arg` in scope, as `lua5.4` gives a script: `arg[0]` the
/// script's name, `arg[1..]` its arguments (the chunk's `...`). A local
/// of the chunk, declared on its first line so that no line number moves:
/// each script of a runtime has its own, whatever globals it shares.
fn with_arg_table(source: &[u8], name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(source.len() + name.len() + 32);
    out.extend_from_slice(b"local arg = {[0] = \"");
    for &b in name.as_bytes() {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            b' '..=b'~' => out.push(b),
            _ => out.extend_from_slice(format!("\\{b:03}").as_bytes()),
        }
    }
    out.extend_from_slice(b"\", ...}; ");
    out.extend_from_slice(source);
    out
}

fn load_in(
    lua: &Lua,
    source: &[u8],
    name: &str,
    env: Option<&mlua::Table>,
    mode: mlua::chunk::ChunkMode,
) -> Result<mlua::Function> {
    let chunk = lua.load(source).set_name(name).set_mode(mode);
    let chunk = match env {
        Some(env) => chunk.set_environment(env.clone()),
        None => chunk,
    };
    Ok(chunk.into_function()?)
}

/// The Rust side of a script's promise.
///
/// Poll it as a [`Future`] from any executor on the runtime's thread (the
/// runtime must be pumped for it to settle), or read it after
/// [`Runtime::block_on`].
pub struct PromiseHandle {
    promise: Promise,
    engine: Engine,
    lua: mlua::WeakLua,
    /// The script's own state, when it has one; the handle keeps it.
    state: Option<Rc<State>>,
}

impl fmt::Debug for PromiseHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PromiseHandle").field(&self.promise).finish()
    }
}

impl PromiseHandle {
    /// The run-level limit the script's own state hit, if it has one and
    /// the limit ended it before its promise settled.
    fn own_limit(&self) -> Option<ScriptError> {
        let state = self.state.as_ref()?;
        match self.promise.is_pending() {
            true => state.limit_error(),
            false => None,
        }
    }

    /// Where the script's task is suspended while its promise is pending:
    /// its Lua stack as a traceback, for a report of what a stalled run
    /// ([`Error::Stalled`]) waits on.
    pub fn suspended_traceback(&self) -> Option<String> {
        self.lua.try_upgrade()?;
        self.engine.suspended_traceback(&self.promise)
    }

    /// The promise's state.
    pub fn status(&self) -> PromiseStatus {
        self.promise.status()
    }

    /// The core promise.
    pub fn promise(&self) -> &Promise {
        &self.promise
    }

    /// The resolved value as data, or the rejection as [`Error::Script`].
    /// Fails with [`Error::Pending`] before it settles.
    pub fn result(&self) -> Result<ScriptValue> {
        // Values live in the Lua state: once the runtime is gone, so are they.
        let Some(_lua) = self.lua.try_upgrade() else {
            return Err(Error::RuntimeDropped);
        };
        if let Some(e) = self.own_limit() {
            return Err(Error::Script(e));
        }
        match self.promise.outcome() {
            None => Err(Error::Pending),
            Some(Outcome::Resolved(v)) => Ok(ScriptValue::from_lua_value(&v)?),
            Some(Outcome::Rejected(reason)) => {
                Err(Error::Script(self.engine.script_error(&reason)))
            }
            Some(Outcome::Cancelled) => Err(Error::Script(ScriptError::new(
                ErrorKind::Cancelled,
                "the promise was cancelled",
            ))),
        }
    }

    /// The resolved value as a Lua value (functions and tables kept as they are).
    pub fn value(&self) -> Option<Value> {
        self.lua.try_upgrade()?;
        match self.promise.outcome() {
            Some(Outcome::Resolved(v)) => Some(v),
            _ => None,
        }
    }

    /// The rejection reason as a Lua value (an error object, or whatever
    /// the script raised), if the promise rejected.
    pub fn reason(&self) -> Option<Value> {
        self.lua.try_upgrade()?;
        match self.promise.outcome() {
            Some(Outcome::Rejected(v)) => Some(v),
            _ => None,
        }
    }

    /// Cancels the script's task; `true` if it was still pending.
    pub fn cancel(&self) -> bool {
        match self.lua.try_upgrade() {
            Some(_) => self.engine.cancel(&self.promise),
            None => false,
        }
    }
}

impl Future for PromiseHandle {
    type Output = Result<ScriptValue>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if !self.promise.is_pending() || self.own_limit().is_some() {
            return Poll::Ready(self.result());
        }
        let Some(lua) = self.lua.try_upgrade() else {
            return Poll::Ready(Err(Error::RuntimeDropped));
        };
        drop(lua);
        if let Err(e) = self
            .engine
            .register_waker(&self.promise, cx.waker().clone())
        {
            return Poll::Ready(Err(e.into()));
        }
        Poll::Pending
    }
}
