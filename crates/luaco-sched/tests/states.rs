//! One loop, several Lua states: each state's tasks and timers run in the
//! same turns, on the same clock, and a state leaves the loop when it is
//! removed or dropped.

use std::time::{Duration, Instant};

use luaco_core::{Engine, Promise, PromiseStatus, ScriptContext, StateBuilder};
use luaco_sched::{RunEnd, Scheduler};
use mlua::Lua;

fn spawn(lua: &Lua, engine: &Engine, code: &str) -> Promise {
    lua.globals().set("luaco", engine.api()).expect("api");
    let main = lua.load(code).into_function().expect("compile");
    engine
        .spawn(main, (), &ScriptContext::new("states"))
        .expect("spawn")
}

#[test]
fn tasks_of_two_states_interleave_on_one_clock() {
    let first = StateBuilder::new().build().expect("lua");
    let sched = Scheduler::new(&first, Default::default()).expect("scheduler");
    let second = StateBuilder::new().build().expect("lua");
    let other = sched.add_state(&second, Default::default()).expect("state");
    // Each state records the loop's time at its ticks; the two sleepers
    // alternate, so each one's ticks fall between the other's.
    let a = spawn(
        &first,
        sched.engine(),
        "local t = {} for i = 1, 5 do luaco.await(luaco.sleep(20)) t[i] = luaco.now() end return t",
    );
    let b = spawn(
        &second,
        &other,
        "luaco.await(luaco.sleep(10)) local t = {} for i = 1, 5 do t[i] = luaco.now() luaco.await(luaco.sleep(20)) end return t",
    );
    let started = Instant::now();
    let end = sched.run_until(|| !a.is_pending() && !b.is_pending(), None);
    assert_eq!(end, RunEnd::Done);
    assert_eq!(a.status(), PromiseStatus::Resolved);
    assert_eq!(b.status(), PromiseStatus::Resolved);
    let ticks = |lua: &Lua, p: &Promise| -> Vec<f64> {
        let _ = lua;
        match p.outcome() {
            Some(luaco_core::Outcome::Resolved(mlua::Value::Table(t))) => {
                t.sequence_values().map(|v| v.expect("number")).collect()
            }
            other => panic!("{other:?}"),
        }
    };
    let (ta, tb) = (ticks(&first, &a), ticks(&second, &b));
    for i in 0..5 {
        assert!(tb[i] < ta[i], "{tb:?} {ta:?}");
        if i + 1 < 5 {
            assert!(ta[i] < tb[i + 1], "{ta:?} {tb:?}");
        }
    }
    // 110 ms of sleeping in all, not 200: they slept side by side.
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(sched.is_idle());
}

#[test]
fn a_removed_or_dropped_state_leaves_the_loop() {
    let first = StateBuilder::new().build().expect("lua");
    let sched = Scheduler::new(&first, Default::default()).expect("scheduler");
    let removed = StateBuilder::new().build().expect("lua");
    let engine = sched
        .add_state(&removed, Default::default())
        .expect("state");
    let stuck = spawn(&removed, &engine, "luaco.await(luaco.sleep(60000))");
    sched.pump(Duration::from_millis(1));
    assert_eq!(sched.timer_count(), 1);
    assert!(sched.remove_state(&engine));
    assert!(!sched.remove_state(&engine));
    assert!(sched.is_idle());
    assert!(stuck.is_pending());

    let dropped = StateBuilder::new().build().expect("lua");
    let engine = sched
        .add_state(&dropped, Default::default())
        .expect("state");
    let _sleeper = spawn(&dropped, &engine, "luaco.await(luaco.sleep(60000))");
    sched.pump(Duration::from_millis(1));
    assert_eq!(sched.timer_count(), 1);
    drop(_sleeper);
    drop(engine);
    drop(dropped);
    assert!(sched.is_idle(), "{sched:?}");
    // The first state still runs.
    let p = spawn(
        &first,
        sched.engine(),
        "luaco.await(luaco.sleep(1)) return 1",
    );
    assert_eq!(sched.run_until(|| !p.is_pending(), None), RunEnd::Done);
}
