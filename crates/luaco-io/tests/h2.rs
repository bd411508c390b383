//! HTTP/2, chosen by ALPN, against a hyper HTTP/2 server with TLS on
//! 127.0.0.1 that the test starts: concurrent requests share one
//! connection, and a cancelled request leaves the connection usable.

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::net::TcpListener;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_executor::LocalExecutor;
use async_io::{Async, Timer};
use bytes::Bytes;
use futures_rustls::TlsAcceptor;
use http_body_util::Full;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use luaco_io::testing::localhost_tls;
use luaco_io::{ClientConfig, HttpClient, HyperClient};
use smol_hyper::rt::FuturesIo;

#[derive(Clone)]
struct LocalExec(Rc<LocalExecutor<'static>>);

impl<F: Future + 'static> hyper::rt::Executor<F> for LocalExec {
    fn execute(&self, fut: F) {
        self.0.spawn(fut).detach();
    }
}

/// Answers `h2 PATH` (after `ms` milliseconds for `/slow?ms=N`).
async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    if let Some(ms) = req.uri().query().and_then(|q| q.strip_prefix("ms=")) {
        Timer::after(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    }
    let version = format!("{:?} {}", req.version(), req.uri().path());
    let mut response = hyper::Response::new(Full::new(Bytes::from(version)));
    let headers = match req.uri().path() {
        // 32 KB: twice the client's cap in the test.
        "/big-head" => 8,
        // 160 KB: in more CONTINUATION frames than h2 accepts.
        "/huge-head" => 40,
        _ => 0,
    };
    if headers > 0 {
        let value = hyper::header::HeaderValue::from_str(&"x".repeat(4000)).expect("value");
        for i in 0..headers {
            let name = hyper::header::HeaderName::from_bytes(format!("x-big-{i}").as_bytes())
                .expect("name");
            response.headers_mut().insert(name, value.clone());
        }
    }
    Ok(response)
}

/// Starts the server; returns its URL, the CA to trust and a connection count.
fn start() -> (String, Vec<u8>, Arc<AtomicUsize>) {
    let (config, ca) = localhost_tls(&[b"h2"]).expect("tls");
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    let url = format!("https://{}", listener.local_addr().expect("addr"));
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    std::thread::spawn(move || {
        let ex = Rc::new(LocalExecutor::new());
        let listener = Async::new(listener).expect("async listener");
        let acceptor = TlsAcceptor::from(config);
        async_io::block_on(ex.run(async {
            while let Ok((tcp, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                let (acceptor, exec) = (acceptor.clone(), LocalExec(ex.clone()));
                ex.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = http2::Builder::new(exec)
                        .serve_connection(FuturesIo::new(tls), service_fn(answer))
                        .await;
                })
                .detach();
            }
        }));
    });
    (url, ca, connections)
}

#[test]
fn concurrent_requests_share_one_http2_connection() {
    let (url, ca, connections) = start();
    let client = HyperClient::with_config(ClientConfig {
        root_certificates: vec![ca],
        ..ClientConfig::default()
    })
    .expect("client");
    let env = common::env(Some(Rc::new(client) as Rc<dyn HttpClient>), None);
    env.lua.globals().set("BASE", url).unwrap();
    env.run_ok(
        "h2",
        r#"
        -- the first request sets the connection up
        assert(await(http_get(BASE .. "/first")).body == "HTTP/2.0 /first")
        local ps = {}
        for i = 1, 100 do ps[i] = http_get(BASE .. "/n" .. i) end
        local rs = await(all(ps))
        for i = 1, 100 do assert(rs[i].body == "HTTP/2.0 /n" .. i, rs[i].body) end

        -- a cancelled stream does not take the connection with it
        local ok, e = pcall(await, http_get(BASE .. "/slow?ms=5000", { timeout_ms = 50 }))
        assert(not ok and e.kind == "timeout", tostring(e))
        assert(await(http_get(BASE .. "/after")).body == "HTTP/2.0 /after")
        return "ok"
    "#,
    );
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[test]
fn an_http2_head_past_the_cap_is_a_limit_error() {
    let (url, ca, _) = start();
    // Each on a connection of its own: h2 gives up a connection whose
    // header compression state a skipped head left behind.
    for path in ["/big-head", "/huge-head"] {
        let client = HyperClient::with_config(ClientConfig {
            root_certificates: vec![ca.clone()],
            max_response_head: 16 << 10,
            ..ClientConfig::default()
        })
        .expect("client");
        let env = common::env(Some(Rc::new(client) as Rc<dyn HttpClient>), None);
        env.lua.globals().set("BASE", url.clone()).unwrap();
        env.lua.globals().set("PATH", path).unwrap();
        env.run_ok(
            "h2 head",
            r#"
            local ok, e = pcall(await, http_get(BASE .. PATH))
            assert(not ok and e.kind == "limit", PATH .. ": " .. tostring(e and e.kind) .. ": " .. tostring(e))
            assert(e.message:find("max_response_head", 1, true), e.message)
            -- the client still serves (on a new connection if need be)
            assert(await(http_get(BASE .. "/after")).body == "HTTP/2.0 /after")
            return "ok"
        "#,
        );
    }
}
