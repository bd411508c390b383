//! End-to-end: the REPL of the real `luaco` binary, typed at through a
//! pseudo-terminal (`luaco` on a terminal is a REPL with
//! top-level await), and `luaco` alone off a terminal.

use std::io::Write;
use std::process::{Command, Stdio};

/// Every wait for output: generous, so a loaded machine never flakes.
const TIMEOUT_MS: u64 = 30_000;

#[cfg(unix)]
mod terminal {
    use super::TIMEOUT_MS;
    use rexpect::process::WaitStatus;
    use rexpect::session::{spawn_with_options, Options, PtySession};
    use std::process::Command;

    type Result<T = ()> = std::result::Result<T, rexpect::error::Error>;

    /// `luaco` with no arguments on a terminal, its history under `home`,
    /// past the banner.
    fn start(home: &std::path::Path) -> Result<PtySession> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_luaco"));
        command.env("HOME", home).env("TERM", "xterm");
        let options = Options::new()
            .timeout_ms(Some(TIMEOUT_MS))
            .strip_ansi_escape_codes(true);
        let mut p = spawn_with_options(command, options)?;
        p.exp_string("Lua 5.4 with await; Ctrl-C cancels the running line, Ctrl-D exits")?;
        p.exp_string("> ")?;
        Ok(p)
    }

    /// Types `line` and waits for `shown` on a line of its own: the echo
    /// of what was typed never matches, only the REPL's answer.
    fn answer(p: &mut PtySession, line: &str, shown: &str) -> Result {
        p.send_line(line)?;
        p.exp_string(&format!("\n{shown}\r\n"))?;
        Ok(())
    }

    /// Ctrl-D at the prompt ends the session with exit 0.
    fn quit(mut p: PtySession) -> Result {
        p.exp_string("> ")?;
        p.send_control('d')?;
        p.exp_eof()?;
        let status = p.process().wait()?;
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "exit: {status:?}"
        );
        Ok(())
    }

    #[test]
    fn expressions_globals_await_tables_functions_and_errors() -> Result {
        let home = tempfile::tempdir().expect("tempdir");
        let mut p = start(home.path())?;
        answer(&mut p, "1 + 2", "3")?;
        p.send_line("x = 40")?;
        answer(&mut p, "x + 2", "42")?;
        answer(&mut p, "await(sleep(10)) return 'sl' .. 'ept'", "slept")?;
        answer(&mut p, "await(async(function() return 5 end))", "5")?;
        answer(&mut p, "1, 'two', nil", "1\ttwo\tnil")?;
        answer(
            &mut p,
            "{a = 1, b = {2, 3}, ['c d'] = 'e'}",
            r#"{a = 1, b = {2, 3}, ["c d"] = "e"}"#,
        )?;
        p.send_line("t = {1} t.self = t")?;
        answer(&mut p, "t", "{1, self = <cycle>}")?;
        answer(&mut p, "promise.new(function() end)", "<promise: pending>")?;

        // A function over three lines: the second prompt says "go on".
        p.send_line("function double(n)")?;
        p.exp_string(">> ")?;
        p.send_line("  return n * 2")?;
        p.exp_string(">> ")?;
        p.send_line("end")?;
        answer(&mut p, "double(21)", "42")?;
        p.send_line("1 +")?;
        p.exp_string(">> ")?;
        answer(&mut p, "2", "3")?;

        p.send_line("error('bo' .. 'om')")?;
        p.exp_string("error: stdin:1: boom")?;
        p.exp_string("stack traceback:")?;
        answer(&mut p, "x", "40")?;
        // A local ends with its line, as in lua.c.
        p.send_line("local y = 1")?;
        answer(&mut p, "y", "nil")?;
        quit(p)?;

        let history = std::fs::read_to_string(home.path().join(".luaco_history"))
            .expect("the history is saved under HOME");
        assert!(history.contains("x = 40"), "history: {history}");
        Ok(())
    }

    #[test]
    fn ctrl_c_cancels_the_running_line_and_the_session_goes_on() -> Result {
        let home = tempfile::tempdir().expect("tempdir");
        let mut p = start(home.path())?;
        // The output says the line runs: Ctrl-C must reach it, not the editor.
        p.send_line("print('wai' .. 'ting') await(sleep(60000))")?;
        p.exp_string("waiting")?;
        p.send_control('c')?;
        p.exp_string("cancelled")?;
        answer(&mut p, "6 * 7", "42")?;

        // A loop that never awaits stops too.
        p.send_line("print('spin' .. 'ning') while true do end")?;
        p.exp_string("spinning")?;
        p.send_control('c')?;
        p.exp_string("cancelled")?;
        answer(&mut p, "'still' .. ' here'", "still here")?;

        // Nor can a pcall that catches the interruption keep it going.
        p.send_line(
            "print('catch' .. 'ing') while true do pcall(function() while true do end end) end",
        )?;
        p.exp_string("catching")?;
        p.send_control('c')?;
        p.exp_string("cancelled")?;
        answer(&mut p, "'and' .. ' on'", "and on")?;
        quit(p)
    }

    #[test]
    fn ctrl_c_at_the_prompt_clears_the_line_and_up_recalls() -> Result {
        let home = tempfile::tempdir().expect("tempdir");
        let mut p = start(home.path())?;
        p.send("this is not lua")?;
        p.flush()?;
        p.send_control('c')?;
        // The editor drops what it read past a Ctrl-C: type after the prompt.
        p.exp_string("> ")?;
        answer(&mut p, "2 + 2", "4")?;
        p.exp_string("> ")?;
        // Up-arrow, Enter: the last line again.
        answer(&mut p, "\x1b[A", "4")?;
        quit(p)
    }
}

#[test]
fn without_a_terminal_or_a_command_luaco_prints_its_usage_and_exits_2() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_luaco"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run luaco");
    if let Some(mut stdin) = child.stdin.take() {
        // It must not read this as REPL input.
        let _ = stdin.write_all(b"print('ran')\n");
    }
    let out = child.wait_with_output().expect("luaco ends");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Usage: luaco"), "stderr: {stderr}");
    assert!(stderr.contains("repl"), "stderr: {stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn the_repl_command_reads_piped_lines_too() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_luaco"))
        .arg("repl")
        .env("HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run luaco");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"x = 20\nprint('printed')\nx * 2 + 2\nerror('no')\n'after'\n");
    }
    let out = child.wait_with_output().expect("luaco ends");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.ends_with("printed\n42\nafter\n"), "stdout: {stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: stdin:1: no"), "stderr: {stderr}");
}
