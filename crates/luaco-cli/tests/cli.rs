//! End-to-end: the real `luaco` binary on real scripts; stdout, stderr and
//! exit codes as docs/guide.md states them.

use std::path::Path;
use std::process::{Command, Output};

fn luaco(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_luaco"))
        .args(args)
        .output()
        .expect("run luaco")
}

fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write script");
    path.to_string_lossy().into_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn runs_a_file_with_top_level_await_and_arguments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = script(
        dir.path(),
        "main.lua",
        r##"
        local a = async(function() await(sleep(5)); return "slept" end)
        print(await(a), arg[1], arg[2], select("#", ...), (...))
    "##,
    );
    let out = luaco(&["run", &path, "one", "--two"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "slept\tone\t--two\t2\tone\n");
    assert!(out.stderr.is_empty());
}

#[test]
fn arg_zero_is_the_script_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = script(dir.path(), "a.lua", "print(arg[0])");
    let out = luaco(&["run", &path]);
    assert_eq!(text(&out.stdout).trim(), path);
}

#[test]
fn eval_runs_code() {
    let out = luaco(&[
        "run",
        "-e",
        "print(await(async(function(x) return x * 2 end, 21)))",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "42\n");
}

#[test]
fn waits_for_everything_the_script_started() {
    let out = luaco(&[
        "run",
        "-e",
        r#"set_timeout(function() print("timer") end, 20)
           async(function() await(sleep(10)); print("task") end)
           print("main done")"#,
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "main done\ntask\ntimer\n");
}

#[test]
fn main_chunk_error_prints_message_and_traceback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = script(dir.path(), "fail.lua", "local x = 1\nerror('broken')\n");
    let out = luaco(&["run", &path]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!("error: {path}:2: broken\n")),
        "{err}"
    );
    assert!(err.contains("stack traceback:"), "{err}");
    assert!(!err.contains("unhandled rejection"), "{err}");
}

#[test]
fn unhandled_rejection_is_printed_and_the_rest_still_runs() {
    let out = luaco(&[
        "run",
        "-e",
        r#"async(function() error("nobody listens") end)
           await(sleep(10))
           print("still running")"#,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("unhandled rejection: (command line):1: nobody listens"),
        "{err}"
    );
    assert!(err.contains("stack traceback:"), "{err}");
    assert_eq!(text(&out.stdout), "still running\n");
}

#[test]
fn syntax_errors_exit_one() {
    let out = luaco(&["run", "-e", "local = 1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn usage_errors_exit_two() {
    for args in [
        vec!["run", "/nonexistent/dir/script.lua"],
        vec!["run", "--no-such-option", "x.lua"],
        vec!["run"],
        vec!["frobnicate"],
        vec![],
    ] {
        let out = luaco(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!out.stderr.is_empty(), "{args:?} must explain itself");
    }
    let out = luaco(&["run", "/nonexistent/dir/script.lua"]);
    assert!(text(&out.stderr).contains("cannot read /nonexistent/dir/script.lua"));
}

#[test]
fn help_exits_zero() {
    let out = luaco(&["run", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("-e <CODE>"));
}

#[test]
fn a_main_chunk_waiting_forever_is_an_error_not_a_hang() {
    let out = luaco(&["run", "-e", "await(promise.new(function() end))"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("nothing is left to settle"));
}

#[test]
fn never_panics_on_hostile_scripts() {
    let scripts = [
        "coroutine.close(coroutine.running())",
        "local t = async(function() await(sleep(1)) end); coroutine.close(t)",
        "local co = coroutine.running(); async(function() coroutine.resume(co, 'x') end); await(sleep(5))",
        "local function f() return f() + 1 end f()",
        "local p = async(function() coroutine.yield() end) p:cancel() p:cancel()",
        "getmetatable(promise.resolve(1)).__index = nil",
        "await(setmetatable({}, {__index = function() error('x') end}))",
        "promise.resolve(setmetatable({}, {__index = function() error('then!') end})):catch(print)",
        "local p; p = async(function() return p end); print(pcall(await, p))",
        "string.rep('x', 1e8)",
    ];
    for src in scripts {
        let out = luaco(&["run", "-e", src]);
        let code = out.status.code();
        assert!(
            matches!(code, Some(0) | Some(1)),
            "{src}: {code:?} {}",
            text(&out.stderr)
        );
        assert!(
            !text(&out.stderr).contains("panicked"),
            "{src}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn trace_reports_every_task_in_its_span() {
    let out = luaco(&[
        "run",
        "--trace",
        "-e",
        "local t = async(function() await(sleep(1)) return 7 end) print(await(t))",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "7\n");
    let err = text(&out.stderr);
    for event in [
        "coroutine.created",
        "coroutine.started",
        "coroutine.yielded",
        "coroutine.resumed",
        "coroutine.completed",
    ] {
        assert!(err.contains(event), "missing {event}: {err}");
    }
    // One line per event, each with its time; the child's span sits
    // inside its parent's, and each span's close gives its timings.
    let lines: Vec<&str> = err.lines().collect();
    let completed = lines
        .iter()
        .find(|l| l.contains("coroutine.completed") && l.contains("task{id=2"))
        .unwrap_or_else(|| panic!("no completed line for task 2: {err}"));
    assert!(completed.contains("task{id=1"), "{completed}");
    assert!(completed.contains("execution_time="), "{completed}");
    assert!(completed.contains("yield_count=1"), "{completed}");
    assert!(
        completed
            .trim_start()
            .starts_with(|c: char| c.is_ascii_digit()),
        "{completed}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("close") && l.contains("time.busy")),
        "{err}"
    );
    // Without --trace, nothing.
    let quiet = luaco(&["run", "-e", "await(sleep(1))"]);
    assert!(quiet.stderr.is_empty());
}

#[test]
fn eval_takes_code_that_starts_with_a_dash() {
    let out = luaco(&["run", "-e", "-- a comment first\nprint('dash ok')"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "dash ok\n");
    // Arguments after the code that look like options go to the script.
    let out = luaco(&["run", "-e", "print(...)", "-x", "--y"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "-x\t--y\n");
}

#[test]
fn a_dash_reads_the_script_from_stdin() {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_luaco"))
        .args(["run", "-", "x"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn luaco");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"print(await(async(function() return 'from stdin' end)), arg[1])")
        .expect("write script");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from stdin\tx\n");
}

#[test]
fn a_shebang_line_is_skipped_and_line_numbers_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = script(
        dir.path(),
        "tool.lua",
        "#!/usr/bin/env luaco run\nprint('ran')\nerror('line three')\n",
    );
    let out = luaco(&["run", &path]);
    assert_eq!(text(&out.stdout), "ran\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("tool.lua:3: line three"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn require_looks_in_the_scripts_own_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    script(
        dir.path(),
        "helper.lua",
        "return { greet = function() return 'hello from helper' end }",
    );
    let path = script(dir.path(), "main.lua", "print(require('helper').greet())");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_luaco"))
        .args(["run", &path])
        .current_dir(elsewhere.path())
        .output()
        .expect("run luaco");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello from helper\n");
}

#[test]
fn a_raised_table_or_nil_is_printed_by_what_it_holds() {
    let out = luaco(&["run", "-e", "error({ code = 42, why = 'nope' })"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(!err.contains("table: 0x"), "{err}");
    assert!(
        err.contains("code") && err.contains("42") && err.contains("nope"),
        "{err}"
    );
    let out = luaco(&["run", "-e", "error(nil)"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with("error: nil"), "{err}");
}

#[test]
fn the_debug_library_is_there_without_sandbox() {
    let out = luaco(&["run", "-e", "print(type(debug), type(debug.getinfo))"]);
    assert_eq!(text(&out.stdout), "table\tfunction\n");
}

#[test]
fn a_time_slice_keeps_timers_on_time_beside_a_busy_task() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = script(
        dir.path(),
        "busy.lua",
        r#"
        local done = false
        local spins = 0
        async(function() while not done do spins = spins + 1 end end)
        local worst = 0
        for _ = 1, 10 do
          local t0 = now()
          await(sleep(20))
          worst = math.max(worst, now() - t0 - 20)
        end
        done = true
        print(string.format("worst %.1f", worst))
    "#,
    );
    let out = luaco(&[
        "run",
        "--time-slice-ms",
        "5",
        "--timeout-ms",
        "30000",
        &path,
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let worst: f64 = stdout
        .trim()
        .strip_prefix("worst ")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("output: {stdout}"));
    // A 5 ms slice: each sleep ends at most a slice or two late; 20x that
    // for a loaded machine.
    assert!(
        worst < 200.0,
        "a timer fired {worst} ms late beside a busy task"
    );
    eprintln!("time slice 5 ms: worst lateness {worst:.1} ms");
}

#[test]
fn limit_flags_reject_bad_values_as_usage_errors() {
    for args in [
        &["run", "--max-instructions", "0", "-e", "x=1"][..],
        &["run", "--max-instructions", "lots", "-e", "x=1"],
        &["run", "--timeout-ms", "-5", "-e", "x=1"],
        &["run", "--max-memory-mb", "0", "-e", "x=1"],
        &["run", "--time-slice-ms", "0", "-e", "x=1"],
        &["run", "--allow-net", "-e", "x=1"],
        &[
            "run",
            "--sandbox",
            "--allow-fs",
            "/no/such/dir",
            "-e",
            "x=1",
        ],
    ] {
        let out = luaco(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).is_empty(), "{args:?} said nothing");
    }
}

/// Runs `luaco run -e CODE`, killing it if it is still running after a
/// bound far past what the script needs: a hang fails the test instead of
/// wedging the suite.
fn run_bounded(code: &str) -> Output {
    run_bounded_with(&[], code)
}

/// [`run_bounded`] with flags before `-e`.
fn run_bounded_with(flags: &[&str], code: &str) -> Output {
    use std::io::Read;
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_luaco"))
        .arg("run")
        .args(flags)
        .args(["-e", code])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run luaco");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("luaco hung on: {code}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut stdout)
        .expect("read");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_end(&mut stderr)
        .expect("read");
    Output {
        status,
        stdout,
        stderr,
    }
}

#[test]
fn an_error_in_the_main_chunk_ends_the_run_despite_live_work() {
    for code in [
        // A live interval, an endless awaiting task, an endless busy task.
        r#"set_interval(function() end, 10); error("main failed")"#,
        r#"async(function() while true do await(sleep(1)) end end); error("main failed")"#,
        // (A busy task that starts before main fails holds the one thread,
        // as it would in Node: only a time slice can stop it.)
        r#"async(function() while true do end end); error("main failed")"#,
    ] {
        let out = run_bounded(code);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{code}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains("main failed"),
            "{code}: {stderr}"
        );
        assert!(!stderr.contains("unhandled"), "{code}: {stderr}");
    }
}

#[test]
fn the_end_of_a_failed_run_closes_what_is_left_and_fires_no_timer() {
    let out = run_bounded(
        r#"
        local function closer(name)
          return setmetatable({}, { __close = function() print("closed " .. name) end })
        end
        async(function()
          local a <close> = closer("sleeper")
          await(sleep(1e7))
        end)
        async(function()
          local b <close> = closer("waiter")
          await(promise.new(function() end))
        end)
        set_timeout(function() print("timer fired") end, 50)
        set_interval(function() print("interval fired") end, 50)
        await(sleep(5))
        error("main failed")
    "#,
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("main failed"), "{stderr}");
    assert!(stdout.contains("closed sleeper\n"), "{stdout}");
    assert!(stdout.contains("closed waiter\n"), "{stdout}");
    assert!(!stdout.contains("fired"), "{stdout}");
}

#[test]
fn a_main_chunk_that_succeeds_still_waits_for_its_tasks() {
    let out = run_bounded(
        r#"
        async(function() await(sleep(20)); print("late task") end)
        set_timeout(function() print("late timer") end, 30)
    "#,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "late task\nlate timer\n");
}

#[test]
fn an_unknown_option_before_file_is_a_usage_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = script(dir.path(), "x.lua", "print('ran')");
    let out = luaco(&["run", "--no-such-flag", &path]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("unexpected argument '--no-such-flag'"),
        "{stderr}"
    );
    assert!(!stderr.contains("cannot read"), "{stderr}");
    let out = luaco(&["run", "--sandbx", &path]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("similar argument exists: '--sandbox'"),
        "{stderr}"
    );
    // After FILE, and after `--`, anything goes to the script.
    let odd = script(dir.path(), "-odd.lua", "print(...)");
    let out = luaco(&["run", "--", &odd, "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "--no-such-flag\n");
}

#[test]
fn sources_are_bytes_in_any_encoding() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Latin-1: a byte 0xE9 in a comment, a string and an error message.
    let path = dir.path().join("latin.lua");
    std::fs::write(
        &path,
        b"-- caf\xe9\nlocal m = require('latinmod')\nprint(#'\xe9', m == 'd\xe9j\xe0')\nerror('bad \xe9')\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("latinmod.lua"),
        b"-- \xff\nreturn 'd\xe9j\xe0'\n",
    )
    .expect("write");
    let file = path.to_string_lossy().into_owned();
    let out = luaco(&["run", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "1\ttrue\n");
    // The message is written as the bytes the script raised.
    let needle = b"latin.lua:4: bad \xe9\n";
    assert!(
        out.stderr.windows(needle.len()).any(|w| w == needle),
        "{:?}",
        text(&out.stderr)
    );
    let out = luaco(&["check", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // -e takes bytes too.
    use std::os::unix::ffi::OsStrExt;
    let code = std::ffi::OsStr::from_bytes(b"print(#'\xe9\xe9')");
    let out = Command::new(env!("CARGO_BIN_EXE_luaco"))
        .arg("run")
        .arg("-e")
        .arg(code)
        .output()
        .expect("run luaco");
    assert_eq!(text(&out.stdout), "2\n", "{}", text(&out.stderr));
}

#[test]
fn a_precompiled_file_runs_unless_sandboxed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chunk = dir.path().join("p.luac");
    let made = luaco(&[
        "run",
        "-e",
        &format!(
            "local f = assert(io.open({:?}, 'wb')); f:write(string.dump(load('print(\"bytecode\", ...)'))); f:close()",
            chunk.to_string_lossy()
        ),
    ]);
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    let file = chunk.to_string_lossy().into_owned();
    let out = luaco(&["run", &file, "a"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "bytecode\ta\n");
    let out = luaco(&["run", "--sandbox", &file]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("binary (precompiled) chunks are not allowed"),
        "{stderr}"
    );
    assert!(!stderr.contains("usage"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn closing_the_running_task_coroutine_is_refused_as_lua_refuses_it() {
    let out = luaco(&[
        "run",
        "-e",
        r#"
        print(pcall(coroutine.close, coroutine.running()))
        local me = coroutine.running()
        print(coroutine.wrap(function() return pcall(coroutine.close, me) end)())
        print(pcall(coroutine.close, 1))
        print(select(2, pcall(function() coroutine.close(coroutine.running()) end)))
        "#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "false\tcannot close a running coroutine\n\
         false\tcannot close a normal coroutine\n\
         false\tbad argument #1 to 'close' (coroutine expected, got number)\n\
         (command line):6: cannot close a running coroutine\n"
    );
}

/// The C and pure-Lua modules from Debian's packages that `.ci/run`
/// installs (lua5.4, lua-filesystem, lua-lpeg, lua-cjson, lua-penlight).
const SYSTEM_MODULES: &str =
    "apt-get install lua5.4 lua-filesystem lua-lpeg lua-cjson lua-penlight (.ci/run does)";

#[test]
fn system_c_modules_and_libraries_load_as_under_lua54() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = script(
        dir.path(),
        "modules.lua",
        r#"
        local pl = require("pl.import_into")()
        local path, dir, stringx, List = pl.path, pl.dir, pl.stringx, pl.List
        local d = arg[1]
        print(path.isdir(d), path.exists(path.join(d, "nope")))
        pl.utils.writefile(path.join(d, "a.txt"), "one\ntwo\n")
        print(#dir.getfiles(d), #pl.utils.readfile(path.join(d, "a.txt")))
        print(stringx.split("a,b,c", ",")[2], List{3, 1, 2}:sort():concat(","))
        print(pl.pretty.write({1, 2, x = "y"}, ""))
        local lfs, lpeg = require("lfs"), require("lpeg")
        print(lfs.attributes(d, "mode"), require("cjson").encode({1, 2}),
          lpeg.match(lpeg.R("az")^1, "abc1"), require("re").match("aaa", "'a'+"))
        "#,
    );
    let expected = "true\tfalse\n1\t8\nb\t1,2,3\n{1,2,x=\"y\"}\ndirectory\t[1,2]\t4\t4\n";
    let work = tempfile::tempdir().expect("tempdir");
    let out = luaco(&["run", &path, &work.path().to_string_lossy()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} (needs: {SYSTEM_MODULES})",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), expected);
    // The same script under the system's own interpreter says the same.
    let work = tempfile::tempdir().expect("tempdir");
    let stock = Command::new("lua5.4")
        .arg(&path)
        .arg(work.path())
        .output()
        .unwrap_or_else(|e| panic!("lua5.4: {e} (needs: {SYSTEM_MODULES})"));
    assert_eq!(text(&stock.stdout), expected, "{}", text(&stock.stderr));
    // A sandboxed script loads no C code.
    let out = luaco(&["run", "--sandbox", "-e", "print(pcall(require, 'lfs'))"]);
    assert!(
        text(&out.stdout).starts_with("false\t"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn module_paths_follow_lua_path_with_double_semicolon_for_the_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("mine.lua"), "return 'mine'").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_luaco"))
        .args([
            "run",
            "-e",
            "print(require('mine'), package.path:find('/usr/share/lua/5.4/?.lua', 1, true) ~= nil)",
        ])
        .env("LUA_PATH", format!("{}/?.lua;;", dir.path().display()))
        .env_remove("LUA_PATH_5_4")
        .output()
        .expect("run luaco");
    assert_eq!(text(&out.stdout), "mine\ttrue\n", "{}", text(&out.stderr));
}

#[test]
fn limits_are_final_without_anything_a_script_can_see() {
    let code = r##"
        local function who() return debug.getinfo(2, "n").name end
        print(pcall(who))
        print(xpcall(who, print))
        local tb = select(2, xpcall(function() error("x") end, debug.traceback))
        print(tb:find("harden", 1, true) == nil and tb:find("real_", 1, true) == nil,
          tb:find("[C]: in function 'xpcall'", 1, true) ~= nil)
        print(pcall(error, "not enough memory"))
        print(pcall(await, sleep(1)))
        print(xpcall(function() await(sleep(1)); return "after a yield" end, print))
        print(pcall(pcall))
        print(select("#", pcall(function() return 1, nil, 3 end)))
        print("still running")
    "##;
    let expected = "true\tpcall\ntrue\txpcall\ntrue\ttrue\nfalse\tnot enough memory\n\
                    true\tnil\ntrue\tafter a yield\n\
                    false\tbad argument #1 to 'pcall' (value expected)\n4\nstill running\n";
    // The default run (a heap limit from the machine), a small heap, and
    // a run whose limits need the hook.
    for flags in [
        &[][..],
        &["--max-memory-mb", "32"][..],
        &["--timeout-ms", "60000", "--max-instructions", "100000000"][..],
        &["--timeout-ms", "60000", "--time-slice-ms", "10"][..],
    ] {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.extend(["-e", code]);
        let out = luaco(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{flags:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), expected, "{flags:?}");
    }
    // A real heap bomb caught by pcall still ends the run as a limit.
    let out = run_bounded_with(
        &["--max-memory-mb", "32"],
        r#"
        local t = {}
        print(pcall(function() for i = 1, 1e9 do t[i] = ("x"):rep(64) .. i end end))
        t = nil
        for i = 1, 1e7 do local _ = {} end
        print("never printed")
    "#,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("memory limit"));
    assert!(!text(&out.stdout).contains("never printed"));
    // So does one caught by a coroutine's resume, or by a wrap function's
    // caller.
    for catch in [
        "print(coroutine.resume(coroutine.create(bomb)))",
        "print(pcall(coroutine.wrap(bomb)))",
    ] {
        let code = format!(
            r#"
            local t = {{}}
            local function bomb() for i = 1, 1e9 do t[i] = ("x"):rep(64) .. i end end
            {catch}
            t = nil
            for i = 1, 1e7 do local _ = {{}} end
            print("never printed")
        "#
        );
        let out = run_bounded_with(&["--max-memory-mb", "32"], &code);
        assert_eq!(out.status.code(), Some(3), "{catch}: {}", text(&out.stderr));
        assert!(!text(&out.stdout).contains("never printed"), "{catch}");
    }
    // An uncaught error("not enough memory") is a script error, not a limit.
    let out = luaco(&["run", "-e", "error('not enough memory')"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("memory limit"));
}

#[test]
fn a_deadline_stops_code_in_any_coroutine_and_nothing_runs_after_it() {
    // A deadline with no instruction budget is watched from another thread
    // (no count hook): it must still reach a loop in a coroutine the
    // script made, in a `__close` handler, and in a task resumed after it
    // passed, and no line may run once it has.
    let cases = [
        "local co = coroutine.wrap(function() while true do end end)\n\
         print('caught', pcall(co))\nwhile true do end",
        "local co = coroutine.create(function() while true do end end)\n\
         print('caught', coroutine.resume(co))\nwhile true do end",
        "local p = async(function() local x <close> = setmetatable({}, {__close = function()\n\
           while true do end end}); await(sleep(100000)) end)\n\
         await(sleep(10)); p:cancel(); print('caught')",
        "for i = 1, 20 do async(function() while true do end end) end\n\
         await(sleep(1000)); print('caught')",
    ];
    for flags in [
        &["--timeout-ms", "300"][..],
        &["--timeout-ms", "300", "--time-slice-ms", "5"][..],
    ] {
        for code in cases {
            let start = std::time::Instant::now();
            let out = run_bounded_with(flags, code);
            assert_eq!(
                out.status.code(),
                Some(3),
                "{flags:?} {code}: {}",
                text(&out.stderr)
            );
            assert!(
                text(&out.stderr).contains("wall-clock limit"),
                "{code}: {}",
                text(&out.stderr)
            );
            assert!(
                !text(&out.stdout).contains("caught"),
                "{flags:?} {code}: {}",
                text(&out.stdout)
            );
            // Ten times the limit and more: a loaded machine never flakes.
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "{code}"
            );
        }
    }
}

#[test]
fn coroutine_functions_answer_as_lua54s() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = script(
        dir.path(),
        "co.lua",
        r##"
local function show(...) local t = table.pack(...) for i = 1, t.n do t[i] = tostring(t[i]) end print(table.concat(t, " | ")) end
local co = coroutine.create(function(a, b) local c = coroutine.yield(a + b); error("boom " .. c) end)
show(coroutine.resume(co, 1, 2))
show(coroutine.resume(co, "x"))
show(coroutine.resume(co))
show(pcall(coroutine.resume))
show(pcall(coroutine.resume, 42))
show(pcall(coroutine.resume, setmetatable({}, {__name = "thing"})))
local w = coroutine.wrap(function(...) local x = coroutine.yield(...) error("in wrap " .. tostring(x)) end)
show(w(1, 2, 3))
show(pcall(w, "v"))
show(pcall(w))
local ok, e = pcall(coroutine.wrap(function() error({code = 1}) end)); show(ok, type(e), e.code)
show(pcall(coroutine.wrap, 1))
show(pcall(coroutine.wrap(function() local x <close> = setmetatable({}, {__close = function() print("closed") end}); error("after close") end)))
local co2 = coroutine.create(function() coroutine.yield() end)
coroutine.resume(co2)
show(coroutine.close(co2), coroutine.status(co2))
local co3 = coroutine.create(function() local x <close> = setmetatable({}, {__close = function() error("close err") end}); coroutine.yield() end)
coroutine.resume(co3)
show(coroutine.close(co3))
show(coroutine.resume(coroutine.running()))
show(coroutine.wrap(function() return coroutine.resume(coroutine.create(function() return coroutine.isyieldable() end)) end)())
show(select("#", coroutine.resume(coroutine.create(function() return table.unpack({}, 1, 200) end))))
"##,
    );
    let ours = luaco(&["run", &path]);
    let stock = Command::new("lua5.4")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("lua5.4: {e} (needs: {SYSTEM_MODULES})"));
    assert_eq!(ours.status.code(), Some(0), "{}", text(&ours.stderr));
    assert!(text(&stock.stdout).contains("cannot resume dead coroutine"));
    assert_eq!(text(&ours.stdout), text(&stock.stdout));
}
