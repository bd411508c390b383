//! The docs stay true: every ```lua block of docs/reference.md and
//! docs/guide.md runs through the real binary and prints exactly the
//! `--> ` lines written under it (a loopback test server stands in for
//! the HTTP examples). A block whose first line says `(not luaco)` is
//! skipped; `-- run: luaco run FLAGS example.lua` gives flags; `-- (the run
//! exits with status N)` an exit status other than 0.

use std::path::Path;
use std::process::Command;

use luaco_io::testing::TestServer;

/// The ```lua blocks of `text`, with the line each starts on.
fn lua_blocks(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match (&mut current, line) {
            (None, "```lua") => current = Some((i + 1, String::new())),
            (Some(_), "```") => out.extend(current.take()),
            (Some((_, body)), l) => {
                body.push_str(l);
                body.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

/// Runs one block; a description of what went wrong, if anything did.
fn run_block(code: &str, server: &TestServer) -> Option<String> {
    if code
        .lines()
        .next()
        .is_some_and(|l| l.contains("(not luaco)"))
    {
        return None;
    }
    let expected: Vec<&str> = code
        .lines()
        .filter_map(|l| l.strip_prefix("-->"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let flags: Vec<String> = code
        .lines()
        .find_map(|l| l.strip_prefix("-- run: luaco run "))
        .map(|l| {
            l.split_whitespace()
                .filter(|w| *w != "example.lua")
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let status = code
        .lines()
        .find_map(|l| l.strip_prefix("-- (the run exits with status "))
        .and_then(|l| l.trim_end_matches(')').parse::<i32>().ok())
        .unwrap_or(0);
    let dir = tempfile::tempdir().ok()?;
    std::fs::write(dir.path().join("example.lua"), code).ok()?;
    let out = Command::new(env!("CARGO_BIN_EXE_luaco"))
        .arg("run")
        .args(&flags)
        .arg("example.lua")
        .current_dir(dir.path())
        .env("LUACO_TEST_URL", server.url())
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let got: Vec<&str> = stdout.lines().collect();
    if got == expected && out.status.code() == Some(status) {
        return None;
    }
    Some(format!(
        "wanted exit {status} and\n{}\ngot {:?} and\n{}\nstderr:\n{}",
        expected.join("\n"),
        out.status.code(),
        stdout,
        String::from_utf8_lossy(&out.stderr)
    ))
}

#[test]
fn every_lua_snippet_of_the_docs_prints_what_it_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let server = TestServer::start().expect("test server");
    let mut ran = 0;
    let mut failures = Vec::new();
    for name in ["reference.md", "guide.md"] {
        let text = std::fs::read_to_string(root.join(name)).expect("docs");
        for (line, code) in lua_blocks(&text) {
            ran += 1;
            if let Some(problem) = run_block(&code, &server) {
                failures.push(format!("docs/{name}:{line}: {problem}"));
            }
        }
    }
    assert!(ran >= 40, "only {ran} snippets");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
