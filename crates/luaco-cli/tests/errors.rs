//! Errors that point at the line: the real `luaco` binary on broken
//! scripts. Each report has the message, the script's `file:line`, and a
//! traceback that spans awaits and spawns; common mistakes get a hint.
//! `luaco check` reports syntax errors the same way.

use std::process::Command;

/// Runs `body` saved as `name` in a temp directory (the working directory,
/// so paths in the report are plain `name`); exit code and stderr.
fn broken(name: &str, body: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(name), body).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_luaco"))
        .args(["run", name])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("run luaco");
    assert!(out.stdout.is_empty() || name == "unhandled.lua");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn has_all(err: &str, parts: &[&str]) {
    for part in parts {
        assert!(err.contains(part), "missing {part:?} in:\n{err}");
    }
}

#[test]
fn a_task_error_three_awaits_deep() {
    let (code, err) = broken(
        "deep.lua",
        r#"local function level3()
  await(sleep(1))
  error("deep failure")
end
local function level2()
  local v = await(async(level3))
  return v
end
local function level1()
  local v = await(async(level2))
  return v
end
print(await(async(level1)))
"#,
    );
    assert_eq!(code, Some(1));
    has_all(
        &err,
        &[
            "error: deep.lua:3: deep failure",
            "stack traceback:",
            "deep.lua:3: in function <deep.lua:1>",
            "[spawned at] deep.lua:6",
            "[spawned at] deep.lua:10",
            "[awaited at] deep.lua:6: in function <deep.lua:5>",
            "[awaited at] deep.lua:10: in function <deep.lua:9>",
            "[awaited at] deep.lua:13: in main chunk",
        ],
    );
}

#[test]
fn an_api_error_names_the_awaiting_line() {
    // Port 9 (discard) on loopback: nothing listens there.
    let (code, err) = broken(
        "api.lua",
        r#"local function fetch(url)
  local r = await(http_get(url))
  return r
end
print(fetch("http://127.0.0.1:9/nothing").status)
"#,
    );
    assert_eq!(code, Some(1));
    has_all(
        &err,
        &[
            "error: api.lua:2: http.request: http://127.0.0.1:9/nothing:",
            "stack traceback:",
            "api.lua:2: in",
            "api.lua:5: in main chunk",
        ],
    );
}

#[test]
fn an_api_error_names_the_line_of_the_call_through_a_tail_call() {
    // `return await(...)` is a tail call: the frame of `fetch` is gone by
    // the time the request fails, but the call's line was noted when made.
    let (code, err) = broken(
        "tail.lua",
        r#"local function fetch(url)
  return await(http_get(url))
end
local function read(path)
  return await(fs.read(path))
end
local ok, e = pcall(read, "/nonexistent/luaco/file")
assert(not ok and e.message:find("^tail%.lua:5: fs%.read: "), e.message)
fetch("http://127.0.0.1:9/nothing")
"#,
    );
    assert_eq!(code, Some(1));
    has_all(
        &err,
        &["error: tail.lua:2: http.request: http://127.0.0.1:9/nothing:"],
    );
}

#[test]
fn a_deadlock_shows_where_the_main_chunk_waits() {
    let (code, err) = broken(
        "deadlock.lua",
        "local ch = sync.channel()\nlocal v = await(ch:recv())\nprint(v)\n",
    );
    assert_eq!(code, Some(1));
    has_all(
        &err,
        &[
            "error: deadlock: the main chunk is still awaiting a promise that nothing is left to settle",
            "deadlock.lua:2: in main chunk",
        ],
    );
    // The runtime's own frames (the C await among them) are not shown.
    assert!(!err.contains("[C]: in"), "{err}");
}

#[test]
fn a_raised_table_is_shown_with_where_it_was_raised() {
    let (code, err) = broken(
        "table.lua",
        "local function validate(x)\n  if x < 0 then error({ code = \"E_NEG\", value = x }) end\nend\nvalidate(-1)\n",
    );
    assert_eq!(code, Some(1));
    has_all(
        &err,
        &[
            "error: a raised table: {code = \"E_NEG\", value = -1}",
            "table.lua:2: in local 'validate'",
            "table.lua:4: in main chunk",
        ],
    );
}

#[test]
fn a_syntax_error_shows_the_line_and_a_caret() {
    let body = "local t = {\n  a = 1\n  b = 2,\n}\n";
    let (code, err) = broken("syntax.lua", body);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        "error: syntax.lua:3: '}' expected (to close '{' at line 1) near 'b'\n 3 |   b = 2,\n   |   ^\n"
    );
    // `luaco check` says the same, and `ok` for good files.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("syntax.lua"), body).expect("write");
    std::fs::write(dir.path().join("good.lua"), "print(1)\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_luaco"))
        .args(["check", "good.lua", "syntax.lua"])
        .current_dir(dir.path())
        .output()
        .expect("luaco check");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "good.lua: ok\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains(" 3 |   b = 2,\n   |   ^"));
    let none = Command::new(env!("CARGO_BIN_EXE_luaco"))
        .arg("check")
        .output()
        .expect("luaco check");
    assert_eq!(none.status.code(), Some(2));
}

#[test]
fn a_forgotten_await_gets_a_hint() {
    let (code, err) = broken(
        "forgot.lua",
        "local r = http_get(\"http://127.0.0.1:9/\")\nprint(r.body)\n",
    );
    assert_eq!(code, Some(1));
    has_all(
        &err,
        &["error: forgot.lua:2: attempt to read field 'body' of a promise (did you forget await? await(p).body)"],
    );
}

#[test]
fn a_dot_for_a_colon_gets_a_hint() {
    let (code, err) = broken(
        "dot.lua",
        "local sem = sync.semaphore(1)\nawait(sem.acquire())\n",
    );
    assert_eq!(code, Some(1));
    has_all(
        &err,
        &["error: dot.lua:2: semaphore:acquire() must be called on a semaphore (use ':' to call a method)"],
    );
}

#[test]
fn an_unhandled_rejection_is_reported_and_the_rest_runs() {
    let (code, err) = broken(
        "unhandled.lua",
        "local function job() await(sleep(1)) error(\"nobody waits for me\") end\nasync(job)\nawait(sleep(20))\nprint(\"main done\")\n",
    );
    assert_eq!(code, Some(1));
    has_all(
        &err,
        &[
            "unhandled rejection: unhandled.lua:1: nobody waits for me",
            "unhandled.lua:1: in function <unhandled.lua:1>",
            "[spawned at] unhandled.lua:2",
        ],
    );
}
