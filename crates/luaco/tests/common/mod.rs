//! Helpers shared by the integration tests: run Lua for real through a
//! `Runtime` and report what happened.
#![allow(dead_code)]

use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use luaco::{Config, RejectionLog, Runtime, ScriptContext, ScriptError, ScriptValue};

/// The outcome of a script run to completion.
pub struct Run {
    pub result: luaco::Result<ScriptValue>,
    pub unhandled: Vec<ScriptError>,
    pub rt: Runtime,
}

pub fn runtime() -> (Runtime, Rc<RejectionLog>) {
    let rt = Runtime::new(Config {
        max_execution_time: Some(Duration::from_secs(20)),
        ..Config::default()
    })
    .expect("runtime");
    let log = RejectionLog::new();
    rt.add_observer(log.clone());
    (rt, log)
}

/// Runs `source` as a main task, then the loop until idle.
pub fn run(source: &str) -> Run {
    let (rt, log) = runtime();
    let p = rt
        .create_async(source, ScriptContext::new("test"))
        .expect("compile");
    let result = rt.block_on(&p);
    rt.run().expect("run to idle");
    Run {
        result,
        unhandled: log.take(),
        rt,
    }
}

/// Runs `source` and requires it to succeed with no unhandled rejection.
pub fn run_ok(source: &str) -> ScriptValue {
    let r = run(source);
    match r.result {
        Ok(v) => {
            assert!(
                r.unhandled.is_empty(),
                "unhandled rejections: {:?}",
                r.unhandled
            );
            v
        }
        Err(e) => panic!("script failed: {e}\n{e:?}"),
    }
}

pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lua")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs a self-checking fixture: it must return "ok".
pub fn run_fixture(name: &str) {
    let (rt, log) = runtime();
    let p = rt
        .create_async(fixture(name), ScriptContext::new(name))
        .expect("compile");
    let result = rt.block_on(&p);
    rt.run().expect("run to idle");
    match result {
        Ok(v) => assert_eq!(v, ScriptValue::from("ok"), "{name} returned {v:?}"),
        Err(luaco::Error::Script(e)) => panic!(
            "{name} failed: {}\n{}",
            e.message,
            e.traceback.unwrap_or_default()
        ),
        Err(e) => panic!("{name} failed: {e}"),
    }
    let unhandled = log.take();
    assert!(
        unhandled.is_empty(),
        "{name}: unhandled rejections {unhandled:?}"
    );
}
