//! A hostile HTTP/1.x server on 127.0.0.1: each path is one misbehaviour
//! seen from real servers (or attackers), written byte by byte. `/ok?n=N`
//! answers `ok N` on a keep-alive connection, so a test can check that the
//! request after a hostile one gets its own response.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest a connection is held open for a client that does not hang up.
const HOLD: Duration = Duration::from_secs(20);

#[derive(Default)]
pub struct Seen {
    /// `METHOD /path?query` of every request read, in order.
    pub requests: Mutex<Vec<String>>,
    pub connections: AtomicUsize,
    /// Connections currently open.
    pub open: AtomicUsize,
}

impl Seen {
    pub fn count(&self, line: &str) -> usize {
        let all = self.requests.lock().expect("requests");
        all.iter().filter(|r| r.as_str() == line).count()
    }
}

pub struct Hostile {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    pub seen: Arc<Seen>,
}

impl Hostile {
    pub fn start() -> Hostile {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Seen::default());
        let (stop2, seen2) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                seen2.connections.fetch_add(1, Ordering::SeqCst);
                seen2.open.fetch_add(1, Ordering::SeqCst);
                let seen = seen2.clone();
                std::thread::spawn(move || {
                    serve(stream, &seen);
                    seen.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Hostile { addr, stop, seen }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads one request head and its content-length body; `None` at EOF.
fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 || head.len() > 64 << 10 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let line = text.lines().next()?.to_owned();
    let length = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length.min(1 << 20)];
    stream.read_exact(&mut body).ok()?;
    let target = line
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    Some((target, body))
}

/// Waits until the client hangs up (or [`HOLD`] passes).
fn hold(stream: &mut TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let end = Instant::now() + HOLD;
    let mut sink = [0u8; 4096];
    while Instant::now() < end {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// Writes `data` in pieces of `piece` bytes; false once the client is gone.
fn write_pieces(stream: &mut TcpStream, data: &[u8], piece: usize) -> bool {
    data.chunks(piece).all(|c| stream.write_all(c).is_ok())
}

fn ok(n: &str) -> Vec<u8> {
    let body = format!("ok {n}");
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const INJECTED: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\ninjected";

/// What to do with the connection after a response.
enum Then {
    KeepAlive,
    Close,
    Hold,
}

/// The routes that answer with fixed bytes, and what follows them.
fn canned(route: &str) -> Option<(&'static [u8], Then)> {
    Some(match route {
        // A chunk size past 64 bits.
        "/chunk_overflow" => (
            &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n1ffffffffffffffff\r\nxx"[..],
            Then::Hold,
        ),
        "/interim" => (
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </style.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nreal"[..],
            Then::KeepAlive,
        ),
        "/declared_huge" => (
            &b"HTTP/1.1 200 OK\r\ncontent-length: 268435456\r\n\r\n0123456789"[..],
            Then::Hold,
        ),
        "/short" => (
            &b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789"[..],
            Then::Close,
        ),
        "/bad_status" => (
            &b"HTTP/1.1 abc OK\r\ncontent-length: 0\r\n\r\n"[..],
            Then::Hold,
        ),
        "/garbage" => (
            &b"SSH-2.0-OpenSSH_9.6\r\n\r\n"[..],
            Then::Hold,
        ),
        "/chunk_ext" => (
            &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n"[..],
            Then::KeepAlive,
        ),
        "/http10" => (
            &b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nold school"[..],
            Then::Close,
        ),
        // A HEAD answer declares the length a GET would have.
        "/head_huge" => (
            &b"HTTP/1.1 200 OK\r\ncontent-length: 300000000\r\n\r\n"[..],
            Then::KeepAlive,
        ),
        "/switching" => (
            &b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n\x81\x05hello"[..],
            Then::Hold,
        ),
        _ => return None,
    })
}

fn serve(mut stream: TcpStream, seen: &Seen) {
    let _ = stream.set_nodelay(true);
    let mut index = 0;
    while let Some((target, _body)) = read_request(&mut stream) {
        index += 1;
        seen.requests.lock().expect("requests").push(target.clone());
        let path = target.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let (route, query) = path.split_once('?').unwrap_or((&path, ""));
        let arg = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")[..]))
                .unwrap_or("")
                .to_owned()
        };
        let s = &mut stream;
        let then = if let Some((bytes, then)) = canned(route) {
            let _ = s.write_all(bytes);
            then
        } else {
            match route {
                "/ok" => {
                    let _ = s.write_all(&ok(&arg("n")));
                    Then::KeepAlive
                }
                // The largest 64-bit chunk size, then more data than any cap.
                "/chunk_huge" => {
                    let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nffffffffffffffff\r\n",
                );
                    write_pieces(s, &vec![b'x'; 4 << 20], 16 << 10);
                    Then::Hold
                }
                "/dup_length" => {
                    let mut m =
                        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 50\r\n\r\nhello"
                            .to_vec();
                    m.extend_from_slice(INJECTED);
                    let _ = s.write_all(&m);
                    Then::KeepAlive
                }
                "/extra_bytes" => {
                    let mut m = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello".to_vec();
                    m.extend_from_slice(INJECTED);
                    let _ = s.write_all(&m);
                    Then::KeepAlive
                }
                "/close_delimited" => {
                    let kb: usize = arg("kb").parse().unwrap_or(1);
                    let _ = s.write_all(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\n");
                    write_pieces(s, &vec![b'x'; kb << 10], 16 << 10);
                    Then::Close
                }
                "/no_newline" => {
                    let _ = s.write_all(b"HTTP/1.1 200 OK");
                    write_pieces(s, &vec![b'a'; 4 << 20], 4 << 10);
                    Then::Hold
                }
                "/long_header" => {
                    let mut m = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
                    m.extend(std::iter::repeat_n(b'a', 200 << 10));
                    m.extend_from_slice(b"\r\ncontent-length: 0\r\n\r\n");
                    write_pieces(s, &m, 16 << 10);
                    Then::Hold
                }
                "/many_headers" => {
                    let mut m = b"HTTP/1.1 200 OK\r\n".to_vec();
                    for i in 0..2000 {
                        m.extend_from_slice(format!("x-h-{i}: v\r\n").as_bytes());
                    }
                    m.extend_from_slice(b"content-length: 0\r\n\r\n");
                    write_pieces(s, &m, 16 << 10);
                    Then::Hold
                }
                "/trickle" => {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n");
                    for _ in 0..1000 {
                        std::thread::sleep(Duration::from_millis(20));
                        if s.write_all(b"t").is_err() {
                            break;
                        }
                    }
                    Then::Close
                }
                "/reset" => {
                    let _ =
                        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789");
                    std::thread::sleep(Duration::from_millis(20));
                    // Linger 0: close sends RST instead of FIN.
                    let _ = socket2::SockRef::from(&*s).set_linger(Some(Duration::ZERO));
                    return;
                }
                "/silent" => Then::Hold,
                // Answered on a fresh connection; on a reused one, read and
                // dropped unanswered (a server closing a keep-alive connection
                // just as a request arrives).
                "/drop_if_reused" if index > 1 => Then::Close,
                "/drop_if_reused" => {
                    let _ = s.write_all(&ok("fresh"));
                    Then::KeepAlive
                }
                // Answered, then the connection closes shortly after: idle in
                // the client's pool, it is dead.
                "/close_soon" => {
                    let _ = s.write_all(&ok("soon"));
                    std::thread::sleep(Duration::from_millis(50));
                    Then::Close
                }
                _ => {
                    let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
                    Then::KeepAlive
                }
            }
        };
        match then {
            Then::KeepAlive => continue,
            Then::Close => break,
            Then::Hold => {
                hold(s);
                break;
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}
