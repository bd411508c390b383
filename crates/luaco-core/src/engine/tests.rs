//! The Lua half's state machine, effect queue and worker pool, driven
//! through the engine with no event loop.

use super::*;
use crate::driver::NoFutures;
use crate::error::ErrorKind;
use crate::state::StateBuilder;

fn engine(pool_size: usize) -> (Lua, Engine) {
    let lua = StateBuilder::new().build().expect("lua");
    let options = Options {
        pool_size,
        ..Options::default()
    };
    let engine = Engine::new(&lua, Rc::new(NoFutures), options).expect("engine");
    lua.globals().set("luaco", engine.api()).expect("api");
    (lua, engine)
}

fn run(lua: &Lua, engine: &Engine, source: &str) -> Outcome {
    let f = lua.load(source).into_function().expect("compile");
    let p = engine
        .spawn(f, (), &ScriptContext::new("unit"))
        .expect("spawn");
    while engine.run_ready(1 << 20).expect("run").ready > 0 {}
    p.outcome().expect("settled")
}

#[test]
fn a_promise_settles_once_and_cancel_only_while_pending() {
    let (_lua, engine) = engine(4);
    let p = engine.new_promise().expect("promise");
    p.set_handled();
    assert_eq!(p.status(), PromiseStatus::Pending);
    engine.resolve(&p, Value::Integer(1)).expect("resolve");
    engine.reject(&p, Value::Integer(2)).expect("reject");
    assert!(!engine.cancel(&p));
    assert!(matches!(
        p.outcome(),
        Some(Outcome::Resolved(Value::Integer(1)))
    ));
    let q = engine.new_promise().expect("promise");
    assert!(engine.cancel(&q));
    assert!(!engine.cancel(&q));
    assert_eq!(q.status(), PromiseStatus::Cancelled);
}

#[test]
fn effects_drain_in_order_and_long_chains_do_not_recurse() {
    let (lua, engine) = engine(4);
    // 200,000 promises each adopting the next: settling the last walks
    // the whole chain through the effect queue, not the C stack.
    let out = run(
        &lua,
        &engine,
        r#"
        local resolvers = {}
        local head = luaco.promise.new(function(r) resolvers[1] = r end)
        local cur = head
        for i = 2, 200000 do
          local nxt = luaco.promise.new(function(r) resolvers[i] = r end)
          resolvers[i - 1](nxt)
          cur = nxt
        end
        local order = {}
        local base = luaco.promise.new(function(r) resolvers.base = r end)
        for i = 1, 5 do base:next(function() order[#order + 1] = i end) end
        resolvers[200000]("end")
        resolvers.base(true)
        assert(luaco.await(head) == "end")
        luaco.await(luaco.all({ base }))
        coroutine.yield()
        assert(table.concat(order, ",") == "1,2,3,4,5", table.concat(order, ","))
        return "ok"
    "#,
    );
    assert!(matches!(out, Outcome::Resolved(Value::String(s)) if s == "ok"));
}

#[test]
fn workers_are_reused_up_to_the_pool_size() {
    let (lua, engine) = engine(8);
    let out = run(
        &lua,
        &engine,
        r#"
        local seen = {}
        local ps = {}
        for i = 1, 100 do
          ps[i] = luaco.async(function() seen[coroutine.running()] = true end)
          if i % 4 == 0 then luaco.await(ps[i]) end
        end
        luaco.await(luaco.all(ps))
        local distinct = 0
        for _ in pairs(seen) do distinct = distinct + 1 end
        return distinct
    "#,
    );
    let Outcome::Resolved(Value::Integer(distinct)) = out else {
        panic!("{out:?}")
    };
    assert!(distinct <= 8, "100 tasks ran on {distinct} coroutines");
    assert!(engine.pooled_threads() <= 8);
    assert_eq!(engine.task_count(), 0);
}

#[test]
fn a_stop_reason_of_limit_abandons_the_task() {
    let (lua, engine) = engine(4);
    engine.set_limit_error(ScriptError::new(ErrorKind::Limit, "instruction limit"));
    let e = engine.clone();
    let stop = lua
        .create_function(move |_, ()| {
            e.set_stop_reason(Stop::Limit);
            Ok(())
        })
        .expect("fn");
    lua.globals().set("stop_me", stop).expect("global");
    let out = run(
        &lua,
        &engine,
        r#"
        local t = luaco.async(function()
          local guard <close> = setmetatable({}, { __close = function() closed_anyway = true end })
          stop_me()
          coroutine.yield()
          error("resumed after the limit")
        end)
        local ok, err = pcall(luaco.await, t)
        coroutine.yield() -- a turn later, still not closed
        assert(not closed_anyway, "an abandoned task's <close> ran")
        return err.kind .. ": " .. err.message
    "#,
    );
    assert!(
        matches!(&out, Outcome::Resolved(Value::String(s)) if s == "limit: instruction limit"),
        "{out:?}"
    );
}
