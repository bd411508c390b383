//! The Rust API (docs/guide.md, "Embedding in Rust"): create_async, pump, block_on, results, promise
//! handles as futures, register_async, Config.

mod common;

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use luaco::{
    Config, Error, ErrorKind, PromiseStatus, Runtime, ScriptContext, ScriptError, ScriptValue,
};

#[test]
fn spec_example_pump_loop() -> luaco::Result<()> {
    let rt = Runtime::new(Config {
        pool_size: 100,
        max_execution_time: Some(Duration::from_secs(5)),
        max_memory: Some(50 << 20),
        ..Config::default()
    })?;
    let p = rt.create_async(
        r#"
        await(sleep(2))
        return { sum = 1 + 2, list = {1, 2, 3}, name = "x", f = 1.5 }
    "#,
        ScriptContext::new("fetch"),
    )?;
    assert_eq!(p.status(), PromiseStatus::Pending);
    let mut turns = 0;
    while p.status() == PromiseStatus::Pending {
        let stats = rt.pump(Duration::from_millis(1))?;
        turns += stats.batches;
    }
    assert!(turns >= 2, "at least the start and the wake-up: {turns}");
    let v = p.result()?;
    assert_eq!(v.get("sum"), Some(&ScriptValue::Integer(3)));
    assert_eq!(v.get("f"), Some(&ScriptValue::Number(1.5)));
    assert_eq!(
        v.get("list"),
        Some(&ScriptValue::Array(vec![1.into(), 2.into(), 3.into()]))
    );
    Ok(())
}

#[test]
fn result_before_settling_is_pending() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let p = rt.create_async("return 1", ScriptContext::new("t"))?;
    assert!(matches!(p.result(), Err(Error::Pending)));
    assert_eq!(rt.block_on(&p)?, ScriptValue::Integer(1));
    Ok(())
}

#[test]
fn rejections_become_script_errors() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let p = rt.create_async("await(sleep(1)); error('nope')", ScriptContext::new("job"))?;
    match rt.block_on(&p) {
        Err(Error::Script(e)) => {
            assert_eq!(e.kind, ErrorKind::Runtime);
            assert_eq!(e.message, "job:1: nope");
            assert!(e
                .traceback
                .as_deref()
                .unwrap_or("")
                .contains("stack traceback"));
        }
        other => panic!("expected a script error, got {other:?}"),
    }
    let p = rt.create_async("error({ code = 7 })", ScriptContext::new("job"))?;
    match rt.block_on(&p) {
        Err(Error::Script(e)) => {
            assert_eq!(
                e.value.as_ref().and_then(|v| v.get("code")),
                Some(&ScriptValue::Integer(7))
            );
        }
        other => panic!("expected a script error, got {other:?}"),
    }
    Ok(())
}

#[test]
fn syntax_errors_fail_at_create() {
    let rt = Runtime::new(Config::default()).expect("runtime");
    let err = rt
        .create_async("local = 1", ScriptContext::new("bad"))
        .unwrap_err();
    assert!(
        matches!(err, Error::Lua(mlua::Error::SyntaxError { .. })),
        "{err:?}"
    );
}

#[test]
fn block_on_reports_a_promise_that_can_never_settle() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let p = rt.create_async(
        "await(promise.new(function() end))",
        ScriptContext::new("t"),
    )?;
    assert!(matches!(rt.block_on(&p), Err(Error::Stalled)));
    Ok(())
}

#[test]
fn block_on_stops_at_max_execution_time() -> luaco::Result<()> {
    let rt = Runtime::new(Config {
        max_execution_time: Some(Duration::from_millis(30)),
        ..Config::default()
    })?;
    let p = rt.create_async("await(sleep(10000))", ScriptContext::new("t"))?;
    assert!(matches!(rt.block_on(&p), Err(Error::Timeout)));
    assert!(p.cancel());
    assert_eq!(p.status(), PromiseStatus::Cancelled);
    Ok(())
}

#[test]
fn promise_handle_is_a_future() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let p = rt.create_async("await(sleep(3)); return 'done'", ScriptContext::new("t"))?;
    let mut fut = Box::pin(p);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut polls = 0;
    let out = loop {
        polls += 1;
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            break v;
        }
        rt.pump(Duration::from_millis(1))?;
        assert!(polls < 100_000, "never settled");
    };
    assert_eq!(out?, ScriptValue::from("done"));
    Ok(())
}

#[test]
fn register_async_exposes_a_rust_future() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let calls = Rc::new(Cell::new(0));
    let seen = calls.clone();
    rt.register_async("complete", move |args| {
        seen.set(seen.get() + 1);
        async move {
            async_io::Timer::after(Duration::from_millis(2)).await;
            match args.first() {
                Some(ScriptValue::String(prompt)) => {
                    Ok(ScriptValue::from(format!("echo: {prompt}")))
                }
                _ => Err(ScriptError::new(
                    ErrorKind::Type,
                    "complete() wants a prompt",
                )),
            }
        }
    })?;
    let p = rt.create_async(
        r#"
        local a, b = complete("hi"), complete("there")
        local both = await(all({ a, b }))
        local ok, e = pcall(await, complete(5))
        -- The message names the line that made the call.
        assert(not ok and e.kind == "type" and e.message == "llm:4: complete() wants a prompt", e.message)
        local ok2, e2 = pcall(complete, function() end)
        assert(not ok2 and e2.kind == "type")
        assert(require("luaco").complete == complete)
        return both[1] .. " / " .. both[2]
    "#,
        ScriptContext::new("llm"),
    )?;
    assert_eq!(
        rt.block_on(&p)?,
        ScriptValue::from("echo: hi / echo: there")
    );
    assert_eq!(calls.get(), 3);
    Ok(())
}

#[test]
fn cancelling_a_task_drops_its_rust_future() -> luaco::Result<()> {
    struct Dropped(Rc<Cell<bool>>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let rt = Runtime::new(Config::default())?;
    let dropped = Rc::new(Cell::new(false));
    let flag = dropped.clone();
    rt.register_async("forever", move |_| {
        let guard = Dropped(flag.clone());
        async move {
            let _guard = guard;
            futures_lite::future::pending::<()>().await;
            Ok(ScriptValue::Nil)
        }
    })?;
    let seen = dropped.clone();
    let was_dropped = rt.lua().create_function(move |_, ()| Ok(seen.get()))?;
    rt.lua().globals().set("was_dropped", was_dropped)?;
    let p = rt.create_async(
        r#"
        local t = async(function() await(forever()) end)
        await(sleep(2))
        assert(not was_dropped())
        t:cancel()
        assert(was_dropped(), "cancel() dropped the future before returning")
        return t:status()
    "#,
        ScriptContext::new("t"),
    )?;
    assert_eq!(rt.block_on(&p)?, ScriptValue::from("cancelled"));
    assert!(dropped.get(), "the future was dropped at cancel");
    assert_eq!(rt.scheduler().future_count(), 0);
    Ok(())
}

#[test]
fn globals_can_be_turned_off() -> luaco::Result<()> {
    let rt = Runtime::new(Config {
        globals: false,
        ..Config::default()
    })?;
    let p = rt.create_async(
        r#"
        assert(async == nil and await == nil and sleep == nil)
        local luaco = require("luaco")
        luaco.await(luaco.sleep(1))
        return luaco.await(luaco.async(function() return 5 end))
    "#,
        ScriptContext::new("clean"),
    )?;
    assert_eq!(rt.block_on(&p)?, ScriptValue::Integer(5));
    Ok(())
}

#[test]
fn memory_limit_is_a_limit_error() -> luaco::Result<()> {
    let rt = Runtime::new(Config {
        max_memory: Some(8 << 20),
        ..Config::default()
    })?;
    let p = rt.create_async(
        "local t = {} for i = 1, 1e8 do t[i] = string.rep('x', 64) .. i end",
        ScriptContext::new("hog"),
    )?;
    // A full heap is a run-level limit: the call ends with it.
    match rt.block_on(&p) {
        Err(Error::Limit(e)) => {
            assert_eq!(e.kind, ErrorKind::Limit, "{e:?}");
            assert_eq!(e.code.as_deref(), Some("memory"), "{e:?}");
        }
        other => panic!("expected a limit error, got {other:?}"),
    }
    // The runtime stays usable after the limit was hit: the next call is a
    // new run.
    rt.lua().gc_collect()?;
    let q = rt.create_async("return 1 + 1", ScriptContext::new("after"))?;
    assert_eq!(rt.block_on(&q)?, ScriptValue::Integer(2));
    Ok(())
}

#[test]
fn pump_returns_when_nothing_is_ready() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let _p = rt.create_async("await(sleep(10000))", ScriptContext::new("t"))?;
    let stats = rt.pump(Duration::from_secs(5))?;
    assert_eq!(stats.tasks_resumed, 1);
    assert!(
        stats.elapsed < Duration::from_secs(1),
        "pump must not wait for timers"
    );
    Ok(())
}

#[test]
fn a_handle_outliving_its_runtime_reports_it() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let p = rt.create_async("return { 1, 2 }", ScriptContext::new("t"))?;
    rt.block_on(&p)?;
    drop(rt);
    assert!(matches!(p.result(), Err(Error::RuntimeDropped)));
    assert!(p.value().is_none());
    assert!(!p.cancel());
    Ok(())
}

#[test]
fn io_backends_and_permissions_come_from_config() -> luaco::Result<()> {
    let denied = Runtime::new(Config {
        allow_net: false,
        allow_fs: false,
        ..Config::default()
    })?;
    let p = denied.create_async(
        r#"
        local ok1, e1 = pcall(await, http_get("http://127.0.0.1:9/"))
        local ok2, e2 = pcall(await, fs.read("/etc/hostname"))
        return e1.kind .. " " .. e2.kind
    "#,
        ScriptContext::new("denied"),
    )?;
    assert_eq!(
        denied.block_on(&p)?,
        ScriptValue::from("permission permission")
    );

    let mem = Rc::new(luaco::io::MemFs::new());
    mem.create_dir("/box");
    let mock = Rc::new(luaco::io::MockHttp::new().route("GET", "http://api.test/", 200, "mocked"));
    let custom = Runtime::new(Config {
        file_system: Some(mem.clone()),
        http_client: Some(mock.clone()),
        ..Config::default()
    })?;
    let p = custom.create_async(
        r#"
        await(fs.write("/box/note.txt", await(http_get("http://api.test/")).body))
        return await(fs.read("/box/note.txt"))
    "#,
        ScriptContext::new("custom"),
    )?;
    assert_eq!(custom.block_on(&p)?, ScriptValue::from("mocked"));
    assert_eq!(mock.requests().len(), 1);
    Ok(())
}

#[test]
fn run_main_ends_at_the_main_error_and_stop_cancels_what_is_left() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let main = rt.create_async(
        r#"
        closed, ticks, started = 0, 0, 0
        local function closer()
          return setmetatable({}, { __close = function() closed = closed + 1 end })
        end
        set_interval(function() ticks = ticks + 1 end, 1)
        for _ = 1, 3 do
          async(function() local c <close> = closer(); await(sleep(1e7)) end)
        end
        async(function() local c <close> = closer(); await(promise.new(function() end)) end)
        await(sleep(0))
        -- Made ready in the turn main fails in: it must not start.
        async(function() started = started + 1 end)
        error("main failed")
    "#,
        ScriptContext::new("main"),
    )?;
    rt.run_main(&main)?;
    assert_eq!(main.status(), PromiseStatus::Rejected);
    let g = rt.globals();
    assert_eq!(
        g.get::<i64>("closed")?,
        0,
        "nothing is cancelled before stop"
    );
    assert_eq!(g.get::<i64>("started")?, 0, "no task runs after the error");
    // Four waiting, one never started, and maybe an interval tick queued.
    let cancelled = rt.stop();
    assert!((5..=6).contains(&cancelled), "{cancelled}");
    assert_eq!(g.get::<i64>("closed")?, 4, "every <close> ran");
    assert_eq!(rt.scheduler().timer_count(), 0);
    assert_eq!(rt.scheduler().ready_count(), 0);
    assert_eq!(rt.engine().task_count(), 0);
    let ticks = g.get::<i64>("ticks")?;
    // Stopped for good, and the runtime still runs new work.
    let next = rt.create_async("await(sleep(5)); return ticks", ScriptContext::new("next"))?;
    assert_eq!(rt.block_on(&next)?, ScriptValue::Integer(ticks));
    Ok(())
}

#[test]
fn each_script_gets_arg_from_its_context_as_lua_gives_a_script() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let code = r##"
        local function later() await(sleep(1)); return arg[1] end
        local t = { arg[0], arg[1], arg[2], arg[3], select("#", ...), (...), later(),
          debug.getinfo(1, "l").currentline }
        for i = 1, 8 do t[i] = tostring(t[i]) end
        return table.concat(t, ",")
    "##;
    let a = rt.create_async(code, ScriptContext::new("first").with_args(["x", "y"]))?;
    let b = rt.create_async(code, ScriptContext::new("se\"cond").with_args(["z"]))?;
    assert_eq!(
        rt.block_on(&a)?,
        ScriptValue::String("first,x,y,nil,2,x,x,4".into())
    );
    assert_eq!(
        rt.block_on(&b)?,
        ScriptValue::String("se\"cond,z,nil,nil,1,z,z,4".into())
    );
    // Each has its own: no global was set.
    assert_eq!(rt.globals().get::<mlua::Value>("arg")?, mlua::Value::Nil);
    Ok(())
}
