//! The `luaco` command line: runs a Lua script as an async task.

use std::cell::Cell;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use clap::{Parser, Subcommand};
use luaco::mlua;
use luaco::{Config, Observer, PromiseStatus, Runtime, ScriptContext, ScriptError, ScriptValue};

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
    #[arg(short = 'e', value_name = "CODE", allow_hyphen_values = true)]
    code: Option<String>,
    /// Print task lifecycle events (in per-task spans) on stderr.
    #[arg(long)]
    trace: bool,
    /// The script to run (`-` reads it from stdin), then its arguments (in
    /// the global `arg`).
    #[arg(
        value_name = "FILE [ARGS]...",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    rest: Vec<String>,
}

/// Prints unhandled rejections as they are detected and counts them.
/// (With `--trace`, the runtime's own tracing observer reports lifecycles:
/// observers compose.)
#[derive(Default)]
struct Reporter {
    unhandled: Cell<usize>,
}

impl Observer for Reporter {
    fn wants_lifecycle(&self) -> bool {
        false
    }

    fn unhandled_rejection(&self, error: &ScriptError) {
        self.unhandled.set(self.unhandled.get() + 1);
        eprintln!("unhandled rejection: {}", describe(error));
    }
}

/// The message, then the traceback if there is one. A raised value that is
/// not an error object (a table, say) is shown by its contents.
fn describe(error: &ScriptError) -> String {
    let message = match &error.value {
        Some(v @ (ScriptValue::Map(_) | ScriptValue::Array(_))) => {
            format!("a raised table: {v}")
        }
        Some(ScriptValue::Nil) => "nil (the script raised nil)".to_owned(),
        _ => error.message.clone(),
    };
    match &error.traceback {
        Some(tb) if !tb.is_empty() => format!("{message}\n{tb}"),
        _ => message,
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
            if file == "-" {
                let mut text = String::new();
                if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                    return usage_error(&format!("cannot read the script from stdin: {e}"));
                }
                (text, "=stdin".to_owned(), file, rest.collect())
            } else {
                let path = PathBuf::from(&file);
                match std::fs::read(&path) {
                    Ok(bytes) => match String::from_utf8(bytes) {
                        Ok(text) => (text, format!("@{file}"), file, rest.collect()),
                        Err(_) => {
                            return usage_error(&format!("cannot read {file}: not UTF-8 text"))
                        }
                    },
                    Err(e) => return usage_error(&format!("cannot read {file}: {e}")),
                }
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
    let _ = trace;
    let rt = Runtime::new(Config::default())?;
    let reporter = Rc::new(Reporter {
        unhandled: Cell::new(0),
    });
    rt.add_observer(reporter.clone());
    let lua = rt.lua();
    if script_path != "-e" && script_path != "-" {
        prefer_script_dir(lua, script_path)?;
    }
    let arg = lua.create_table()?;
    arg.raw_set(0, script_path)?;
    for (i, a) in script_args.iter().enumerate() {
        arg.raw_set(i + 1, a.as_str())?;
    }
    lua.globals().raw_set("arg", arg)?;

    let chunk = match lua
        .load(skip_shebang(source))
        .set_name(chunk_name)
        .into_function()
    {
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
    // The process ends now: freeing every Lua object one by one (a full
    // collection, then `lua_close`) would only delay the exit.
    std::mem::forget(main);
    std::mem::forget(rt);
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A first line starting with `#` (a shebang) is not Lua: blank it, keeping
/// the line numbers of the rest.
fn skip_shebang(source: &str) -> &str {
    if source.starts_with('#') {
        match source.find('\n') {
            Some(at) => &source[at..],
            None => "",
        }
    } else {
        source
    }
}

/// `require` looks in the script's own directory first.
fn prefer_script_dir(lua: &mlua::Lua, script_path: &str) -> mlua::Result<()> {
    let dir = std::path::Path::new(script_path)
        .parent()
        .map(|d| d.to_string_lossy().into_owned())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| ".".to_owned());
    let Ok(package) = lua.globals().get::<mlua::Table>("package") else {
        return Ok(());
    };
    let path: String = package.get("path").unwrap_or_default();
    let mine = format!("{dir}/?.lua;{dir}/?/init.lua");
    package.set("path", format!("{mine};{path}"))
}

/// The text of a compile error without mlua's wrapping.
fn syntax_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
