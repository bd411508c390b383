//! I/O for luaco scripts that never blocks the loop: HTTP, files and JSON,
//! each behind a trait so a host can swap the backend.
//!
//! [`install`] adds `http`, `http_get`, `fs`, `json` and `json_parse` to an
//! engine's API. HTTP goes through an [`HttpClient`] ([`HyperClient`] by
//! default: hyper 1.x with rustls, pooled and bounded; [`MockHttp`] for
//! tests), files through a [`FileSystem`]
//! ([`RealFs`], optionally confined to a directory, or [`MemFs`]). A missing
//! backend means the operation is not permitted: scripts get kind
//! `"permission"`.
//!
//! # Examples
//!
//! ```
//! use std::rc::Rc;
//! use luaco_io::{install, IoConfig, MemFs};
//! use luaco_sched::Scheduler;
//!
//! let lua = luaco_core::StateBuilder::new().build()?;
//! let sched = Scheduler::new(&lua, Default::default())?;
//! install(sched.engine(), &lua, IoConfig {
//!     http: None,                                   // no network
//!     fs: Some(Rc::new(MemFs::new())),              // files in memory
//!     ..IoConfig::default()
//! })?;
//! lua.globals().set("luaco", sched.engine().api())?;
//! let main = lua.load(r#"
//!     local fs, json = luaco.fs, luaco.json
//!     luaco.await(fs.write("/data.json", json.encode({ b = 2, a = { 1, 2 } })))
//!     local text = luaco.await(fs.read("/data.json"))
//!     local ok, err = pcall(luaco.await, luaco.http_get("http://127.0.0.1:9/"))
//!     return text .. " " .. err.kind
//! "#).into_function()?;
//! let p = sched.engine().spawn(main, (), &luaco_core::ScriptContext::new("io"))?;
//! sched.run_until(|| !p.is_pending(), None);
//! let Some(luaco_core::Outcome::Resolved(v)) = p.outcome() else { panic!() };
//! assert_eq!(v.to_string()?, r#"{"a":[1,2],"b":2} permission"#);
//! # Ok::<(), luaco_core::Error>(())
//! ```
//!
//! # Limits and memory
//!
//! Every resource a server or a script can inflate has a cap, and crossing
//! it is an error of kind `"limit"` that names the cap, never an abort or a
//! truncation:
//!
//! | cap | default | where |
//! |---|---|---|
//! | response body | 256 MiB | [`ClientConfig::max_response_body`] |
//! | response head | 64 KiB, 100 headers | [`ClientConfig::max_response_head`], [`ClientConfig::max_response_headers`] |
//! | request body | 64 MiB | [`RequestLimits::max_request_body`] |
//! | request time | 30 s (a request's `timeout_ms` overrides it) | [`RequestLimits::timeout`] (kind `"timeout"`) |
//! | connections | 32 per host, 256 in all, idle 30 s | [`ClientConfig`] |
//! | file read | 256 MiB | [`FsLimits::max_read`] |
//!
//! Peak memory: a response body is read as it arrives into one buffer (a
//! declared `content-length` only sizes the first 1 MiB of it, so a lying
//! header reserves nothing), then copied once into the Lua string, and the
//! buffer is freed: about twice the body at the moment of the copy, up to
//! three times for a body with no declared length, whose buffer grows by
//! doubling. `fs.read` reads into a buffer of the file's size, then the Lua
//! string: twice the file. A Lua 5.4 string cannot be built without that
//! one copy; the caps bound both.
#![warn(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]

mod error;
mod fs;
mod http;
pub mod json;
mod mock;
#[cfg(feature = "test-server")]
pub mod testing;

use std::rc::Rc;

use luaco_core::{Engine, Module, ModuleContext};
use mlua::Lua;

pub use error::{Error, Result};
pub use fs::{FileSystem, FileType, FsLimits, MemFs, RealFs, Stat};
#[cfg(feature = "surf")]
pub use http::SurfClient;
pub use http::{
    ClientConfig, HttpClient, HttpRequest, HttpResponse, HyperClient, LocalBoxFuture, RequestLimits,
};
pub use mock::MockHttp;
/// The `url` crate [`HttpRequest::url`] is made of, so hosts building
/// requests need no dependency of their own.
pub use url;

/// The backends scripts use. `None` means not permitted.
#[derive(Clone, Debug, Default)]
pub struct IoConfig {
    /// Where `http.request` and `http_get` go.
    pub http: Option<Rc<dyn HttpClient>>,
    /// Where `fs.*` go.
    pub fs: Option<Rc<dyn FileSystem>>,
    /// Size caps of file operations.
    pub fs_limits: FsLimits,
    /// The default timeout and the request-body cap of every request.
    pub http_limits: RequestLimits,
}

/// The I/O module: `http`, `http_get`, `fs`, `json` and `json_parse`.
#[derive(Debug, Default)]
pub struct IoModule {
    /// The backends scripts use.
    pub config: IoConfig,
}

impl Module for IoModule {
    fn name(&self) -> &str {
        "io"
    }

    fn install(&self, ctx: &ModuleContext<'_>) -> mlua::Result<()> {
        let (engine, lua, api) = (ctx.engine, ctx.lua, &ctx.api);
        http::install(
            engine,
            lua,
            api,
            self.config.http.clone(),
            self.config.http_limits,
        )?;
        fs::install(
            engine,
            lua,
            api,
            self.config.fs.clone(),
            self.config.fs_limits,
        )?;
        json::install(engine, lua, api)?;
        Ok(())
    }
}

/// Installs [`IoModule`] with `config` into `engine`.
pub fn install(engine: &Engine, _lua: &Lua, config: IoConfig) -> luaco_core::Result<()> {
    engine.install(&IoModule { config })
}
