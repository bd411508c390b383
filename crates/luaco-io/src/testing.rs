//! [`TestServer`]: a small HTTP/1.1 server on 127.0.0.1, for tests,
//! examples and benchmarks. Enabled by the `test-server` feature.
//!
//! It runs on its own threads (one per connection), keeps connections alive,
//! and counts what it saw so tests can assert on connection reuse and on
//! clients that hang up early.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the server has seen so far.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted.
    pub connections: AtomicUsize,
    /// Requests answered (or started).
    pub requests: AtomicUsize,
    /// `/slow` requests whose client closed the connection before the answer.
    pub closed_early: AtomicUsize,
}

/// A running test server; stops when dropped.
///
/// Routes: `GET /hello` (text), `/echo` (the request back as JSON),
/// `/status/N`, `/slow?ms=N`, `/redirect` (302 to `/hello`), `/json`,
/// `POST /complete` (a fake text completion of the body), anything else 404.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

impl TestServer {
    /// Starts a server on a free port of 127.0.0.1.
    pub fn start() -> std::io::Result<TestServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (stop2, counters2) = (stop.clone(), counters.clone());
        std::thread::Builder::new()
            .name("luaco-test-server".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    counters2.connections.fetch_add(1, Ordering::SeqCst);
                    let counters = counters2.clone();
                    let _ = std::thread::Builder::new()
                        .name("luaco-test-conn".into())
                        .spawn(move || serve(stream, &counters));
                }
            })?;
        Ok(TestServer {
            addr,
            stop,
            counters,
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it has seen.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Waits up to `limit` for `check` to hold; for counters updated by the
    /// server's threads after the client moved on.
    pub fn wait_for(&self, limit: Duration, check: impl Fn(&Counters) -> bool) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if check(&self.counters) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        check(&self.counters)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_owned());
        if k == "content-length" {
            length = v.parse().ok()?;
        }
        headers.push((k, v));
    }
    let mut body = vec![0; length.min(16 << 20)];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &[u8]) -> bool {
    let reason = match status {
        200 => "OK",
        302 => "Found",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // One write: a head and a body in two small writes meet Nagle's
    // algorithm and the client's delayed ACK, 40 ms per response.
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    stream.write_all(&message).is_ok()
}

/// Sleeps `ms`, watching for the client to hang up; `false` if it did.
fn wait_watching(stream: &TcpStream, ms: u64) -> bool {
    let end = Instant::now() + Duration::from_millis(ms);
    let _ = stream.set_nonblocking(true);
    let mut alive = true;
    while Instant::now() < end {
        let mut probe = [0u8; 1];
        match stream.peek(&mut probe) {
            Ok(0) => {
                alive = false;
                break;
            }
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => {
                alive = false;
                break;
            }
            _ => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    let _ = stream.set_nonblocking(false);
    alive
}

fn serve(stream: TcpStream, counters: &Counters) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader) {
        counters.requests.fetch_add(1, Ordering::SeqCst);
        let text = |s: &str| vec![("content-type", s.to_owned())];
        let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
        let ok = match (req.method.as_str(), path) {
            ("GET", "/hello") => {
                let mut h = text("text/plain");
                h.push(("X-Test", "yes".into()));
                respond(&mut writer, 200, &h, b"hello")
            }
            (_, "/echo") => {
                let headers: serde_json::Map<String, serde_json::Value> = req
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect();
                let echo = serde_json::json!({
                    "method": req.method,
                    "path": req.target,
                    "headers": headers,
                    "body": String::from_utf8_lossy(&req.body),
                });
                respond(
                    &mut writer,
                    200,
                    &text("application/json"),
                    echo.to_string().as_bytes(),
                )
            }
            (_, "/json") => respond(
                &mut writer,
                200,
                &text("application/json"),
                br#"{"items":[1,2,3],"name":"luaco","ok":true}"#,
            ),
            ("POST", "/complete") => {
                let prompt = String::from_utf8_lossy(&req.body);
                let body = format!("completion for: {prompt}");
                respond(&mut writer, 200, &text("text/plain"), body.as_bytes())
            }
            (_, "/redirect") => respond(&mut writer, 302, &[("location", "/hello".into())], b""),
            (_, "/slow") => {
                let ms = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("ms="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1000);
                if wait_watching(&writer, ms) {
                    respond(&mut writer, 200, &text("text/plain"), b"slow")
                } else {
                    counters.closed_early.fetch_add(1, Ordering::SeqCst);
                    false
                }
            }
            (_, p) if p.starts_with("/status/") => {
                let code = p["/status/".len()..].parse().unwrap_or(500);
                let body = format!("status {code}");
                respond(&mut writer, code, &text("text/plain"), body.as_bytes())
            }
            _ => respond(&mut writer, 404, &text("text/plain"), b"not found"),
        };
        if !ok {
            break;
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
}
