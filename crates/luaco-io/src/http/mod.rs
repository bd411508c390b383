//! HTTP: the [`HttpClient`] trait with its request and response types,
//! the default backend ([`HyperClient`]), and the Lua `http.request` /
//! `http_get` functions.

mod client;
mod conn;
mod lua;
mod message;
mod pool;
#[cfg(feature = "surf")]
mod surf;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use client::{ClientConfig, HyperClient};
pub(crate) use lua::install;
#[cfg(feature = "surf")]
pub use surf::SurfClient;

use crate::error::Error;

/// A boxed, single-threaded future, as backends return them.
pub type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T> + 'static>>;

/// An HTTP request, already validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method, upper-case (`GET`, `POST`, …).
    pub method: String,
    /// An absolute `http` or `https` URL.
    pub url: url::Url,
    /// Header names and values, in the order given.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
}

impl HttpRequest {
    /// A `GET` of `url` with no headers.
    pub fn get(url: url::Url) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            url,
            headers: Vec::new(),
            body: None,
        }
    }
}

/// An HTTP response. Any status is a response, 4xx and 5xx included.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower-case) and values; repeated headers are joined with `", "`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Sends HTTP requests. The runtime holds one as a trait object; implement
/// it to route scripts' requests anywhere (a proxy, a cache, a mock).
///
/// Dropping the returned future must abort the request: that is how
/// cancellation and `timeout_ms` reach the backend.
pub trait HttpClient {
    /// Sends `request` and resolves to the response. Connection failures
    /// are [`Error::Network`].
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<Result<HttpResponse, Error>>;
}

impl fmt::Debug for dyn HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HttpClient")
    }
}

/// Bounds the Lua layer puts on every request, whatever the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    /// How long a request may take when it gives no `timeout_ms`
    /// (default 30 s); `None` waits for ever.
    pub timeout: Option<Duration>,
    /// The largest request body a script may send, in bytes (default
    /// 64 MiB); a larger one rejects with kind `"limit"`.
    pub max_request_body: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            timeout: Some(Duration::from_secs(30)),
            max_request_body: 64 << 20,
        }
    }
}
