//! How far `Runtime::pump(1 ms)` overruns its budget while busy tasks keep
//! the ready queue full. Prints p50/p99 of the overrun; `cargo xtask bench`
//! runs it.

use std::time::Duration;

use luaco::{Config, Runtime, ScriptContext};

fn main() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    // 2,000 tasks, each doing a little work (a few microseconds) per turn.
    let p = rt.create_async(
        r#"
        local stop = false
        for _ = 1, 2000 do
          async(function()
            local x = 0
            while not stop do
              for i = 1, 200 do x = x + i end
              coroutine.yield()
            end
          end)
        end
        await(sleep(2000))
        stop = true
    "#,
        ScriptContext::new("busy"),
    )?;
    let budget = Duration::from_millis(1);
    let mut overruns = Vec::new();
    for _ in 0..1500 {
        let stats = rt.pump(budget)?;
        overruns.push(stats.elapsed.saturating_sub(budget));
    }
    p.cancel();
    overruns.sort();
    let at = |q: f64| overruns[((overruns.len() as f64 * q) as usize).min(overruns.len() - 1)];
    println!(
        "pump(1 ms) with 2,000 busy tasks: overrun p50 {:.3} ms, p99 {:.3} ms (target p99 <= 0.2 ms)",
        at(0.5).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0
    );
    Ok(())
}
