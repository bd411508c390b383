//! [`Config`]: the settings of a [`Runtime`](crate::Runtime).

use std::rc::Rc;
use std::time::Duration;

use luaco_core::Options;
use luaco_io::{ClientConfig, FileSystem, FsLimits, HttpClient, RequestLimits};
use luaco_sandbox::SandboxPolicy;

/// Settings of a [`Runtime`](crate::Runtime).
///
/// Build it with struct-update syntax (`Config { pool_size: 100,
/// ..Config::default() }`); fields are added over time, so
/// always end with `..Config::default()`.
#[derive(Clone, Debug)]
pub struct Config {
    /// Finished coroutines kept for reuse by new tasks.
    pub pool_size: usize,
    /// Wall-clock limit for each [`Runtime::block_on`](crate::Runtime::block_on) and [`Runtime::run`](crate::Runtime::run)
    /// call. It also stops a task that never awaits, from the count hook it
    /// turns on (CPU-bound Lua then runs about 2x slower; see BENCHMARKS.md).
    pub max_execution_time: Option<Duration>,
    /// Lua heap limit in bytes; an allocation past it fails with a
    /// `"limit"` error in the script.
    pub max_memory: Option<usize>,
    /// Install the API as globals. The API is always available as
    /// `require("luaco")`, so a host can keep a script's globals clean.
    pub globals: bool,
    /// Record where each task was spawned, for tracebacks.
    pub spawn_sites: bool,
    /// Scripts may use `http.request` / `http_get`.
    pub allow_net: bool,
    /// The HTTP backend; `None` means a [`HyperClient`](luaco_io::HyperClient) made from
    /// [`Config::http`].
    pub http_client: Option<Rc<dyn HttpClient>>,
    /// Settings of the default HTTP client: connection caps, idle timeout,
    /// response head and body caps, extra TLS root certificates. Unused
    /// when [`Config::http_client`] is set.
    pub http: ClientConfig,
    /// Every request's default timeout (a request's `timeout_ms` overrides
    /// it) and the request-body cap, whatever the backend.
    pub request_limits: RequestLimits,
    /// Scripts may use `fs.*`.
    pub allow_fs: bool,
    /// The file system; `None` means the real one, unconfined
    /// ([`luaco_io::RealFs::confined`] keeps scripts inside a directory).
    pub file_system: Option<Rc<dyn FileSystem>>,
    /// Run untrusted: scripts get a safe environment of their own (no `os`
    /// beyond the clock, no `io`, `debug`, `package`, binary chunks or
    /// `string.dump`) and only what the policy grants (network, a
    /// directory). `None` (the default): a trusted script with every library.
    pub sandbox: Option<SandboxPolicy>,
    /// VM instructions for the whole run, every task and coroutine
    /// together; past it the run ends with [`Error::Limit`](crate::Error::Limit).
    pub max_instructions: Option<u64>,
    /// Scripts may carry limits of their own: a
    /// [`ContextBudget`](luaco_sandbox::ContextBudget) in their
    /// `ScriptContext` policy counts every task of that script, and
    /// hitting it stops that script only. Turns the count hook on.
    pub context_limits: bool,
    /// Preempt a task that runs this long without awaiting (it goes to the
    /// back of the ready queue), so one busy loop cannot starve the others.
    pub time_slice: Option<Duration>,
    /// The largest file `fs.read` reads, in bytes (default 256 MiB); a larger
    /// one rejects with kind `"limit"` naming the cap.
    pub max_file_read: usize,
}

impl Config {
    /// The engine settings every state of the runtime shares.
    pub(crate) fn engine_options(&self) -> Options {
        Options {
            pool_size: self.pool_size,
            spawn_sites: self.spawn_sites,
            ..Options::default()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            pool_size: 256,
            max_execution_time: None,
            max_memory: None,
            globals: true,
            spawn_sites: true,
            allow_net: true,
            http_client: None,
            http: ClientConfig::default(),
            request_limits: RequestLimits::default(),
            allow_fs: true,
            file_system: None,
            max_file_read: FsLimits::default().max_read,
            sandbox: None,
            max_instructions: None,
            time_slice: None,
            context_limits: false,
        }
    }
}
