//! [`HyperClient`]: the default HTTP backend, hyper 1.x on async-io with
//! TLS from rustls, over a bounded connection pool.
//!
//! HTTP/1.1 connections are driven by the request that holds them, so
//! dropping a request (cancel, `timeout_ms`) closes its socket at once, and
//! an idle connection is polled directly before reuse, which notices a
//! server that closed it or sent bytes nobody asked for. HTTP/2 connections
//! (chosen by ALPN on https) are shared by many requests and run as tasks
//! of the client's own executor, which the requests using them drive.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_executor::{LocalExecutor, Task};
use bytes::Bytes;
use futures_rustls::rustls;
use hyper::client::conn::{http1, http2};
use smol_hyper::rt::FuturesIo;

use super::conn::{connect, tls_config, Stream, Target};
use super::message::{build_request, classify, collect, network, response_of, Body};
use super::pool::{Caps, Checkout, Key, Permit, Pool, Pooled};
use super::{HttpClient, HttpRequest, HttpResponse, LocalBoxFuture};
use crate::error::Error;

type Io = FuturesIo<Stream>;

/// Settings of a [`HyperClient`]. Every size cap is an error of kind
/// `"limit"` naming it, never a truncation.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The largest response body, in bytes (default 256 MiB). The body is
    /// read as it arrives; a declared `content-length` over the cap fails
    /// before any of it is read.
    pub max_response_body: usize,
    /// The largest response head (status line and headers), in bytes
    /// (default 64 KiB).
    pub max_response_head: usize,
    /// The most headers a response may have (default 100; above 100 hyper
    /// parses heads into heap memory, about 5 % slower).
    pub max_response_headers: usize,
    /// Connections open at once to one host (default 32). More requests
    /// wait, first come first served.
    pub max_connections_per_host: usize,
    /// Connections open at once in all (default 256).
    pub max_connections: usize,
    /// How long an idle connection is kept for reuse (default 30 s).
    pub idle_timeout: Duration,
    /// How long resolving and connecting (TLS included) may take (default 10 s).
    pub connect_timeout: Duration,
    /// Extra trusted root certificates, DER or PEM (a private CA, a test
    /// server's self-signed one).
    pub root_certificates: Vec<Vec<u8>>,
    /// Trust the Mozilla root set (webpki-roots); default true.
    pub webpki_roots: bool,
    /// Offer HTTP/2 by ALPN on https; default true.
    pub http2: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_response_body: 256 << 20,
            max_response_head: 64 << 10,
            max_response_headers: 100,
            max_connections_per_host: 32,
            max_connections: 256,
            idle_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            root_certificates: Vec::new(),
            webpki_roots: true,
            http2: true,
        }
    }
}

/// HTTP/1.1 and HTTP/2 over hyper, with keep-alive pooling, caps on
/// connections, heads and bodies, and retries of idempotent requests
/// that met a connection the server had closed.
///
/// ```no_run
/// use luaco_io::{ClientConfig, HttpClient, HttpRequest, HyperClient};
/// let client = HyperClient::with_config(ClientConfig {
///     max_response_body: 1 << 20,
///     ..ClientConfig::default()
/// })?;
/// let request = HttpRequest::get("http://127.0.0.1:8080/".parse().unwrap());
/// let response = async_io::block_on(client.send(request))?;
/// println!("{}", response.status);
/// # Ok::<(), luaco_io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct HyperClient {
    inner: Rc<Inner>,
}

struct Inner {
    config: ClientConfig,
    tls: Arc<rustls::ClientConfig>,
    pool: Pool<H1Conn>,
    /// One shared HTTP/2 connection per host.
    h2: RefCell<HashMap<Key, Rc<H2Conn>>>,
    /// Runs HTTP/2 connection tasks; requests on them drive it.
    executor: Rc<LocalExecutor<'static>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HyperClient")
            .field("open", &self.pool.open())
            .field("idle", &self.pool.idle())
            .finish_non_exhaustive()
    }
}

impl Default for HyperClient {
    fn default() -> Self {
        HyperClient::new()
    }
}

impl HyperClient {
    /// A client with the default [`ClientConfig`].
    pub fn new() -> HyperClient {
        // The default config has no certificates of the host's to parse.
        Self::build(ClientConfig::default()).expect("the default TLS setup is valid")
    }

    /// A client with `config`; fails if a root certificate does not parse.
    pub fn with_config(config: ClientConfig) -> Result<HyperClient, Error> {
        Self::build(config)
    }

    fn build(config: ClientConfig) -> Result<HyperClient, Error> {
        let tls = tls_config(&config.root_certificates, config.webpki_roots, config.http2)?;
        let pool = Pool::new(Caps {
            per_host: config.max_connections_per_host,
            total: config.max_connections,
            idle_timeout: config.idle_timeout,
        });
        Ok(HyperClient {
            inner: Rc::new(Inner {
                config,
                tls,
                pool,
                h2: RefCell::default(),
                executor: Rc::new(LocalExecutor::new()),
            }),
        })
    }

    /// Connections open now (busy, idle or being opened), HTTP/2 included.
    pub fn open_connections(&self) -> usize {
        self.inner.pool.open()
    }

    /// Idle HTTP/1.1 connections kept for reuse now.
    pub fn idle_connections(&self) -> usize {
        self.inner.pool.idle()
    }
}

impl HttpClient for HyperClient {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<Result<HttpResponse, Error>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.send(request).await })
    }
}

/// An HTTP/1.1 connection: the handle requests go through, and the
/// connection future that moves their bytes.
struct H1Conn {
    sender: http1::SendRequest<Body>,
    conn: Pin<Box<http1::Connection<Io, Body>>>,
    finished: bool,
}

impl Pooled for H1Conn {
    fn usable(&mut self) -> bool {
        if self.finished || self.sender.is_closed() {
            return false;
        }
        // One poll reads from the socket: an EOF or stray bytes end the
        // connection here rather than under the next request.
        let mut cx = Context::from_waker(Waker::noop());
        if self.conn.as_mut().poll(&mut cx).is_ready() {
            self.finished = true;
            return false;
        }
        self.sender.is_ready()
    }
}

impl H1Conn {
    /// Runs `fut` while driving the connection; if the connection ends
    /// first, the error it ended with.
    async fn drive<T>(&mut self, fut: impl Future<Output = T>) -> Result<T, hyper::Error> {
        let mut fut = pin!(fut);
        poll_fn(|cx| {
            let mut ended = None;
            if !self.finished {
                if let Poll::Ready(r) = self.conn.as_mut().poll(cx) {
                    self.finished = true;
                    ended = Some(r);
                }
            }
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            match ended {
                Some(Err(e)) => Poll::Ready(Err(e)),
                // A clean end with the future still waiting: the answer
                // cannot come any more; the future says why on its next poll.
                Some(Ok(())) => fut.as_mut().poll(cx).map(Ok),
                None if self.finished => fut.as_mut().poll(cx).map(Ok),
                None => Poll::Pending,
            }
        })
        .await
    }
}

/// A shared HTTP/2 connection; its task lives as long as this does. It
/// holds no pool permit: one per host at most, kept while used within the
/// idle timeout (every request sweeps the rest), so HTTP/2 never keeps
/// HTTP/1.1 requests waiting.
struct H2Conn {
    sender: http2::SendRequest<Body>,
    _task: Task<()>,
    last_used: std::cell::Cell<Instant>,
}

/// Spawns hyper's HTTP/2 background futures on the client's executor.
/// Weak: those futures live inside the executor, and a strong reference
/// there would keep it (and their sockets) alive after the client is gone.
#[derive(Clone)]
struct LocalExec(Weak<LocalExecutor<'static>>);

impl<F: Future<Output = ()> + 'static> hyper::rt::Executor<F> for LocalExec {
    fn execute(&self, fut: F) {
        if let Some(executor) = self.0.upgrade() {
            executor.spawn(fut).detach();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropped tasks are cancelled when the executor next runs: run it
        // now, so HTTP/2 sockets close with the client.
        self.h2.borrow_mut().clear();
        while self.executor.try_tick() {}
    }
}

/// A failed attempt, and whether sending it again is safe.
struct Failure {
    error: Error,
    /// The request may have reached the server.
    sent: bool,
    /// The connection failed before any response head arrived (closed,
    /// reset, refused stream): the kind of failure a stale reused
    /// connection gives, and the only kind worth a second attempt.
    retryable: bool,
}

impl Failure {
    /// A failure before the response head, from hyper's send.
    fn before_head(
        error: &hyper::Error,
        unsent: bool,
        what: &str,
        config: &ClientConfig,
    ) -> Failure {
        let retryable = unsent
            || error.is_canceled()
            || error.is_incomplete_message()
            || error.is_closed()
            || std::error::Error::source(error)
                .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
        let error_out = classify(what, error, config);
        let retryable = retryable && !matches!(error_out, Error::Limit(_));
        Failure {
            error: error_out,
            sent: !unsent,
            retryable,
        }
    }

    /// A failure after the response head (the body, a cap): final.
    fn after_head(error: Error) -> Failure {
        Failure {
            error,
            sent: true,
            retryable: false,
        }
    }
}

/// What a request runs on.
enum Lane {
    H1(H1Conn, Permit<H1Conn>),
    H2(Rc<H2Conn>),
}

fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
    )
}

impl Inner {
    async fn send(self: Rc<Self>, request: HttpRequest) -> Result<HttpResponse, Error> {
        let target = Target::of(&request.url)?;
        let key: Key = target.key().into();
        let body = Bytes::from(request.body.clone().unwrap_or_default());
        let what = request.url.to_string();
        // A request that cannot be built fails before it waits for a
        // connection or opens one.
        build_request(&request, &target, false, body.clone())?;
        // One retry, on a newly opened connection, when a reused one failed
        // before answering and the request either never left or may
        // safely be repeated.
        let mut retried = false;
        loop {
            let (lane, reused) = self.lane(&target, &key, &what, retried).await?;
            let h2 = matches!(lane, Lane::H2(_));
            let built = build_request(&request, &target, h2, body.clone())?;
            let result = match lane {
                Lane::H1(conn, permit) => self.exchange_h1(conn, permit, built, &what).await,
                Lane::H2(h2) => self.exchange_h2(&key, h2, built, &what).await,
            };
            match result {
                Ok(response) => return Ok(response),
                Err(f)
                    if reused
                        && !retried
                        && f.retryable
                        && (!f.sent || idempotent(&request.method)) =>
                {
                    retried = true;
                }
                Err(f) => return Err(f.error),
            }
        }
    }

    /// A connection for `target`: the host's HTTP/2 one, an idle HTTP/1.1
    /// one, or a new one when the caps allow (only a new one if `fresh`).
    /// The flag says it was reused.
    async fn lane(
        &self,
        target: &Target,
        key: &Key,
        what: &str,
        fresh: bool,
    ) -> Result<(Lane, bool), Error> {
        if let (false, Some(h2)) = (fresh, self.live_h2(key)) {
            return Ok((Lane::H2(h2), true));
        }
        let permit = loop {
            match self.pool.checkout(key.clone()).await {
                // Closing it frees its place for the new one.
                Checkout::Reuse(conn, permit) if fresh => drop((conn, permit)),
                Checkout::Reuse(conn, permit) => return Ok((Lane::H1(conn, permit), true)),
                Checkout::Open(permit) => break permit,
            }
        };
        // Another request may have set up HTTP/2 while this one waited.
        if let (false, Some(h2)) = (fresh, self.live_h2(key)) {
            return Ok((Lane::H2(h2), true));
        }
        let stream = connect(target, Some(&self.tls), self.config.connect_timeout, what).await?;
        if stream.is_h2() {
            // The slot was only for opening: an HTTP/2 connection is shared.
            drop(permit);
            let h2 = self.handshake_h2(key, stream, what).await?;
            return Ok((Lane::H2(h2), false));
        }
        let mut builder = http1::Builder::new();
        if self.config.max_response_headers != 100 {
            // 100 is hyper's own, parsed on the stack; any other goes to the heap.
            builder.max_headers(self.config.max_response_headers);
        }
        builder
            .max_header_size(self.config.max_response_head)
            .max_buf_size(
                self.config
                    .max_response_head
                    .max(64 << 10)
                    .saturating_add(64 << 10),
            );
        let (sender, conn) = builder
            .handshake::<Io, Body>(FuturesIo::new(stream))
            .await
            .map_err(|e| network(what, &e))?;
        let conn = H1Conn {
            sender,
            conn: Box::pin(conn),
            finished: false,
        };
        Ok((Lane::H1(conn, permit), false))
    }

    /// The host's HTTP/2 connection if it is open; closes every expired
    /// or closed one (of any host) on the way.
    fn live_h2(&self, key: &Key) -> Option<Rc<H2Conn>> {
        let (found, swept) = {
            let mut all = self.h2.borrow_mut();
            if all.is_empty() {
                return None;
            }
            let before = all.len();
            let timeout = self.config.idle_timeout;
            all.retain(|_, h| h.sender.is_ready() && h.last_used.get().elapsed() < timeout);
            (all.get(key).cloned(), all.len() != before)
        };
        if swept {
            // Cancelled connection tasks end (and close) on the next tick.
            while self.executor.try_tick() {}
        }
        let h2 = found?;
        h2.last_used.set(Instant::now());
        Some(h2)
    }

    async fn handshake_h2(
        &self,
        key: &Key,
        stream: Stream,
        what: &str,
    ) -> Result<Rc<H2Conn>, Error> {
        let exec = LocalExec(Rc::downgrade(&self.executor));
        let mut builder = http2::Builder::new(exec);
        builder
            .max_header_list_size(u32::try_from(self.config.max_response_head).unwrap_or(u32::MAX));
        let handshake = builder.handshake::<Io, Body>(FuturesIo::new(stream));
        let (sender, conn) = self
            .executor
            .run(handshake)
            .await
            .map_err(|e| network(what, &e))?;
        let task = self.executor.spawn(async move {
            let _ = conn.await;
        });
        let h2 = Rc::new(H2Conn {
            sender,
            _task: task,
            last_used: std::cell::Cell::new(Instant::now()),
        });
        // Requests that raced to open the host's first connection each got
        // one; the first to finish is the one later requests share.
        let mut all = self.h2.borrow_mut();
        let taken = all.get(key).is_some_and(|h| h.sender.is_ready());
        if !taken {
            all.insert(key.clone(), h2.clone());
        }
        Ok(h2)
    }

    async fn exchange_h1(
        &self,
        mut conn: H1Conn,
        permit: Permit<H1Conn>,
        request: http::Request<Body>,
        what: &str,
    ) -> Result<HttpResponse, Failure> {
        let sent = conn.sender.try_send_request(request);
        let response = match conn.drive(sent).await {
            Ok(Ok(response)) => response,
            Ok(Err(mut e)) => {
                let unsent = e.take_message().is_some();
                return Err(Failure::before_head(e.error(), unsent, what, &self.config));
            }
            Err(e) => return Err(Failure::before_head(&e, false, what, &self.config)),
        };
        let (head, mut body) = response.into_parts();
        let data = {
            let max = self.config.max_response_body;
            let read = collect(&mut body, max, what);
            match conn.drive(read).await {
                Ok(r) => r,
                Err(e) => Err(classify(what, &e, &self.config)),
            }
        };
        let data = data.map_err(Failure::after_head)?;
        // One more poll of the connection lets hyper finish the response
        // and go idle; then it is reusable if it says it is ready.
        let _ = conn.drive(std::future::ready(())).await;
        if conn.usable() {
            permit.give_back(conn);
        }
        Ok(response_of(head, data))
    }

    async fn exchange_h2(
        &self,
        key: &Key,
        h2: Rc<H2Conn>,
        request: http::Request<Body>,
        what: &str,
    ) -> Result<HttpResponse, Failure> {
        let mut sender = h2.sender.clone();
        let config = &self.config;
        let exchange = async {
            let response = sender.try_send_request(request).await.map_err(|mut e| {
                let unsent = e.take_message().is_some();
                Failure::before_head(e.error(), unsent, what, config)
            })?;
            let (head, mut body) = response.into_parts();
            let data = collect(&mut body, config.max_response_body, what)
                .await
                .map_err(Failure::after_head)?;
            Ok(response_of(head, data))
        };
        let result = self.executor.run(exchange).await;
        if result.is_err() && h2.sender.is_closed() {
            self.h2.borrow_mut().remove(key);
        }
        result
    }
}
