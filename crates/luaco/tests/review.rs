//! Regressions from a review of the rebuilt core: each test pins down one
//! finding that was fixed.

mod common;

use luaco::{ScriptContext, ScriptValue};

#[test]
fn a_waiter_added_while_a_cancel_closes_the_task_is_still_told() {
    common::run_ok(
        r#"
        local p
        local heard = false
        p = async(function()
          local g <close> = setmetatable({}, { __close = function()
            p:finally(function() heard = true end)
          end })
          await(sleep(1e6))
        end)
        local f = p:finally(function() end)
        await(sleep(0))
        assert(p:cancel())
        await(sleep(5))
        assert(heard, "the waiter added during the close ran")
        assert(f:status() == "cancelled")
    "#,
    );
}

#[test]
fn a_worker_the_pool_does_not_keep_cannot_be_resumed() {
    common::run_ok(
        r#"
        local cos = {}
        local ps = {}
        for i = 1, 300 do
          ps[i] = async(function() cos[i] = coroutine.running(); await(sleep(0)) end)
        end
        await(all(ps))
        for i = 1, 300 do
          local ok = coroutine.resume(cos[i], {})
          assert(not ok, "worker " .. i .. " resumed from a script")
        end
    "#,
    );
}

#[test]
fn combinators_consume_every_input_even_after_they_settle() {
    let r = common::run(
        r#"
        pcall(await, all({ promise.reject("a"), promise.reject("b") }))
        await(race({ 1, promise.reject("c") }))
        await(any({ promise.resolve(1), promise.reject("d") }))
        await(sleep(1))
        return true
    "#,
    );
    assert!(r.result.is_ok(), "{:?}", r.result);
    assert!(r.unhandled.is_empty(), "{:?}", r.unhandled);
}

#[test]
fn racing_a_long_lived_promise_in_a_loop_does_not_grow_memory() {
    let v = common::run_ok(
        r#"
        local stop = promise.new(function() end)
        local p = promise.resolve(1)
        for _ = 1, 2000 do await(race({ stop, p })) end
        collectgarbage(); collectgarbage()
        local before = collectgarbage("count")
        for _ = 1, 50000 do await(race({ stop, p })) end
        collectgarbage(); collectgarbage()
        return collectgarbage("count") - before
    "#,
    );
    let grown_kb = v.as_f64().unwrap();
    assert!(
        grown_kb < 256.0,
        "50,000 races grew the heap by {grown_kb} KB"
    );
}

#[test]
fn what_a_task_spawns_after_cancelling_itself_is_cancelled_too() {
    common::run_ok(
        r#"
        local child, p
        p = async(function()
          p:cancel()
          child = async(function() await(sleep(50)); error("the orphan ran") end)
          await(sleep(1e6))
        end)
        await(sleep(1))
        assert(p:status() == "cancelled")
        assert(child:status() == "cancelled", child:status())
    "#,
    );
}

#[test]
fn channels_carry_false() {
    common::run_ok(
        r#"
        local ch = sync.channel(2)
        await(ch:send(false)); await(ch:send(1))
        assert(await(ch:recv()) == false)
        assert(await(ch:recv()) == 1)
        local r = ch:recv()
        ch:send(false)
        assert(await(r) == false)
    "#,
    );
}

#[test]
fn a_sleep_made_late_in_a_long_turn_is_not_shortened() {
    common::run_ok(
        r#"
        local mark
        local a = async(function()
          local t = now() + 30
          while now() < t do end   -- 30 ms of work in this turn
          mark = now()
        end)
        local b = async(function()
          await(sleep(20))
          assert(now() - mark >= 20, "slept " .. (now() - mark) .. " ms after the busy task")
        end)
        await(all({ a, b }))
    "#,
    );
}

#[test]
fn shared_metatables_are_out_of_reach() {
    common::run_ok(
        r#"
        local ok, e = pcall(await, async(function() error("x") end))
        assert(getmetatable(e) == "error")
        assert(getmetatable(sync.semaphore(1)) == "semaphore")
        assert(getmetatable(sync.channel()) == "channel")
        assert(getmetatable(set_timeout(function() end, 1)) == "timer")
        assert(getmetatable(await(all({}))) == "array")
        assert(not pcall(setmetatable, e, {}))
    "#,
    );
}

#[test]
fn map_rejects_with_exactly_the_failing_reason() {
    common::run_ok(
        r#"
        local ok, e = pcall(await, map({ 1, 2 }, function(x) if x == 2 then error("bad", 0) end return x end))
        assert(not ok and type(e) == "table" and e.message == "bad")
        local reason = { custom = true }
        local ok2, e2 = pcall(await, map({ 1 }, function() return promise.reject(reason) end))
        assert(not ok2 and rawequal(e2, reason), "the very same table")
        local ok3, e3 = pcall(await, map({ 1 }, function() return promise.reject("plain") end))
        assert(not ok3 and e3 == "plain", "a string reason stays a string: " .. tostring(e3))
    "#,
    );
}

#[test]
fn handlers_and_timers_run_in_the_script_that_registered_them() {
    let (rt, _log) = common::runtime();
    let engine = rt.engine().clone();
    let whoami = rt
        .lua()
        .create_function(move |_, ()| {
            Ok(engine
                .current_context()
                .map(|c| c.name().to_owned())
                .unwrap_or_default())
        })
        .unwrap();
    rt.lua().globals().set("whoami", whoami).unwrap();
    // beta holds a promise that alpha's handler and timer wait on.
    rt.lua()
        .load("gate = promise.new(function(r) open_gate = r end)")
        .exec()
        .unwrap();
    let alpha = rt
        .create_async(
            r#"
            local seen = {}
            local h = gate:next(function() seen.next = whoami() end)
            local t = promise.new(function(r)
              set_timeout(function() seen.timer = whoami(); r() end, 5)
            end)
            await(all({ h, t }))
            return seen.next .. "," .. seen.timer
        "#,
            ScriptContext::new("alpha"),
        )
        .unwrap();
    let beta = rt
        .create_async(
            "await(sleep(1)); open_gate(true)",
            ScriptContext::new("beta"),
        )
        .unwrap();
    assert_eq!(
        rt.block_on(&alpha).unwrap(),
        ScriptValue::from("alpha,alpha")
    );
    rt.block_on(&beta).unwrap();
}

#[test]
fn a_failing_task_cancelled_by_its_own_close_handler_is_counted_once() {
    let (rt, _log) = common::runtime();
    let p = rt
        .create_async(
            r#"
            local p
            p = async(function()
              local g <close> = setmetatable({}, { __close = function() p:cancel() end })
              await(sleep(0))
              error("fails, then cancels itself while closing")
            end)
            await(sleep(5))
            assert(p:status() == "cancelled", p:status())
            keep = async(function() await(sleep(1e6)) end)
            await(sleep(1))
            return true
        "#,
            ScriptContext::new("close-cancel"),
        )
        .unwrap();
    assert_eq!(rt.block_on(&p).unwrap(), ScriptValue::Boolean(true));
    // Only `keep` is alive: a task counted done twice would make this 0.
    assert_eq!(rt.engine().task_count(), 1);
}

#[test]
fn children_kept_one_at_a_time_are_all_cancelled_with_their_task() {
    // A task keeps its one pending child as is and makes a list only for
    // a second: every shape must be cancelled with the task, and a
    // finished task's pending child must outlive it.
    common::run_ok(
        r#"
        local kids = {}
        local p = async(function()
          await(sleep(0))                      -- one settled child
          kids[1] = sleep(1e6)                 -- replaces it
          kids[2] = async(function() await(sleep(1e6)) end) -- a list of two
          for i = 3, 40 do kids[i] = sleep(1e6) end         -- compacted lists
          await(sleep(1e6))
        end)
        await(sleep(1))
        p:cancel()
        for i, k in ipairs(kids) do assert(k:status() == "cancelled", i .. ": " .. k:status()) end
        local orphan
        local q = async(function() orphan = sleep(5); return "done" end)
        assert(await(q) == "done")
        assert(orphan:status() == "pending")
        assert(await(orphan) == nil)
    "#,
    );
}

#[test]
fn a_semaphore_at_the_largest_count_saturates_instead_of_wrapping() {
    common::run_ok(
        r#"
        local s = sync.semaphore(math.maxinteger)
        s:release(); s:release()
        assert(s:available() == math.maxinteger, s:available())
        assert(await(s:acquire()) == true)
        assert(s:available() == math.maxinteger - 1)
    "#,
    );
}
