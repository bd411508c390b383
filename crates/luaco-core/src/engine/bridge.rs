//! The bridge for Rust futures: the one way a future becomes a promise,
//! used by every crate above the core (I/O, `register_async`). Its Lua half
//! is `lua/bridge.lua`: each running future is an operation with an integer
//! id, so the promise's source is that id and cancelling it drops the
//! future.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::rc::{Rc, Weak};

use futures_lite::FutureExt;
use mlua::{Lua, Table, Value};

use super::{Engine, Inner};
use crate::error::{ErrorKind, ScriptError};
use crate::value::ScriptValue;

impl Engine {
    /// Runs `future` on the loop and returns its promise, to hand to the
    /// script. Its output, turned into a Lua value by `convert` once ready,
    /// resolves the promise; an `Err` rejects it with that error object; a
    /// panic rejects it with kind `"runtime"`. The promise is an operation
    /// of the running task: cancelling either drops the future at once.
    pub fn spawn_future<F, T, C>(&self, future: F, convert: C) -> mlua::Result<Value>
    where
        F: Future<Output = std::result::Result<T, ScriptError>> + 'static,
        T: 'static,
        C: FnOnce(&Lua, T) -> mlua::Result<Value> + 'static,
    {
        self.live_lua()?;
        let id = self.next_id();
        let promise: Table = self.half().op_begin.call(id)?;
        let weak: Weak<Inner> = Rc::downgrade(&self.0);
        let wrapped = async move {
            let result = AssertUnwindSafe(future).catch_unwind().await;
            if let Some(inner) = weak.upgrade() {
                Engine(inner).finish_op(id, result, convert);
            }
        };
        let key = self.0.driver.spawn(Box::pin(wrapped));
        self.0.futures.borrow_mut().insert(id, key);
        Ok(Value::Table(promise))
    }

    /// [`spawn_future`](Engine::spawn_future) for futures that produce plain data.
    pub fn spawn_data<F>(&self, future: F) -> mlua::Result<Value>
    where
        F: Future<Output = std::result::Result<ScriptValue, ScriptError>> + 'static,
    {
        self.spawn_future(future, |lua, v| v.to_lua_value(lua))
    }

    fn finish_op<T, C>(
        &self,
        id: i64,
        result: std::thread::Result<std::result::Result<T, ScriptError>>,
        convert: C,
    ) where
        C: FnOnce(&Lua, T) -> mlua::Result<Value>,
    {
        self.0.futures.borrow_mut().remove(&id);
        let Some(lua) = self.lua() else { return };
        let settled = match result {
            Ok(Ok(output)) => match convert(&lua, output) {
                Ok(v) => Ok(v),
                Err(e) => Err(ScriptError::from(e)),
            },
            Ok(Err(e)) => Err(e),
            Err(panic) => Err(ScriptError::new(
                ErrorKind::Runtime,
                format!("a Rust future panicked: {}", panic_message(&panic)),
            )),
        };
        let (ok, value) = match settled {
            Ok(v) => (true, v),
            Err(e) => (
                false,
                self.error_object(&e)
                    .unwrap_or_else(|_| self.memory_error()),
            ),
        };
        if let Err(e) = self.half().op_end.call::<()>((id, ok, value)) {
            self.report_unhandled(&ScriptError::from(e));
        }
        self.0.driver.wake();
    }
}

/// What a panic carried, as text.
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-string panic payload)".to_owned()
    }
}
