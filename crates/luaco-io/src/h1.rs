//! [`H1Client`]: a small HTTP/1.1 client on `async-io`, for plain `http://`.
//!
//! Why it exists: surf 2.3's curl client (isahc 0.9) notices a dropped
//! request only when curl next hands it data, so a cancelled request to a
//! server that has not answered yet keeps its connection open until the
//! server speaks. Here the request future owns its connection: dropping the
//! future (cancel, `timeout_ms`) closes the socket at once.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use async_io::Async;
use futures_lite::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::error::Error;
use crate::http::{HttpClient, HttpRequest, HttpResponse, LocalBoxFuture};

/// Response heads larger than this are refused.
const MAX_HEAD: usize = 64 * 1024;
/// Response bodies larger than this are refused.
const MAX_BODY: usize = 256 * 1024 * 1024;
/// Idle connections kept per host.
const MAX_IDLE: usize = MAX_PER_HOST;
/// Connections open at once per host (as curl's default pool); more
/// requests wait for a connection to come free.
const MAX_PER_HOST: usize = 64;

type Conn = BufReader<Async<TcpStream>>;

/// Plain-HTTP/1.1 client with keep-alive connection reuse per host.
/// Understands HTTP/1.0 and 1.1 responses, `content-length`, chunked
/// bodies and bodies ended by closing the connection. No TLS: `https://`
/// URLs are refused with [`Error::Invalid`] (the default client sends them
/// to [`SurfClient`](crate::SurfClient)).
#[derive(Debug, Default, Clone)]
pub struct H1Client {
    idle: Rc<RefCell<HashMap<String, Vec<Conn>>>>,
    limits: Limits,
}

/// Connections in use for one host, and who waits for one (FIFO).
#[derive(Debug, Default)]
struct HostSlots {
    in_use: usize,
    waiting: VecDeque<Rc<Waiter>>,
}

/// One request waiting for a connection slot.
#[derive(Debug, Default)]
struct Waiter {
    /// Set when a released slot was handed to this waiter.
    granted: Cell<bool>,
    /// Set when the waiting request was dropped.
    gone: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

type Limits = Rc<RefCell<HashMap<String, HostSlots>>>;

/// The right to use one connection to a host; released on drop (also when
/// the request is cancelled), straight to the next live waiter.
struct Slot {
    limits: Limits,
    key: String,
}

fn release(limits: &Limits, key: &str) {
    let next = {
        let mut all = limits.borrow_mut();
        let Some(host) = all.get_mut(key) else { return };
        loop {
            match host.waiting.pop_front() {
                Some(w) if w.gone.get() => continue,
                Some(w) => break Some(w),
                None => {
                    host.in_use -= 1;
                    break None;
                }
            }
        }
    };
    if let Some(w) = next {
        w.granted.set(true);
        if let Some(waker) = w.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        release(&self.limits, &self.key);
    }
}

/// Waits for a slot; if dropped after being granted one, passes it on.
struct Acquire {
    limits: Limits,
    key: String,
    waiter: Option<Rc<Waiter>>,
}

impl Future for Acquire {
    type Output = Slot;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Slot> {
        let this = &mut *self;
        let slot = |limits: &Limits, key: &String| Slot {
            limits: limits.clone(),
            key: key.clone(),
        };
        if let Some(w) = &this.waiter {
            if w.granted.get() {
                this.waiter = None;
                return Poll::Ready(slot(&this.limits, &this.key));
            }
            *w.waker.borrow_mut() = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut all = this.limits.borrow_mut();
        let host = all.entry(this.key.clone()).or_default();
        if host.in_use < MAX_PER_HOST {
            host.in_use += 1;
            drop(all);
            return Poll::Ready(slot(&this.limits, &this.key));
        }
        let w = Rc::new(Waiter::default());
        *w.waker.borrow_mut() = Some(cx.waker().clone());
        host.waiting.push_back(w.clone());
        this.waiter = Some(w);
        Poll::Pending
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        if let Some(w) = self.waiter.take() {
            w.gone.set(true);
            if w.granted.get() {
                release(&self.limits, &self.key);
            }
        }
    }
}

fn acquire(limits: Limits, key: String) -> Acquire {
    Acquire {
        limits,
        key,
        waiter: None,
    }
}

impl H1Client {
    /// A client with an empty connection pool.
    pub fn new() -> H1Client {
        H1Client::default()
    }
}

impl HttpClient for H1Client {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<Result<HttpResponse, Error>> {
        let idle = self.idle.clone();
        let limits = self.limits.clone();
        Box::pin(async move {
            if request.url.scheme() != "http" {
                return Err(Error::Invalid(format!(
                    "{}: this client speaks plain http only",
                    request.url
                )));
            }
            let host = request.url.host_str().unwrap_or_default().to_owned();
            let port = request.url.port_or_known_default().unwrap_or(80);
            let key = format!("{host}:{port}");
            let _slot = acquire(limits, key.clone()).await;
            let head = encode_head(&request, &host, port);
            // A pooled connection may have been closed by the server while
            // idle: if it fails before any answer, try once more on a new one.
            let pooled = idle.borrow_mut().get_mut(&key).and_then(Vec::pop);
            if let Some(conn) = pooled {
                match exchange(conn, &head, request.body.as_deref(), &request.method).await {
                    Ok((response, reusable)) => {
                        give_back(&idle, key, reusable);
                        return Ok(response);
                    }
                    Err(Attempt::Stale) => {}
                    Err(Attempt::Failed(e)) => return Err(e),
                }
            }
            let conn = connect(&host, port, &request.url).await?;
            match exchange(conn, &head, request.body.as_deref(), &request.method).await {
                Ok((response, reusable)) => {
                    give_back(&idle, key, reusable);
                    Ok(response)
                }
                Err(Attempt::Stale) => Err(Error::Network(format!(
                    "{}: the server closed the connection without answering",
                    request.url
                ))),
                Err(Attempt::Failed(e)) => Err(e),
            }
        })
    }
}

fn give_back(idle: &RefCell<HashMap<String, Vec<Conn>>>, key: String, conn: Option<Conn>) {
    if let Some(conn) = conn {
        let mut idle = idle.borrow_mut();
        let list = idle.entry(key).or_default();
        if list.len() < MAX_IDLE {
            list.push(conn);
        }
    }
}

async fn connect(host: &str, port: u16, url: &url::Url) -> Result<Conn, Error> {
    let target = (
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
    );
    // Name resolution blocks, so it runs on the thread pool.
    let addrs: Vec<SocketAddr> =
        blocking::unblock(move || target.to_socket_addrs().map(Vec::from_iter))
            .await
            .map_err(|e| Error::Network(format!("{url}: cannot resolve host: {e}")))?;
    let mut last = None;
    for addr in addrs {
        match Async::<TcpStream>::connect(addr).await {
            Ok(stream) => {
                let _ = stream.get_ref().set_nodelay(true);
                return Ok(BufReader::new(stream));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Error::Network(match last {
        Some(e) => format!("{url}: {e}"),
        None => format!("{url}: no address for host"),
    }))
}

fn encode_head(request: &HttpRequest, host: &str, port: u16) -> Vec<u8> {
    let mut target = request.url.path().to_owned();
    if let Some(q) = request.url.query() {
        target.push('?');
        target.push_str(q);
    }
    let authority = if port == 80 {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    };
    let mut head = format!("{} {target} HTTP/1.1\r\n", request.method);
    let has = |name: &str| {
        request
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    if !has("host") {
        head.push_str(&format!("host: {authority}\r\n"));
    }
    for (k, v) in &request.headers {
        if !k.eq_ignore_ascii_case("content-length") {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    let body_len = request.body.as_ref().map_or(0, Vec::len);
    if body_len > 0 || matches!(request.method.as_str(), "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("content-length: {body_len}\r\n"));
    }
    if !has("user-agent") {
        head.push_str("user-agent: luaco\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

enum Attempt {
    /// The connection died before any byte of an answer.
    Stale,
    Failed(Error),
}

/// Sends one request and reads its response. On success also returns the
/// connection if it can carry another request.
async fn exchange(
    mut conn: Conn,
    head: &[u8],
    body: Option<&[u8]>,
    method: &str,
) -> Result<(HttpResponse, Option<Conn>), Attempt> {
    let net = |e: std::io::Error| Attempt::Failed(Error::Network(e.to_string()));
    let stream = conn.get_mut();
    if stream.write_all(head).await.is_err() {
        return Err(Attempt::Stale);
    }
    if let Some(body) = body {
        if stream.write_all(body).await.is_err() {
            return Err(Attempt::Stale);
        }
    }
    let _ = stream.flush().await;

    let mut status_line = String::new();
    match conn.read_line(&mut status_line).await {
        Ok(0) | Err(_) => return Err(Attempt::Stale),
        Ok(_) => {}
    }
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    let status: u16 = match (version, parts.next().map(str::parse)) {
        ("HTTP/1.1" | "HTTP/1.0", Some(Ok(code))) => code,
        _ => {
            return Err(Attempt::Failed(Error::Network(format!(
                "malformed status line: {:?}",
                status_line.trim_end()
            ))))
        }
    };
    let mut headers = Vec::new();
    let mut head_size = status_line.len();
    loop {
        let mut line = String::new();
        let n = conn.read_line(&mut line).await.map_err(net)?;
        head_size += n;
        if n == 0 || head_size > MAX_HEAD {
            return Err(Attempt::Failed(Error::Network(
                "malformed response head".into(),
            )));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut keep_alive = match header("connection").map(str::to_ascii_lowercase) {
        Some(c) if c.contains("close") => false,
        Some(c) if c.contains("keep-alive") => true,
        _ => version == "HTTP/1.1",
    };
    let no_body = method == "HEAD" || status / 100 == 1 || status == 204 || status == 304;
    let chunked =
        header("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let length = header("content-length").and_then(|v| v.parse::<usize>().ok());
    let body = if no_body {
        Vec::new()
    } else if chunked {
        read_chunked(&mut conn).await.map_err(net)?
    } else if let Some(len) = length {
        if len > MAX_BODY {
            return Err(Attempt::Failed(Error::Network(format!(
                "response body of {len} bytes is too large"
            ))));
        }
        let mut body = vec![0; len];
        conn.read_exact(&mut body).await.map_err(net)?;
        body
    } else {
        keep_alive = false;
        let mut body = Vec::new();
        (&mut conn)
            .take(MAX_BODY as u64)
            .read_to_end(&mut body)
            .await
            .map_err(net)?;
        body
    };
    // Repeated headers are joined, as in the other backends.
    let mut merged: Vec<(String, String)> = Vec::new();
    for (k, v) in headers {
        match merged.iter_mut().find(|(mk, _)| *mk == k) {
            Some((_, mv)) => {
                mv.push_str(", ");
                mv.push_str(&v);
            }
            None => merged.push((k, v)),
        }
    }
    let response = HttpResponse {
        status,
        headers: merged,
        body,
    };
    Ok((response, keep_alive.then_some(conn)))
}

async fn read_chunked(conn: &mut Conn) -> std::io::Result<Vec<u8>> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        if conn.read_line(&mut size_line).await? == 0 {
            return Err(bad("truncated chunked body"));
        }
        let size_hex = size_line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers, then the blank line.
            loop {
                let mut line = String::new();
                if conn.read_line(&mut line).await? == 0 || line.trim_end().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(bad("response body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        conn.read_exact(&mut body[start..]).await?;
        let mut crlf = [0u8; 2];
        conn.read_exact(&mut crlf).await?;
    }
}

/// Sends `http://` to an [`H1Client`] and everything else to `tls`: the
/// default client when the `surf` feature is on.
#[derive(Debug)]
pub struct SchemeRouter {
    plain: H1Client,
    tls: Option<Rc<dyn HttpClient>>,
}

impl SchemeRouter {
    /// `http://` through a fresh [`H1Client`], other schemes through `tls`
    /// (or refused, when `None`).
    pub fn new(tls: Option<Rc<dyn HttpClient>>) -> SchemeRouter {
        SchemeRouter {
            plain: H1Client::new(),
            tls,
        }
    }
}

impl HttpClient for SchemeRouter {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<Result<HttpResponse, Error>> {
        match (&self.tls, request.url.scheme()) {
            (_, "http") | (None, _) => self.plain.send(request),
            (Some(tls), _) => tls.send(request),
        }
    }
}
