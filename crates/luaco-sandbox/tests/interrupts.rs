//! Deadlines and time slices without a count hook: the guard's choice, and
//! a real scheduler's busy tasks stopped and preempted by the ticker thread.

use std::time::{Duration, Instant};

use luaco_core::{ErrorKind, Outcome, ScriptContext, StateBuilder};
use luaco_sandbox::{Guard, Limits};
use luaco_sched::Scheduler;

fn limits(timeout: Option<u64>, slice: Option<u64>, instructions: Option<u64>) -> Limits {
    Limits {
        timeout: timeout.map(Duration::from_millis),
        time_slice: slice.map(Duration::from_millis),
        max_instructions: instructions,
        ..Limits::default()
    }
}

#[test]
fn only_an_instruction_budget_keeps_a_count_hook() {
    let timed = Guard::new(limits(Some(1000), Some(10), None));
    assert!(timed.is_needed());
    assert_eq!(timed.uses_count_hook(), !cfg!(target_os = "linux"));
    assert!(Guard::new(limits(Some(1000), None, Some(1_000_000))).uses_count_hook());
    assert!(Guard::with_contexts(limits(Some(1000), None, None)).uses_count_hook());
    assert!(!Guard::new(Limits::default()).uses_count_hook());
}

/// A scheduler whose state has `guard`'s limits.
fn scheduler(guard: &Guard) -> (mlua::Lua, Scheduler) {
    let lua = guard
        .state_builder(StateBuilder::new())
        .build()
        .expect("state");
    let sched = Scheduler::new(&lua, Default::default()).expect("scheduler");
    guard.attach(sched.engine()).expect("attach");
    (lua, sched)
}

#[test]
fn a_deadline_ends_a_task_that_never_awaits() {
    let guard = Guard::new(limits(Some(200), None, None));
    let (lua, sched) = scheduler(&guard);
    let spin = lua
        .load("local n = 0 while true do n = n + 1 end")
        .into_function()
        .expect("chunk");
    let p = sched
        .engine()
        .spawn(spin, (), &ScriptContext::new("spin"))
        .expect("spawn");
    let start = Instant::now();
    sched.run_until(|| !p.is_pending(), Some(start + Duration::from_secs(20)));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let Some(Outcome::Rejected(reason)) = p.outcome() else {
        panic!("still pending or resolved: {:?}", p.outcome());
    };
    let error = sched.engine().script_error(&reason);
    assert_eq!(error.kind, ErrorKind::Limit);
    assert_eq!(error.code.as_deref(), Some("time"));
}

/// Runs `busy` (Lua, given the API as `api`) beside a task that sleeps
/// 10 ms five times, under `guard`; how long the sleeps took in all (ms),
/// or a panic if the sleeper never finished within `wait`.
fn sleeper_beside(guard: &Guard, busy: &str, wait: Duration) -> f64 {
    let (lua, sched) = scheduler(guard);
    let body = format!(
        r#"
        local api = ...
        {busy}
        local t0 = api.now()
        for _ = 1, 5 do api.await(api.sleep(10)) end
        return api.now() - t0
    "#
    );
    let f = lua.load(body).into_function().expect("chunk");
    let p = sched
        .engine()
        .spawn(f, sched.engine().api(), &ScriptContext::new("sleeper"))
        .expect("spawn");
    sched.run_until(|| !p.is_pending(), Some(Instant::now() + wait));
    let Some(Outcome::Resolved(mlua::Value::Number(ms))) = p.outcome() else {
        panic!("the sleeper did not finish: {:?}", p.outcome());
    };
    ms
}

#[test]
fn a_time_slice_lets_a_sleeper_run_beside_busy_tasks() {
    let guard = Guard::new(limits(None, Some(5), None));
    let busy = "for _ = 1, 3 do api.async(function() while true do end end) end";
    let ms = sleeper_beside(&guard, busy, Duration::from_secs(20));
    // Five 10 ms sleeps, each followed by up to three slices of the busy
    // tasks: about 125 ms; ten times that is the bound.
    assert!(ms < 1250.0, "{ms} ms");
}

#[test]
fn a_time_slice_preempts_a_task_that_resumes_coroutines_of_its_own() {
    // Busy tasks that resume generators all the time: their nested
    // resumes must not look like new turns to the slice. The deadline only
    // ends the test if the slice never fires.
    let guard = Guard::new(limits(Some(30_000), Some(5), None));
    let busy = r#"
        local function gen() while true do coroutine.yield(1) end end
        api.async(function()
            for _ in coroutine.wrap(gen) do end
        end)
        api.async(function()
            local co = coroutine.create(gen)
            while coroutine.resume(co) do end
        end)
    "#;
    let ms = sleeper_beside(&guard, busy, Duration::from_secs(120));
    // Five 10 ms sleeps, each followed by up to two slices: about 100 ms.
    assert!(ms < 1000.0, "{ms} ms");
}
