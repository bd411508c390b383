//! One runtime, four scripts with their own limits in their contexts: the
//! trusted one completes, each of the others fails with its own limit, and
//! the runtime then runs a fresh script normally.

use std::rc::Rc;
use std::time::{Duration, Instant};

use luaco::{Config, ContextBudget, ErrorKind, Limits, Runtime, ScriptContext, ScriptValue};

fn budget(limits: Limits) -> ScriptContext {
    ScriptContext::new("untrusted").with_policy(Rc::new(ContextBudget::new(limits).untrusted()))
}

#[test]
fn each_script_stops_at_its_own_limit_and_the_rest_go_on() -> luaco::Result<()> {
    let rt = Runtime::new(Config {
        context_limits: true,
        // A backstop, so a broken budget fails the test instead of hanging it.
        max_execution_time: Some(Duration::from_secs(60)),
        ..Config::default()
    })?;
    let trusted = rt.create_async(
        r#"
        local sum = 0
        for i = 1, 10 do await(sleep(5)); sum = sum + i end
        return sum
    "#,
        ScriptContext::new("trusted"),
    )?;
    let spinner = rt.create_async(
        "while true do pcall(function() while true do end end) end",
        budget(Limits {
            max_instructions: Some(5_000_000),
            ..Limits::default()
        }),
    )?;
    let clock_spinner = rt.create_async(
        "while true do end",
        budget(Limits {
            timeout: Some(Duration::from_millis(100)),
            ..Limits::default()
        }),
    )?;
    let sleeper = rt.create_async(
        "await(sleep(60000)) return 'woke'",
        budget(Limits {
            timeout: Some(Duration::from_millis(150)),
            ..Limits::default()
        }),
    )?;
    // A heap limit is per Lua state: these two run in states of their own.
    let bomber = rt.create_async(
        "local t = {} while true do t[#t + 1] = string.rep('x', 4096) .. #t end",
        budget(Limits {
            max_memory: Some(16 << 20),
            ..Limits::default()
        }),
    )?;
    let catcher = rt.create_async(
        r#"
        local caught = 0
        while true do
            pcall(function()
                local t = {}
                while true do t[#t + 1] = string.rep('y', 4096) .. #t end
            end)
            caught = caught + 1
            await(sleep(1))
        end
    "#,
        budget(Limits {
            max_memory: Some(8 << 20),
            ..Limits::default()
        }),
    )?;
    let started = Instant::now();
    assert_eq!(rt.block_on(&trusted)?, ScriptValue::Integer(55));
    for (p, code) in [
        (&spinner, "instructions"),
        (&clock_spinner, "time"),
        (&sleeper, "time"),
        (&bomber, "memory"),
        (&catcher, "memory"),
    ] {
        match rt.block_on(p) {
            Err(luaco::Error::Script(e)) => {
                assert_eq!(e.kind, ErrorKind::Limit, "{e:?}");
                assert_eq!(e.code.as_deref(), Some(code), "{e:?}");
            }
            other => panic!("wanted a {code} limit, got {other:?}"),
        }
    }
    // Bounded: ten times the longest limit.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    // The bombs filled their own heaps, not the runtime's.
    let used: f64 = rt.lua().load("return collectgarbage('count')").eval()?;
    assert!(used < 8.0 * 1024.0, "{used} KiB");
    // The untrusted scripts had safe globals only; the runtime goes on.
    let probe = rt.create_async("return os.execute == nil", budget(Limits::default()))?;
    assert_eq!(rt.block_on(&probe)?, ScriptValue::Boolean(true));
    let fresh = rt.create_async("await(sleep(1)) return 'fine'", ScriptContext::new("next"))?;
    assert_eq!(rt.block_on(&fresh)?, ScriptValue::String("fine".into()));
    Ok(())
}

#[test]
fn max_execution_time_stops_a_spinning_script_and_the_runtime_goes_on() -> luaco::Result<()> {
    let rt = Runtime::new(Config {
        max_execution_time: Some(Duration::from_millis(200)),
        ..Config::default()
    })?;
    let spin = rt.create_async("while true do end", ScriptContext::new("spin"))?;
    let started = Instant::now();
    assert!(matches!(rt.block_on(&spin), Err(luaco::Error::Timeout)));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The clock is per call: later calls get their own 200 ms.
    std::thread::sleep(Duration::from_millis(300));
    let next = rt.create_async("await(sleep(1)) return 'next'", ScriptContext::new("next"))?;
    assert_eq!(rt.block_on(&next)?, ScriptValue::String("next".into()));
    Ok(())
}

/// Lua's matcher runs in C, where no hook runs: with limits, the pattern
/// functions count their steps, so every limit ends a runaway match.
#[test]
fn every_limit_stops_a_backtracking_pattern() -> luaco::Result<()> {
    const RUNAWAY: &str = r#"return ("a"):rep(40):find(("a*"):rep(40) .. "b")"#;
    let started = Instant::now();
    let rt = Runtime::new(Config {
        max_execution_time: Some(Duration::from_millis(200)),
        ..Config::default()
    })?;
    let p = rt.create_async(RUNAWAY, ScriptContext::new("runaway"))?;
    assert!(matches!(rt.block_on(&p), Err(luaco::Error::Timeout)));
    // The runtime goes on, and its patterns still match.
    let ok = rt.create_async(
        r#"return ("key=v"):match("(%w+)=")"#,
        ScriptContext::new("ok"),
    )?;
    assert_eq!(rt.block_on(&ok)?, ScriptValue::String("key".into()));

    let rt = Runtime::new(Config {
        context_limits: true,
        ..Config::default()
    })?;
    for (limits, code) in [
        (
            Limits {
                max_instructions: Some(2_000_000),
                ..Limits::default()
            },
            "instructions",
        ),
        (
            Limits {
                timeout: Some(Duration::from_millis(200)),
                ..Limits::default()
            },
            "time",
        ),
    ] {
        // In a sandboxed script, as a method (the string metatable's).
        let p = rt.create_async(
            r#"local s = ("a"):rep(40) return s:gsub(("a*"):rep(40) .. "b", "x")"#,
            budget(limits),
        )?;
        match rt.block_on(&p) {
            Err(luaco::Error::Script(e)) => assert_eq!(e.code.as_deref(), Some(code), "{e:?}"),
            other => panic!("wanted a {code} limit, got {other:?}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}

/// A script in a Lua state of its own still has the runtime's instruction
/// budget (counted in its state), and its timers outlive its handle.
#[test]
fn a_script_in_its_own_state_keeps_the_runtime_rules() -> luaco::Result<()> {
    let rt = Runtime::new(Config {
        max_instructions: Some(1_000_000),
        // A backstop only.
        max_execution_time: Some(Duration::from_secs(30)),
        ..Config::default()
    })?;
    let own = || {
        ScriptContext::new("own").with_policy(Rc::new(ContextBudget::new(Limits {
            max_memory: Some(16 << 20),
            ..Limits::default()
        })))
    };
    let spin = rt.create_async("while true do end", own())?;
    let started = Instant::now();
    match rt.block_on(&spin) {
        Err(luaco::Error::Script(e)) => {
            assert_eq!(e.code.as_deref(), Some("instructions"), "{e:?}")
        }
        other => panic!("wanted the instruction limit, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));

    let heard = Rc::new(std::cell::Cell::new(0));
    let h = heard.clone();
    rt.events()
        .on("own.tick", move |_| h.set(h.get() + 1))
        .map_err(luaco::Error::Script)?;
    let p = rt.create_async(
        "set_timeout(function() events.emit('own.tick', {}) end, 20) sleep(10):next(function() events.emit('own.tick', {}) end)",
        own(),
    )?;
    rt.pump(Duration::from_millis(1))?;
    drop(p);
    rt.run()?;
    assert_eq!(heard.get(), 2, "the timer and the handler ran");
    Ok(())
}
