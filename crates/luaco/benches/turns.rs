//! Costs of the core operations, each next to the baseline it is judged
//! against: a bare Lua `coroutine.resume`/`yield` round trip measured in the
//! same run. `cargo xtask bench` prints the ratios.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use luaco::{Config, Runtime, ScriptContext, ScriptValue};
use mlua::{Function, MultiValue, Value};

fn runtime(pool_size: usize) -> Runtime {
    Runtime::new(Config {
        pool_size,
        spawn_sites: true,
        ..Config::default()
    })
    .expect("runtime")
}

/// Runs `body(n)` as a task and times it; the task must return `n`.
fn time_task(rt: &Runtime, body: &Function, n: u64) -> Duration {
    let args = MultiValue::from_iter([Value::Integer(n as i64)]);
    let start = Instant::now();
    let p = rt
        .spawn_function(body.clone(), args, &ScriptContext::new("bench"))
        .expect("spawn");
    let out = rt.block_on(&p).expect("bench task");
    let elapsed = start.elapsed();
    assert_eq!(out, ScriptValue::Integer(n as i64));
    elapsed
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("turns");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_millis(500));

    // Baseline: a Lua coroutine resumed and yielding back, from Lua.
    let lua = mlua::Lua::new();
    let bare: Function = lua
        .load(
            r#"
        local co = coroutine.wrap(function() while true do coroutine.yield() end end)
        return function(n) for _ = 1, n do co() end return n end
    "#,
        )
        .eval()
        .expect("baseline");
    g.bench_function("bare_resume_yield", |b| {
        b.iter_custom(|n| {
            let start = Instant::now();
            let _: i64 = bare.call(n as i64).expect("call");
            start.elapsed()
        })
    });

    let rt = runtime(256);
    let settled: Function = rt
        .lua()
        .load(
            r#"
        local n = ...
        local p = promise.resolve(1)
        for _ = 1, n do await(p) end
        return n
    "#,
        )
        .into_function()
        .expect("compile");
    g.bench_function("await_settled", |b| {
        b.iter_custom(|n| time_task(&rt, &settled, n))
    });

    let sleep0: Function = rt
        .lua()
        .load("local n = ... for _ = 1, n do await(sleep(0)) end return n")
        .into_function()
        .expect("compile");
    g.bench_function("sleep0_turn", |b| {
        b.iter_custom(|n| time_task(&rt, &sleep0, n))
    });

    // A pending promise made by one task, awaited by another, resolved by
    // the first on its next turn: the full round trip of a wake-up.
    let pending: Function = rt
        .lua()
        .load(
            r#"
        local n = ...
        local resolve
        local waiter = async(function()
          for _ = 1, n do
            await(promise.new(function(r) resolve = r end))
          end
        end)
        for _ = 1, n do
          coroutine.yield()
          resolve(true)
        end
        await(waiter)
        return n
    "#,
        )
        .into_function()
        .expect("compile");
    g.bench_function("pending_await", |b| {
        b.iter_custom(|n| time_task(&rt, &pending, n))
    });

    let spawn_src = r#"
        local n = ...
        local done = 0
        local function work() done = done + 1 end
        for i = 1, n do
          async(work)
          if i % 100 == 0 then coroutine.yield() end
        end
        coroutine.yield()
        assert(done == n)
        return n
    "#;
    let spawn_pooled: Function = rt.lua().load(spawn_src).into_function().expect("compile");
    g.bench_function("spawn_complete_pooled", |b| {
        b.iter_custom(|n| time_task(&rt, &spawn_pooled, n))
    });
    let rt_nopool = runtime(0);
    let spawn_fresh: Function = rt_nopool
        .lua()
        .load(spawn_src)
        .into_function()
        .expect("compile");
    g.bench_function("spawn_complete_unpooled", |b| {
        b.iter_custom(|n| time_task(&rt_nopool, &spawn_fresh, n))
    });

    // Watching tasks: the same spawns on an engine with no hooks crate at
    // all, then on runtimes with one Rust hook and with one Lua subscriber.
    let bare_lua = luaco::core::StateBuilder::new().build().expect("lua");
    let bare_sched = luaco::sched::Scheduler::new(&bare_lua, Default::default()).expect("sched");
    for pair in bare_sched.engine().api().pairs::<Value, Value>() {
        let (k, v) = pair.expect("api");
        bare_lua.globals().raw_set(k, v).expect("globals");
    }
    let bare_spawn: Function = bare_lua.load(spawn_src).into_function().expect("compile");
    g.bench_function("spawn_complete_no_hub", |b| {
        b.iter_custom(|n| {
            let args = MultiValue::from_iter([Value::Integer(n as i64)]);
            let start = Instant::now();
            let p = bare_sched
                .engine()
                .spawn(bare_spawn.clone(), args, &ScriptContext::new("bench"))
                .expect("spawn");
            bare_sched.run_until(|| !p.is_pending(), None);
            let elapsed = start.elapsed();
            assert_eq!(p.status(), luaco::PromiseStatus::Resolved);
            elapsed
        })
    });
    let rt_hook = runtime(256);
    rt_hook.hooks().on(luaco::HookPoint::Completed, |ctx| {
        std::hint::black_box(ctx.execution_time);
        Ok(())
    });
    let spawn_hooked: Function = rt_hook
        .lua()
        .load(spawn_src)
        .into_function()
        .expect("compile");
    g.bench_function("spawn_complete_rust_hook", |b| {
        b.iter_custom(|n| time_task(&rt_hook, &spawn_hooked, n))
    });
    let rt_sub = runtime(256);
    rt_sub
        .lua()
        .load("seen = 0 events.on('coroutine.completed', function() seen = seen + 1 end)")
        .exec()
        .expect("subscribe");
    let spawn_watched: Function = rt_sub
        .lua()
        .load(spawn_src)
        .into_function()
        .expect("compile");
    g.bench_function("spawn_complete_lua_subscriber", |b| {
        b.iter_custom(|n| time_task(&rt_sub, &spawn_watched, n))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
