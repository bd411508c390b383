//! Generated scripts run sandboxed under small limits: whatever they do,
//! the run ends within its bounds with a value or an error (never a panic
//! or a hang), and the runtime then runs a fresh script normally.
//!
//! `LUACO_FUZZ_CASES=N` runs N cases (default 48; a long session uses
//! thousands: `LUACO_FUZZ_CASES=20000 cargo test --release -p luaco --test
//! fuzz_sandbox -- --nocapture`).

use std::time::{Duration, Instant};

use luaco::{Config, Runtime, SandboxPolicy, ScriptContext, ScriptValue};
use proptest::prelude::*;

/// Statements that stress the limits: loops, pcall, coroutines, string and
/// table growth, metamethods, tasks, promises, timers, JSON and bad calls.
fn statement() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("x = (x or 0) + 1".to_owned()),
        Just("while true do end".to_owned()),
        Just("for i = 1, 1e6 do x = i end".to_owned()),
        Just("pcall(function() while true do end end)".to_owned()),
        Just("pcall(error, setmetatable({}, { __tostring = function() while true do end end }))".to_owned()),
        Just("coroutine.wrap(function() while true do end end)()".to_owned()),
        Just("local co = coroutine.create(function() coroutine.yield(1) end) coroutine.resume(co) coroutine.resume(co)".to_owned()),
        Just("s = string.rep('ab', 1 << 20)".to_owned()),
        Just("s = ('x'):rep(100) .. (s or '')".to_owned()),
        Just("t = {} for i = 1, 1e7 do t[i] = i end".to_owned()),
        Just("string.gsub(string.rep('a', 1000), 'a', function() x = (x or 0) + 1 end)".to_owned()),
        Just("setmetatable({}, { __index = function(t, k) return t[k] end }).y = 1".to_owned()),
        Just("print(tostring(setmetatable({}, { __tostring = function() return 'ok' end })))".to_owned()),
        Just("async(function() await(sleep(1)) x = 1 end)".to_owned()),
        Just("await(sleep(0))".to_owned()),
        Just("await(all({ sleep(1), sleep(2) }))".to_owned()),
        Just("pcall(await, timeout(sleep(50), 1))".to_owned()),
        Just("resolve(1):next(function(v) return v + 1 end)".to_owned()),
        Just("reject('no'):catch(function() end)".to_owned()),
        Just("pcall(json.decode, '[[[[[[[[[[1]]]]]]]]]]')".to_owned()),
        Just("pcall(json.encode, { a = { b = { c = 1 } } })".to_owned()),
        Just("pcall(load, 'return 1 +')".to_owned()),
        Just("local f = load('return 2') x = f and f()".to_owned()),
        Just("pcall(string.format, '%d', 'x')".to_owned()),
        Just("pcall(setmetatable, {}, { __gc = print })".to_owned()),
        Just("local function r(n) if n > 0 then return r(n - 1) end end pcall(r, 1e6)".to_owned()),
        Just("pcall(function() local function f() return f() + 1 end f() end)".to_owned()),
        Just("set_timeout(function() x = 2 end, 1)".to_owned()),
        Just("pcall(await, fs.read('/etc/passwd'))".to_owned()),
        Just("pcall(await, http_get('http://127.0.0.1:9/'))".to_owned()),
        Just("x = ('a'):rep(30):find(('a*'):rep(30) .. 'b')".to_owned()),
        Just("for w in ('a'):rep(30):gmatch(('a*'):rep(30) .. 'b') do end".to_owned()),
        Just("pcall(string.gsub, ('a'):rep(30), ('a*'):rep(30) .. 'b', '%0%0')".to_owned()),
        Just("x = select(2, ('k=v; '):rep(100):gsub('(%w+)=(%w+)', '%2=%1'))".to_owned()),
        Just("pcall(string.find, 'abc', '[a')".to_owned()),
        Just("s = string.rep('', 1e15)".to_owned()),
        Just("table.move({}, 1, 1e15, 2)".to_owned()),
        Just("table.insert(setmetatable({}, { __len = function() return 1e15 end }), 1, 0)".to_owned()),
        Just("xpcall(error, function() while true do end end)".to_owned()),
        Just("events.on('f.*', function(d) x = d end) events.emit('f.x', { 1 })".to_owned()),
        Just("events.on('coroutine.*', function() x = (x or 0) + 1 end)".to_owned()),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(|v| v.join("\n")),
            inner
                .clone()
                .prop_map(|s| format!("pcall(function()\n{s}\nend)")),
            inner
                .clone()
                .prop_map(|s| format!("for _ = 1, 3 do\n{s}\nend")),
            inner
                .clone()
                .prop_map(|s| format!("async(function()\n{s}\nend)")),
            inner.prop_map(|s| format!("coroutine.wrap(function()\n{s}\nend)()")),
        ]
    })
}

fn cases() -> u32 {
    std::env::var("LUACO_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sandboxed_scripts_end_within_their_limits(body in statement()) {
        let rt = Runtime::new(Config {
            sandbox: Some(SandboxPolicy::strict()),
            max_instructions: Some(2_000_000),
            max_memory: Some(32 << 20),
            max_execution_time: Some(Duration::from_millis(500)),
            ..Config::default()
        }).expect("runtime");
        let started = Instant::now();
        if let Ok(p) = rt.create_async(&body, ScriptContext::new("fuzz")) {
            // Any outcome is fine; hanging or panicking is not.
            let _ = rt.block_on(&p);
        }
        // Far above the 500 ms wall clock: a loaded machine, a slow GC.
        prop_assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
        // A fresh runtime of the same kind still works.
        let fresh = Runtime::new(Config { sandbox: Some(SandboxPolicy::strict()), ..Config::default() }).expect("runtime");
        let p = fresh.create_async("return 1 + 1", ScriptContext::new("after")).expect("compile");
        prop_assert_eq!(fresh.block_on(&p).expect("fresh run"), ScriptValue::Integer(2));
    }
}
