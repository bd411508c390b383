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
use crate::observer::{Lifecycle, TaskInfo};
use crate::promise::{Outcome, PromiseStatus};
use crate::stop::Stop;

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
            lua.create_function(
                move |_, (ev, id, ctx, st, yields, time): (i64, i64, Value, i64, i64, f64)| {
                    w(&|engine| engine.lifecycle(ev, id, &ctx, st, yields, time));
                    Ok(())
                },
            )?,
        )?;
        prims.raw_set("spawn_site", crate::raw::spawn_site_function(lua)?)?;
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
            lua.create_function(move |_, reason: Value| {
                w(&|engine| {
                    let err = engine.script_error(&reason);
                    engine.report_unhandled(&err);
                });
                Ok(())
            })?,
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

    fn lifecycle(&self, ev: i64, id: i64, ctx: &Value, st: i64, yields: i64, time: f64) {
        let Some(event) = Lifecycle::from_code(ev) else {
            return;
        };
        let name = match ctx {
            Value::UserData(ud) => ud
                .borrow::<ContextData>()
                .map(|c| c.0.name().to_owned())
                .unwrap_or_default(),
            _ => String::new(),
        };
        let info = TaskInfo {
            thread_id: id.max(0) as u64,
            script_name: &name,
            status: PromiseStatus::from_code(st).unwrap_or(PromiseStatus::Pending),
            execution_time: Duration::from_secs_f64(time.max(0.0)),
            yield_count: yields.max(0) as u64,
        };
        for o in self.0.observers.snapshot() {
            if o.wants_lifecycle() {
                o.lifecycle(event, &info);
            }
        }
    }
}
