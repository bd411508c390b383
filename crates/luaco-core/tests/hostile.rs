//! Bad input never takes the host down, and the core holds as many promises
//! and tasks as memory allows (no fixed ceiling).

mod common;

use luaco_core::{Outcome, ScriptContext};
use mlua::Value;

/// Runs `source` as a task until nothing is ready; returns its outcome
/// with the Lua state that holds its values.
fn run(source: &str) -> (mlua::Lua, Outcome) {
    let (lua, engine) = common::engine();
    let f = lua
        .load(source)
        .set_name("=hostile")
        .into_function()
        .expect("compile");
    let p = engine
        .spawn(f, (), &ScriptContext::new("hostile"))
        .expect("spawn");
    common::drain(&engine);
    let outcome = p.outcome().expect("settled");
    (lua, outcome)
}

fn expect_string((_lua, outcome): (mlua::Lua, Outcome), want: &str) {
    match outcome {
        Outcome::Resolved(Value::String(s)) => assert_eq!(s.to_str().expect("utf-8"), want),
        other => panic!("expected {want:?}, got {other:?}"),
    }
}

#[test]
fn a_huge_list_length_is_refused_not_allocated() {
    expect_string(
        run(r#"
            for _, f in ipairs({ luaco.all, luaco.all_settled, luaco.any, luaco.race }) do
              local ok, e = pcall(f, { n = 1 << 40 })
              assert(not ok and e.kind == "type", tostring(e))
              assert(e.message:find("far beyond", 1, true), e.message)
            end
            local ok, e = pcall(luaco.map, { n = 1 << 40 }, function() end)
            assert(not ok and e.kind == "type")
            -- a modest n past the border counts the holes as nil values
            local r = luaco.await(luaco.all({ 1, n = 3 }))
            assert(r.n == 3 and r[1] == 1 and r[3] == nil)
            return "ok"
        "#),
        "ok",
    );
}

#[test]
fn a_string_raised_fresh_is_wrapped_even_after_an_equal_one_was_reraised() {
    expect_string(
        run(r#"
            -- Task a awaits a rejection with the bare string "boom": await
            -- re-raises it, and it stays the same bare string.
            local a = luaco.async(function() luaco.await(luaco.promise.reject("boom")) end)
            -- Task b raises "boom" itself: that is an error object.
            local b = luaco.async(function() error("boom", 0) end)
            local _, ea = pcall(luaco.await, a)
            local _, eb = pcall(luaco.await, b)
            assert(ea == "boom", "re-raised reason keeps its identity: " .. tostring(ea))
            assert(type(eb) == "table" and eb.kind == "runtime" and eb.message == "boom",
              "fresh error is an object: " .. type(eb))
            -- and the other order
            local c = luaco.async(function() error("boom", 0) end)
            local d = luaco.async(function() luaco.await(luaco.promise.reject("boom")) end)
            local _, ec = pcall(luaco.await, c)
            local _, ed = pcall(luaco.await, d)
            assert(type(ec) == "table" and ed == "boom")
            return "ok"
        "#),
        "ok",
    );
}

#[test]
fn reading_then_that_throws_rejects_with_exactly_that_value() {
    // Promises/A+ 2.3.3.2, on the fulfilled path of a handler too.
    expect_string(
        run(r#"
            local thrown = { reason = "getter" }
            local evil = setmetatable({}, { __index = function(_, k)
              if k == "then" then error(thrown) end
            end })
            local d = luaco.promise.resolve(1):next(function() return evil end)
            local ok, e = pcall(luaco.await, d)
            assert(not ok and rawequal(e, thrown), "rejects with the thrown table itself")
            local ok2, e2 = pcall(luaco.await, luaco.promise.resolve(evil))
            assert(not ok2 and rawequal(e2, thrown))
            local ok3, e3 = pcall(luaco.await, luaco.async(function() return evil end))
            assert(not ok3 and rawequal(e3, thrown))
            return "ok"
        "#),
        "ok",
    );
}

#[test]
fn forged_promises_are_not_promises() {
    expect_string(
        run(r#"
            local p = luaco.promise.resolve(1)
            assert(getmetatable(p) == "promise", "the metatable is hidden")
            local fake = setmetatable({ 1, 42, true }, { __index = luaco.promise })
            local ok, e = pcall(luaco.await, fake)
            assert(not ok and e.kind == "type")
            local ok2, e2 = pcall(luaco.await, { 1, 42, true })
            assert(not ok2 and e2.kind == "type")
            -- a forged table in a list is a plain value
            local r = luaco.await(luaco.all({ fake }))
            assert(r[1] == fake)
            return "ok"
        "#),
        "ok",
    );
}

#[test]
fn two_million_settled_promises_and_a_million_queued_tasks_at_once() {
    // The old core kept a reference per task and stopped at 500,092.
    expect_string(
        run(r#"
            local settled = {}
            for i = 1, 2000000 do settled[i] = luaco.promise.resolve(i) end
            local tasks = {}
            for i = 1, 1000000 do tasks[i] = luaco.async(function() return i end) end
            assert(luaco.await(settled[2000000]) == 2000000)
            local sum = 0
            for i = 1, 1000000 do sum = sum + luaco.await(tasks[i]) end
            assert(sum == 1000000 * 1000001 // 2)
            return "ok"
        "#),
        "ok",
    );
}

#[test]
fn cancelling_a_deep_line_of_descendants_does_not_recurse() {
    expect_string(
        run(r#"
            local depth = 20000
            local deepest
            local closed = 0
            local function nest(n)
              local guard <close> = setmetatable({}, { __close = function() closed = closed + 1 end })
              if n == 0 then
                deepest = true
                luaco.await(luaco.promise.new(function() end))
              else
                luaco.await(luaco.async(nest, n - 1))
              end
            end
            local root = luaco.async(nest, depth)
            while not deepest do coroutine.yield() end
            assert(root:cancel())
            assert(closed == depth + 1, "every level closed before cancel returned: " .. closed)
            return "ok"
        "#),
        "ok",
    );
}
