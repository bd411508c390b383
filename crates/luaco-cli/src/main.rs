//! The `luaco` command line: runs a Lua script as an async task, or
//! reads lines into a REPL.

mod repl;
mod report;

use std::cell::Cell;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser, Subcommand};
use luaco::mlua;
use luaco::{Config, Observer, PromiseStatus, Runtime, ScriptContext, ScriptError, ScriptValue};

/// Runs Lua 5.4 scripts with async/await on coroutines.
#[derive(Debug, Parser)]
#[command(name = "luaco", version, about)]
struct Cli {
    /// None: the REPL on a terminal, else the usage.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a script (or code given with -e). The main chunk is a task, so
    /// `await` works at top level; the process runs until everything the
    /// script started is done.
    ///
    /// Exit status: 0 ok; 1 script error or unhandled rejection; 2 usage
    /// error; 3 a run-level limit was hit ("instruction limit", "memory
    /// limit" or "timeout" on stderr).
    Run(RunArgs),
    /// Check the syntax of Lua files without running them: `FILE: ok`, or
    /// the error with its line and a caret (exit 1).
    Check {
        /// The files to check.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<String>,
    },
    /// Write LuaLS (`---@meta`) definitions of luaco's API, for editors.
    Types {
        /// Write them to FILE instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Read Lua lines and print their values, with top-level `await`;
    /// what `luaco` alone starts on a terminal.
    Repl,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Run CODE instead of a file; all positional arguments go to the script.
    #[arg(
        short = 'e',
        value_name = "CODE",
        allow_hyphen_values = true,
        value_parser = clap::value_parser!(std::ffi::OsString)
    )]
    code: Option<std::ffi::OsString>,
    /// Print task lifecycle events (in per-task spans) on stderr.
    #[arg(long)]
    trace: bool,
    /// Untrusted mode: only safe globals; no os.execute, io, package
    /// loading, debug, binary chunks, string.dump, file system or network
    /// unless allowed.
    #[arg(long)]
    sandbox: bool,
    /// Permit http in sandbox mode.
    #[arg(long, requires = "sandbox")]
    allow_net: bool,
    /// Permit fs.* under DIR only, in sandbox mode (no escape by .. or symlinks).
    #[arg(long, value_name = "DIR", requires = "sandbox")]
    allow_fs: Option<PathBuf>,
    /// VM instruction budget for the whole run, all tasks and coroutines together.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_instructions: Option<u64>,
    /// Lua heap limit in MiB (default: from the machine's memory).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1 << 40))]
    max_memory_mb: Option<u64>,
    /// Wall-clock limit for the whole run, in milliseconds.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: Option<u64>,
    /// Preempt a task that runs N ms without awaiting.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    time_slice_ms: Option<u64>,
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
    /// An unhandled rejection was the heap limit.
    out_of_memory: Cell<bool>,
}

impl Observer for Reporter {
    fn wants_lifecycle(&self) -> bool {
        false
    }

    fn unhandled_rejection(&self, error: &ScriptError) {
        if is_memory_limit(error) {
            // Reported once, with exit 3, when the run ends.
            self.out_of_memory.set(true);
            return;
        }
        self.unhandled.set(self.unhandled.get() + 1);
        eprintln!(
            "{}: {}",
            report::label("unhandled rejection"),
            describe(error)
        );
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

/// `error: MESSAGE` and the traceback for an error that escaped the main
/// chunk. A message that is not UTF-8 (a Latin-1 script's, say) is written
/// as the very bytes the script raised, as `lua5.4` writes it.
fn report_main_error(error: &ScriptError, reason: Option<&mlua::Value>) {
    let raw = match reason {
        Some(mlua::Value::String(s)) => Some(s.as_bytes().to_vec()),
        Some(mlua::Value::Table(t)) => match t.raw_get::<mlua::Value>("message") {
            Ok(mlua::Value::String(s)) => Some(s.as_bytes().to_vec()),
            _ => None,
        },
        _ => None,
    };
    match raw.filter(|bytes| std::str::from_utf8(bytes).is_err()) {
        Some(bytes) => {
            let mut out = format!("{}: ", report::label("error")).into_bytes();
            out.extend_from_slice(&bytes);
            if let Some(tb) = error.traceback.as_deref().filter(|tb| !tb.is_empty()) {
                out.push(b'\n');
                out.extend_from_slice(tb.as_bytes());
            }
            out.push(b'\n');
            let _ = std::io::stderr().write_all(&out);
        }
        None => eprintln!("{}: {}", report::label("error"), describe(error)),
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
        Some(Command::Run(args)) => run(args),
        Some(Command::Check { files }) => report::check(&files),
        Some(Command::Types { out }) => types(out),
        Some(Command::Repl) => repl::start(),
        None if std::io::stdin().is_terminal() => repl::start(),
        None => {
            // What clap printed when the subcommand was required.
            eprint!("{}", Cli::command().render_help());
            ExitCode::from(2)
        }
    }
}

/// The LuaLS definitions `luaco types` writes.
const TYPES: &str = include_str!("luaco.d.lua");

fn types(out: Option<PathBuf>) -> ExitCode {
    match out {
        None => {
            print!("{TYPES}");
            ExitCode::SUCCESS
        }
        Some(path) => match std::fs::write(&path, TYPES) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("luaco: cannot write {}: {e}", path.display());
                ExitCode::from(1)
            }
        },
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("luaco: {message}");
    eprintln!("usage: luaco run [OPTIONS] FILE [ARGS]...   or   luaco run -e CODE [ARGS]...");
    ExitCode::from(2)
}

/// An option given before FILE that `run` does not know: clap took it for
/// FILE, since FILE's arguments may look like options. Reported as clap
/// reports an unknown option (exit 2), with the closest known flag.
fn unknown_option(args: &RunArgs) -> Option<ExitCode> {
    if args.code.is_some() {
        return None;
    }
    let first = args.rest.first()?;
    if !first.starts_with('-') || first == "-" {
        return None;
    }
    // `luaco run -- -odd.lua` names a file.
    let raw: Vec<String> = std::env::args().collect();
    if raw
        .iter()
        .position(|a| a == first)
        .is_some_and(|i| i > 0 && raw[i - 1] == "--")
    {
        return None;
    }
    let mut cmd = Cli::command();
    let run = cmd.find_subcommand_mut("run")?;
    let name = first.split('=').next().unwrap_or(first);
    let closest = run
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .map(|flag| (edit_distance(name, &flag), flag))
        .filter(|(d, _)| *d <= 3)
        .min();
    let mut message = format!("unexpected argument '{first}' found\n");
    if let Some((_, flag)) = closest {
        message.push_str(&format!("\n  tip: a similar argument exists: '{flag}'"));
    }
    message.push_str(&format!(
        "\n  tip: to pass '{first}' as a file name, use '-- {first}'"
    ));
    let error = run
        .clone()
        .bin_name("luaco run")
        .error(clap::error::ErrorKind::UnknownArgument, message);
    let _ = error.print();
    Some(ExitCode::from(2))
}

/// Levenshtein distance, for suggesting a flag.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn run(mut args: RunArgs) -> ExitCode {
    if let Some(code) = unknown_option(&args) {
        return code;
    }
    let config = match config_of(&args) {
        Ok(c) => c,
        Err(message) => return usage_error(&message),
    };
    let rest = std::mem::take(&mut args.rest);
    let (source, chunk_name, script_path, script_args) = match args.code {
        // Lua sources are bytes, whatever their encoding.
        Some(code) => (
            std::os::unix::ffi::OsStringExt::into_vec(code),
            "=(command line)".to_owned(),
            "-e".to_owned(),
            rest,
        ),
        None => {
            let mut rest = rest.into_iter();
            let Some(file) = rest.next() else {
                return usage_error("missing FILE (or -e CODE)");
            };
            if file == "-" {
                let mut text = Vec::new();
                if let Err(e) = std::io::stdin().read_to_end(&mut text) {
                    return usage_error(&format!("cannot read the script from stdin: {e}"));
                }
                (text, "=stdin".to_owned(), file, rest.collect())
            } else {
                let path = PathBuf::from(&file);
                match std::fs::read(&path) {
                    Ok(bytes) => (bytes, format!("@{file}"), file, rest.collect()),
                    Err(e) => return usage_error(&format!("cannot read {file}: {e}")),
                }
            }
        }
    };
    if args.trace {
        install_trace();
    }
    match execute(config, &source, &chunk_name, &script_path, &script_args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}: {e}", report::label("error"));
            ExitCode::from(1)
        }
    }
}

/// `--trace`: luaco's lifecycle events on stderr, one line each, with the
/// time since start and the chain of task spans (parent first); a line
/// when each task's span closes gives its busy and idle time. Other
/// crates' events (HTTP, TLS) stay out.
fn install_trace() {
    use tracing_subscriber::fmt::format::FmtSpan;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .with_target(false)
        .with_ansi(false)
        .with_span_events(FmtSpan::CLOSE)
        .with_filter(
            tracing_subscriber::filter::Targets::new().with_target("luaco", tracing::Level::DEBUG),
        );
    let subscriber = tracing_subscriber::registry().with(layer);
    // Only fails if a subscriber is set already, and main sets none.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The runtime's settings from the flags.
fn config_of(args: &RunArgs) -> Result<Config, String> {
    let mut config = Config {
        max_instructions: args.max_instructions,
        max_execution_time: args.timeout_ms.map(Duration::from_millis),
        time_slice: args.time_slice_ms.map(Duration::from_millis),
        max_memory: Some(match args.max_memory_mb {
            Some(mb) => usize::try_from(mb << 20).map_err(|_| "--max-memory-mb is too large")?,
            None => default_heap_limit(),
        }),
        ..Config::default()
    };
    if args.sandbox {
        let mut policy = luaco::SandboxPolicy::strict();
        if args.allow_net {
            policy = policy.with_net();
        }
        if let Some(dir) = &args.allow_fs {
            if !dir.is_dir() {
                return Err(format!("--allow-fs {}: not a directory", dir.display()));
            }
            policy = policy.with_fs_root(dir);
        }
        config.sandbox = Some(policy);
    }
    Ok(config)
}

/// Three quarters of the smallest of physical memory, the cgroup's limit
/// and half the address-space limit, so that running out is a Lua memory
/// error (exit 3 "memory limit"), never an abort in the allocator.
fn default_heap_limit() -> usize {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let meminfo = read("/proc/meminfo");
    let physical = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib << 10);
    let cgroup = read("/sys/fs/cgroup/memory.max").trim().parse::<u64>().ok();
    let address_space = read("/proc/self/limits")
        .lines()
        .find(|l| l.starts_with("Max address space"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
        .map(|bytes| bytes / 2);
    let smallest = [physical, cgroup, address_space]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(8 << 30);
    usize::try_from(smallest / 4 * 3).unwrap_or(usize::MAX)
}

/// The limit a failed run hit, for exit 3: a run-level limit from the
/// guard, or the heap limit as a Lua memory error.
fn run_limit(
    rt: &Runtime,
    reporter: &Reporter,
    error: Option<&ScriptError>,
) -> Option<&'static str> {
    if let Some(limit) = rt.limit_hit() {
        return Some(limit.describe());
    }
    let memory = reporter.out_of_memory.get() || error.is_some_and(is_memory_limit);
    memory.then_some("memory limit")
}

/// A Lua memory error past the heap limit (kind "limit", code "memory").
fn is_memory_limit(e: &ScriptError) -> bool {
    luaco::Limit::of(e) == Some(luaco::Limit::Memory)
}

fn execute(
    config: Config,
    source: &[u8],
    chunk_name: &str,
    script_path: &str,
    script_args: &[String],
) -> luaco::Result<ExitCode> {
    let sandboxed = config.sandbox.is_some();
    let timeout = config.max_execution_time;
    let rt = Runtime::new(config)?;
    watchdog(rt.limit_signal(), timeout);
    let reporter = Rc::new(Reporter::default());
    rt.add_observer(reporter.clone());
    let lua = rt.lua();
    if !sandboxed {
        system_module_paths(lua)?;
        if script_path != "-e" && script_path != "-" {
            prefer_script_dir(lua, script_path)?;
        }
    }
    let arg = lua.create_table()?;
    arg.raw_set(0, script_path)?;
    for (i, a) in script_args.iter().enumerate() {
        arg.raw_set(i + 1, a.as_str())?;
    }
    rt.globals().raw_set("arg", arg)?;

    let source = report::skip_shebang(source);
    let loaded = match report::binary_chunk(source) {
        Some(_) if sandboxed => {
            eprintln!(
                "{}: {}: binary (precompiled) chunks are not allowed in --sandbox runs",
                report::label("error"),
                chunk_name.trim_start_matches(['@', '='])
            );
            return Ok(ExitCode::from(1));
        }
        Some(binary) => rt.load_binary(binary, chunk_name),
        None => rt.load(source, chunk_name),
    };
    let chunk = match loaded {
        Ok(f) => f,
        Err(luaco::Error::Lua(e)) => {
            eprintln!(
                "{}: {}",
                report::label("error"),
                report::syntax_report(&e, source)
            );
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e),
    };
    let name = chunk_name.trim_start_matches(['@', '=']);
    let args = script_args
        .iter()
        .map(|a| lua.create_string(a).map(mlua::Value::String))
        .collect::<mlua::Result<mlua::MultiValue>>()?;
    let main = rt.spawn_function(chunk, args, &ScriptContext::new(name))?;
    let ran = rt.run_main(&main);
    let _ = std::io::stdout().flush();
    let main_error = match main.result() {
        Err(luaco::Error::Script(e)) => Some(e),
        _ => None,
    };
    if matches!(ran, Err(luaco::Error::Timeout)) {
        eprintln!(
            "{}: timeout: the run passed its wall-clock limit",
            report::label("error")
        );
        return Ok(exit_now(ExitCode::from(3), main, rt));
    }
    if let Some(limit) = run_limit(&rt, &reporter, main_error.as_ref()) {
        let detail = main_error
            .as_ref()
            .map(|e| e.message.clone())
            .unwrap_or_else(|| limit.to_owned());
        eprintln!(
            "{}: {limit}: the run was stopped ({detail})",
            report::label("error")
        );
        return Ok(exit_now(ExitCode::from(3), main, rt));
    }
    ran?;

    let mut failed = reporter.unhandled.get() > 0;
    match main.status() {
        PromiseStatus::Resolved | PromiseStatus::Cancelled => {}
        PromiseStatus::Rejected => {
            if let Some(e) = &main_error {
                report_main_error(e, main.reason().as_ref());
            }
            // The error ends the run: what is left is cancelled (its
            // `<close>` values run) and the timers stop.
            rt.stop();
            let _ = std::io::stdout().flush();
            failed = true;
        }
        PromiseStatus::Pending => {
            eprintln!(
                "error: deadlock: the main chunk is still awaiting a promise that nothing is left to settle"
            );
            if let Some(tb) = main.suspended_traceback() {
                eprintln!("{tb}");
            }
            failed = true;
        }
    }
    Ok(exit_now(
        if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
        main,
        rt,
    ))
}

/// How long a script may go on after its limit before the watchdog ends
/// the process: the hook stops it within microseconds, so only a script
/// that escaped the hook (a loop where Lua runs no hooks, a long C call
/// such as a backtracking pattern) ever waits this long.
const GRACE: Duration = Duration::from_secs(2);

/// Ends the process with exit 3 if the loop stops answering: a limit was
/// hit and the run did not end within [`GRACE`], or the wall clock passed
/// `timeout` plus [`GRACE`].
fn watchdog(signal: Arc<AtomicU8>, timeout: Option<Duration>) {
    let start = Instant::now();
    let spawned = std::thread::Builder::new()
        .name("luaco-watchdog".into())
        .spawn(move || {
            let mut since: Option<Instant> = None;
            loop {
                std::thread::sleep(Duration::from_millis(20));
                let limit = luaco::Limit::from_signal(signal.load(Ordering::SeqCst));
                if let (Some(_), None) = (limit, since) {
                    since = Some(Instant::now());
                }
                let stuck = since.is_some_and(|t| t.elapsed() > GRACE);
                let late = timeout.is_some_and(|t| start.elapsed() > t + GRACE);
                if stuck || late {
                    let what = match (stuck, limit) {
                        (true, Some(limit)) => limit.describe(),
                        _ => "timeout",
                    };
                    eprintln!(
                        "{}: {what}: the script did not stop; ended by the watchdog",
                        report::label("error")
                    );
                    std::process::exit(3);
                }
            }
        });
    if spawned.is_err() {
        eprintln!("luaco: cannot start the watchdog thread; limits hold only where hooks run");
    }
}

/// The process ends now: freeing every Lua object one by one (a full
/// collection, then `lua_close`) would only delay the exit, and after a
/// limit the abandoned tasks must never run again.
fn exit_now(code: ExitCode, main: luaco::PromiseHandle, rt: Runtime) -> ExitCode {
    std::mem::forget(main);
    std::mem::forget(rt);
    code
}

/// Where the system's `lua5.4` looks for modules (Debian's layout, with
/// the multiarch directory for C modules), then the user's LuaRocks tree:
/// `(path, cpath)`, as `;`-separated templates.
fn system_module_defaults() -> (String, String) {
    let arch = format!("{}-linux-gnu", std::env::consts::ARCH);
    let home = std::env::var("HOME").ok().filter(|h| !h.is_empty());
    let mut path = vec![
        "/usr/local/share/lua/5.4/?.lua".to_owned(),
        "/usr/local/share/lua/5.4/?/init.lua".to_owned(),
        "/usr/local/lib/lua/5.4/?.lua".to_owned(),
        "/usr/local/lib/lua/5.4/?/init.lua".to_owned(),
        "/usr/share/lua/5.4/?.lua".to_owned(),
        "/usr/share/lua/5.4/?/init.lua".to_owned(),
    ];
    let mut cpath = vec![
        "/usr/local/lib/lua/5.4/?.so".to_owned(),
        format!("/usr/lib/{arch}/lua/5.4/?.so"),
        "/usr/lib/lua/5.4/?.so".to_owned(),
        "/usr/local/lib/lua/5.4/loadall.so".to_owned(),
    ];
    if let Some(home) = &home {
        path.push(format!("{home}/.luarocks/share/lua/5.4/?.lua"));
        path.push(format!("{home}/.luarocks/share/lua/5.4/?/init.lua"));
        cpath.push(format!("{home}/.luarocks/lib/lua/5.4/?.so"));
    }
    path.extend(["./?.lua".to_owned(), "./?/init.lua".to_owned()]);
    cpath.push("./?.so".to_owned());
    (path.join(";"), cpath.join(";"))
}

/// `package.path` and `package.cpath` as the system's `lua5.4` sets them:
/// `LUA_PATH_5_4` (or `LUA_PATH`) and `LUA_CPATH_5_4` (or `LUA_CPATH`)
/// when set, with `;;` standing for the defaults, else the defaults.
fn system_module_paths(lua: &mlua::Lua) -> mlua::Result<()> {
    let Ok(package) = lua.globals().get::<mlua::Table>("package") else {
        return Ok(());
    };
    let (path, cpath) = system_module_defaults();
    let from_env = |names: [&str; 2], default: &str| -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        match names.iter().find_map(std::env::var_os) {
            Some(value) => {
                let value = value.as_bytes();
                let mut out = Vec::with_capacity(value.len() + default.len());
                let mut rest = value;
                // Lua's rule: the first ";;" becomes ";DEFAULT;".
                if let Some(i) = rest.windows(2).position(|w| w == b";;") {
                    out.extend_from_slice(&rest[..i]);
                    out.push(b';');
                    out.extend_from_slice(default.as_bytes());
                    out.push(b';');
                    rest = &rest[i + 2..];
                }
                out.extend_from_slice(rest);
                out
            }
            None => default.as_bytes().to_vec(),
        }
    };
    package.set(
        "path",
        lua.create_string(from_env(["LUA_PATH_5_4", "LUA_PATH"], &path))?,
    )?;
    package.set(
        "cpath",
        lua.create_string(from_env(["LUA_CPATH_5_4", "LUA_CPATH"], &cpath))?,
    )
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
