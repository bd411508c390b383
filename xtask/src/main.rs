//! Project tasks: `cargo xtask test` (everything CI checks) and
//! `cargo xtask bench` (benchmarks with ratios against their baselines).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("bench") => bench(&args[1..]),
        Some("examples") => examples(),
        other => {
            eprintln!(
                "usage: cargo xtask <test|bench|examples>{}",
                other
                    .map(|o| format!(" (unknown subcommand '{o}')"))
                    .unwrap_or_default()
            );
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
    run("cargo test (unit, integration, doctests)", tests)?;

    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings");
    run("cargo doc -D warnings", doc)?;

    examples()
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
    let mut cmd = cargo();
    cmd.args(["run", "-q", "-p", "luaco", "--example", "llm_bridge"]);
    run("Rust example llm_bridge", cmd)?;
    Ok(())
}

fn bench(extra: &[String]) -> Result<()> {
    for name in ["turns", "http"] {
        let mut cmd = cargo();
        cmd.args(["bench", "-p", "luaco", "--bench", name]);
        if !extra.is_empty() {
            cmd.arg("--").args(extra);
        }
        run(&format!("cargo bench --bench {name}"), cmd)?;
    }
    report_ratios()?;
    peak_memory()
}

/// Runs the 1,000-request load once per mode in a fresh process and prints
/// wall time and peak memory as the example reports them.
fn peak_memory() -> Result<()> {
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "-q",
        "-p",
        "luaco",
        "--example",
        "http_load",
    ]);
    run("build http_load", build)?;
    let exe = root().join("target/release/examples/http_load");
    println!("\n1,000 concurrent GETs on 127.0.0.1, one process each (peak RSS includes the test server):");
    for mode in ["rust", "luaco"] {
        let out = Command::new(&exe)
            .arg(mode)
            .output()
            .context("running http_load")?;
        if !out.status.success() {
            bail!(
                "http_load {mode} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        print!("  {}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(())
}

/// Median time of one criterion benchmark of this run, in nanoseconds.
fn median_ns(group: &str, name: &str) -> Result<f64> {
    let path = root()
        .join("target/criterion")
        .join(group)
        .join(name)
        .join("new/estimates.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    json["median"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("no median in {}", path.display()))
}

/// Prints each benchmark as a ratio to the bare coroutine round trip
/// measured in the same run, with the targets from the foundation issue.
fn report_ratios() -> Result<()> {
    let base = median_ns("turns", "bare_resume_yield")?;
    println!("\nratios to a bare Lua coroutine.resume/yield round trip ({base:.0} ns), same run:");
    let rows = [
        ("await_settled", "await of a settled promise", Some(1.0)),
        ("sleep0_turn", "await(sleep(0)): one full turn", Some(3.0)),
        (
            "spawn_complete_pooled",
            "spawn + complete, pooled coroutines",
            None,
        ),
        (
            "spawn_complete_unpooled",
            "spawn + complete, pool_size = 0",
            None,
        ),
    ];
    for (name, what, target) in rows {
        let ns = median_ns("turns", name)?;
        let ratio = ns / base;
        let verdict = match target {
            Some(t) if ratio <= t => format!("target <= {t}x: met"),
            Some(t) => format!("target <= {t}x: MISSED"),
            None => String::new(),
        };
        println!("  {what:<40} {ns:>8.0} ns  {ratio:>6.2}x  {verdict}");
    }
    println!("\nconcurrent GETs on 127.0.0.1: throughput of a luaco script / the same client from Rust alone:");
    for (client, n) in [("h1", 1000), ("surf", 250)] {
        let rust = median_ns("http", &format!("{client}_rust_alone"))?;
        let script = median_ns("http", &format!("{client}_luaco_script"))?;
        let ratio = rust / script;
        let verdict = if ratio >= 0.8 { "met" } else { "MISSED" };
        println!(
            "  {client:<5} {n:>5} requests: rust {:>7.1} ms, luaco {:>7.1} ms, ratio {ratio:.2} (target >= 0.8: {verdict})",
            rust / 1e6,
            script / 1e6
        );
    }
    Ok(())
}
