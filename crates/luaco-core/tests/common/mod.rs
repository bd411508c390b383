//! A minimal driver for testing the core alone: a ready queue and a list of
//! timers that tests fire by hand. No clock, no I/O.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use luaco_core::{Driver, Engine, FutureKey, LocalFuture, Options, Promise, TaskId, TimerKey};

#[derive(Default)]
pub struct TestDriver {
    pub ready: RefCell<VecDeque<TaskId>>,
    pub timers: RefCell<Vec<(TimerKey, Promise)>>,
}

impl Driver for TestDriver {
    fn ready(&self, task: TaskId) {
        self.ready.borrow_mut().push_back(task);
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
    fn add_timer(&self, deadline: Duration, promise: Promise) -> TimerKey {
        let key = TimerKey {
            deadline,
            seq: self.timers.borrow().len() as u64,
        };
        self.timers.borrow_mut().push((key, promise));
        key
    }
    fn cancel_timer(&self, key: TimerKey) -> bool {
        let mut timers = self.timers.borrow_mut();
        let before = timers.len();
        timers.retain(|(k, _)| *k != key);
        before != timers.len()
    }
    fn spawn(&self, _: LocalFuture) -> FutureKey {
        FutureKey(0)
    }
    fn cancel_future(&self, _: FutureKey) -> bool {
        false
    }
}

pub fn engine() -> (mlua::Lua, Engine, Rc<TestDriver>) {
    let lua = mlua::Lua::new();
    let driver = Rc::new(TestDriver::default());
    let engine = Engine::new(&lua, driver.clone(), Options::default()).expect("engine");
    lua.globals().set("luaco", engine.api()).expect("globals");
    (lua, engine, driver)
}

/// Runs ready tasks until the queue is empty.
pub fn drain(lua: &mlua::Lua, engine: &Engine, driver: &TestDriver) -> usize {
    let mut n = 0;
    loop {
        let next = driver.ready.borrow_mut().pop_front();
        let Some(id) = next else { return n };
        engine.run(lua, id);
        n += 1;
    }
}
