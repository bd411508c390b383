//! `all`, `all_settled`, `race`, `any` and `timeout`.
//!
//! Each attaches a Rust callback to its inputs instead of spawning tasks, so
//! a combinator over n promises costs n callbacks and one result table.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Lua, MultiValue, Table, Value};

use crate::engine::{duration_from_ms, type_error, ApiResult, Engine, CALLER};
use crate::error::{ErrorKind, ScriptError};
use crate::promise::{Outcome, Promise, Source};

/// An input of a combinator: a promise, or a plain value that counts as resolved.
enum Input {
    Promise(Promise),
    Value(Value),
}

fn read_list(engine: &Engine, lua: &Lua, func: &str, args: &MultiValue) -> ApiResult<Vec<Input>> {
    let Some(Value::Table(t)) = args.front() else {
        return Err(type_error(lua, func, 1, "table", args.front()));
    };
    let n = match t.raw_get::<Value>("n") {
        Ok(Value::Integer(n)) if n >= 0 => n as usize,
        _ => t.raw_len(),
    };
    let mut items = Vec::with_capacity(n);
    for i in 1..=n {
        let v: Value = t
            .raw_get(i)
            .map_err(|e| crate::engine::rust_error_to_script(&e))?;
        items.push(match engine.promise_from_value(&v) {
            Some(p) => Input::Promise(p),
            None => Input::Value(v),
        });
    }
    Ok(items)
}

/// A list table with `n` set, holding `values` (which may contain nils).
fn list_table(lua: &Lua, values: Vec<Value>) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(values.len(), 1)?;
    let n = values.len();
    for (i, v) in values.into_iter().enumerate() {
        t.raw_set(i + 1, v)?;
    }
    t.raw_set("n", n)?;
    Ok(t)
}

fn reason_of(engine: &Engine, lua: &Lua, outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Rejected(e) => e.clone(),
        _ => engine
            .error_object(
                lua,
                &ScriptError::new(ErrorKind::Cancelled, "the promise was cancelled"),
            )
            .unwrap_or(Value::Nil),
    }
}

/// What a combinator does when its input number `index` settles.
type OnInput = Rc<dyn Fn(&Engine, &Lua, usize, &Outcome)>;

/// Calls `each(index, outcome)` for every input, in list order for inputs
/// that are already settled, and as they settle for the others.
fn for_each_input(engine: &Engine, lua: &Lua, items: Vec<Input>, each: OnInput) {
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Input::Value(v) => each(engine, lua, i, &Outcome::Resolved(v)),
            Input::Promise(p) => {
                let each = each.clone();
                engine.on_settle(
                    lua,
                    &p,
                    Box::new(move |engine, lua, outcome| each(engine, lua, i, outcome)),
                );
            }
        }
    }
}

/// What one settled input contributes to a gathering combinator.
enum Step {
    /// Its entry in the final list.
    Entry(Value),
    /// The combinator's outcome, decided now.
    Settle(Outcome),
}

/// The shared shape of `all`, `all_settled` and `any`: each input gives an
/// entry (in list order) or decides the outcome at once; when every input
/// has given an entry, `finish` turns the list into the outcome.
fn gather(
    engine: &Engine,
    lua: &Lua,
    items: Vec<Input>,
    step: impl Fn(&Engine, &Lua, &Outcome) -> Step + 'static,
    finish: impl Fn(&Engine, &Lua, Vec<Value>) -> Outcome + 'static,
) -> ApiResult<Value> {
    let derived = engine.new_promise();
    let n = items.len();
    if n == 0 {
        let outcome = finish(engine, lua, Vec::new());
        engine.settle(lua, &derived, outcome);
    }
    let entries = Rc::new(RefCell::new((vec![Value::Nil; n], n)));
    let target = derived.clone();
    for_each_input(
        engine,
        lua,
        items,
        Rc::new(
            move |engine, lua, i, outcome| match step(engine, lua, outcome) {
                Step::Settle(outcome) => {
                    engine.settle(lua, &target, outcome);
                }
                Step::Entry(v) => {
                    let done = {
                        let mut state = entries.borrow_mut();
                        state.0[i] = v;
                        state.1 -= 1;
                        state.1 == 0
                    };
                    if done {
                        let list = std::mem::take(&mut entries.borrow_mut().0);
                        let outcome = finish(engine, lua, list);
                        engine.settle(lua, &target, outcome);
                    }
                }
            },
        ),
    );
    engine.promise_value(lua, derived)
}

/// The list as a resolved outcome (or the failure to build it as a rejection).
fn resolved_list(engine: &Engine, lua: &Lua, list: Vec<Value>) -> Outcome {
    match list_table(lua, list) {
        Ok(t) => Outcome::Resolved(Value::Table(t)),
        Err(e) => Outcome::Rejected(engine.lua_error_value(lua, e)),
    }
}

fn all(engine: &Engine, lua: &Lua, args: MultiValue) -> ApiResult<Value> {
    let items = read_list(engine, lua, "all", &args)?;
    gather(
        engine,
        lua,
        items,
        |engine, lua, outcome| match outcome {
            Outcome::Resolved(v) => Step::Entry(v.clone()),
            other => Step::Settle(Outcome::Rejected(reason_of(engine, lua, other))),
        },
        resolved_list,
    )
}

fn all_settled(engine: &Engine, lua: &Lua, args: MultiValue) -> ApiResult<Value> {
    let items = read_list(engine, lua, "all_settled", &args)?;
    gather(
        engine,
        lua,
        items,
        |engine, lua, outcome| {
            let entry = (|| -> mlua::Result<Table> {
                let t = lua.create_table_with_capacity(0, 2)?;
                t.raw_set("status", outcome.status().as_str())?;
                match outcome {
                    Outcome::Resolved(v) => t.raw_set("value", v.clone())?,
                    Outcome::Rejected(e) => t.raw_set("reason", e.clone())?,
                    Outcome::Cancelled => {}
                }
                Ok(t)
            })();
            match entry {
                Ok(t) => Step::Entry(Value::Table(t)),
                Err(e) => Step::Settle(Outcome::Rejected(engine.lua_error_value(lua, e))),
            }
        },
        resolved_list,
    )
}

fn race(engine: &Engine, lua: &Lua, args: MultiValue) -> ApiResult<Value> {
    let items = read_list(engine, lua, "race", &args)?;
    if items.is_empty() {
        return Err(ScriptError::new(
            ErrorKind::Type,
            crate::engine::located(lua, CALLER, "race() requires a non-empty list"),
        ));
    }
    let derived = engine.new_promise();
    let target = derived.clone();
    for_each_input(
        engine,
        lua,
        items,
        Rc::new(move |engine, lua, _, outcome| {
            engine.settle(lua, &target, outcome.clone());
        }),
    );
    engine.promise_value(lua, derived)
}

fn any(engine: &Engine, lua: &Lua, args: MultiValue) -> ApiResult<Value> {
    let items = read_list(engine, lua, "any", &args)?;
    gather(
        engine,
        lua,
        items,
        |engine, lua, outcome| match outcome {
            Outcome::Resolved(v) => Step::Settle(Outcome::Resolved(v.clone())),
            other => Step::Entry(reason_of(engine, lua, other)),
        },
        |engine, lua, reasons| {
            let build = || -> mlua::Result<Value> {
                let err = ScriptError::new(
                    ErrorKind::Aggregate,
                    format!("all {} promises were rejected", reasons.len()),
                );
                let obj = engine.error_object(lua, &err)?;
                if let Value::Table(t) = &obj {
                    t.raw_set("errors", list_table(lua, reasons)?)?;
                }
                Ok(obj)
            };
            Outcome::Rejected(build().unwrap_or(Value::Nil))
        },
    )
}

fn timeout(engine: &Engine, lua: &Lua, args: MultiValue) -> ApiResult<Value> {
    let mut args = args.into_iter();
    let input = args.next().unwrap_or(Value::Nil);
    let ms_value = args.next();
    let delay = duration_from_ms(lua, "timeout", 2, ms_value.as_ref())?;
    let Some(inner) = engine.promise_from_value(&input) else {
        let p = engine.new_promise();
        engine.resolve(lua, &p, input);
        return engine.promise_value(lua, p);
    };
    let derived = engine.new_promise();
    let driver = engine.driver().clone();
    let timer = engine.new_promise();
    timer.set_handled();
    let key = driver.add_timer(driver.now() + delay, timer.clone());
    timer.set_source(Source::Timer(key));
    derived.set_source(Source::Linked(timer.clone()));
    let ms = delay.as_secs_f64() * 1000.0;
    let message = crate::engine::located(lua, CALLER, &format!("timed out after {ms} ms"));
    let (target, watched) = (derived.clone(), inner.clone());
    engine.on_settle(
        lua,
        &timer,
        Box::new(move |engine, lua, outcome| {
            if let Outcome::Resolved(_) = outcome {
                let err = ScriptError::new(ErrorKind::Timeout, message);
                engine.reject_with(lua, &target, &err);
                engine.cancel(lua, &watched);
            }
        }),
    );
    let target = derived.clone();
    engine.on_settle(
        lua,
        &inner,
        Box::new(move |engine, lua, outcome| {
            engine.settle(lua, &target, outcome.clone());
            engine.cancel(lua, &timer);
        }),
    );
    engine.promise_value(lua, derived)
}

pub(crate) fn install(engine: &Engine, lua: &Lua, prims: &Table) -> mlua::Result<()> {
    type Combinator = fn(&Engine, &Lua, MultiValue) -> ApiResult<Value>;
    let list: [(&str, Combinator); 5] = [
        ("all", all),
        ("all_settled", all_settled),
        ("race", race),
        ("any", any),
        ("timeout", timeout),
    ];
    for (name, f) in list {
        let e = engine.clone();
        prims.raw_set(
            name,
            engine.raw_api_function(lua, move |lua, args| f(&e, lua, args))?,
        )?;
    }
    Ok(())
}
