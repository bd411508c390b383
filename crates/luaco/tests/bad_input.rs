//! What probing found, each pinned down: bad input never takes the host
//! down, and results keep their shape on the way out.

mod common;

use luaco::{ErrorKind, ScriptContext, ScriptValue};

#[test]
fn a_panicking_host_future_rejects_and_the_runtime_goes_on() {
    let (rt, _log) = common::runtime();
    rt.register_async("explode", |_args| async move {
        if true {
            panic!("the host future blew up");
        }
        Ok(ScriptValue::Nil)
    })
    .unwrap();
    let p = rt
        .create_async(
            r#"
            local ok, e = pcall(await, explode())
            assert(not ok)
            return e.kind .. ": " .. e.message
        "#,
            ScriptContext::new("panic"),
        )
        .unwrap();
    let v = rt.block_on(&p).unwrap();
    let text = v.as_str().unwrap();
    assert!(text.starts_with("runtime: "), "{text}");
    assert!(text.contains("the host future blew up"), "{text}");
    // Still usable.
    let q = rt
        .create_async(
            "return await(async(function() return 7 end))",
            ScriptContext::new("after"),
        )
        .unwrap();
    assert_eq!(rt.block_on(&q).unwrap(), ScriptValue::Integer(7));
}

#[test]
fn an_unawaited_panicking_future_is_an_unhandled_rejection() {
    let (rt, log) = common::runtime();
    rt.register_async("explode", |_args| async move {
        if true {
            panic!("nobody waits for me");
        }
        Ok(ScriptValue::Nil)
    })
    .unwrap();
    let p = rt
        .create_async(
            "explode(); await(sleep(5)); return 1",
            ScriptContext::new("panic"),
        )
        .unwrap();
    rt.block_on(&p).unwrap();
    rt.run().unwrap();
    let reported = log.take();
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!(reported[0].kind, ErrorKind::Runtime);
    assert!(reported[0].message.contains("nobody waits for me"));
}

#[test]
fn combinator_and_map_results_are_arrays() {
    let v = common::run_ok(
        r#"
        local a = await(all({ 1, nil, 3, n = 3 }))
        local s = await(all_settled({ promise.resolve(1) }))
        local m = await(map({ 1, 2 }, function(x) return x * 10 end))
        local e = await(all({}))
        return { a = a, s = s, m = m, e = e,
                 json = json.encode({ a = a, m = m, e = e }) }
    "#,
    );
    let get = |k: &str| {
        v.get(k)
            .unwrap_or_else(|| panic!("{k} missing in {v:?}"))
            .clone()
    };
    assert_eq!(
        get("a"),
        ScriptValue::Array(vec![
            ScriptValue::Integer(1),
            ScriptValue::Nil,
            ScriptValue::Integer(3)
        ])
    );
    assert_eq!(
        get("m"),
        ScriptValue::Array(vec![ScriptValue::Integer(10), ScriptValue::Integer(20)])
    );
    assert_eq!(get("e"), ScriptValue::Array(vec![]));
    match get("s") {
        ScriptValue::Array(items) => assert_eq!(items.len(), 1),
        other => panic!("all_settled gave {other:?}"),
    }
    assert_eq!(
        get("json"),
        ScriptValue::from(r#"{"a":[1,null,3],"e":[],"m":[10,20]}"#)
    );
}

#[test]
fn the_debug_library_is_there_for_trusted_scripts() {
    let v = common::run_ok("return type(debug) == 'table' and type(debug.traceback) == 'function'");
    assert_eq!(v, ScriptValue::Boolean(true));
}
