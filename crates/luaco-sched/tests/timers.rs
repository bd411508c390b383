//! Timers under a manual clock: fire in (deadline, creation) order, each
//! exactly once, never early, never after being cancelled.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use luaco_core::{Promise, ScriptContext, StateBuilder};
use luaco_sched::{ManualClock, Scheduler, SchedulerOptions};
use proptest::prelude::*;

fn scheduler(clock: &Rc<ManualClock>) -> (mlua::Lua, Scheduler) {
    let lua = StateBuilder::new().build().expect("lua");
    let sched = Scheduler::new(
        &lua,
        SchedulerOptions {
            clock: Some(clock.clone()),
            ..SchedulerOptions::default()
        },
    )
    .expect("scheduler");
    (lua, sched)
}

fn spawn(lua: &mlua::Lua, sched: &Scheduler, code: &str, name: &str) -> Promise {
    let main = lua.load(code).into_function().expect("compile");
    sched
        .engine()
        .spawn(main, (), &ScriptContext::new(name))
        .expect("spawn")
}

/// Pumps until `done`, at most 100 times: the manual clock stands still
/// unless `tick` moves it, so however slow the machine, a few pumps end
/// what the test started.
fn pump_until(sched: &Scheduler, mut tick: impl FnMut(), done: impl Fn() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tick();
        sched.pump(Duration::from_millis(50));
    }
}

/// The string `p` resolved with; panics on any other outcome.
fn resolved_text(p: &Promise) -> String {
    match p.outcome() {
        Some(luaco_core::Outcome::Resolved(mlua::Value::String(s))) => {
            s.to_str().expect("utf-8").to_owned()
        }
        other => panic!("unexpected {other:?}"),
    }
}

proptest! {
    #[test]
    fn timers_fire_in_deadline_then_creation_order(
        delays in prop::collection::vec(0u64..50, 1..40),
        cancel_mask in prop::collection::vec(any::<bool>(), 40),
        steps in prop::collection::vec(1u64..15, 1..20),
    ) {
        let clock = Rc::new(ManualClock::new());
        let (lua, sched) = scheduler(&clock);
        lua.globals().set("luaco", sched.engine().api()).expect("globals");
        let fired: Rc<RefCell<Vec<(usize, Duration)>>> = Rc::default();
        let f = fired.clone();
        let record = lua.create_function(move |_, (i, at): (usize, f64)| {
            f.borrow_mut().push((i, Duration::from_secs_f64(at / 1000.0)));
            Ok(())
        }).expect("record");
        lua.globals().set("record", record).expect("globals");
        let delays_list = delays.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",");
        let cancels_list = delays.iter().enumerate()
            .map(|(i, _)| cancel_mask[i].to_string()).collect::<Vec<_>>().join(",");
        // Sleep promises observed with :next (the order handlers are
        // spawned in is the order the timers fired in); handles from
        // set_timeout are cancelled through their promises' sources.
        let code = format!(r#"
            local delays, cancels = {{{delays_list}}}, {{{cancels_list}}}
            local ps = {{}}
            for i, d in ipairs(delays) do
              local p = luaco.sleep(d)
              ps[i] = p
              p:next(function() record(i - 1, luaco.now()) end)
            end
            for i, c in ipairs(cancels) do
              if c then assert(ps[i]:cancel() == true) end
            end
        "#);
        spawn(&lua, &sched, &code, "timers");
        sched.pump(Duration::from_millis(10));
        for step in steps.iter().chain(std::iter::once(&100)) {
            clock.advance(Duration::from_millis(*step));
            sched.pump(Duration::from_millis(10));
        }
        let cancelled: Vec<bool> = (0..delays.len()).map(|i| cancel_mask[i]).collect();
        let fired = fired.borrow();
        // Each live timer exactly once, cancelled ones never.
        let ids: Vec<usize> = fired.iter().map(|(i, _)| *i).collect();
        let want: Vec<usize> = (0..delays.len()).filter(|i| !cancelled[*i]).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        prop_assert_eq!(&sorted, &want);
        // Order: by deadline, ties by creation.
        let mut model = want.clone();
        model.sort_by_key(|&i| (delays[i], i));
        prop_assert_eq!(&ids, &model);
        // Never early.
        for (i, at) in fired.iter() {
            prop_assert!(*at >= Duration::from_millis(delays[*i]));
        }
        prop_assert_eq!(sched.timer_count(), 0);
        prop_assert!(sched.next_deadline().is_none(), "cancelled timers leave no deadline behind");
    }
}

#[test]
fn sleep_zero_resolves_on_the_next_turn() -> mlua::Result<()> {
    let clock = Rc::new(ManualClock::new());
    let (lua, sched) = scheduler(&clock);
    lua.globals().set("luaco", sched.engine().api())?;
    let main = lua
        .load(
            r#"
        local log = {}
        local a = luaco.async(function() log[#log+1] = "a1"; luaco.await(luaco.sleep(0)); log[#log+1] = "a2" end)
        local b = luaco.async(function() log[#log+1] = "b1"; coroutine.yield(); log[#log+1] = "b2"; coroutine.yield(); log[#log+1] = "b3" end)
        luaco.await(luaco.all({a, b}))
        return table.concat(log, ",")
    "#,
        )
        .into_function()?;
    let p = sched
        .engine()
        .spawn(main, (), &ScriptContext::new("turns"))
        .expect("spawn");
    sched.pump(Duration::from_millis(50));
    // Turn 2: a sleeps, b yields (b is ready again from then on). Turn 3
    // starts by firing a's timer, so a becomes ready after b: both run in
    // turn 3, in the order they became ready.
    assert_eq!(resolved_text(&p), "a1,b1,b2,a2,b3");
    Ok(())
}

#[test]
fn pump_reports_what_it_did() -> mlua::Result<()> {
    let clock = Rc::new(ManualClock::new());
    let (lua, sched) = scheduler(&clock);
    lua.globals().set("luaco", sched.engine().api())?;
    let main = lua
        .load("for i = 1, 3 do luaco.async(function() luaco.await(luaco.sleep(10)) end) end")
        .into_function()?;
    sched
        .engine()
        .spawn(main, (), &ScriptContext::new("stats"))
        .expect("spawn");
    let first = sched.pump(Duration::from_millis(50));
    assert_eq!(first.tasks_resumed, 4, "main, then its three tasks");
    assert_eq!(first.batches, 2);
    assert_eq!(first.timers_fired, 0);
    assert_eq!(sched.timer_count(), 3);
    let idle = sched.pump(Duration::from_millis(50));
    assert_eq!(
        idle.tasks_resumed, 0,
        "nothing is due before the clock moves"
    );
    clock.advance(Duration::from_millis(10));
    let second = sched.pump(Duration::from_millis(50));
    assert_eq!(second.timers_fired, 3);
    assert_eq!(second.tasks_resumed, 3);
    assert_eq!(second.batches, 1);
    assert!(sched.is_idle());
    Ok(())
}

#[test]
fn pump_respects_its_budget() -> mlua::Result<()> {
    let clock = Rc::new(ManualClock::new());
    let (lua, sched) = scheduler(&clock);
    lua.globals().set("luaco", sched.engine().api())?;
    // A task that yields forever: each turn resumes it once.
    let main = lua
        .load("while true do coroutine.yield() end")
        .into_function()?;
    sched
        .engine()
        .spawn(main, (), &ScriptContext::new("spin"))
        .expect("spawn");
    let stats = sched.pump(Duration::ZERO);
    assert_eq!(stats.batches, 1, "a zero budget runs exactly one turn");
    let stats = sched.pump(Duration::from_millis(20));
    assert!(stats.batches > 1);
    assert!(stats.elapsed < Duration::from_secs(2));
    Ok(())
}

#[test]
fn a_scheduler_outliving_its_lua_state_does_nothing_instead_of_panicking() {
    let clock = Rc::new(ManualClock::new());
    let (lua, sched) = scheduler(&clock);
    spawn(&lua, &sched, "luaco.await(luaco.sleep(5))", "gone");
    drop(lua);
    let stats = sched.pump(Duration::from_millis(5));
    assert_eq!(stats.tasks_resumed, 0);
    assert!(sched.is_idle());
    assert!(sched.engine().new_promise().is_err());
    assert_eq!(sched.engine().task_count(), 0);
}

#[test]
fn cancelled_timers_leave_nothing_behind_and_their_reused_ids_never_fire_early() -> mlua::Result<()>
{
    let clock = Rc::new(ManualClock::new());
    let (lua, sched) = scheduler(&clock);
    lua.globals().set("luaco", sched.engine().api())?;
    // Enough cancelled timers that the heap drops its stale entries; the
    // new timers take the freed ids while stale entries with those ids,
    // due later, are still in the heap (or were just dropped).
    let main = lua
        .load(
            r#"
        fired, early = 0, 0
        for round = 1, 3 do
          local hs = {}
          for i = 1, 300 do
            hs[i] = luaco.set_timeout(function() error("a cancelled timer fired") end, 1000 * round)
          end
          local ps = {}
          for i = 1, 300 do ps[i] = luaco.sleep(2000 * round) end
          for i = 1, 300 do assert(hs[i]:cancel()); assert(not hs[i]:cancel()) end
          for i = 1, 300 do ps[i]:cancel() end
          for i = 1, 300 do
            local at = luaco.now() + 10
            luaco.set_timeout(function()
              fired = fired + 1
              if luaco.now() < at then early = early + 1 end
            end, 10)
          end
        end
    "#,
        )
        .into_function()?;
    let p = sched
        .engine()
        .spawn(main, (), &ScriptContext::new("reuse"))
        .expect("spawn");
    pump_until(&sched, || {}, || !p.is_pending());
    assert!(!p.is_pending(), "{:?}", p.outcome());
    assert_eq!(sched.timer_count(), 900);
    clock.advance(Duration::from_millis(9));
    sched.pump(Duration::from_millis(50));
    assert_eq!(lua.globals().get::<i64>("fired")?, 0);
    clock.advance(Duration::from_millis(1));
    pump_until(
        &sched,
        || {},
        || lua.globals().get::<i64>("fired").unwrap_or(0) == 900,
    );
    assert_eq!(lua.globals().get::<i64>("fired")?, 900);
    assert_eq!(lua.globals().get::<i64>("early")?, 0);
    assert_eq!(sched.timer_count(), 0);
    assert_eq!(sched.next_deadline(), None);
    // Past every cancelled deadline: nothing fires, nothing failed.
    clock.advance(Duration::from_secs(10));
    let stats = sched.pump(Duration::from_millis(50));
    assert_eq!(stats.timers_fired, 0);
    assert!(sched.is_idle());
    Ok(())
}

#[test]
fn an_interval_of_zero_fires_once_a_turn() -> mlua::Result<()> {
    let clock = Rc::new(ManualClock::new());
    let (lua, sched) = scheduler(&clock);
    lua.globals().set("luaco", sched.engine().api())?;
    let main = lua
        .load("ticks = 0; h = luaco.set_interval(function() ticks = ticks + 1 end, 0)")
        .into_function()?;
    sched
        .engine()
        .spawn(main, (), &ScriptContext::new("interval"))
        .expect("spawn");
    // A zero budget runs one turn: the interval fires at most once in it.
    for turn in 1..=5 {
        sched.pump(Duration::ZERO);
        let ticks: i64 = lua.globals().get("ticks")?;
        assert!(ticks <= turn, "{ticks} ticks after {turn} turns");
    }
    lua.load("h:cancel()").exec()?;
    assert_eq!(sched.timer_count(), 0);
    Ok(())
}

#[test]
fn the_timer_heap_cannot_be_reached_to_break_the_runtime() -> mlua::Result<()> {
    // A trusted script with `debug` can reach the heap's C functions and
    // the heap itself; finalizing it by hand makes timers raise, never
    // crash, and the metatable is hidden.
    let clock = Rc::new(ManualClock::new());
    let (lua, sched) = scheduler(&clock);
    lua.globals().set("luaco", sched.engine().api())?;
    let found: String = lua
        .load(
            r#"
        local function find(f, depth, seen)
          if depth > 4 or seen[f] then return nil end
          seen[f] = true
          for i = 1, 255 do
            local name, v = debug.getupvalue(f, i)
            if name == nil then break end
            -- Only the heap: other userdata (mlua's callbacks) are not
            -- this test's business.
            if type(v) == "userdata" and tostring(v):find("luaco.timer_heap", 1, true) then
              return v
            end
            if type(v) == "function" then
              local got = find(v, depth + 1, seen)
              if got then return got end
            elseif type(v) == "table" then
              for _, w in pairs(v) do
                if type(w) == "function" then
                  local got = find(w, depth + 1, seen)
                  if got then return got end
                end
              end
            end
          end
        end
        local heap = find(luaco.sleep, 0, {})
        if not heap then return "not found" end
        local mt = getmetatable(heap)
        local gc = debug.getmetatable(heap).__gc
        gc(heap)
        gc(heap)
        local ok, err = pcall(luaco.sleep, 5)
        return tostring(mt) .. " " .. tostring(ok) .. " " .. tostring(err)
    "#,
        )
        .eval()?;
    assert!(
        found.starts_with("false false") && found.contains("the timer heap is gone"),
        "{found}"
    );
    Ok(())
}

#[test]
fn a_forged_or_stale_timer_id_stops_nobody_elses_timer() -> mlua::Result<()> {
    // A pending sleep's source slot holds minus its timer's id; a script
    // that writes another id there and cancels its own promise, or keeps
    // a handle past its timer, must not stop another task's timer.
    let clock = Rc::new(ManualClock::new());
    let (lua, sched) = scheduler(&clock);
    lua.globals().set("luaco", sched.engine().api())?;
    let main = lua
        .load(
            r#"
        local victim = luaco.async(function() luaco.await(luaco.sleep(20)); return "victim done" end)
        local mine = luaco.sleep(100000)
        luaco.await(luaco.sleep(0))
        for k = 1, 8 do rawset(mine, 2, -k) end
        assert(mine:cancel())
        local once = luaco.set_timeout(function() end, 1)
        luaco.await(luaco.sleep(5))
        -- Its timer fired and its id may be another's now.
        assert(not once:cancel())
        return luaco.await(victim)
    "#,
        )
        .into_function()?;
    let p = sched
        .engine()
        .spawn(main, (), &ScriptContext::new("forge"))
        .expect("spawn");
    pump_until(
        &sched,
        || clock.advance(Duration::from_millis(1)),
        || !p.is_pending(),
    );
    assert_eq!(resolved_text(&p), "victim done");
    Ok(())
}

#[test]
fn replaced_upvalues_of_the_runtime_functions_raise_instead_of_crashing() -> mlua::Result<()> {
    // With `debug` a trusted script can replace what the C functions close
    // over; they check, and raise.
    let clock = Rc::new(ManualClock::new());
    let (lua, sched) = scheduler(&clock);
    lua.globals().set("luaco", sched.engine().api())?;
    let out: String = lua
        .load(
            r#"
        local out = {}
        for _, f in ipairs({ luaco.async, luaco.sleep }) do
          -- The block, the state and the promise metatable.
          for i = 1, 3 do
            local name, old = debug.getupvalue(f, i)
            if name then
              debug.setupvalue(f, i, 0)
              local ok, err = pcall(f, f == luaco.sleep and 1 or print)
              out[#out + 1] = tostring(ok) .. ":" .. tostring(tostring(err):match("gone"))
              debug.setupvalue(f, i, old)
            end
          end
        end
        return table.concat(out, ",")
    "#,
        )
        .eval()?;
    assert!(!out.is_empty());
    for part in out.split(',') {
        assert!(part.starts_with("false:gone"), "{out}");
    }
    Ok(())
}
