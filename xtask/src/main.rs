//! Project tasks: `cargo xtask test` (everything CI checks) and
//! `cargo xtask bench` (benchmarks with ratios against their baselines),
//! `cargo xtask sanitize` (the native code under valgrind's memcheck).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

mod bench;
mod sanitize;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test             everything CI checks: fmt, clippy -D warnings, every test and
                   doctest, docs with -D warnings, every example
  bench [--quick]  benchmarks: in-process ratios, whole-process workloads
                   against Node.js and Lua 5.4 + cqueues, HTTP, pump overrun
  examples         run every example (Lua scripts through the CLI, Rust examples)
  sanitize         the native code under valgrind's memcheck: a churn workload,
                   the Lua test scripts, the core, scheduler and sandbox tests
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("bench") => bench::bench(&args[1..]),
        Some("examples") => examples(),
        Some("sanitize") => sanitize::sanitize(),
        Some("help" | "--help" | "-h") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            if let Some(o) = other {
                eprintln!("xtask: unknown command '{o}'");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn run(step: &str, mut cmd: Command) -> Result<()> {
    eprintln!("xtask: {step}");
    let status = cmd.status().with_context(|| format!("starting {step}"))?;
    if !status.success() {
        bail!("{step} failed ({status})");
    }
    Ok(())
}

fn test() -> Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    run("cargo fmt --check", fmt)?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run("cargo clippy -D warnings", clippy)?;

    let mut tests = cargo();
    tests.args(["test", "--workspace"]);
    let counts = run_counting("cargo test (unit, integration, doctests)", tests);

    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings");
    let rest = counts.as_ref().map_err(|_| ()).and_then(|_| {
        run("cargo doc -D warnings", doc)
            .and_then(|()| examples())
            .map_err(|e| eprintln!("xtask: {e:#}"))
    });
    let (passed, failed) = counts.as_ref().copied().unwrap_or((0, 0));
    // One summary line, whatever happened above.
    println!("{passed} passed, {failed} failed");
    match (counts, rest) {
        (Err(e), _) => Err(e),
        (Ok((_, failed)), _) if failed > 0 => bail!("{failed} tests failed"),
        (Ok(_), Err(())) => bail!("a step after the tests failed"),
        (Ok(_), Ok(())) => Ok(()),
    }
}

/// Runs `cmd` (a `cargo test`), passing its output through, and adds up
/// the `test result:` lines: (passed, failed).
fn run_counting(step: &str, mut cmd: Command) -> Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    eprintln!("xtask: {step}");
    cmd.stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting {step}"))?;
    let (mut passed, mut failed) = (0, 0);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.context("reading test output")?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                let number_before = |word: &str| -> u64 {
                    rest.split(';')
                        .find_map(|part| part.trim().strip_suffix(word))
                        .and_then(|n| n.trim().rsplit(' ').next().map(str::to_owned))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0)
                };
                passed += number_before("passed");
                failed += number_before("failed");
            }
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for {step}"))?;
    if !status.success() && failed == 0 {
        bail!("{step} failed ({status})");
    }
    Ok((passed, failed))
}

/// Runs every Lua example through the built CLI (each must exit 0), with a
/// test server on 127.0.0.1 for the HTTP ones, then the Rust examples.
fn examples() -> Result<()> {
    let mut build = cargo();
    build.args(["build", "-p", "luaco-cli"]);
    run("cargo build -p luaco-cli", build)?;
    let server = luaco_io::testing::TestServer::start().context("starting the test server")?;
    let exe = root().join("target/debug/luaco");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "lua"))
        .collect();
    scripts.sort();
    if scripts.is_empty() {
        bail!("no Lua examples found under examples/");
    }
    let mut failed = 0;
    for script in &scripts {
        let out = Command::new(&exe)
            .arg("run")
            .arg(script)
            .env("LUACO_TEST_URL", server.url())
            .current_dir(root())
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if out.status.success() {
            eprintln!("xtask: example {} ok", script.display());
        } else {
            failed += 1;
            eprintln!(
                "xtask: example {} FAILED ({})\n{}{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    println!(
        "examples: {} passed, {failed} failed",
        scripts.len() - failed
    );
    if failed > 0 {
        bail!("{failed} example(s) failed");
    }
    for example in ["llm_bridge", "embed_hooks", "pump_loop", "block_on"] {
        let mut cmd = cargo();
        cmd.args(["run", "-q", "-p", "luaco", "--example", example]);
        run(&format!("Rust example {example}"), cmd)?;
    }
    // Its own project, so luaco's workspace never links a tokio runtime;
    // the shared target directory reuses the workspace's builds.
    let mut cmd = cargo();
    cmd.args([
        "run",
        "-q",
        "--manifest-path",
        "examples/beside_tokio/Cargo.toml",
        "--target-dir",
        "target",
    ]);
    cmd.current_dir(root());
    run("Rust example beside_tokio", cmd)?;
    Ok(())
}
