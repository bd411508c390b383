//! [`TestServer`]: a small HTTP/1.1 server on 127.0.0.1, plain or with TLS
//! (a fresh self-signed CA per server), for tests, examples and benchmarks.
//! Enabled by the `test-server` feature.
//!
//! It runs on its own threads (one per connection), keeps connections alive,
//! and counts what it saw so tests can assert on connection reuse and on
//! clients that hang up early.

use std::io::{BufRead, BufReader, Read, Write};

use futures_rustls::rustls;
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
    tls: bool,
}

/// A rustls server configuration for `localhost` and `127.0.0.1`, whose
/// certificate is signed by a CA made on the spot, offering `alpn`; and
/// that CA's certificate (DER) for the client to trust. For servers of
/// your own in tests (an HTTP/2 one, say).
pub fn localhost_tls(alpn: &[&[u8]]) -> std::io::Result<(Arc<rustls::ServerConfig>, Vec<u8>)> {
    self_signed(alpn).map_err(std::io::Error::other)
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

fn self_signed(alpn: &[&[u8]]) -> Result<(Arc<rustls::ServerConfig>, Vec<u8>), AnyError> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate()?;
    let ca = ca_params.self_signed(&ca_key)?;
    let leaf_params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    let leaf_key = KeyPair::generate()?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key)?;
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok((Arc::new(config), ca.der().to_vec()))
}

impl TestServer {
    /// Starts a server on a free port of 127.0.0.1.
    pub fn start() -> std::io::Result<TestServer> {
        Self::start_with(None)
    }

    /// Starts an https server on a free port of 127.0.0.1, with a
    /// certificate for `localhost` and `127.0.0.1` issued by a CA made for
    /// it. Returns the server and the CA certificate (DER), which a client
    /// must trust (`ClientConfig::root_certificates`).
    pub fn start_tls() -> std::io::Result<(TestServer, Vec<u8>)> {
        let (config, ca) = localhost_tls(&[b"http/1.1"])?;
        let mut server = Self::start_with(Some(config))?;
        server.tls = true;
        Ok((server, ca))
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> std::io::Result<TestServer> {
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
                    let tls = tls.clone();
                    let _ = std::thread::Builder::new()
                        .name("luaco-test-conn".into())
                        .spawn(move || {
                            let _ = stream.set_nodelay(true);
                            let Ok(raw) = stream.try_clone() else { return };
                            match tls.map(rustls::ServerConnection::new) {
                                None => serve(stream, &raw, &counters),
                                Some(Ok(conn)) => {
                                    serve(rustls::StreamOwned::new(conn, stream), &raw, &counters)
                                }
                                Some(Err(_)) => {}
                            }
                            let _ = raw.shutdown(Shutdown::Both);
                        });
                }
            })?;
        Ok(TestServer {
            addr,
            stop,
            counters,
            tls: false,
        })
    }

    /// `http://127.0.0.1:PORT` (`https://` for a TLS server), without a
    /// trailing slash.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
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

fn read_request<S: Read>(reader: &mut BufReader<S>) -> Option<Request> {
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

fn respond(stream: &mut impl Write, status: u16, headers: &[(&str, String)], body: &[u8]) -> bool {
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

/// Serves requests on `stream` (plain or TLS); `raw` is its socket, for
/// noticing a client that hangs up.
fn serve<S: Read + Write>(stream: S, raw: &TcpStream, counters: &Counters) {
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader) {
        let writer = reader.get_mut();
        counters.requests.fetch_add(1, Ordering::SeqCst);
        let text = |s: &str| vec![("content-type", s.to_owned())];
        let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
        let ok = match (req.method.as_str(), path) {
            ("GET", "/hello") => {
                let mut h = text("text/plain");
                h.push(("X-Test", "yes".into()));
                respond(writer, 200, &h, b"hello")
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
                    writer,
                    200,
                    &text("application/json"),
                    echo.to_string().as_bytes(),
                )
            }
            (_, "/json") => respond(
                writer,
                200,
                &text("application/json"),
                br#"{"items":[1,2,3],"name":"luaco","ok":true}"#,
            ),
            ("POST", "/complete") => {
                let prompt = String::from_utf8_lossy(&req.body);
                let body = format!("completion for: {prompt}");
                respond(writer, 200, &text("text/plain"), body.as_bytes())
            }
            (_, "/redirect") => respond(writer, 302, &[("location", "/hello".into())], b""),
            (_, "/slow") => {
                let ms = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("ms="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1000);
                if wait_watching(raw, ms) {
                    respond(writer, 200, &text("text/plain"), b"slow")
                } else {
                    counters.closed_early.fetch_add(1, Ordering::SeqCst);
                    false
                }
            }
            (_, p) if p.starts_with("/status/") => {
                let code = p["/status/".len()..].parse().unwrap_or(500);
                let body = format!("status {code}");
                respond(writer, code, &text("text/plain"), body.as_bytes())
            }
            _ => respond(writer, 404, &text("text/plain"), b"not found"),
        };
        if !ok || writer.flush().is_err() {
            break;
        }
    }
}
