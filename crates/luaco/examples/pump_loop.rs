//! The host drives the loop itself: a game or UI frame loop gives luaco a
//! slice of each frame with `pump`, and reads a script's result when it
//! settles, without ever blocking in the runtime.
//!
//! Run: `cargo run -p luaco --example pump_loop`

use std::time::{Duration, Instant};

use luaco::prelude::*;

fn main() -> Result<(), luaco::Error> {
    let rt = Runtime::new(Config::default())?;
    let p = rt.create_async(
        r#"
        local ticks = 0
        local t = set_interval(function() ticks = ticks + 1 end, 10)
        await(sleep(100))
        t:cancel()
        return { ticks = ticks, answer = 42 }
    "#,
        ScriptContext::new("frames"),
    )?;
    let started = Instant::now();
    let mut frames = 0;
    while p.status() == PromiseStatus::Pending {
        // A 16 ms frame: 1 ms for scripts, the rest for the host's work.
        let stats = rt.pump(Duration::from_millis(1))?;
        frames += 1;
        if frames % 3 == 0 {
            println!(
                "frame {frames:>2}: {} resumes, {} timers fired",
                stats.tasks_resumed, stats.timers_fired
            );
        }
        std::thread::sleep(Duration::from_millis(15));
    }
    let value = p.result()?;
    println!(
        "settled after {frames} frames ({:?}): {value}",
        started.elapsed()
    );
    // The example checks itself, so `cargo xtask test` can run it.
    match value.get("answer") {
        Some(ScriptValue::Integer(42)) => Ok(()),
        _ => Err(luaco::Error::Conversion(format!(
            "unexpected result {value}"
        ))),
    }
}
