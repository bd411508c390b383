//! The event emitter: Lua and Rust subscribers, lifecycle and runtime
//! events with every data field, `:off()`, `events.once`, wildcards, and no
//! feedback loop from lifecycle handlers.

use std::cell::RefCell;
use std::rc::Rc;

use luaco::{Config, ContextBudget, Limits, Runtime, ScriptContext, ScriptValue};

fn run(rt: &Runtime, name: &str, source: &str) -> luaco::Result<ScriptValue> {
    let p = rt.create_async(source, ScriptContext::new(name))?;
    rt.block_on(&p)
}

fn map(v: &ScriptValue) -> &std::collections::BTreeMap<String, ScriptValue> {
    match v {
        ScriptValue::Map(m) => m,
        other => panic!("not a map: {other:?}"),
    }
}

#[test]
fn lua_subscribers_see_lifecycle_events_with_every_field() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let out = run(
        &rt,
        "watcher",
        r#"
        local seen = {}
        local sub = events.on("coroutine.*", function(data, name)
            seen[#seen + 1] = { name = name, data = data }
        end)
        local worker = async(function() await(sleep(2)) return "done" end)
        await(worker)
        await(sleep(5))
        sub:off()
        -- The worker's events, in order, each with every documented field.
        local id = nil
        local names, fields = {}, nil
        for _, e in ipairs(seen) do
            if e.data.status ~= nil and id == nil and e.name == "coroutine.created" then id = e.data.thread_id end
            if e.data.thread_id == id then
                names[#names + 1] = e.name
                fields = fields or {}
                for k, v in pairs(e.data) do fields[k] = type(v) end
                if e.name == "coroutine.completed" then
                    assert(e.data.status == "resolved", e.data.status)
                    assert(e.data.yield_count == 1, e.data.yield_count)
                    assert(e.data.script_name == "watcher")
                    assert(e.data.memory_usage_bytes > 0)
                    assert(e.data.execution_time_ms >= 0)
                end
            end
        end
        return { names = table.concat(names, " "), fields = fields }
    "#,
    )?;
    let m = map(&out);
    assert_eq!(
        m["names"],
        ScriptValue::String(
            "coroutine.created coroutine.started coroutine.yielded coroutine.resumed coroutine.completed"
                .into()
        )
    );
    let fields = map(&m["fields"]);
    for (field, kind) in [
        ("thread_id", "number"),
        ("script_name", "string"),
        ("status", "string"),
        ("execution_time_ms", "number"),
        ("memory_usage_bytes", "number"),
        ("yield_count", "number"),
    ] {
        assert_eq!(fields[field], ScriptValue::String(kind.into()), "{field}");
    }
    assert_eq!(fields.len(), 6, "{fields:?}");
    Ok(())
}

#[test]
fn off_once_wildcards_and_order() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let out = run(
        &rt,
        "emitter",
        r#"
        local log = {}
        local exact = events.on("job.done", function(d) log[#log + 1] = "exact" .. d.n end)
        local wild = events.on("job.*", function(d, name) log[#log + 1] = "wild:" .. name end)
        -- Handlers are tasks, so `*` also hears their lifecycle: left out here.
        local all = events.on("*", function(d, name)
            if not name:find("^coroutine%.") then log[#log + 1] = "all:" .. name end
        end)
        local deep = events.on("job.*", function(d, name) log[#log + 1] = "never" end)
        deep:off()
        local reached = events.emit("job.done", { n = 1 })
        await(sleep(1))
        local next_one = events.once("job.done")
        assert(events.emit("job.done", { n = 2 }) == 4) -- three handlers, one waiter
        local got = await(next_one)
        await(sleep(1))
        assert(exact:off() == true and exact:off() == false)
        events.emit("job.done", { n = 3 })
        events.emit("job.a.b", {})
        events.emit("other", {})
        await(sleep(1))
        return { reached = reached, once = got.n, log = table.concat(log, " ") }
    "#,
    )?;
    let m = map(&out);
    assert_eq!(m["reached"], ScriptValue::Integer(3));
    assert_eq!(m["once"], ScriptValue::Integer(2));
    // Subscription order within each emit; `job.*` is one part deep.
    assert_eq!(
        m["log"],
        ScriptValue::String(
            "exact1 wild:job.done all:job.done exact2 wild:job.done all:job.done \
             wild:job.done all:job.done all:job.a.b all:other"
                .into()
        )
    );
    Ok(())
}

#[test]
fn bad_names_and_arguments_are_type_errors() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let out = run(
        &rt,
        "bad",
        r#"
        local out = {}
        for _, f in ipairs({
            function() events.on("a*b", print) end,
            function() events.on("x", 42) end,
            function() events.emit("job.*", {}) end,
            function() events.emit(nil) end,
            function() local s = events.on("x", print); s.off() end,
        }) do
            local ok, e = pcall(f)
            out[#out + 1] = (not ok and e.kind or "no error") .. ": " .. tostring(e)
        end
        return out
    "#,
    )?;
    let ScriptValue::Array(items) = out else {
        panic!("{out:?}")
    };
    for item in &items {
        let ScriptValue::String(s) = item else {
            panic!("{item:?}")
        };
        assert!(s.starts_with("type: "), "{s}");
    }
    assert!(matches!(&items[4], ScriptValue::String(s) if s.contains("use ':'")));
    Ok(())
}

#[test]
fn lifecycle_handlers_make_no_events_of_their_own() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let out = run(
        &rt,
        "loop",
        r#"
        local count, created = 0, 0
        -- Each handler awaits and spawns: were its tasks watched, every
        -- event would make more events for ever.
        local sub = events.on("coroutine.*", function(data, name)
            count = count + 1
            if name == "coroutine.created" then created = created + 1 end
            await(async(function() await(sleep(0)) end))
            -- Work for later, spawned when no task runs: quiet too.
            sleep(0):next(function() end):finally(function() end)
            set_timeout(function() end, 0)
        end)
        for i = 1, 3 do await(async(function() await(sleep(1)) end)) end
        await(sleep(20))
        local settled = created
        await(sleep(20))
        sub:off()
        return { settled = settled, later = created, count = count }
    "#,
    )?;
    let m = map(&out);
    // Only the three tasks of the loop were created as far as anyone
    // watching can tell; the handlers' own tasks made no events.
    assert_eq!(m["settled"], ScriptValue::Integer(3), "{m:?}");
    assert_eq!(m["later"], ScriptValue::Integer(3), "{m:?}");
    let ScriptValue::Integer(n) = m["count"] else {
        panic!("{m:?}")
    };
    // Five events for each of the three, and the main task's own yields
    // and resumes: bounded.
    assert!((15..=60).contains(&n), "{n}");
    Ok(())
}

#[test]
fn rust_and_lua_subscribers_share_events() -> luaco::Result<()> {
    let rt = Runtime::new(Config {
        context_limits: true,
        ..Config::default()
    })?;
    let heard = Rc::new(RefCell::new(Vec::new()));
    let log = heard.clone();
    rt.events()
        .on("job.*", move |e| {
            log.borrow_mut().push((e.name.to_owned(), e.data.clone()))
        })
        .map_err(luaco::Error::Script)?;
    let completed = Rc::new(RefCell::new(0));
    let c = completed.clone();
    rt.events()
        .on("coroutine.completed", move |_| *c.borrow_mut() += 1)
        .map_err(luaco::Error::Script)?;
    assert!(rt.events().on("bad*", |_| {}).is_err());
    let p = rt.create_async(
        r#"
        local from_host = events.once("host.hello")
        events.emit("job.done", { n = 7 })
        return await(from_host).greeting
    "#,
        ScriptContext::new("shared"),
    )?;
    rt.pump(std::time::Duration::from_millis(5))?;
    let reached = rt
        .events()
        .emit(
            "host.hello",
            &ScriptValue::Map([("greeting".to_owned(), ScriptValue::from("hi"))].into()),
        )
        .map_err(luaco::Error::Script)?;
    assert_eq!(reached, 1);
    assert_eq!(rt.block_on(&p)?, ScriptValue::String("hi".into()));
    assert_eq!(
        heard.borrow()[0],
        (
            "job.done".to_owned(),
            ScriptValue::Map([("n".to_owned(), ScriptValue::Integer(7))].into())
        )
    );
    assert!(*completed.borrow() >= 1);

    // Runtime events reach Lua too.
    let out = run(
        &rt,
        "runtime",
        r#"
        local got = {}
        events.on("runtime.unhandled_rejection", function(d)
            got.unhandled = d.script_name .. ":" .. tostring(d.thread_id > 0) .. ":" .. d.reason.message
        end)
        async(function() error("dropped", 0) end)
        await(sleep(5))
        return got
    "#,
    )?;
    assert_eq!(
        map(&out)["unhandled"],
        ScriptValue::String("runtime:true:dropped".into())
    );
    let monitor = rt.create_async(
        "local d = await(events.once('runtime.limit')) return d.limit .. ':' .. d.script_name .. ':' .. d.message",
        ScriptContext::new("monitor"),
    )?;
    rt.pump(std::time::Duration::from_millis(5))?;
    let spin = rt.create_async(
        "while true do end",
        ScriptContext::new("spinner").with_policy(Rc::new(ContextBudget::new(Limits {
            max_instructions: Some(50_000),
            ..Limits::default()
        }))),
    )?;
    assert!(rt.block_on(&spin).is_err());
    let seen = rt.block_on(&monitor)?;
    assert!(
        matches!(&seen, ScriptValue::String(s) if s.starts_with("instructions:spinner:instruction limit")),
        "{seen:?}"
    );
    let later = run(&rt, "after", "await(sleep(5)) return 1")?;
    assert_eq!(later, ScriptValue::Integer(1));
    Ok(())
}

/// Handler tasks report no lifecycle, but a host's `created` hook still
/// sees (and may refuse) every task they make: nothing escapes a quota.
#[test]
fn a_quota_at_created_also_holds_for_handler_tasks() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let admitted = Rc::new(RefCell::new(0));
    let a = admitted.clone();
    rt.hooks().on(luaco::HookPoint::Created, move |ctx| {
        if ctx.script_name != "quota" {
            return Ok(());
        }
        *a.borrow_mut() += 1;
        match *a.borrow() > 20 {
            true => Err(luaco::ScriptError::new(
                luaco::ErrorKind::Limit,
                "task quota",
            )),
            false => Ok(()),
        }
    });
    let out = run(
        &rt,
        "quota",
        r#"
        local ran, refused = 0, 0
        events.on("coroutine.completed", function()
            for i = 1, 100 do
                local ok = pcall(await, async(function() ran = ran + 1 end))
                if not ok then refused = refused + 1 end
            end
        end)
        await(async(function() end))
        await(sleep(20))
        return { ran = ran, refused = refused }
    "#,
    )?;
    let m = map(&out);
    let ScriptValue::Integer(ran) = m["ran"] else {
        panic!("{m:?}")
    };
    assert!(ran < 20, "{m:?}");
    assert!(
        matches!(m["refused"], ScriptValue::Integer(n) if n > 0),
        "{m:?}"
    );
    Ok(())
}
