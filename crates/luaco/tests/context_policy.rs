//! Grants per script: one runtime runs a trusted script and untrusted ones
//! with their own network and file-system grants side by side, each held
//! to its own (a real server on 127.0.0.1, real temp directories).

use std::rc::Rc;

use luaco::io::testing::TestServer;
use luaco::{Config, ContextBudget, Limits, Runtime, SandboxPolicy, ScriptContext, ScriptValue};

fn untrusted(name: &str, policy: SandboxPolicy) -> ScriptContext {
    ScriptContext::new(name).with_policy(Rc::new(
        ContextBudget::new(Limits::default()).sandboxed(policy),
    ))
}

/// What a script could reach: the server, its own directory, a path
/// outside it, and the host's `os`.
const PROBE: &str = r#"
    local url, name = ...
    local out = {}
    local ok, r = pcall(await, http_get(url .. "/hello"))
    out.net = ok and r.body or r.kind
    ok, r = pcall(function() return await(fs.write(name .. ".txt", name)) end)
    out.write = ok and "written" or r.kind
    ok, r = pcall(function() return await(fs.read("../outside.txt")) end)
    out.escape = ok and r or r.kind
    out.os = type(os.execute)
    return out
"#;

fn probe(rt: &Runtime, context: ScriptContext, url: &str) -> luaco::Result<ScriptValue> {
    let name = context.name().to_owned();
    let context = context.with_args([url.to_owned(), name]);
    let p = rt.create_async(PROBE, context)?;
    rt.block_on(&p)
}

fn field(v: &ScriptValue, key: &str) -> String {
    match v {
        ScriptValue::Map(m) => m.get(key).map(|v| v.to_string()).unwrap_or_default(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_script_gets_its_own_grants() -> Result<(), Box<dyn std::error::Error>> {
    let server = TestServer::start()?;
    let url = server.url();
    let host = url.trim_start_matches("http://").to_owned();
    let root = tempfile::tempdir()?;
    std::fs::write(root.path().join("outside.txt"), "secret")?;
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    std::fs::create_dir(&a)?;
    std::fs::create_dir(&b)?;
    // The host's own scripts run in the working directory; keep it clean.
    let rt = Runtime::new(Config::default())?;

    let granted = untrusted(
        "granted",
        SandboxPolicy::strict()
            .with_net_to([host.clone()])
            .with_fs_root(&a),
    );
    let out = probe(&rt, granted, &url)?;
    assert_eq!(field(&out, "net"), "hello");
    assert_eq!(field(&out, "write"), "written");
    assert_eq!(field(&out, "escape"), "permission");
    assert_eq!(field(&out, "os"), "nil");
    assert_eq!(std::fs::read_to_string(a.join("granted.txt"))?, "granted");

    let elsewhere = untrusted(
        "elsewhere",
        SandboxPolicy::strict()
            .with_net_to(["127.0.0.1:1"])
            .with_fs_root(&b),
    );
    let out = probe(&rt, elsewhere, &url)?;
    assert_eq!(field(&out, "net"), "permission");
    assert_eq!(field(&out, "write"), "written");
    assert!(b.join("elsewhere.txt").exists());
    assert!(!a.join("elsewhere.txt").exists());

    let strict = untrusted("strict", SandboxPolicy::strict());
    let out = probe(&rt, strict, &url)?;
    assert_eq!(field(&out, "net"), "permission");
    assert_eq!(field(&out, "write"), "permission");
    assert_eq!(field(&out, "os"), "nil");

    // The trusted script beside them keeps everything.
    let p = rt.create_async(
        "local url = ... return await(http_get(url .. '/hello')).body .. ' ' .. type(os.execute)",
        ScriptContext::new("trusted").with_args([url.clone()]),
    )?;
    assert_eq!(
        rt.block_on(&p)?,
        ScriptValue::String("hello function".into())
    );
    Ok(())
}

/// Nothing one sandboxed script changes is seen by another: not its
/// globals, the libraries, the string metatable, nor the luaco API's tables.
#[test]
fn what_one_sandboxed_script_changes_no_other_sees() -> luaco::Result<()> {
    let rt = Runtime::new(Config {
        sandbox: Some(SandboxPolicy::strict()),
        ..Config::default()
    })?;
    let vandal = rt.create_async(
        r#"
        string.upper = nil
        table.insert = nil
        json.encode = function() return "tampered" end
        sync.channel = nil
        events.emit = nil
        promise.resolve = nil
        require("luaco").sleep = nil
        require("luaco").json.decode = nil
        shared_global = "leaked"
        -- Through the fallback to the sandbox's shared table: gone too.
        string = nil
        if string then string.upper = function() return "PWNED" end end
        os = nil
        if os then os.time = function() return 0 end end
        return "done"
    "#,
        ScriptContext::new("vandal"),
    )?;
    assert_eq!(rt.block_on(&vandal)?, ScriptValue::String("done".into()));
    let victim = rt.create_async(
        r#"
        await(sleep(1))
        local t = {}
        table.insert(t, ("x"):upper())
        assert(json.encode({ a = 1 }) == '{"a":1}', json.encode({ a = 1 }))
        assert(require("luaco").json.decode("[1]")[1] == 1)
        assert(sync.channel and events.emit and promise.resolve)
        assert(require("luaco").sleep == sleep)
        assert(string.upper("y") == "Y" and os.time() > 0)
        return tostring(shared_global) .. " " .. t[1]
    "#,
        ScriptContext::new("victim"),
    )?;
    assert_eq!(rt.block_on(&victim)?, ScriptValue::String("nil X".into()));
    Ok(())
}
