//! Runs Lua for real on a scheduler with luaco-io installed.
#![allow(dead_code)]

use std::rc::Rc;
use std::time::{Duration, Instant};

use luaco_core::{Observer, Outcome, ScriptError};
use luaco_io::{install, FileSystem, HttpClient, IoConfig};
use luaco_sched::{RunEnd, Scheduler};

#[derive(Default)]
pub struct Rejections(pub std::cell::RefCell<Vec<ScriptError>>);

impl Observer for Rejections {
    fn wants_lifecycle(&self) -> bool {
        false
    }
    fn unhandled_rejection(&self, error: &ScriptError) {
        self.0.borrow_mut().push(error.clone());
    }
}

pub struct Env {
    pub lua: mlua::Lua,
    pub sched: Scheduler,
    pub rejections: Rc<Rejections>,
}

pub fn env(http: Option<Rc<dyn HttpClient>>, fs: Option<Rc<dyn FileSystem>>) -> Env {
    env_with(IoConfig {
        http,
        fs,
        ..IoConfig::default()
    })
}

pub fn env_with(io: IoConfig) -> Env {
    let lua = luaco_core::StateBuilder::new().build().expect("lua");
    let sched = Scheduler::new(&lua, Default::default()).expect("scheduler");
    install(sched.engine(), &lua, io).expect("install io");
    let api = sched.engine().api();
    for pair in api.pairs::<mlua::Value, mlua::Value>() {
        let (k, v) = pair.expect("api entry");
        lua.globals().set(k, v).expect("global");
    }
    let rejections = Rc::new(Rejections::default());
    sched.engine().add_observer(rejections.clone());
    Env {
        lua,
        sched,
        rejections,
    }
}

pub fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lua")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl Env {
    /// Runs `source` as a task to completion (at most 30 s); it must return "ok".
    pub fn run_ok(&self, name: &str, source: &str) {
        let f = self
            .lua
            .load(source)
            .set_name(format!("={name}"))
            .into_function()
            .expect("compile");
        let p = self
            .sched
            .engine()
            .spawn(f, (), &luaco_core::ScriptContext::new(name))
            .expect("spawn");
        let end = self.sched.run_until(
            || !p.is_pending(),
            Some(Instant::now() + Duration::from_secs(30)),
        );
        assert_eq!(end, RunEnd::Done, "{name} did not finish");
        match p.outcome() {
            Some(Outcome::Resolved(mlua::Value::String(s))) if s.as_bytes().as_ref() == b"ok" => {}
            Some(Outcome::Rejected(reason)) => {
                let e = self.sched.engine().script_error(&reason);
                panic!(
                    "{name} failed: {}\n{}",
                    e.message,
                    e.traceback.unwrap_or_default()
                );
            }
            other => panic!("{name} returned {other:?}"),
        }
        let rejected = self.rejections.0.borrow();
        assert!(rejected.is_empty(), "{name}: unhandled {rejected:?}");
    }
}

/// This process's resident memory now, in KiB (0 where /proc has none).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}
