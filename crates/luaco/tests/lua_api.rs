//! The Lua API (docs/reference.md), one self-checking fixture per area, run for real
//! through a `Runtime`. Each fixture asserts as it goes and returns "ok".

mod common;

#[test]
fn tasks() {
    common::run_fixture("tasks.lua");
}

#[test]
fn await_rules() {
    common::run_fixture("await.lua");
}

#[test]
fn promises() {
    common::run_fixture("promises.lua");
}

#[test]
fn error_objects() {
    common::run_fixture("errors.lua");
}

#[test]
fn combinators() {
    common::run_fixture("combinators.lua");
}

#[test]
fn cancellation() {
    common::run_fixture("cancel.lua");
}

#[test]
fn timers() {
    common::run_fixture("timers.lua");
}

#[test]
fn sync_primitives() {
    common::run_fixture("sync.lua");
}

#[test]
fn map_with_concurrency() {
    common::run_fixture("map.lua");
}
