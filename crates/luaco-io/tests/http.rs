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

#[test]
fn https_with_a_ca_passed_in_the_config() {
    let (server, ca) = TestServer::start_tls().expect("tls server");
    let trusted = HyperClient::with_config(luaco_io::ClientConfig {
        root_certificates: vec![ca],
        webpki_roots: false,
        ..luaco_io::ClientConfig::default()
    })
    .expect("client");
    let env = common::env(Some(Rc::new(trusted) as Rc<dyn HttpClient>), None);
    env.lua.globals().set("BASE", server.url()).unwrap();
    env.lua
        .globals()
        .set("LOCALHOST", server.url().replace("127.0.0.1", "localhost"))
        .unwrap();
    env.run_ok(
        "https",
        r#"
        assert(BASE:sub(1, 8) == "https://")
        for i = 1, 5 do
          local r = await(http_get(BASE .. "/hello"))
          assert(r.status == 200 and r.body == "hello", r.body)
        end
        local e = await(http.request{ method = "POST", url = LOCALHOST .. "/echo", body = "secret" })
        assert(json.decode(e.body).body == "secret")
        local many = {}
        for i = 1, 50 do many[i] = http_get(BASE .. "/echo?i=" .. i) end
        local rs = await(all(many))
        for i = 1, 50 do assert(json.decode(rs[i].body).path == "/echo?i=" .. i) end
        return "ok"
    "#,
    );
    // Sequential requests shared one TLS connection; the burst a few more.
    let connections = server.counters().connections.load(Ordering::SeqCst);
    assert!(connections <= 34, "{connections} TLS connections");

    // Without the CA the same server is refused, as kind "network".
    let untrusted = Rc::new(HyperClient::new()) as Rc<dyn HttpClient>;
    let env = common::env(Some(untrusted), None);
    env.lua.globals().set("BASE", server.url()).unwrap();
    env.run_ok(
        "untrusted",
        r#"
        local ok, e = pcall(await, http_get(BASE .. "/hello"))
        assert(not ok and e.kind == "network", tostring(e))
        assert(e.message:find("TLS handshake failed", 1, true), e.message)
        return "ok"
    "#,
    );
}

#[test]
fn a_bad_root_certificate_is_an_error_not_a_panic() {
    let bad = HyperClient::with_config(luaco_io::ClientConfig {
        root_certificates: vec![b"-----BEGIN CERTIFICATE-----\nnot base64\n".to_vec()],
        ..luaco_io::ClientConfig::default()
    });
    assert!(matches!(bad, Err(luaco_io::Error::Invalid(_))), "{bad:?}");
}

#[test]
fn http_get_takes_options_and_request_tables_refuse_unknown_fields() {
    let server = TestServer::start().expect("server");
    let env = common::env_with(luaco_io::IoConfig {
        http: Some(Rc::new(HyperClient::new()) as Rc<dyn HttpClient>),
        http_limits: luaco_io::RequestLimits {
            max_request_body: 1000,
            ..luaco_io::RequestLimits::default()
        },
        ..luaco_io::IoConfig::default()
    });
    env.lua.globals().set("BASE", server.url()).unwrap();
    env.run_ok(
        "options",
        r#"
        -- http_get(url, opts): headers, timeout_ms, even method and body
        local r = await(http_get(BASE .. "/echo", { headers = { ["X-A"] = "1" }, timeout_ms = 5000 }))
        local echo = json.decode(r.body)
        assert(echo.method == "GET" and echo.headers["x-a"] == "1")
        local p = json.decode(await(http_get(BASE .. "/echo", { method = "PUT", body = "b" })).body)
        assert(p.method == "PUT" and p.body == "b")
        local ok, e = pcall(await, http_get(BASE .. "/slow?ms=3000", { timeout_ms = 50 }))
        assert(not ok and e.kind == "timeout", tostring(e))
        assert(e.message:find("/slow?ms=3000", 1, true), e.message)

        -- unknown fields are raised at once, naming the field
        local function raises(f, ...)
          local ok2, err = pcall(f, ...)
          assert(not ok2, "no error")
          return err
        end
        local e1 = raises(http.request, { url = BASE, timeout = 5 })
        assert(e1.kind == "type" and e1.message:find("'timeout'", 1, true), tostring(e1))
        local e2 = raises(http_get, BASE, { header = {} })
        assert(e2.kind == "type" and e2.message:find("'header'", 1, true), tostring(e2))
        local e3 = raises(http_get, BASE, { url = BASE })
        assert(e3.kind == "type" and e3.message:find("first argument", 1, true), tostring(e3))
        local e4 = raises(http_get, BASE, 5)
        assert(e4.kind == "type", tostring(e4))
        local e5 = raises(http.request, { url = BASE, [1] = "x" })
        assert(e5.kind == "type", tostring(e5))

        -- credentials in a URL are refused, and not echoed
        local okc, ec = pcall(await, http_get("http://user:secret@127.0.0.1:1/"))
        assert(not okc and ec.kind == "type" and not ec.message:find("secret", 1, true), tostring(ec))

        -- the body's framing is the client's: a wrong content-length or a
        -- transfer-encoding header is refused, a right one is fine
        local okl, el = pcall(await, http.request{ method = "POST", url = BASE .. "/echo", body = "abc", headers = { ["Content-Length"] = "10" } })
        assert(not okl and el.kind == "type" and el.message:find("content-length", 1, true), tostring(el))
        local okt, et = pcall(await, http.request{ method = "POST", url = BASE .. "/echo", body = "abc", headers = { ["transfer-encoding"] = "chunked" } })
        assert(not okt and et.kind == "type", tostring(et))
        local rl = await(http.request{ method = "POST", url = BASE .. "/echo", body = "abc", headers = { ["content-length"] = "3" } })
        assert(json.decode(rl.body).body == "abc")

        -- the request body cap rejects with kind "limit", naming it
        local okb, eb = pcall(await, http.request{ method = "POST", url = BASE .. "/echo", body = string.rep("x", 1001) })
        assert(not okb and eb.kind == "limit" and eb.message:find("max_request_body", 1, true), tostring(eb))
        assert(await(http.request{ method = "POST", url = BASE .. "/echo", body = string.rep("x", 1000) }).status == 200)
        return "ok"
    "#,
    );
}
