//! The adversarial corpus in `tests/sandbox/`, run through the real CLI.
//! Each script says how it must end in its first lines:
//!
//! ```text
//! -- args: --sandbox --max-instructions 2000000
//! -- exit: 3 instruction limit
//! ```
//!
//! `exit:` gives the exit code and a text that stdout (for 0) or stderr
//! must contain. `$DIR` in `args` is a temp directory holding
//! `inside.txt`, with `outside.txt` beside it and symlinks out of it. Each
//! run must end by itself within a bound far above its limits, and never
//! by a signal.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Far above every limit in the corpus (the slowest is a 20 s timeout on
/// real work that takes well under a second).
const BOUND: Duration = Duration::from_secs(60);

struct Case {
    path: PathBuf,
    args: Vec<String>,
    code: i32,
    expect: String,
}

fn header(path: &Path) -> Case {
    let text = std::fs::read_to_string(path).expect("script");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("-- {name}: ")[..]))
            .unwrap_or_else(|| panic!("{}: no `-- {name}:` line", path.display()))
            .trim()
            .to_owned()
    };
    let exit = field("exit");
    let (code, expect) = exit.split_once(' ').unwrap_or((&exit, ""));
    Case {
        path: path.to_owned(),
        args: field("args")
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        code: code.parse().expect("exit code"),
        expect: expect.to_owned(),
    }
}

/// A directory to confine scripts to, with ways out that must not work.
fn playground() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    let inside = root.path().join("inside");
    std::fs::create_dir(&inside).expect("mkdir");
    std::fs::write(inside.join("inside.txt"), "inside").expect("write");
    std::fs::write(root.path().join("outside.txt"), "outside").expect("write");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.path().join("outside.txt"), inside.join("link.txt"))
            .expect("symlink");
        std::os::unix::fs::symlink(root.path(), inside.join("escape")).expect("symlink");
    }
    root
}

fn run(case: &Case, dir: &Path) -> (Option<i32>, String, String, Duration) {
    let args: Vec<String> = case
        .args
        .iter()
        .map(|a| a.replace("$DIR", &dir.to_string_lossy()))
        .collect();
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_luaco"))
        .arg("run")
        .args(&args)
        .arg(&case.path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn luaco");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > BOUND {
            let _ = child.kill();
            panic!("{} outlived its limits ({BOUND:?})", case.path.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    (status.code(), out, err, start.elapsed())
}

#[test]
fn every_script_of_the_corpus_ends_as_it_says() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sandbox");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "lua"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 40, "the corpus has {} scripts", paths.len());
    let play = playground();
    let confined = play.path().join("inside");
    let mut failures = Vec::new();
    for path in &paths {
        let case = header(path);
        let (code, out, err, took) = run(&case, &confined);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let shown = if case.code == 0 { &out } else { &err };
        // The hook (or a counted C function) ended it, not the watchdog
        // that kills a process whose script escaped both.
        let killed = err.contains("ended by the watchdog") && !case.expect.contains("watchdog");
        if code != Some(case.code) || !shown.contains(&case.expect) || killed {
            failures.push(format!(
                "{name}: wanted exit {} with {:?}, got {code:?} after {took:?}\n  stdout: {}\n  stderr: {}",
                case.code,
                case.expect,
                out.trim(),
                err.trim()
            ));
        }
        // No crash: a signal leaves no exit code, and Rust panics say so.
        assert!(!err.contains("panicked"), "{name} panicked: {err}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
