//! Hook points: the exact order for a task that awaits twice, one that
//! fails, one cancelled while sleeping; every field of the context; a veto
//! at `created`; unhandled rejections and limit hits.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use luaco::{
    Config, ContextBudget, Error, ErrorKind, HookPoint, Limits, PromiseStatus, Runtime,
    ScriptContext, ScriptError, ScriptValue,
};

/// What one hook call saw.
#[derive(Clone, Debug)]
struct Seen {
    point: HookPoint,
    task: u64,
    script: String,
    status: PromiseStatus,
    execution: Duration,
    memory: usize,
    yields: u64,
    parent: Option<u64>,
    result: Option<ScriptValue>,
    error: Option<ScriptError>,
}

/// Hooks every point and records what each call saw.
fn record(rt: &Runtime) -> Rc<RefCell<Vec<Seen>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    for point in HookPoint::ALL {
        let log = seen.clone();
        rt.hooks().on(point, move |ctx| {
            log.borrow_mut().push(Seen {
                point: ctx.point,
                task: ctx.task_id,
                script: ctx.script_name.to_owned(),
                status: ctx.status,
                execution: ctx.execution_time,
                memory: ctx.memory_bytes,
                yields: ctx.yield_count,
                parent: ctx.parent_id,
                result: ctx.result(),
                error: ctx.error.cloned(),
            });
            Ok(())
        });
    }
    seen
}

fn points_of(seen: &[Seen], task: u64) -> Vec<HookPoint> {
    seen.iter()
        .filter(|s| s.task == task)
        .map(|s| s.point)
        .collect()
}

#[test]
fn a_task_that_awaits_twice_and_completes() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let seen = record(&rt);
    let p = rt.create_async(
        r#"
        local worker = async(function()
            await(sleep(30))
            local t = {}
            for i = 1, 20000 do t[i] = i end
            await(sleep(1))
            return #t
        end)
        return await(worker)
    "#,
        ScriptContext::new("twice"),
    )?;
    assert_eq!(rt.block_on(&p)?, ScriptValue::Integer(20000));
    let seen = seen.borrow();
    let main = seen[0].task;
    let worker = main + 1;
    use HookPoint::*;
    assert_eq!(
        points_of(&seen, worker),
        vec![Created, Started, Yielded, Resumed, Yielded, Resumed, Completed]
    );
    let created = &seen[seen.iter().position(|s| s.task == worker).unwrap_or(0)];
    assert_eq!(created.parent, Some(main), "{created:?}");
    assert_eq!(created.status, PromiseStatus::Pending);
    let done = seen
        .iter()
        .find(|s| s.task == worker && s.point == Completed)
        .cloned()
        .ok_or_else(|| Error::Conversion("no completed hook".into()))?;
    assert_eq!(done.script, "twice");
    assert_eq!(done.status, PromiseStatus::Resolved);
    assert_eq!(done.yields, 2);
    assert_eq!(done.result, Some(ScriptValue::Integer(20000)));
    assert!(done.memory > 100_000, "{done:?}");
    // Running time, not the 31 ms it spent asleep.
    assert!(done.execution > Duration::ZERO, "{done:?}");
    assert!(done.execution < Duration::from_millis(25), "{done:?}");
    // The main task awaited once; its yield count grew step by step.
    assert_eq!(
        points_of(&seen, main),
        vec![Created, Started, Yielded, Resumed, Completed]
    );
    Ok(())
}

#[test]
fn a_failing_and_a_cancelled_task() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let seen = record(&rt);
    let p = rt.create_async(
        r#"
        local bad = async(function() error("broken on purpose") end)
        local sleeper = async(function() await(sleep(60000)) end)
        local ok, e = pcall(await, bad)
        await(sleep(5))
        sleeper:cancel()
        return e.message
    "#,
        ScriptContext::new("endings"),
    )?;
    let message = rt.block_on(&p)?;
    assert!(
        matches!(&message, ScriptValue::String(m) if m.ends_with("broken on purpose")),
        "{message:?}"
    );
    let seen = seen.borrow();
    let main = seen[0].task;
    use HookPoint::*;
    assert_eq!(points_of(&seen, main + 1), vec![Created, Started, Failed]);
    let failed = seen
        .iter()
        .find(|s| s.point == Failed)
        .and_then(|s| s.error.clone())
        .ok_or_else(|| Error::Conversion("no failed hook".into()))?;
    assert_eq!(failed.kind, ErrorKind::Runtime);
    assert!(failed.message.ends_with("broken on purpose"), "{failed:?}");
    assert_eq!(
        points_of(&seen, main + 2),
        vec![Created, Started, Yielded, Cancelled]
    );
    let cancelled = seen.iter().find(|s| s.point == Cancelled).map(|s| s.status);
    assert_eq!(cancelled, Some(PromiseStatus::Cancelled));
    Ok(())
}

#[test]
fn a_created_hook_can_refuse_a_task() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let seen = record(&rt);
    rt.hooks().on(HookPoint::Created, |ctx| {
        if ctx.parent_id.is_some() && ctx.script_name == "guarded" {
            return Err(ScriptError::new(
                ErrorKind::Permission,
                "no child tasks here",
            ));
        }
        Ok(())
    });
    let p = rt.create_async(
        r#"
        local ran = false
        local child = async(function() ran = true end)
        local ok, e = pcall(await, child)
        await(sleep(1))
        return { ok = ok, kind = e.kind, message = e.message, ran = ran, status = child:status() }
    "#,
        ScriptContext::new("guarded"),
    )?;
    let out = rt.block_on(&p)?;
    let ScriptValue::Map(m) = out else {
        panic!("{out:?}")
    };
    assert_eq!(m["ok"], ScriptValue::Boolean(false));
    assert_eq!(m["kind"], ScriptValue::String("permission".into()));
    assert_eq!(
        m["message"],
        ScriptValue::String("no child tasks here".into())
    );
    assert_eq!(m["ran"], ScriptValue::Boolean(false));
    assert_eq!(m["status"], ScriptValue::String("rejected".into()));
    let seen = seen.borrow();
    let child = seen[0].task + 1;
    use HookPoint::*;
    assert_eq!(points_of(&seen, child), vec![Created, Failed]);
    Ok(())
}

#[test]
fn unhandled_rejections_and_limits_reach_their_hooks() -> luaco::Result<()> {
    let rt = Runtime::new(Config {
        context_limits: true,
        ..Config::default()
    })?;
    let seen = record(&rt);
    let p = rt.create_async(
        "async(function() error('nobody awaits this') end) await(sleep(5)) return 1",
        ScriptContext::new("careless"),
    )?;
    assert_eq!(rt.block_on(&p)?, ScriptValue::Integer(1));
    let spin = rt.create_async(
        "while true do end",
        ScriptContext::new("spinner").with_policy(Rc::new(ContextBudget::new(Limits {
            max_instructions: Some(100_000),
            ..Limits::default()
        }))),
    )?;
    assert!(rt.block_on(&spin).is_err());
    let seen = seen.borrow();
    let unhandled: Vec<_> = seen
        .iter()
        .filter(|s| s.point == HookPoint::UnhandledRejection)
        .collect();
    assert_eq!(unhandled.len(), 1, "{seen:#?}");
    assert_eq!(unhandled[0].script, "careless");
    assert_eq!(unhandled[0].task, seen[0].task + 1);
    let message = unhandled[0].error.as_ref().map(|e| e.message.clone());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.ends_with("nobody awaits this")),
        "{message:?}"
    );
    let limit: Vec<_> = seen
        .iter()
        .filter(|s| s.point == HookPoint::LimitHit)
        .collect();
    assert_eq!(limit.len(), 1, "{seen:#?}");
    assert_eq!(limit[0].script, "spinner");
    let code = limit[0].error.as_ref().and_then(|e| e.code.clone());
    assert_eq!(code.as_deref(), Some("instructions"));
    Ok(())
}

#[test]
fn hooks_can_be_removed_and_then_cost_nothing() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let count = Rc::new(RefCell::new(0));
    let c = count.clone();
    let id = rt.hooks().on(HookPoint::Started, move |_| {
        *c.borrow_mut() += 1;
        Ok(())
    });
    let p = rt.create_async(
        "await(async(function() end)) return 1",
        ScriptContext::new("a"),
    )?;
    rt.block_on(&p)?;
    assert_eq!(*count.borrow(), 2);
    assert!(rt.hooks().off(id));
    assert!(!rt.hooks().off(id));
    let p = rt.create_async(
        "await(async(function() end)) return 1",
        ScriptContext::new("b"),
    )?;
    rt.block_on(&p)?;
    assert_eq!(*count.borrow(), 2);
    Ok(())
}
