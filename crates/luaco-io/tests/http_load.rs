//! Load on a real loopback server: thousands of requests at once stay
//! within the connection caps, and many batches keep memory flat.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use luaco_io::testing::TestServer;
use luaco_io::{ClientConfig, HttpClient, HyperClient};

/// fds and RSS are the whole process's: the tests here take turns.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[test]
fn five_thousand_concurrent_gets_stay_within_the_connection_caps() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let server = TestServer::start().expect("server");
    let client = Rc::new(
        HyperClient::with_config(ClientConfig {
            max_connections_per_host: 16,
            ..ClientConfig::default()
        })
        .expect("client"),
    );
    let env = common::env(Some(client.clone() as Rc<dyn HttpClient>), None);
    let before = open_fds();
    let peak = Rc::new(Cell::new(0usize));
    let (p, c) = (peak.clone(), client.clone());
    let sample = env
        .lua
        .create_function(move |_, ()| {
            p.set(p.get().max(open_fds()));
            Ok(c.open_connections())
        })
        .expect("sample");
    env.lua.globals().set("sample", sample).unwrap();
    env.lua
        .globals()
        .set("URL", format!("{}/echo", server.url()))
        .unwrap();
    env.run_ok(
        "5000",
        r#"
        local ps = {}
        for i = 1, 5000 do ps[i] = http_get(URL .. "?i=" .. i) end
        local most = 0
        local watcher = async(function()
          while true do most = math.max(most, sample()); await(sleep(1)) end
        end)
        local rs = await(all(ps))
        watcher:cancel()
        for i = 1, 5000 do
          assert(rs[i].status == 200 and json.decode(rs[i].body).path == "/echo?i=" .. i)
        end
        assert(most <= 16, most .. " connections open at once")
        return "ok"
    "#,
    );
    let connections = server.counters().connections.load(Ordering::SeqCst);
    assert!(
        connections <= 16,
        "{connections} connections for 5,000 requests"
    );
    // The server runs in this process and holds two fds per connection
    // (the socket and a clone); the rest are the client's sockets, plus a
    // few for the loop itself.
    let grown = peak.get().saturating_sub(before);
    let client_fds = grown.saturating_sub(2 * connections);
    assert!(
        client_fds <= 16 + 4,
        "{client_fds} client fds at the peak ({grown} in all)"
    );
}

#[test]
fn batches_of_requests_keep_memory_flat() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let batches: usize = std::env::var("LUACO_HTTP_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let server = TestServer::start().expect("server");
    let env = common::env(
        Some(Rc::new(HyperClient::new()) as Rc<dyn HttpClient>),
        None,
    );
    env.lua
        .globals()
        .set("URL", format!("{}/hello", server.url()))
        .unwrap();
    let rss = Rc::new(std::cell::RefCell::new(Vec::new()));
    let r = rss.clone();
    let record = env
        .lua
        .create_function(move |_, ()| {
            r.borrow_mut().push(common::rss_kib());
            Ok(())
        })
        .expect("record");
    env.lua.globals().set("record", record).unwrap();
    env.lua.globals().set("BATCHES", batches).unwrap();
    env.run_ok(
        "batches",
        r#"
        for b = 1, BATCHES do
          local ps = {}
          for i = 1, 1000 do ps[i] = http_get(URL) end
          local rs = await(all(ps))
          for i = 1, 1000 do assert(rs[i].body == "hello") end
          ps, rs = nil, nil
          collectgarbage()
          record()
        end
        return "ok"
    "#,
    );
    let rss = rss.borrow();
    // After the first batches warm up the pool and the allocator, memory
    // stays where it is.
    let settled = rss[rss.len() / 4];
    let last = *rss.last().expect("samples");
    assert!(
        last <= settled + settled / 5 + 2048,
        "RSS grew from {settled} KiB to {last} KiB over {batches} batches: {rss:?}"
    );
}
