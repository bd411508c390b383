//! A host that watches its scripts: it runs several at once, collects each
//! task's running time, yields and memory from the hook points, counts
//! events the scripts emit, and prints a summary table.
//!
//! Run: `cargo run -p luaco --example embed_hooks`

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use luaco::{Config, HookPoint, Runtime, ScriptContext, ScriptValue};

/// What the hooks saw of one script, over all its tasks.
#[derive(Default)]
struct Usage {
    tasks: u64,
    failed: u64,
    running: Duration,
    yields: u64,
    peak_memory: usize,
}

const SCRIPTS: &[(&str, &str)] = &[
    (
        "fib",
        r#"
        local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
        local parts = {}
        for i = 1, 4 do parts[i] = async(function() return fib(20 + i) end) end
        local sum = 0
        for _, v in ipairs(await(all(parts))) do sum = sum + v end
        events.emit("job.done", { script = "fib" })
        return sum
    "#,
    ),
    (
        "sleepy",
        r#"
        for i = 1, 5 do await(sleep(10)) end
        events.emit("job.done", { script = "sleepy" })
        return "rested"
    "#,
    ),
    (
        "hoarder",
        r#"
        local t = {}
        for i = 1, 50000 do t[i] = ("item %d"):format(i) end
        await(sleep(1))
        events.emit("job.done", { script = "hoarder" })
        return #t
    "#,
    ),
    (
        "flaky",
        r#"
        local ok = pcall(await, async(function() error("flaky by design") end))
        events.emit("job.done", { script = "flaky" })
        return ok and "lucky" or "caught"
    "#,
    ),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::new(Config::default())?;

    let usage: Rc<RefCell<BTreeMap<String, Usage>>> = Rc::default();
    let u = usage.clone();
    rt.hooks().on(HookPoint::Created, move |ctx| {
        u.borrow_mut()
            .entry(ctx.script_name.to_owned())
            .or_default()
            .tasks += 1;
        Ok(())
    });
    for point in [HookPoint::Completed, HookPoint::Failed] {
        let u = usage.clone();
        rt.hooks().on(point, move |ctx| {
            let mut all = u.borrow_mut();
            let entry = all.entry(ctx.script_name.to_owned()).or_default();
            entry.running += ctx.execution_time;
            entry.yields += ctx.yield_count;
            entry.peak_memory = entry.peak_memory.max(ctx.memory_bytes);
            if ctx.point == HookPoint::Failed {
                entry.failed += 1;
            }
            Ok(())
        });
    }
    let done = Rc::new(RefCell::new(Vec::new()));
    let d = done.clone();
    rt.events().on("job.done", move |event| {
        if let ScriptValue::Map(m) = event.data {
            d.borrow_mut()
                .push(m.get("script").map(ToString::to_string));
        }
    })?;

    let handles = SCRIPTS
        .iter()
        .map(|(name, source)| rt.create_async(source, ScriptContext::new(*name)))
        .collect::<Result<Vec<_>, _>>()?;
    rt.run()?;

    println!(
        "{:<8} {:>6} {:>6} {:>11} {:>6} {:>12}  result",
        "script", "tasks", "failed", "running ms", "yields", "state heap"
    );
    for ((name, _), handle) in SCRIPTS.iter().zip(&handles) {
        let all = usage.borrow();
        let Some(u) = all.get(*name) else {
            continue;
        };
        let result = match handle.result() {
            Ok(v) => v.to_string(),
            Err(e) => format!("error: {e}"),
        };
        println!(
            "{name:<8} {:>6} {:>6} {:>11.2} {:>6} {:>10} KiB  {result}",
            u.tasks,
            u.failed,
            u.running.as_secs_f64() * 1000.0,
            u.yields,
            u.peak_memory / 1024,
        );
    }
    println!("job.done events heard by the host: {}", done.borrow().len());
    // The example checks itself, so `cargo xtask test` can run it.
    if done.borrow().len() != SCRIPTS.len() || usage.borrow().len() != SCRIPTS.len() {
        return Err("the hooks missed a script".into());
    }
    Ok(())
}
