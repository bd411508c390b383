//! `cargo xtask bench [--quick]`: in-process ratios from criterion, then
//! whole-process workloads of the release `luaco` binary alternating with
//! its peers (Node.js, Lua 5.4 + cqueues), then HTTP and pump overrun.
//! Every figure is printed next to a baseline measured in the same run.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::{cargo, root, run};

/// One whole-process workload and how each runtime runs it.
struct Workload {
    name: &'static str,
    what: &'static str,
    /// Size in a full run and in a quick one.
    n: (u64, u64),
    /// luaco's script under benches/workloads.
    luaco: &'static str,
    node: Option<&'static str>,
    cqueues: Option<&'static str>,
    /// Arguments after N, the same for every runtime.
    args: &'static [&'static str],
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "sleeps",
        what: "tasks x sleep 10 ms, joined",
        n: (100_000, 100_000),
        luaco: "sleeps.lua",
        node: Some("sleeps.js"),
        cqueues: Some("cq_sleeps.lua"),
        args: &[],
    },
    Workload {
        name: "spawn",
        what: "trivial tasks spawned, each awaited",
        n: (1_000_000, 300_000),
        luaco: "spawn.lua",
        node: Some("spawn.js"),
        cqueues: Some("cq_spawn.lua"),
        args: &[],
    },
    Workload {
        name: "sleepers",
        what: "tasks sleeping at once (memory per task)",
        n: (1_000_000, 200_000),
        luaco: "sleepers.lua",
        node: Some("sleepers.js"),
        cqueues: Some("cq_sleepers.lua"),
        args: &[],
    },
    Workload {
        name: "chain",
        what: "a chain of :next handlers",
        n: (100_000, 100_000),
        luaco: "chain.lua",
        node: Some("chain.js"),
        cqueues: None,
        args: &[],
    },
    Workload {
        name: "lateness",
        what: "timers over 1 s: lateness p50/p99 (ms)",
        n: (100_000, 100_000),
        luaco: "lateness.lua",
        node: Some("lateness.js"),
        cqueues: Some("cq_lateness.lua"),
        args: &[],
    },
    Workload {
        name: "lateness_burst",
        what: "timers made at once, due 1.5-2.5 s: lateness p50/p99 (ms)",
        n: (100_000, 100_000),
        luaco: "lateness.lua",
        node: Some("lateness.js"),
        cqueues: Some("cq_lateness.lua"),
        // Every delay 1,500 ms longer: all due well after they were made.
        args: &["1500"],
    },
];

/// What one process run reported.
#[derive(Clone, Debug, Default)]
struct Sample {
    wall_ms: f64,
    fields: Vec<(String, String)>,
}

impl Sample {
    fn field(&self, key: &str) -> Option<f64> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
    }
}

fn run_process(mut cmd: Command) -> Result<Sample> {
    let start = Instant::now();
    let out = cmd.output().context("starting a benchmark process")?;
    let wall_ms = start.elapsed().as_secs_f64() * 1000.0;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("result"))
        .with_context(|| format!("{cmd:?} printed no result line"))?;
    let fields = line
        .split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Ok(Sample { wall_ms, fields })
}

fn have(program: &str, probe: &[&str]) -> bool {
    Command::new(program)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The median of the samples by wall time.
fn median(mut samples: Vec<Sample>) -> Option<Sample> {
    samples.sort_by(|a, b| a.wall_ms.total_cmp(&b.wall_ms));
    let mid = samples.len() / 2;
    samples.into_iter().nth(mid)
}

fn describe(s: &Option<Sample>, name: &str) -> String {
    let Some(s) = s else { return "—".into() };
    let rss = s
        .field("rss_kb")
        .map_or(String::new(), |kb| format!(", {:.0} MB", kb / 1024.0));
    match name {
        "lateness" | "lateness_burst" => format!(
            "p50 {} / p99 {}{rss}",
            s.field("p50_ms").map_or("?".into(), |v| format!("{v:.2}")),
            s.field("p99_ms").map_or("?".into(), |v| format!("{v:.2}"))
        ),
        "sleepers" => format!(
            "{:.0} ms, {} B/task{rss}",
            s.wall_ms,
            s.field("bytes_per_task")
                .map_or("?".into(), |v| format!("{v:.0}"))
        ),
        _ => format!("{:.0} ms{rss}", s.wall_ms),
    }
}

fn ratio(luaco: &Option<Sample>, peer: &Option<Sample>, name: &str) -> String {
    let (Some(a), Some(b)) = (luaco, peer) else {
        return "—".into();
    };
    let (x, y) = match name {
        "lateness" | "lateness_burst" => (a.field("p99_ms"), b.field("p99_ms")),
        "sleepers" => (a.field("bytes_per_task"), b.field("bytes_per_task")),
        _ => (Some(a.wall_ms), Some(b.wall_ms)),
    };
    match (x, y) {
        (Some(x), Some(y)) if y > 0.0 => format!("{:.2}x", x / y),
        _ => "—".into(),
    }
}

fn workloads(quick: bool) -> Result<()> {
    let mut build = cargo();
    build.args(["build", "--release", "-q", "-p", "luaco-cli"]);
    run("cargo build --release -p luaco-cli", build)?;
    let luaco = root().join("target/release/luaco");
    let dir = root().join("benches");
    let node = have("node", &["--version"]);
    let cqueues = have("lua5.4", &["-e", "require('cqueues')"]);
    if !node {
        println!("(node not found: its column is empty)");
    }
    if !cqueues {
        println!("(lua5.4 with cqueues not found: `apt-get install lua5.4 lua-cqueues`; its column is empty)");
    }
    let rounds = if quick { 1 } else { 3 };
    println!("\nWhole processes, alternating, median of {rounds} (wall time includes start-up and exit):\n");
    println!("| workload | N | luaco | Node.js | luaco/Node | cqueues | luaco/cqueues |");
    println!("|---|---|---|---|---|---|---|");
    for w in WORKLOADS {
        let n = if quick { w.n.1 } else { w.n.0 };
        let (mut ours, mut nodes, mut cqs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let mut cmd = Command::new(&luaco);
            cmd.current_dir(dir.join("workloads"))
                .args(["run", w.luaco, &n.to_string()])
                .args(w.args);
            ours.push(run_process(cmd)?);
            if let (true, Some(js)) = (node, w.node) {
                let mut cmd = Command::new("node");
                cmd.arg(dir.join("peers").join(js))
                    .arg(n.to_string())
                    .args(w.args);
                nodes.push(run_process(cmd)?);
            }
            if let (true, Some(lua)) = (cqueues, w.cqueues) {
                let mut cmd = Command::new("lua5.4");
                cmd.arg(dir.join("peers").join(lua))
                    .arg(n.to_string())
                    .args(w.args);
                cqs.push(run_process(cmd)?);
            }
        }
        let (ours, nodes, cqs) = (median(ours), median(nodes), median(cqs));
        println!(
            "| {} ({}) | {n} | {} | {} | {} | {} | {} |",
            w.name,
            w.what,
            describe(&ours, w.name),
            describe(&nodes, w.name),
            ratio(&ours, &nodes, w.name),
            describe(&cqs, w.name),
            ratio(&ours, &cqs, w.name),
        );
    }
    println!("\n(ratios: wall time; for sleepers bytes per task; for lateness p99)");
    Ok(())
}

/// Median time of one criterion benchmark of this run, in nanoseconds.
pub(crate) fn median_ns(group: &str, name: &str) -> Result<f64> {
    let path: PathBuf = root()
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

/// "met" or "MISSED" against an upper bound on a ratio, if there is one.
fn verdict(ratio: f64, target: Option<f64>) -> String {
    match target {
        Some(t) if ratio <= t => format!("<= {t}x: met"),
        Some(t) => format!("<= {t}x: MISSED"),
        None => "—".into(),
    }
}

/// Prints each in-process benchmark as a ratio to the bare coroutine
/// round trip measured in the same run, with the targets of the core issue.
fn report_turns() -> Result<()> {
    let base = median_ns("turns", "bare_resume_yield")?;
    println!("\nIn process, ratio to a bare Lua coroutine.resume/yield round trip ({base:.0} ns), same run:\n");
    println!("| operation | ns | ratio | target |");
    println!("|---|---|---|---|");
    let rows = [
        ("await_settled", "await of a settled promise", Some(1.0)),
        ("sleep0_turn", "await(sleep(0)): one full turn", Some(3.0)),
        (
            "pending_await",
            "pending create + await + resolve, two tasks",
            Some(8.0),
        ),
        ("spawn_complete_pooled", "spawn + complete", None),
        (
            "spawn_complete_unpooled",
            "spawn + complete, pool_size = 0",
            None,
        ),
    ];
    for (name, what, target) in rows {
        let ns = median_ns("turns", name)?;
        let r = ns / base;
        let verdict = verdict(r, target);
        println!("| {what} | {ns:.0} | {r:.2}x | {verdict} |");
    }
    let bare = median_ns("turns", "spawn_complete_no_hub")?;
    println!("\nWatching tasks: spawn + complete, ratio to an engine without the hooks crate ({bare:.0} ns), same run:\n");
    println!("| runtime | ns | ratio | target |");
    println!("|---|---|---|---|");
    for (name, what, target) in [
        (
            "spawn_complete_pooled",
            "no hook, no subscriber",
            Some(1.02),
        ),
        (
            "spawn_complete_rust_hook",
            "one Rust hook (completed)",
            None,
        ),
        (
            "spawn_complete_lua_subscriber",
            "one Lua subscriber (coroutine.completed)",
            None,
        ),
    ] {
        let ns = median_ns("turns", name)?;
        let r = ns / bare;
        let verdict = verdict(r, target);
        println!("| {what} | {ns:.0} | {r:.2}x | {verdict} |");
    }
    Ok(())
}

fn report_http() -> Result<()> {
    println!("\n2,000 GETs, 200 in flight, on 127.0.0.1: throughput of a luaco script / the same HyperClient from Rust alone:");
    let rust = median_ns("http", "hyper_rust_alone")?;
    let script = median_ns("http", "hyper_luaco_script")?;
    let r = rust / script;
    let verdict = if r >= 0.8 { "met" } else { "MISSED" };
    println!(
        "  rust {:.1} ms, luaco {:.1} ms, ratio {r:.2} (target >= 0.8: {verdict})",
        rust / 1e6,
        script / 1e6
    );
    Ok(())
}

fn pump_overrun() -> Result<()> {
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "-q",
        "-p",
        "luaco",
        "--example",
        "pump_overrun",
    ]);
    let out = cmd.output().context("running pump_overrun")?;
    if !out.status.success() {
        bail!(
            "pump_overrun failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    print!("\n{}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}

pub(crate) fn bench(args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let criterion: Vec<&str> = if quick {
        vec!["--warm-up-time", "0.3", "--measurement-time", "1"]
    } else {
        Vec::new()
    };
    for name in ["turns", "http"] {
        let mut cmd = cargo();
        cmd.args(["bench", "-q", "-p", "luaco", "--bench", name, "--"]);
        cmd.args(&criterion);
        run(&format!("cargo bench --bench {name}"), cmd)?;
    }
    report_turns()?;
    report_http()?;
    pump_overrun()?;
    workloads(quick)?;
    hook_cost(quick)?;
    http_processes(quick)
}

/// What limits cost on CPU-bound Lua: the same script with no limit, with
/// a deadline and a time slice (watched from another thread: no hook
/// until one expires), with an instruction budget it never reaches (a
/// count hook: Lua 5.4's VM then stops at every instruction), and with a
/// time slice too; alternating, median of the in-script times.
fn hook_cost(quick: bool) -> Result<()> {
    let luaco = root().join("target/release/luaco");
    let (n, rounds) = if quick { ("2", 3) } else { ("5", 5) };
    // (name, flags, target ratio to the plain run)
    let variants: [(&str, &[&str], Option<f64>); 4] = [
        ("no limits", &[], None),
        (
            "--timeout-ms 10^9 and --time-slice-ms 10",
            &["--timeout-ms", "1000000000", "--time-slice-ms", "10"],
            Some(1.05),
        ),
        (
            "--max-instructions 10^15",
            &["--max-instructions", "1000000000000000"],
            Some(1.85),
        ),
        (
            "--max-instructions and --time-slice-ms 10",
            &[
                "--max-instructions",
                "1000000000000000",
                "--time-slice-ms",
                "10",
            ],
            Some(1.85),
        ),
    ];
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (i, (_, flags, _)) in variants.iter().enumerate() {
            let mut cmd = Command::new(&luaco);
            cmd.current_dir(root().join("benches/workloads"));
            cmd.arg("run").args(*flags).args(["cpu.lua", n]);
            samples[i].push(run_process(cmd)?);
        }
    }
    let base = median_ms(&samples[0])?;
    println!("\nLimits on CPU-bound Lua (benches/workloads/cpu.lua {n}, median of {rounds}, alternating):\n");
    println!("| run | ms | ratio | target |");
    println!("|---|---|---|---|");
    for (i, (name, _, target)) in variants.iter().enumerate() {
        let ms = median_ms(&samples[i])?;
        let r = ms / base;
        println!("| {name} | {ms:.1} | {r:.2}x | {} |", verdict(r, *target));
    }
    Ok(())
}

/// A field of a `result` line as a number.
fn field(s: &Sample, name: &str) -> Result<f64> {
    s.field(name)
        .with_context(|| format!("no {name} in the result line"))
}

/// The median of the samples by their in-process `ms` field.
fn median_ms(samples: &[Sample]) -> Result<f64> {
    let mut ms = samples
        .iter()
        .map(|s| field(s, "ms"))
        .collect::<Result<Vec<_>>>()?;
    ms.sort_by(f64::total_cmp);
    ms.get(ms.len() / 2).copied().context("no samples")
}

/// 2,000 GETs with 200 in flight against one server process, from the
/// luaco CLI, from Node's `http.get` with a keep-alive agent, and from Rust
/// alone on the same client luaco uses, alternating; then batches of 1,000
/// requests from one luaco runtime, sampling its RSS.
fn http_processes(quick: bool) -> Result<()> {
    let mut build = cargo();
    build.args(["build", "--release", "-q", "-p", "luaco"]);
    build.args(["--example", "http_server", "--example", "http_load"]);
    run("build the http examples", build)?;
    let examples = root().join("target/release/examples");
    let luaco = root().join("target/release/luaco");
    let mut server = Command::new(examples.join("http_server"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting http_server")?;
    let mut line = String::new();
    if let Some(out) = server.stdout.take() {
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line)?;
    }
    let url = format!("{}/hello", line.trim());
    let node = have("node", &["--version"]);
    let (n, rounds) = (2000, if quick { 1 } else { 3 });
    let (mut ours, mut nodes, mut rust) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let mut cmd = Command::new(&luaco);
        cmd.current_dir(root().join("benches/workloads"));
        cmd.args(["run", "http_get.lua", &n.to_string(), &url, "200"]);
        ours.push(run_process(cmd)?);
        if node {
            let mut cmd = Command::new("node");
            cmd.arg(root().join("benches/peers/http_get.js"));
            cmd.args([&n.to_string(), &url, "200"]);
            nodes.push(run_process(cmd)?);
        }
        let mut cmd = Command::new(examples.join("http_load"));
        cmd.args(["rust", &n.to_string(), &url, "200"]);
        rust.push(run_process(cmd)?);
    }
    let (ours, rust) = (median_ms(&ours)?, median_ms(&rust)?);
    println!("\n{n} GETs, 200 in flight, against one server process on 127.0.0.1 (time from first request to last answer, median of {rounds}):\n");
    println!("| client | ms | ratio |");
    println!("|---|---|---|");
    println!("| luaco script (CLI) | {ours:.1} | 1.00x |");
    if node {
        let theirs = median_ms(&nodes)?;
        println!(
            "| Node.js http.get, keep-alive agent | {theirs:.1} | luaco/Node {:.2}x (wall time) |",
            ours / theirs
        );
    }
    let r = rust / ours;
    let verdict = if r >= 0.8 { "met" } else { "MISSED" };
    println!("| Rust alone, same HyperClient | {rust:.1} | luaco throughput / Rust's {r:.2} (target >= 0.8: {verdict}) |");

    let batches = if quick { 20 } else { 200 };
    let out = Command::new(examples.join("http_load"))
        .args(["batches", &batches.to_string(), &url])
        .output()
        .context("running http_load batches")?;
    drop(server.stdin.take());
    let _ = server.wait();
    if !out.status.success() {
        bail!(
            "http_load batches failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!(
        "\n{} batches of 1,000 GETs from one runtime, RSS after each batch: {}",
        batches,
        String::from_utf8_lossy(&out.stdout).trim()
    );
    Ok(())
}
