//! `luaco repl`: reads Lua lines on a terminal and prints their values.
//!
//! One runtime serves the whole session, so globals persist from line to
//! line, and each line runs as a task of it, so `await` works at top
//! level. Ctrl-C while a line runs cancels that line (even a loop that
//! never awaits); at the prompt it clears the line, and Ctrl-D exits.

mod interrupt;
mod show;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use luaco::mlua::{self, MultiValue, Value};
use luaco::sched::RunEnd;
use luaco::{
    Config, Error, Observer, PromiseHandle, PromiseStatus, Runtime, ScriptContext, ScriptError,
};
use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;

/// The prompt for a new line.
const PROMPT: &str = "> ";
/// The prompt while a chunk is incomplete.
const CONTINUE: &str = ">> ";
/// What error messages and tracebacks call a line (`stdin:1: ...`), as lua.c does.
const CHUNK_NAME: &str = "=stdin";
/// The chunk name of the REPL's own Lua helpers.
const WRAPPER: &str = "(repl)";
/// How long the loop runs between two looks at the Ctrl-C flag while a
/// line awaits: short enough to feel immediate, long enough to cost nothing.
const POLL: Duration = Duration::from_millis(50);
/// Entries kept in the history file.
const HISTORY_SIZE: usize = 1000;

/// Runs the REPL until Ctrl-D: exit 0, or 1 if it cannot start or the
/// terminal fails.
pub(crate) fn start() -> ExitCode {
    let mut session = match Session::new() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("luaco: cannot start the REPL: {e}");
            return ExitCode::from(1);
        }
    };
    println!(
        "luaco {} — Lua 5.4 with await; Ctrl-C cancels the running line, Ctrl-D exits",
        env!("CARGO_PKG_VERSION")
    );
    println!("(each line is a chunk of its own: `local` names end with it, globals persist)");
    session.read_lines()
}

/// Why a line stopped being driven.
enum End {
    /// Its promise settled.
    Settled,
    /// Ctrl-C was pressed.
    Interrupted,
    /// Nothing left in the loop can settle it.
    Stalled,
}

/// What compiling the text typed so far gave.
enum Compiled {
    /// It compiled: run it.
    Chunk(mlua::Function),
    /// The text ends in the middle of a construct: read another line.
    Incomplete,
    /// A syntax error: its message.
    Error(String),
}

/// The runtime, the line editor and what connects them.
struct Session {
    /// The one runtime every line runs in.
    rt: Runtime,
    /// Reads lines, with history and editing keys.
    editor: DefaultEditor,
    /// `$HOME/.luaco_history`, when HOME is set.
    history: Option<PathBuf>,
    /// Set by SIGINT while a line runs; cleared once the line is dealt with.
    interrupted: Arc<AtomicBool>,
    /// Calls a line and packs its values: a task settles with one value,
    /// so they travel in one table. (The line comes as `...`, which Lua
    /// cannot name, so tracebacks call it `main chunk`, as lua.c's do.)
    collect: mlua::Function,
    /// Flushes Lua's `io.stdout`: Lua's `print` and `io.write` go through
    /// C's stdio buffer, which knows nothing of Rust's, so without this a
    /// line's output could show after its values or the next prompt.
    flush: Option<mlua::Function>,
}

impl Session {
    /// The runtime with its Ctrl-C handling, and the editor with the
    /// history of earlier sessions.
    fn new() -> Result<Session, Box<dyn std::error::Error>> {
        // No limits: none of them is for an interactive session, and the
        // Ctrl-C hook below takes the count hook they would need.
        let rt = Runtime::new(Config::default())?;
        rt.add_observer(Rc::new(Rejections));
        let interrupted = Arc::new(AtomicBool::new(false));
        interrupt::install_hook(rt.lua(), interrupted.clone())?;
        interrupt::catch_sigint(&interrupted)?;

        let lua = rt.lua();
        let collect = lua
            .load("local pack = table.pack\nreturn function(...) return pack((...)()) end")
            .set_name(format!("={WRAPPER}"))
            .eval::<mlua::Function>()?;
        let flush = lua
            .load("local out = io and io.stdout\nreturn function() if out then out:flush() end end")
            .set_name(format!("={WRAPPER}"))
            .eval::<mlua::Function>()
            .ok();

        let config = rustyline::Config::builder()
            .max_history_size(HISTORY_SIZE)?
            .auto_add_history(false)
            .build();
        let mut editor = DefaultEditor::with_config(config)?;
        let history = std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(|home| PathBuf::from(home).join(".luaco_history"));
        if let Some(path) = &history {
            // A first session has no file yet; an unreadable one only
            // means no recall from earlier sessions.
            let _ = editor.load_history(path);
        }
        Ok(Session {
            rt,
            editor,
            history,
            interrupted,
            collect,
            flush,
        })
    }

    /// The read-eval-print loop.
    fn read_lines(&mut self) -> ExitCode {
        let mut text = String::new();
        loop {
            let prompt = if text.is_empty() { PROMPT } else { CONTINUE };
            match self.editor.readline(prompt) {
                Ok(line) => {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(&line);
                    if text.trim().is_empty() {
                        text.clear();
                        continue;
                    }
                    match self.compile(&text) {
                        Compiled::Incomplete => continue,
                        Compiled::Error(message) => eprintln!("error: {message}"),
                        Compiled::Chunk(chunk) => self.execute(chunk),
                    }
                    self.remember(&text);
                    text.clear();
                }
                // Ctrl-C at the prompt (the editor reads it as a key):
                // drop what was typed, as a shell does.
                Err(ReadlineError::Interrupted) => text.clear(),
                Err(ReadlineError::Eof) => return ExitCode::SUCCESS,
                // A window resize or similar: the editor redraws.
                Err(ReadlineError::Signal(_)) => {}
                Err(e) => {
                    eprintln!("luaco: cannot read from the terminal: {e}");
                    return ExitCode::from(1);
                }
            }
        }
    }

    /// Adds a whole chunk (all its lines) to the history, and saves it.
    fn remember(&mut self, text: &str) {
        // Failures only cost recall: never worth an error at the prompt.
        let _ = self.editor.add_history_entry(text);
        if let Some(path) = &self.history {
            let _ = self.editor.save_history(path);
        }
    }

    /// The text as an expression (`return <text>`, so its values print),
    /// else as statements.
    fn compile(&self, text: &str) -> Compiled {
        let expression = match self.rt.load(format!("return {text}"), CHUNK_NAME) {
            Ok(chunk) => return Compiled::Chunk(chunk),
            Err(e) => e,
        };
        match self.rt.load(text, CHUNK_NAME) {
            Ok(chunk) => Compiled::Chunk(chunk),
            // Either reading may be the unfinished one: `x = {` as
            // statements, `1 +` as an expression.
            Err(e) if is_incomplete(&e) || is_incomplete(&expression) => Compiled::Incomplete,
            Err(Error::Lua(e)) => {
                Compiled::Error(crate::report::syntax_report(&e, text.as_bytes()))
            }
            Err(e) => Compiled::Error(e.to_string()),
        }
    }

    /// Runs a compiled line as a task and prints what it gave.
    fn execute(&self, chunk: mlua::Function) {
        // A Ctrl-C pressed between lines is not for this one.
        self.interrupted.store(false, Ordering::SeqCst);
        let args = MultiValue::from_iter([Value::Function(chunk)]);
        let context = ScriptContext::new("stdin");
        let handle = match self.rt.spawn_function(self.collect.clone(), args, &context) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("error: {e}");
                return;
            }
        };
        let end = self.drive(&handle);
        if let Some(flush) = &self.flush {
            let _ = flush.call::<()>(());
        }
        match end {
            End::Settled => self.report(&handle),
            // The line had finished: Ctrl-C stopped a task it started.
            End::Interrupted if handle.status() == PromiseStatus::Resolved => self.report(&handle),
            End::Interrupted => {
                handle.cancel();
                // The line is gone on purpose: its rejection (the hook's
                // "interrupted") is no news.
                handle.promise().set_handled();
                eprintln!("cancelled");
            }
            End::Stalled => {
                handle.cancel();
                eprintln!("error: the line awaits a promise that nothing is left to settle");
            }
        }
        let _ = std::io::stdout().flush();
        self.interrupted.store(false, Ordering::SeqCst);
    }

    /// Runs the loop until the line settles, Ctrl-C is pressed, or nothing
    /// could settle it any more.
    fn drive(&self, handle: &PromiseHandle) -> End {
        let interrupted = || self.interrupted.load(Ordering::SeqCst);
        loop {
            // The loop sleeps in the reactor while the line awaits, and a
            // signal does not wake it: hence a deadline to look again.
            let end = self.rt.scheduler().run_until(
                || interrupted() || handle.status() != PromiseStatus::Pending,
                Some(Instant::now() + POLL),
            );
            if interrupted() {
                return End::Interrupted;
            }
            match end {
                RunEnd::Done => return End::Settled,
                RunEnd::Idle => return End::Stalled,
                RunEnd::DeadlinePassed => {}
            }
        }
    }

    /// Prints a settled line's values (tab-separated) or its error.
    fn report(&self, handle: &PromiseHandle) {
        match handle.value() {
            Some(Value::Table(values)) => {
                let count = values.raw_get::<i64>("n").unwrap_or(0);
                let values: Vec<Value> = (1..=count)
                    .map(|i| values.raw_get(i).unwrap_or(Value::Nil))
                    .collect();
                if !values.is_empty() {
                    println!("{}", show::values(self.rt.lua(), self.rt.engine(), &values));
                }
            }
            Some(_) => {}
            None => match handle.result() {
                Err(Error::Script(e)) => eprintln!(
                    "{}: {}",
                    crate::report::label("error"),
                    crate::describe(&tidy(e))
                ),
                Err(e) => eprintln!("error: {e}"),
                Ok(_) => {}
            },
        }
    }
}

/// Prints a rejection nobody handled (a task a line started) when it is
/// found, between the line's other output.
struct Rejections;

impl Observer for Rejections {
    fn wants_lifecycle(&self) -> bool {
        false
    }

    fn unhandled_rejection(&self, error: &ScriptError) {
        eprintln!(
            "unhandled rejection: {}",
            crate::describe(&tidy(error.clone()))
        );
    }
}

/// The error without the REPL's own frames in its traceback: the frame
/// of `collect`, and spawn sites in it (`return async(f)` is a tail call,
/// so the task seems spawned by `collect`).
fn tidy(mut error: ScriptError) -> ScriptError {
    error.traceback = error.traceback.map(|tb| {
        let frame = format!("{WRAPPER}:");
        let spawn = format!("[spawned at] {WRAPPER}:");
        tb.lines()
            .filter(|l| !l.trim_start().starts_with(&frame) && !l.trim_start().starts_with(&spawn))
            .collect::<Vec<_>>()
            .join("\n")
    });
    error
}

/// Whether compiling failed only because the text stopped early (Lua's
/// message then ends with `<eof>`).
fn is_incomplete(e: &Error) -> bool {
    matches!(
        e,
        Error::Lua(mlua::Error::SyntaxError {
            incomplete_input: true,
            ..
        })
    )
}
