//! The simplest host: run scripts one at a time with `block_on`, each with
//! its own name and arguments, and read their values as data (here as
//! JSON through serde).
//!
//! Run: `cargo run -p luaco --example block_on`

use std::time::Duration;

use luaco::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::new(Config {
        // Each block_on call gets this much wall time.
        max_execution_time: Some(Duration::from_secs(5)),
        ..Config::default()
    })?;
    let square = rt.create_async(
        r#"
        local n = tonumber(...)
        local parts = {}
        for i = 1, n do parts[i] = async(function() await(sleep(i)) return i * i end) end
        return { n = n, squares = await(all(parts)) }
    "#,
        ScriptContext::new("squares").with_args(["5"]),
    )?;
    let value = rt.block_on(&square)?;
    println!("{}", serde_json::to_string(&value)?);

    // A failing script is an Error::Script with kind, message and traceback.
    let broken = rt.create_async("error('no luck')", ScriptContext::new("broken"))?;
    match rt.block_on(&broken) {
        Err(luaco::Error::Script(e)) => println!("{}: {}", e.kind, e.message),
        other => return Err(format!("expected a script error, got {other:?}").into()),
    }
    match value.get("squares") {
        Some(ScriptValue::Array(v)) if v.len() == 5 => Ok(()),
        _ => Err("unexpected squares".into()),
    }
}
