//! HTTP through the real hyper client against a real server on 127.0.0.1,
//! started by the test itself.

mod common;

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use luaco_io::testing::TestServer;
use luaco_io::{HttpClient, HyperClient, MockHttp};

/// A loopback port that nothing listens on.
fn refused_url() -> String {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/")
}

/// Runs the shared script; `max_connections` bounds the connections 200
/// concurrent requests may open.
fn behaviour_suite(client: Rc<dyn HttpClient>, max_connections: Option<usize>) {
    let server = TestServer::start().expect("server");
    let env = common::env(Some(client), None);
    env.lua
        .globals()
        .set("BASE", server.url())
        .expect("test setup");
    env.lua
        .globals()
        .set("REFUSED", refused_url())
        .expect("test setup");
    env.run_ok("http.lua", &common::fixture("http.lua"));
    let c = server.counters();
    let requests = c.requests.load(Ordering::SeqCst);
    let connections = c.connections.load(Ordering::SeqCst);
    assert!(requests >= 207, "{requests} requests");
    // 200 requests at once share a bounded number of connections per host.
    if let Some(bound) = max_connections {
        assert!(
            connections <= bound,
            "{connections} connections for {requests} requests"
        );
    }
    // Sequential requests reuse one connection.
    env.run_ok(
        "reuse",
        r#"for i = 1, 20 do assert(await(http_get(BASE .. "/hello")).status == 200) end return "ok""#,
    );
    let more = c.connections.load(Ordering::SeqCst) - connections;
    assert!(
        more <= 1,
        "{more} new connections for 20 sequential requests"
    );
}

#[test]
fn hyper_backend_behaviour() {
    // 32 per host, plus the few made before and after the burst.
    behaviour_suite(Rc::new(HyperClient::new()), Some(36));
}

#[cfg(feature = "surf")]
#[test]
fn surf_backend_behaviour() {
    // surf's curl pool does not keep to its per-host limit: no bound.
    behaviour_suite(Rc::new(luaco_io::SurfClient::new()), None);
}

#[test]
fn cancelling_a_task_closes_its_connection() {
    let server = TestServer::start().expect("server");
    let env = common::env(
        Some(Rc::new(HyperClient::new()) as Rc<dyn HttpClient>),
        None,
    );
    env.lua.globals().set("BASE", server.url()).unwrap();
    env.run_ok(
        "cancel",
        r#"
        local t = async(function() return await(http_get(BASE .. "/slow?ms=5000")) end)
        await(sleep(100))                 -- the request is in flight
        assert(t:cancel())
        local ok, e = pcall(await, t)
        assert(not ok and e.kind == "cancelled")
        return "ok"
    "#,
    );
    assert!(
        server.wait_for(Duration::from_secs(3), |c| c
            .closed_early
            .load(Ordering::SeqCst)
            == 1),
        "the server never saw the connection close"
    );
    // Nothing keeps the loop alive afterwards.
    assert_eq!(env.sched.future_count(), 0);
    assert!(env.sched.is_idle());
}

#[test]
fn timeout_closes_the_connection_too() {
    let server = TestServer::start().expect("server");
    let env = common::env(
        Some(Rc::new(HyperClient::new()) as Rc<dyn HttpClient>),
        None,
    );
    env.lua.globals().set("BASE", server.url()).unwrap();
    env.run_ok(
        "timeout",
        r#"
        local ok, e = pcall(await, http.request{ url = BASE .. "/slow?ms=5000", timeout_ms = 100 })
        assert(not ok and e.kind == "timeout")
        return "ok"
    "#,
    );
    assert!(server.wait_for(Duration::from_secs(3), |c| c
        .closed_early
        .load(Ordering::SeqCst)
        == 1));
}

#[test]
fn no_client_means_permission_denied() {
    let env = common::env(None, None);
    env.run_ok(
        "denied",
        r#"
        local ok, e = pcall(await, http_get("http://127.0.0.1:1/"))
        assert(not ok and e.kind == "permission", tostring(e))
        return "ok"
    "#,
    );
}

#[test]
fn the_mock_backend_answers_scripts() {
    let mock = Rc::new(
        MockHttp::new()
            .route("GET", "http://api.test/user", 200, r#"{"name":"ada"}"#)
            .fail("GET", "http://api.test/down", "connection reset"),
    );
    let env = common::env(Some(mock.clone() as Rc<dyn HttpClient>), None);
    env.run_ok(
        "mock",
        r#"
        assert(json_parse(await(http_get("http://api.test/user")).body).name == "ada")
        assert(await(http_get("http://api.test/other")).status == 404)
        local ok, e = pcall(await, http_get("http://api.test/down"))
        assert(not ok and e.kind == "network" and e.message:find("connection reset", 1, true))
        return "ok"
    "#,
    );
    let sent = mock.requests();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0].url.as_str(), "http://api.test/user");
}
