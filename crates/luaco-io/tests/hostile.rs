//! The HTTP client against a hostile server on 127.0.0.1: for each
//! misbehaviour, the exact outcome (a value or an error kind), no panic, no
//! hang, bounded memory, and the next request on the same client gets its
//! own response.

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hostile::Hostile;
use luaco_io::{ClientConfig, HttpClient, HyperClient, IoConfig, RequestLimits};

/// Small caps, so crossing them is quick to show.
fn small_client() -> Rc<HyperClient> {
    Rc::new(
        HyperClient::with_config(ClientConfig {
            max_response_body: 1 << 20,
            max_response_head: 16 << 10,
            max_response_headers: 100,
            ..ClientConfig::default()
        })
        .expect("client"),
    )
}

fn env_for(client: Rc<HyperClient>, server: &Hostile, limits: RequestLimits) -> common::Env {
    let env = common::env_with(IoConfig {
        http: Some(client as Rc<dyn HttpClient>),
        http_limits: limits,
        ..IoConfig::default()
    });
    env.lua.globals().set("BASE", server.url()).expect("BASE");
    env.lua.load(HELPERS).exec().expect("helpers");
    env
}

const HELPERS: &str = r#"
    local n = 0
    -- The request after a hostile one must get its own answer.
    function next_ok()
      n = n + 1
      local r = await(http_get(BASE .. "/ok?n=" .. n))
      assert(r.status == 200 and r.body == "ok " .. n,
        "desynchronised: asked for 'ok " .. n .. "', got '" .. r.body .. "'")
    end
    function fails(path, kind, pattern, opts)
      local ok, e = pcall(await, http_get(BASE .. path, opts or { timeout_ms = 10000 }))
      assert(not ok, path .. " succeeded")
      assert(e.kind == kind, path .. ": wanted kind " .. kind .. ", got " .. tostring(e))
      if pattern then
        assert(e.message:find(pattern), path .. ": message '" .. e.message .. "' lacks " .. pattern)
      end
      next_ok()
      return e
    end
    function answers(path, status, body)
      local r = await(http_get(BASE .. path, { timeout_ms = 10000 }))
      assert(r.status == status and r.body == body,
        path .. ": got " .. r.status .. " '" .. r.body:sub(1, 40) .. "'")
      next_ok()
      return r
    end
"#;

#[test]
fn each_misbehaviour_has_its_outcome_and_the_next_request_its_own_answer() {
    let server = Hostile::start();
    let env = env_for(small_client(), &server, RequestLimits::default());
    env.run_ok(
        "hostile",
        r#"
        next_ok()
        -- framing attacks
        fails("/chunk_overflow", "network", "invalid chunk size")
        fails("/chunk_huge", "limit", "max_response_body")
        fails("/dup_length", "network", "invalid response")
        answers("/extra_bytes", 200, "hello")       -- the stray bytes never reach the next request
        fails("/bad_status", "network", "invalid response")
        fails("/garbage", "network", "invalid response")
        -- interim responses are skipped, the final one is the answer
        answers("/interim", 200, "real")
        -- an upgrade nobody asked for is an answer, and ends the connection
        answers("/switching", 101, "")
        -- sizes: heads and bodies are capped, never preallocated or truncated
        fails("/declared_huge", "limit", "max_response_body")
        fails("/close_delimited?kb=2048", "limit", "max_response_body")
        fails("/no_newline", "limit", "max_response_head")
        fails("/long_header", "limit", "max_response_head")
        fails("/many_headers", "limit", "max_response_headers")
        -- a HEAD's declared length has no body behind it: not over any cap
        local head = await(http.request{ method = "HEAD", url = BASE .. "/head_huge" })
        assert(head.status == 200 and head.body == "" and head.headers["content-length"] == "300000000")
        next_ok()
        -- broken bodies
        fails("/short", "network")
        fails("/reset", "network")
        -- legitimate but unusual
        answers("/chunk_ext", 200, "hello world")
        answers("/http10", 200, "old school")
        answers("/close_delimited?kb=512", 200, string.rep("x", 512 * 1024))
        -- slow and silent servers end at the timeout
        local t0 = now()
        fails("/trickle", "timeout", "no complete response within 300 ms", { timeout_ms = 300 })
        fails("/silent", "timeout", "/silent: no complete response", { timeout_ms = 300 })
        assert(now() - t0 < 5000, "timeouts fired late: " .. (now() - t0) .. " ms")
        return "ok"
    "#,
    );
    // Every connection the client gave up on is closed: nothing held open.
    assert!(
        wait(|| server.seen.open.load(Ordering::SeqCst) <= 1),
        "{} connections still open",
        server.seen.open.load(Ordering::SeqCst)
    );
}

#[test]
fn a_silent_server_meets_the_default_timeout() {
    let server = Hostile::start();
    let limits = RequestLimits {
        timeout: Some(Duration::from_millis(200)),
        ..RequestLimits::default()
    };
    let env = env_for(small_client(), &server, limits);
    env.run_ok(
        "default timeout",
        r#"
        local ok, e = pcall(await, http_get(BASE .. "/silent"))
        assert(not ok and e.kind == "timeout", tostring(e))
        -- a request's own timeout_ms overrides the default
        local r = await(http_get(BASE .. "/ok?n=x", { timeout_ms = 5000 }))
        assert(r.body == "ok x")
        return "ok"
    "#,
    );
}

#[test]
fn only_idempotent_requests_are_retried_on_a_dead_reused_connection() {
    let server = Hostile::start();
    let env = env_for(small_client(), &server, RequestLimits::default());
    env.run_ok(
        "retries",
        r#"
        -- A POST on a reused connection that the server drops unanswered
        -- is not sent again: it fails, and the server saw it once.
        next_ok()
        local ok, e = pcall(await, http.request{ method = "POST", url = BASE .. "/drop_if_reused", body = "x" })
        assert(not ok and e.kind == "network", tostring(e))
        -- A GET in the same spot is retried once on a fresh connection.
        next_ok()
        local r = await(http_get(BASE .. "/drop_if_reused"))
        assert(r.body == "ok fresh", r.body)
        return "ok"
    "#,
    );
    assert_eq!(server.seen.count("POST /drop_if_reused"), 1);
    assert_eq!(server.seen.count("GET /drop_if_reused"), 2);
}

#[test]
fn a_pooled_connection_the_server_closed_is_not_used_for_a_post() {
    let server = Hostile::start();
    let env = env_for(small_client(), &server, RequestLimits::default());
    env.run_ok(
        "stale",
        r#"
        assert(await(http_get(BASE .. "/close_soon")).body == "ok soon")
        await(sleep(300))      -- the server has closed the idle connection by now
        local r = await(http.request{ method = "POST", url = BASE .. "/ok?n=post", body = "once" })
        assert(r.body == "ok post", r.body)
        return "ok"
    "#,
    );
    assert_eq!(server.seen.count("POST /ok?n=post"), 1);
    assert_eq!(server.seen.connections.load(Ordering::SeqCst), 2);
}

#[test]
fn thirty_huge_declared_bodies_cost_no_memory_up_front() {
    // The default cap (256 MiB) is not crossed by the declared 256 MiB:
    // the bodies are read as they come, and they never come.
    let server = Hostile::start();
    let env = env_for(
        Rc::new(HyperClient::new()),
        &server,
        RequestLimits::default(),
    );
    let before = common::rss_kib();
    env.run_ok(
        "huge",
        r#"
        local ps = {}
        for i = 1, 30 do ps[i] = http_get(BASE .. "/declared_huge", { timeout_ms = 500 }) end
        local rs = await(all_settled(ps))
        for i = 1, 30 do
          assert(rs[i].status == "rejected" and rs[i].reason.kind == "timeout", tostring(rs[i].reason))
        end
        return "ok"
    "#,
    );
    let grown = common::rss_kib().saturating_sub(before);
    assert!(grown < 64 << 10, "RSS grew by {grown} KiB");
}

fn wait(check: impl Fn() -> bool) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < end {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    check()
}
