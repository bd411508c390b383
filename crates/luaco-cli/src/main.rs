//! The `luaco` command line: runs a Lua script as an async task.

use std::cell::Cell;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use clap::{Parser, Subcommand};
use luaco::mlua;
use luaco::{
    Config, Lifecycle, Observer, PromiseStatus, Runtime, ScriptContext, ScriptError, TaskInfo,
    TracingObserver,
};

/// Runs Lua 5.4 scripts with async/await on coroutines.
#[derive(Debug, Parser)]
#[command(name = "luaco", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a script (or code given with -e). The main chunk is a task, so
    /// `await` works at top level; the process runs until everything the
    /// script started is done.
    ///
    /// Exit status: 0 ok; 1 script error or unhandled rejection; 2 usage error.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Run CODE instead of a file; all positional arguments go to the script.
    #[arg(short = 'e', value_name = "CODE")]
    code: Option<String>,
    /// Print task lifecycle events (in per-task spans) on stderr.
    #[arg(long)]
    trace: bool,
    /// The script to run, then its arguments (in the global `arg`).
    #[arg(value_name = "FILE [ARGS]...", trailing_var_arg = true)]
    rest: Vec<String>,
}

/// Prints unhandled rejections as they are detected and counts them; with
/// `--trace`, also reports every task's lifecycle through `tracing`.
#[derive(Default)]
struct Reporter {
    unhandled: Cell<usize>,
    trace: Option<TracingObserver>,
}

impl Observer for Reporter {
    fn wants_lifecycle(&self) -> bool {
        self.trace.as_ref().is_some_and(|t| t.wants_lifecycle())
    }

    fn lifecycle(&self, event: Lifecycle, task: &TaskInfo<'_>) {
        if let Some(t) = &self.trace {
            t.lifecycle(event, task);
        }
    }

    fn unhandled_rejection(&self, error: &ScriptError) {
        self.unhandled.set(self.unhandled.get() + 1);
        eprintln!("unhandled rejection: {}", describe(error));
    }
}

/// The message, then the traceback if there is one.
fn describe(error: &ScriptError) -> String {
    match &error.traceback {
        Some(tb) if !tb.is_empty() => format!("{}\n{}", error.message, tb),
        _ => error.message.clone(),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::Run(args) => run(args),
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("luaco: {message}");
    eprintln!("usage: luaco run [OPTIONS] FILE [ARGS]...   or   luaco run -e CODE [ARGS]...");
    ExitCode::from(2)
}

fn run(args: RunArgs) -> ExitCode {
    let (source, chunk_name, script_path, script_args) = match args.code {
        Some(code) => (
            code,
            "=(command line)".to_owned(),
            "-e".to_owned(),
            args.rest,
        ),
        None => {
            let mut rest = args.rest.into_iter();
            let Some(file) = rest.next() else {
                return usage_error("missing FILE (or -e CODE)");
            };
            let path = PathBuf::from(&file);
            match std::fs::read(&path) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => (text, format!("@{file}"), file, rest.collect()),
                    Err(_) => return usage_error(&format!("cannot read {file}: not UTF-8 text")),
                },
                Err(e) => return usage_error(&format!("cannot read {file}: {e}")),
            }
        }
    };
    if args.trace {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::DEBUG)
            .with_target(false)
            .without_time()
            .init();
    }
    match execute(&source, &chunk_name, &script_path, &script_args, args.trace) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn execute(
    source: &str,
    chunk_name: &str,
    script_path: &str,
    script_args: &[String],
    trace: bool,
) -> luaco::Result<ExitCode> {
    let rt = Runtime::new(Config::default())?;
    let reporter = Rc::new(Reporter {
        unhandled: Cell::new(0),
        trace: trace.then(TracingObserver::new),
    });
    rt.set_observer(reporter.clone());
    let lua = rt.lua();
    let arg = lua.create_table()?;
    arg.raw_set(0, script_path)?;
    for (i, a) in script_args.iter().enumerate() {
        arg.raw_set(i + 1, a.as_str())?;
    }
    lua.globals().raw_set("arg", arg)?;

    let chunk = match lua.load(source).set_name(chunk_name).into_function() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {}", syntax_message(&e));
            return Ok(ExitCode::from(1));
        }
    };
    let name = chunk_name.trim_start_matches(['@', '=']);
    let args = script_args
        .iter()
        .map(|a| lua.create_string(a).map(mlua::Value::String))
        .collect::<mlua::Result<mlua::MultiValue>>()?;
    let main = rt.spawn_function(chunk, args, &ScriptContext::new(name))?;
    rt.run()?;
    let _ = std::io::stdout().flush();

    let mut failed = reporter.unhandled.get() > 0;
    match main.status() {
        PromiseStatus::Resolved | PromiseStatus::Cancelled => {}
        PromiseStatus::Rejected => {
            if let Err(luaco::Error::Script(e)) = main.result() {
                eprintln!("error: {}", describe(&e));
            }
            failed = true;
        }
        PromiseStatus::Pending => {
            eprintln!(
                "error: the main chunk is still awaiting a promise that nothing is left to settle"
            );
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The text of a compile error without mlua's wrapping.
fn syntax_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
