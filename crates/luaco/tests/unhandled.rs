//! Unhandled-rejection detection: reported once the ready queue empties,
//! never for promises that something consumes (await included).

mod common;

use common::run;
use luaco::ScriptContext;

fn messages(src: &str) -> Vec<String> {
    let r = run(src);
    r.result.expect("main chunk succeeds");
    r.unhandled.into_iter().map(|e| e.message).collect()
}

#[test]
fn a_failed_task_nobody_awaits_is_reported() {
    let m = messages(r#"async(function() error("lost") end); await(sleep(5))"#);
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(m[0].ends_with("lost"), "{m:?}");
}

#[test]
fn explicit_rejections_are_reported_with_their_text() {
    let m = messages(r#"promise.reject("plain"); promise.reject({ code = 1 })"#);
    assert_eq!(m.len(), 2, "{m:?}");
    assert_eq!(m[0], "plain");
}

#[test]
fn awaiting_later_in_the_same_turn_counts_as_handled() {
    let m = messages(
        r#"
        local p = async(function() error("handled later") end)
        await(sleep(0))                  -- p fails in this turn...
        local ok = pcall(await, p)       -- ...and is awaited before the queue empties
        assert(not ok)
    "#,
    );
    assert!(m.is_empty(), "{m:?}");
}

#[test]
fn awaited_catch_next_finally_and_combinators_count_as_handled() {
    let m = messages(
        r#"
        local function failing() return async(function() await(sleep(1)); error("x") end) end
        pcall(await, failing())
        failing():catch(function() end)
        failing():next(nil, function() end)
        all_settled({ failing() })
        local f = failing()
        local a = all({ f })
        a:catch(function() end)
        await(sleep(10))
    "#,
    );
    assert!(m.is_empty(), "{m:?}");
}

#[test]
fn a_rejection_passed_through_a_chain_is_reported_at_its_end() {
    let m = messages(
        r#"
        local p = async(function() error("deep") end)
        p:next(function() end)           -- no error handler: the derived promise rejects
        await(sleep(5))
    "#,
    );
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(m[0].ends_with("deep"));
}

#[test]
fn finally_without_catch_still_reports() {
    let m = messages(
        r#"
        promise.reject("after finally"):finally(function() end)
        await(sleep(5))
    "#,
    );
    assert_eq!(m, vec!["after finally".to_owned()]);
}

#[test]
fn a_cancelled_task_is_not_a_rejection() {
    let m = messages(
        r#"
        local p = async(function() await(sleep(1000)) end)
        await(sleep(1))
        p:cancel()
        await(sleep(1))
    "#,
    );
    assert!(m.is_empty(), "{m:?}");
}

#[test]
fn timer_callbacks_that_fail_are_reported() {
    let m = messages(r#"set_timeout(function() error("in timer") end, 1); await(sleep(10))"#);
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(m[0].ends_with("in timer"));
}

#[test]
fn each_rejection_is_reported_once() {
    let (rt, log) = common::runtime();
    let p = rt
        .create_async(
            r#"promise.reject("once"); await(sleep(1))"#,
            ScriptContext::new("t"),
        )
        .expect("compile");
    rt.block_on(&p).expect("main");
    // More turns after the report must not report it again.
    rt.run().expect("run");
    let q = rt
        .create_async("await(sleep(1))", ScriptContext::new("u"))
        .expect("compile");
    rt.block_on(&q).expect("second task");
    rt.pump(std::time::Duration::from_millis(1)).expect("pump");
    let reports = log.take();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].message, "once");
}

#[test]
fn an_error_in_close_during_cancel_is_reported() {
    let m = messages(
        r#"
        local t = async(function()
          local guard <close> = setmetatable({}, { __close = function() error("close failed") end })
          await(sleep(1000))
        end)
        await(sleep(1))
        assert(t:cancel())
        assert(t:status() == "cancelled")
        await(sleep(1))
    "#,
    );
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(
        m[0].contains("error while closing a cancelled task"),
        "{m:?}"
    );
    assert!(m[0].contains("close failed"), "{m:?}");
}
