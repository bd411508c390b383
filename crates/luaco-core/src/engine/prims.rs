//! The Rust functions the Lua half calls (`prim.*` in its sources): Rust
//! waiters, cancelling futures, lifecycle reports, the stop reason, limit
//! and close errors, unhandled rejections and error conversion.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use mlua::{Function, Lua, Table, Value};

use super::{Engine, RustWaiter};
use crate::context::ContextData;
use crate::error::{ErrorKind, ScriptError};
use crate::observer::{Lifecycle, Origin, TaskInfo};
use crate::promise::{Outcome, PromiseStatus};
use crate::stop::Stop;

/// The Lua half's code for a limit hit (after the lifecycle points).
const LIMIT_HIT: i64 = 8;

/// `lifecycle(ev, id, ctx, status, yields, time, value, parent, quiet)` as
/// the Lua half calls it; `quiet`, at `Created`: the task is asked, not
/// reported.
type LifecycleArgs = (
    i64,
    i64,
    Value,
    i64,
    i64,
    f64,
    Value,
    Option<i64>,
    Option<bool>,
);

/// The name of the script context a task record carries.
fn context_name(ctx: &Value) -> String {
    match ctx {
        Value::UserData(ud) => ud
            .borrow::<ContextData>()
            .map(|c| c.0.name().to_owned())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

impl Engine {
    pub(super) fn primitives(&self, lua: &Lua) -> mlua::Result<Table> {
        let prims = lua.create_table()?;
        let weak = Rc::downgrade(&self.0);
        let with = move |f: &dyn Fn(Engine)| {
            if let Some(inner) = weak.upgrade() {
                f(Engine(inner));
            }
        };
        let w = with.clone();
        prims.raw_set(
            "notify",
            lua.create_function(move |lua, (id, st, v): (i64, i64, Value)| {
                w(&|engine| engine.notify(lua, id, st, v.clone()));
                Ok(())
            })?,
        )?;
        let w = with.clone();
        prims.raw_set(
            "cancel_future",
            lua.create_function(move |_, id: i64| {
                w(&|engine| {
                    let key = engine.0.futures.borrow_mut().remove(&id);
                    if let Some(key) = key {
                        engine.0.driver.cancel_future(key);
                    }
                });
                Ok(())
            })?,
        )?;
        let w = with.clone();
        prims.raw_set(
            "lifecycle",
            lua.create_function(move |lua, args: LifecycleArgs| {
                let veto = RefCell::new(Value::Nil);
                w(&|engine| *veto.borrow_mut() = engine.lifecycle(lua, &args));
                Ok(veto.into_inner())
            })?,
        )?;
        prims.raw_set("spawn_site", crate::native::spawn_site_function(lua)?)?;
        prims.raw_set("thread_status", crate::native::thread_status_function(lua)?)?;
        prims.raw_set("call_site", crate::native::call_site_function(lua)?)?;
        prims.raw_set("STATUS_MEMORY", crate::native::STATUS_MEMORY)?;
        prims.raw_set(
            "make_run",
            lua.create_function(
                |lua,
                 (s, running, await_mark, finished, worker, fns): (
                    Table,
                    Table,
                    Table,
                    Table,
                    Function,
                    Table,
                )| {
                    let promise_mt: Table = fns.raw_get("promise_mt")?;
                    crate::native::hot::run_function(
                        lua,
                        s,
                        running,
                        (await_mark, finished),
                        worker,
                        fns,
                        promise_mt,
                    )
                },
            )?,
        )?;
        prims.raw_set(
            "make_await",
            lua.create_function(
                |lua, (running, mt, marker, slow): (Table, Table, Table, Function)| {
                    crate::native::hot::await_function(lua, running, mt, marker, slow)
                },
            )?,
        )?;
        let [resume, guard_resume, wrap, close] = crate::native::interrupt::functions(lua)?;
        prims.raw_set("resume", resume)?;
        prims.raw_set("guard_resume", guard_resume)?;
        prims.raw_set("wrap", wrap)?;
        prims.raw_set("close", close)?;
        prims.raw_set(
            "memory_refused",
            lua.create_function(|lua, ()| Ok(crate::native::allocator_refused(lua)))?,
        )?;
        let origin = self.0.origin;
        prims.raw_set(
            "clock",
            lua.create_function(move |_, ()| Ok(origin.elapsed().as_secs_f64()))?,
        )?;
        let w = with.clone();
        prims.raw_set(
            "yield_reason",
            lua.create_function(move |_, ()| {
                let code = Cell::new(Stop::Yield.code());
                w(&|engine| code.set(engine.0.stop.replace(Stop::Yield).code()));
                Ok(code.get())
            })?,
        )?;
        let w = with.clone();
        prims.raw_set(
            "limit_error",
            lua.create_function(move |_, ()| {
                let out = RefCell::new(Value::Nil);
                w(&|engine| {
                    let err = engine.0.limit_error.borrow().clone().unwrap_or_else(|| {
                        ScriptError::new(ErrorKind::Limit, "a run-level limit was hit")
                    });
                    if let Ok(v) = engine.error_object(&err) {
                        *out.borrow_mut() = v;
                    }
                });
                Ok(out.into_inner())
            })?,
        )?;
        let w = with.clone();
        prims.raw_set(
            "close_error",
            lua.create_function(move |_, e: Value| {
                w(&|engine| {
                    let mut err = engine.script_error(&e);
                    err.message = format!("error while closing a cancelled task: {}", err.message);
                    engine.report_unhandled(&err);
                });
                Ok(())
            })?,
        )?;
        let w = with.clone();
        prims.raw_set(
            "unhandled",
            lua.create_function(
                move |_, (reason, id, ctx, quiet): (Value, Option<i64>, Value, Option<bool>)| {
                    w(&|engine| {
                        let err = engine.script_error(&reason);
                        match id {
                            Some(id) => {
                                let name = context_name(&ctx);
                                let origin = Origin {
                                    thread_id: id.max(0) as u64,
                                    script_name: &name,
                                    quiet: quiet.unwrap_or(false),
                                };
                                engine.report_unhandled_from(&err, Some(&origin));
                            }
                            None => engine.report_unhandled(&err),
                        }
                    });
                    Ok(())
                },
            )?,
        )?;
        let w = with;
        prims.raw_set(
            "convert_error",
            lua.create_function(move |lua, v: Value| {
                let Value::Error(e) = &v else { return Ok(v) };
                let err = ScriptError::from(&**e);
                let out = RefCell::new(Value::Nil);
                w(&|engine| {
                    if let Ok(obj) = engine.error_object(&err) {
                        *out.borrow_mut() = obj;
                    }
                });
                match out.into_inner() {
                    Value::Nil => Ok(Value::String(lua.create_string(&err.message)?)),
                    obj => Ok(obj),
                }
            })?,
        )?;
        Ok(prims)
    }

    /// The error object made up front for a full heap.
    pub(super) fn memory_error(&self) -> Value {
        let f: mlua::Result<Function> = self.half().internals.raw_get("memory_error");
        f.and_then(|f| f.call(())).unwrap_or(Value::Boolean(false))
    }

    fn notify(&self, lua: &Lua, id: i64, st: i64, v: Value) {
        let waiter = self.0.waiters.borrow_mut().remove(&id);
        match waiter {
            Some(RustWaiter::Callback(cb)) => {
                if let Some(outcome) = Outcome::from_parts(st, v) {
                    cb(self, lua, &outcome);
                }
            }
            Some(RustWaiter::Waker(w)) => w.wake(),
            None => {}
        }
    }

    /// A report from the Lua half; returns the error object refusing a
    /// created task, or nil.
    fn lifecycle(&self, lua: &Lua, args: &LifecycleArgs) -> Value {
        let (ev, id, ref ctx, st, yields, time, ref value, parent, quiet) = *args;
        let name = context_name(ctx);
        let info = TaskInfo {
            thread_id: id.max(0) as u64,
            script_name: &name,
            status: PromiseStatus::from_code(st).unwrap_or(PromiseStatus::Pending),
            execution_time: Duration::from_secs_f64(time.max(0.0)),
            yield_count: yields.max(0) as u64,
            memory_bytes: lua.used_memory(),
            parent_id: parent.filter(|&p| p > 0).map(|p| p as u64),
            value: match value {
                Value::Nil => None,
                v => Some(v),
            },
        };
        let observers = self.0.observers.snapshot();
        let Some(event) = Lifecycle::from_code(ev) else {
            if ev == LIMIT_HIT {
                let error = self.script_error(value);
                for o in &observers {
                    o.limit_hit(&info, &error);
                }
            }
            return Value::Nil;
        };
        let mut veto = None;
        if event == Lifecycle::Created {
            for o in &observers {
                if let Err(e) = o.admit(&info) {
                    veto = Some(e);
                    break;
                }
            }
        }
        if quiet != Some(true) {
            for o in &observers {
                if o.wants(event) {
                    o.lifecycle(event, &info);
                }
            }
        }
        match veto {
            Some(e) => self
                .error_object(&e)
                .unwrap_or_else(|_| Value::Boolean(false)),
            None => Value::Nil,
        }
    }
}
