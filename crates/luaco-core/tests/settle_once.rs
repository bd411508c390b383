//! Property: a promise settles once, whatever sequence of resolve, reject
//! and cancel calls it receives, and its waiters hear about it exactly once.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use luaco_core::{Outcome, PromiseStatus};
use mlua::Value;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Resolve(i64),
    Reject(i64),
    Cancel,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<i64>().prop_map(Op::Resolve),
        any::<i64>().prop_map(Op::Reject),
        Just(Op::Cancel),
    ]
}

proptest! {
    #[test]
    fn settles_once(ops in prop::collection::vec(op(), 0..12), waiters in 0usize..4) {
        let (_lua, engine) = common::engine();
        let p = engine.new_promise().expect("promise");
        p.set_handled();
        let heard = Rc::new(Cell::new(0));
        for _ in 0..waiters {
            let heard = heard.clone();
            engine.on_settle(&p, Box::new(move |_, _, _| heard.set(heard.get() + 1))).expect("waiter");
        }
        let mut expected = PromiseStatus::Pending;
        let mut expected_value = None;
        for op in &ops {
            let was_pending = expected == PromiseStatus::Pending;
            match op {
                Op::Resolve(v) => {
                    engine.resolve(&p, Value::Integer(*v)).expect("resolve");
                    if was_pending { expected = PromiseStatus::Resolved; expected_value = Some(*v); }
                }
                Op::Reject(v) => {
                    engine.reject(&p, Value::Integer(*v)).expect("reject");
                    if was_pending { expected = PromiseStatus::Rejected; expected_value = Some(*v); }
                }
                Op::Cancel => {
                    let cancelled = engine.cancel(&p);
                    prop_assert_eq!(cancelled, was_pending, "cancel() is true only while pending");
                    if was_pending { expected = PromiseStatus::Cancelled; }
                }
            }
            prop_assert_eq!(p.status(), expected);
        }
        let outcome_value = match p.outcome() {
            Some(Outcome::Resolved(Value::Integer(v))) | Some(Outcome::Rejected(Value::Integer(v))) => Some(v),
            _ => None,
        };
        prop_assert_eq!(outcome_value, expected_value);
        let settled = expected != PromiseStatus::Pending;
        prop_assert_eq!(heard.get(), if settled { waiters } else { 0 });
    }
}

#[test]
fn lua_resolvers_settle_once_too() -> mlua::Result<()> {
    let (lua, engine) = common::engine();
    let main = lua
        .load(
            r#"
        local p = luaco.promise.new(function(resolve, reject)
            resolve("first"); reject("second"); resolve("third")
        end)
        local a, b = p:status(), luaco.await(p)
        return a .. ":" .. b
    "#,
        )
        .into_function()?;
    let result = engine
        .spawn(main, (), &luaco_core::ScriptContext::new("t"))
        .expect("spawn");
    common::drain(&engine);
    match result.outcome() {
        Some(Outcome::Resolved(Value::String(s))) => assert_eq!(s.to_str()?, "resolved:first"),
        other => panic!("unexpected {other:?}"),
    }
    Ok(())
}
