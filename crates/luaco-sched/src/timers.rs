//! The timer API: `sleep`, `set_timeout`, `set_interval`, `now`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use luaco_core::{
    duration_from_ms, rust_error_to_script, type_error, ApiResult, Engine, Outcome, Promise, Source,
};
use mlua::{Function, Lua, MultiValue, UserData, UserDataMethods, Value};

/// A timer started by `set_timeout` or `set_interval`.
struct TimerHandle {
    engine: Engine,
    state: Rc<TimerState>,
}

struct TimerState {
    /// The pending timer's promise (the next one, for an interval).
    promise: RefCell<Promise>,
    stopped: Cell<bool>,
}

impl UserData for TimerHandle {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("cancel", |lua, this, ()| {
            if this.state.stopped.replace(true) {
                return Ok(false);
            }
            let promise = this.state.promise.borrow().clone();
            Ok(this.engine.cancel(lua, &promise))
        });
    }
}

/// Starts a timer resolving a new promise after `delay`. With `track`, it is
/// an operation of the running task (cancelled with it): `sleep` is, while
/// `set_timeout` and `set_interval` timers live on their own, as in Node.js.
fn start_timer(engine: &Engine, delay: Duration, track: bool) -> Promise {
    let driver = engine.driver();
    let promise = if track {
        engine.new_operation(Source::None)
    } else {
        engine.new_promise()
    };
    let key = driver.add_timer(driver.now() + delay, promise.clone());
    promise.set_source(Source::Timer(key));
    promise
}

/// Runs `callback` as a task when the current timer fires; an interval then
/// starts the next timer.
fn arm(
    engine: &Engine,
    lua: &Lua,
    state: Rc<TimerState>,
    callback: Function,
    every: Option<Duration>,
) {
    let promise = state.promise.borrow().clone();
    engine.on_settle(
        lua,
        &promise,
        Box::new(move |engine, lua, outcome| {
            if !matches!(outcome, Outcome::Resolved(_)) || state.stopped.get() {
                return;
            }
            engine.spawn_detached(lua, callback.clone(), MultiValue::new());
            match every {
                Some(period) => {
                    *state.promise.borrow_mut() = start_timer(engine, period, false);
                    arm(engine, lua, state, callback, every);
                }
                None => state.stopped.set(true),
            }
        }),
    );
}

fn timer_api(
    engine: &Engine,
    lua: &Lua,
    args: MultiValue,
    name: &str,
    repeat: bool,
) -> ApiResult<Value> {
    let mut args = args.into_iter();
    let callback = match args.next() {
        Some(Value::Function(f)) => f,
        other => return Err(type_error(lua, name, 1, "function", other.as_ref())),
    };
    let delay = duration_from_ms(lua, name, 2, args.next().as_ref())?;
    let state = Rc::new(TimerState {
        promise: RefCell::new(start_timer(engine, delay, false)),
        stopped: Cell::new(false),
    });
    arm(
        engine,
        lua,
        state.clone(),
        callback,
        repeat.then_some(delay),
    );
    let engine = engine.clone();
    lua.create_userdata(TimerHandle { engine, state })
        .map(Value::UserData)
        .map_err(|e| rust_error_to_script(&e))
}

pub(crate) fn install(engine: &Engine, lua: &Lua) -> mlua::Result<()> {
    let api = engine.api();
    let e = engine.clone();
    api.raw_set(
        "sleep",
        engine.api_function(lua, move |lua, args| {
            let delay = duration_from_ms(lua, "sleep", 1, args.front())?;
            let promise = start_timer(&e, delay, true);
            e.promise_value(lua, promise)
        })?,
    )?;
    let e = engine.clone();
    api.raw_set(
        "set_timeout",
        engine.api_function(lua, move |lua, args| {
            timer_api(&e, lua, args, "set_timeout", false)
        })?,
    )?;
    let e = engine.clone();
    api.raw_set(
        "set_interval",
        engine.api_function(lua, move |lua, args| {
            timer_api(&e, lua, args, "set_interval", true)
        })?,
    )?;
    let e = engine.clone();
    api.raw_set(
        "now",
        lua.create_function(move |_, ()| Ok(e.driver().now().as_secs_f64() * 1000.0))?,
    )?;
    Ok(())
}
