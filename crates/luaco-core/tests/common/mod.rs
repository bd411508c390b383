//! Runs the core alone: no timers, no I/O, no event loop beyond a loop
//! that resumes ready tasks.
#![allow(dead_code)]

use std::rc::Rc;

use luaco_core::{Engine, NoFutures, Options, StateBuilder};

pub fn engine() -> (mlua::Lua, Engine) {
    let lua = StateBuilder::new().build().expect("lua");
    let engine = Engine::new(&lua, Rc::new(NoFutures), Options::default()).expect("engine");
    lua.globals().set("luaco", engine.api()).expect("globals");
    (lua, engine)
}

/// Runs turns until nothing is ready; returns the tasks resumed.
pub fn drain(engine: &Engine) -> usize {
    let mut n = 0;
    loop {
        let batch = engine.run_ready(1024).expect("run");
        n += batch.resumed;
        if batch.ready == 0 {
            return n;
        }
    }
}
