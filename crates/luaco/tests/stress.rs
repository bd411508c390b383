//! Stress: many concurrent sleeping tasks finish with the right results, and
//! tasks recycled through the coroutine pool leave Lua memory flat.

mod common;

use luaco::{Config, Runtime, ScriptContext, ScriptValue};

#[test]
fn ten_thousand_concurrent_sleepers() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let p = rt.create_async(
        r#"
        local tasks = {}
        for i = 1, 10000 do
          tasks[i] = async(function()
            local t0 = now()
            local ms = 1 + (i * 7919) % 20          -- 1..20 ms, spread out
            await(sleep(ms))
            assert(now() - t0 >= ms, "woke early")
            return i * 2
          end)
        end
        local results = await(all(tasks))
        local sum = 0
        for i = 1, results.n do
          assert(results[i] == i * 2, "wrong result at " .. i)
          sum = sum + results[i]
        end
        return sum
    "#,
        ScriptContext::new("sleepers"),
    )?;
    let sum: i64 = (1..=10_000).map(|i| i * 2).sum();
    assert_eq!(rt.block_on(&p)?, ScriptValue::Integer(sum));
    assert_eq!(rt.engine().task_count(), 0);
    assert_eq!(rt.scheduler().timer_count(), 0);
    Ok(())
}

/// Lua heap in use after a full collection, in bytes.
fn settled_memory(rt: &Runtime) -> usize {
    rt.lua().gc_collect().expect("gc");
    rt.lua().gc_collect().expect("gc");
    rt.lua().used_memory()
}

#[test]
fn a_hundred_thousand_tasks_through_the_pool_do_not_grow_memory() -> luaco::Result<()> {
    let pool_size = 64;
    let rt = Runtime::new(Config {
        pool_size,
        ..Config::default()
    })?;
    let batch = rt
        .lua()
        .load(
            r#"
        local n = ...
        local done = 0
        for i = 1, n do
          async(function() await(sleep(0)); done = done + 1 end)
          if i % 500 == 0 then await(sleep(0)) end
        end
        while done < n do await(sleep(0)) end
        return done
    "#,
        )
        .into_function()?;
    let run_batch = |n: i64| -> luaco::Result<()> {
        let args = mlua::MultiValue::from_iter([mlua::Value::Integer(n)]);
        let p = rt.spawn_function(batch.clone(), args, &ScriptContext::new("pool"))?;
        assert_eq!(rt.block_on(&p)?, ScriptValue::Integer(n));
        Ok(())
    };
    // Warm up: fill the pool and the engine's tables.
    run_batch(10_000)?;
    let before = settled_memory(&rt);
    for _ in 0..10 {
        run_batch(10_000)?;
    }
    let after = settled_memory(&rt);
    assert!(rt.engine().pooled_threads() <= pool_size);
    assert_eq!(rt.engine().task_count(), 0);
    // 100,000 tasks later the heap is where it was, give or take 64 KiB of
    // noise (string interning, table resizes); a leak of even one small
    // object per task would add megabytes.
    assert!(
        after <= before + 64 * 1024,
        "Lua heap grew from {before} to {after} bytes over 100,000 tasks"
    );
    Ok(())
}
