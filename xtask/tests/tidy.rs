//! Project policy, checked like a test: the dependency graph has no
//! forbidden edges and every crate documents what it is for.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
}

/// The target this machine builds for, from `rustc -vV`.
fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().expect("rustc -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("host triple")
}

/// The resolved graph for this platform (dependencies behind another
/// target's `cfg`, such as wasm-only ones, do not count).
fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--filter-platform"])
        .arg(host_triple())
        .current_dir(root())
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("metadata json")
}

/// Names of every package `package` depends on, transitively, counting only
/// normal (non-dev, non-build) dependencies.
fn normal_closure(meta: &Value, package: &str) -> BTreeSet<String> {
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().expect("id"),
                p["name"].as_str().expect("name"),
            )
        })
        .collect();
    let nodes: HashMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| (n["id"].as_str().expect("id"), n))
        .collect();
    let start = names
        .iter()
        .find(|(_, name)| **name == package)
        .map(|(id, _)| *id)
        .expect("package in workspace");
    let mut seen = BTreeSet::new();
    let mut stack = vec![start];
    while let Some(id) = stack.pop() {
        for dep in nodes[id]["deps"].as_array().expect("deps") {
            let normal = dep["dep_kinds"]
                .as_array()
                .expect("dep_kinds")
                .iter()
                .any(|k| k["kind"].is_null());
            let dep_id = dep["pkg"].as_str().expect("pkg");
            if normal && seen.insert(names[dep_id].to_owned()) {
                stack.push(dep_id);
            }
        }
    }
    seen
}

#[test]
fn core_stays_small_and_alone() {
    let meta = metadata();
    let deps = normal_closure(&meta, "luaco-core");
    for forbidden in ["async-io", "async-executor", "surf", "tokio", "async-std"] {
        assert!(
            !deps.contains(forbidden),
            "luaco-core depends on {forbidden}"
        );
    }
    let luaco: Vec<_> = deps.iter().filter(|d| d.starts_with("luaco")).collect();
    assert!(luaco.is_empty(), "luaco-core depends on {luaco:?}");
}

#[test]
fn sched_depends_only_on_core() {
    let meta = metadata();
    let deps = normal_closure(&meta, "luaco-sched");
    let luaco: Vec<_> = deps.iter().filter(|d| d.starts_with("luaco")).collect();
    assert_eq!(luaco, vec!["luaco-core"]);
}

/// hyper needs tokio's runtime-free types (`sync`, `io-util`); nothing may
/// turn on a tokio runtime, reactor, timer or blocking pool (the stack has none).
#[test]
fn no_tokio_runtime_anywhere() {
    let meta = metadata();
    let allowed = ["sync", "io-util", "bytes", "default"];
    let nodes = meta["resolve"]["nodes"].as_array().expect("resolve nodes");
    for node in nodes {
        let id = node["id"].as_str().expect("id");
        let is_tokio = meta["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .any(|p| p["id"] == id && p["name"] == "tokio");
        if !is_tokio {
            continue;
        }
        let features: Vec<&str> = node["features"]
            .as_array()
            .expect("features")
            .iter()
            .filter_map(|f| f.as_str())
            .collect();
        let runtime: Vec<_> = features.iter().filter(|f| !allowed.contains(f)).collect();
        assert!(
            runtime.is_empty(),
            "tokio is built with {runtime:?}: only {allowed:?} are allowed"
        );
    }
    // And the core crates do not need tokio at all.
    for package in ["luaco-core", "luaco-sched"] {
        let deps = normal_closure(&meta, package);
        assert!(!deps.contains("tokio"), "{package} pulls in tokio");
    }
}

#[test]
fn every_crate_says_what_it_is_for() {
    for entry in std::fs::read_dir(root().join("crates")).expect("crates/") {
        let dir = entry.expect("entry").path();
        let lib = dir.join("src/lib.rs");
        let main = dir.join("src/main.rs");
        let file = if lib.exists() { lib } else { main };
        let text = std::fs::read_to_string(&file).expect("crate root");
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("//!") || first.starts_with("#![doc = include_str!"),
            "{} must open with a crate doc comment",
            file.display()
        );
        if file.ends_with("lib.rs") {
            assert!(
                text.contains("```") || text.contains("include_str!(\"../../../README.md\")"),
                "{} needs a runnable example in its crate doc",
                file.display()
            );
        }
    }
}

#[test]
fn members_inherit_workspace_lints() {
    for entry in std::fs::read_dir(root().join("crates")).expect("crates/") {
        let manifest = entry.expect("entry").path().join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).expect("Cargo.toml");
        assert!(
            text.contains("[lints]\nworkspace = true"),
            "{} must say [lints] workspace = true",
            manifest.display()
        );
    }
}

#[test]
fn io_needs_only_core() {
    let meta = metadata();
    let deps = normal_closure(&meta, "luaco-io");
    let luaco: Vec<_> = deps.iter().filter(|d| d.starts_with("luaco")).collect();
    assert_eq!(
        luaco,
        vec!["luaco-core"],
        "luaco-io reaches the loop only through core's future bridge"
    );
}

/// Every Rust file under crates/, with its text.
fn rust_sources() -> Vec<(std::path::PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(std::path::PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("crates"), &mut out);
    out
}

#[test]
fn unsafe_code_lives_only_in_the_listed_modules() {
    // One native module per crate that needs one: the core's (a state with
    // `debug`, raw C functions, the allocator watch, and in its submodule
    // the resumes and signal that let another thread interrupt Lua), the
    // sandbox's (C `pcall`/`xpcall`) and the scheduler's (the timer heap's
    // C functions). Each unsafe block says why it is sound.
    let allowed = [
        Path::new("crates/luaco-core/src/native.rs"),
        Path::new("crates/luaco-core/src/native/interrupt.rs"),
        Path::new("crates/luaco-core/src/native/hot.rs"),
        Path::new("crates/luaco-core/src/native/hot/awaiting.rs"),
        Path::new("crates/luaco-core/src/native/hot/run.rs"),
        Path::new("crates/luaco-core/src/native/hot/spawn.rs"),
        Path::new("crates/luaco-sandbox/src/native.rs"),
        Path::new("crates/luaco-sched/src/native.rs"),
    ];
    for (path, text) in rust_sources() {
        let rel = path.strip_prefix(root()).expect("under root");
        let uses_unsafe = text.contains("unsafe {") || text.contains("unsafe extern");
        if allowed.contains(&rel) {
            for (i, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("unsafe {")
                    || line.contains("= unsafe {")
                    || line.contains("Ok(unsafe {")
                {
                    let before: Vec<&str> = text.lines().take(i).collect();
                    let commented = before
                        .iter()
                        .rev()
                        .take(12)
                        .any(|l| l.contains("// SAFETY:"));
                    assert!(
                        commented,
                        "{}:{}: unsafe block without a SAFETY comment",
                        rel.display(),
                        i + 1
                    );
                }
            }
        } else {
            assert!(
                !uses_unsafe,
                "{} uses unsafe code; only {allowed:?} may",
                rel.display()
            );
        }
    }
}

#[test]
fn the_lua_half_is_one_file_per_concept() {
    let dir = root().join("crates/luaco-core/src/lua");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("lua dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let engine =
        std::fs::read_to_string(root().join("crates/luaco-core/src/engine.rs")).expect("engine.rs");
    for name in &names {
        let text = std::fs::read_to_string(dir.join(name)).expect("lua file");
        assert!(
            text.starts_with("-- "),
            "{name} must open with a comment saying what it is for"
        );
        assert!(
            engine.contains(&format!("include_str!(\"lua/{name}\")")),
            "{name} is not loaded by the engine"
        );
    }
}
