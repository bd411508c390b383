//! `cargo xtask sanitize`: the runtime's native code under valgrind's
//! memcheck. AddressSanitizer needs a nightly toolchain that these machines
//! cannot install; memcheck is on every one and sees the same class of
//! errors in the C functions over the Lua stack (reads past a stack slot,
//! use after free of a coroutine, uninitialised values) at 20-50x the time.
//!
//! What runs, each under memcheck with `--error-exitcode`:
//! - the churn workload (`xtask/sanitize/churn.lua`): 1M spawned tasks,
//!   cancel storms, errors across awaits, plain coroutines, busy tasks -
//!   plain, under a wall clock with a 2 ms time slice (the watcher thread's
//!   signal and one-shot hook, many times over) and under an instruction
//!   budget (the count hook);
//! - the Lua test scripts of `crates/luaco/tests/lua` through the CLI;
//! - the core's, the scheduler's and the sandbox's test binaries, without
//!   the tests that check timing (memcheck slows everything 20-50x) or that
//!   exist to be big (two million promises), with proptest cut to 32 cases.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::{cargo, root, run};

/// memcheck's exit code when it found an error, told apart from a test's own.
const VALGRIND_ERROR: i32 = 97;

/// Test binaries run under memcheck, with the tests each one skips.
const TEST_BINARIES: &[(&str, &str, &[&str])] = &[
    ("luaco-core", "lib", &[]),
    ("luaco-core", "settle_once", &[]),
    ("luaco-core", "all_model", &[]),
    ("luaco-core", "script_value", &[]),
    (
        "luaco-core",
        "hostile",
        &["two_million_settled_promises_and_a_million_queued_tasks_at_once"],
    ),
    ("luaco-sched", "timers", &[]),
    ("luaco-sandbox", "lib", &[]),
    (
        "luaco-sandbox",
        "interrupts",
        // Their bounds are wall-clock ones, which valgrind's pace breaks;
        // the churn runs above put the same code under memcheck.
        &[
            "a_time_slice_lets_a_sleeper_run_beside_busy_tasks",
            "a_time_slice_preempts_a_task_that_resumes_coroutines_of_its_own",
            "a_deadline_ends_a_task_that_never_awaits",
        ],
    ),
];

fn valgrind() -> Command {
    let mut cmd = Command::new("valgrind");
    cmd.args([
        "-q",
        "--tool=memcheck",
        &format!("--error-exitcode={VALGRIND_ERROR}"),
        "--leak-check=no",
    ]);
    cmd
}

/// Runs `cmd` and names what went wrong: a memcheck error or a failure.
fn check(step: &str, mut cmd: Command) -> Result<()> {
    let start = Instant::now();
    eprintln!("xtask: sanitize {step}");
    let status = cmd.status().with_context(|| format!("starting {step}"))?;
    let secs = start.elapsed().as_secs_f64();
    match status.code() {
        Some(0) => {
            eprintln!("xtask: sanitize {step} clean ({secs:.0} s)");
            Ok(())
        }
        Some(VALGRIND_ERROR) => bail!("{step}: memcheck found errors (see above)"),
        _ => bail!("{step} failed under memcheck ({status})"),
    }
}

/// The test executables cargo built for `crate_name`, by target name.
fn test_executables(crate_name: &str) -> Result<Vec<(String, PathBuf)>> {
    let out = cargo()
        .args([
            "test",
            "--no-run",
            "--message-format=json",
            "-p",
            crate_name,
        ])
        .output()
        .context("building test binaries")?;
    if !out.status.success() {
        bail!(
            "building the tests of {crate_name} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_test = msg["profile"]["test"].as_bool() == Some(true);
        if let (true, Some(exe), Some(name)) = (
            is_test,
            msg["executable"].as_str(),
            msg["target"]["name"].as_str(),
        ) {
            let kind_lib = msg["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|v| v == "lib"));
            let name = if kind_lib { "lib" } else { name };
            found.push((name.to_owned(), PathBuf::from(exe)));
        }
    }
    Ok(found)
}

/// `cargo xtask sanitize`.
pub(crate) fn sanitize() -> Result<()> {
    if Command::new("valgrind").arg("--version").output().is_err() {
        bail!("valgrind is not installed (apt-get install valgrind)");
    }
    let start = Instant::now();
    let mut build = cargo();
    build.args(["build", "--release", "-p", "luaco-cli"]);
    run("cargo build --release -p luaco-cli", build)?;
    let exe = root().join("target/release/luaco");
    let churn = root().join("xtask/sanitize/churn.lua");

    let variants: &[(&str, &[&str], &str)] = &[
        ("churn (1M tasks)", &[], "1000000"),
        (
            "churn under --timeout-ms and --time-slice-ms 2",
            &["--timeout-ms", "3600000", "--time-slice-ms", "2"],
            "50000",
        ),
        (
            "churn under --max-instructions",
            &["--max-instructions", "1000000000000"],
            "50000",
        ),
    ];
    let mut failures = Vec::new();
    for (step, flags, n) in variants {
        let mut cmd = valgrind();
        cmd.arg(&exe).arg("run").args(*flags).arg(&churn).arg(n);
        if let Err(e) = check(step, cmd) {
            failures.push(format!("{e:#}"));
        }
    }

    let scripts_dir = root().join("crates/luaco/tests/lua");
    for script in lua_scripts(&scripts_dir)? {
        let mut cmd = valgrind();
        // From their own directory: the scripts check their chunk names.
        cmd.arg(&exe)
            .arg("run")
            .arg(&script)
            .current_dir(&scripts_dir);
        if let Err(e) = check(&format!("tests/lua/{script}"), cmd) {
            failures.push(format!("{e:#}"));
        }
    }

    let mut by_crate: Vec<(&str, Vec<(String, PathBuf)>)> = Vec::new();
    for (crate_name, target, skips) in TEST_BINARIES {
        if !by_crate.iter().any(|(c, _)| c == crate_name) {
            by_crate.push((crate_name, test_executables(crate_name)?));
        }
        let built = by_crate
            .iter()
            .find(|(c, _)| c == crate_name)
            .map(|(_, b)| b.as_slice())
            .unwrap_or_default();
        let Some((_, exe)) = built.iter().find(|(name, _)| name == target) else {
            failures.push(format!("no test binary {target} in {crate_name}"));
            continue;
        };
        let mut cmd = valgrind();
        cmd.arg(exe).args(["--test-threads", "2"]);
        for skip in *skips {
            cmd.args(["--skip", skip]);
        }
        cmd.env("PROPTEST_CASES", "32")
            .current_dir(crate_dir(crate_name));
        if let Err(e) = check(&format!("{crate_name} {target}"), cmd) {
            failures.push(format!("{e:#}"));
        }
    }

    let secs = start.elapsed().as_secs_f64();
    if failures.is_empty() {
        println!("sanitize: clean in {secs:.0} s");
        Ok(())
    } else {
        println!("sanitize: {} step(s) failed in {secs:.0} s", failures.len());
        for f in &failures {
            println!("  {f}");
        }
        bail!("sanitize failed")
    }
}

/// A test binary runs in its crate's directory, as `cargo test` runs it.
fn crate_dir(crate_name: &str) -> PathBuf {
    root().join("crates").join(crate_name)
}

/// The `.lua` files directly in `dir`, by name, sorted.
fn lua_scripts(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".lua"))
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("no Lua test scripts in {}", dir.display());
    }
    Ok(names)
}
