//! HTTP load against a loopback server (the URL given, or one started in
//! this process), printing a `result` line that `cargo xtask bench` reads.
//!
//! - `rust N URL [INFLIGHT]`: N GETs from Rust alone on a `HyperClient`,
//!   INFLIGHT at once (200): the baseline for the same requests from a
//!   luaco script (`benches/workloads/http_get.lua`).
//! - `batches B [URL]`: a luaco script sends B batches of 1,000 GETs and
//!   samples its RSS after each, to show memory stays flat.
//!
//! Run: `cargo run --release -p luaco --example http_load -- batches 200`

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use luaco::io::testing::TestServer;
use luaco::io::{HttpClient, HttpRequest, HyperClient};
use luaco::{Config, Runtime, ScriptContext};

/// A field of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn rust_alone(n: usize, url: &str, inflight: usize) -> Result<(), Box<dyn std::error::Error>> {
    let client: Rc<dyn HttpClient> = Rc::new(HyperClient::new());
    let parsed: url::Url = url.parse()?;
    let start = Instant::now();
    let ex = async_executor::LocalExecutor::new();
    let workers: Vec<_> = (0..inflight)
        .map(|_| {
            let (c, u) = (client.clone(), parsed.clone());
            ex.spawn(async move {
                for _ in 0..n / inflight {
                    let r = c.send(HttpRequest::get(u.clone())).await?;
                    if r.status != 200 {
                        return Err(format!("status {}", r.status).into());
                    }
                }
                Ok::<(), Box<dyn std::error::Error>>(())
            })
        })
        .collect();
    async_io::block_on(ex.run(async {
        for w in workers {
            w.await?;
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    }))?;
    println!(
        "result ms={:.1} rss_kb={}",
        start.elapsed().as_secs_f64() * 1000.0,
        status_kib("VmHWM:")
    );
    Ok(())
}

fn batches(count: usize, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::new(Config::default())?;
    let samples = Rc::new(RefCell::new(Vec::new()));
    let s = samples.clone();
    let record = rt.lua().create_function(move |_, ()| {
        s.borrow_mut().push(status_kib("VmRSS:"));
        Ok(())
    })?;
    rt.lua().globals().set("record", record)?;
    rt.lua().globals().set("URL", url)?;
    rt.lua().globals().set("BATCHES", count)?;
    let start = Instant::now();
    let p = rt.create_async(
        "for b = 1, BATCHES do
           local ps = {}
           for i = 1, 1000 do ps[i] = http_get(URL) end
           local rs = await(all(ps))
           for i = 1, 1000 do assert(rs[i].status == 200) end
           ps, rs = nil, nil
           collectgarbage()
           record()
         end",
        ScriptContext::new("batches"),
    )?;
    rt.block_on(&p)?;
    let samples = samples.borrow();
    let at = |i: usize| samples.get(i).copied().unwrap_or(0);
    println!(
        "result requests={} ms={:.0} rss_kb_after_first={} rss_kb_at_tenth={} rss_kb_last={} rss_kb_max={}",
        count * 1000,
        start.elapsed().as_secs_f64() * 1000.0,
        at(0),
        at(samples.len() / 10),
        at(samples.len().saturating_sub(1)),
        samples.iter().copied().max().unwrap_or(0)
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let number = |i: usize, default: usize| arg(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    // A server in this process when no URL is given.
    let local = TestServer::start()?;
    let local_url = format!("{}/hello", local.url());
    match arg(0) {
        Some("rust") => rust_alone(
            number(1, 2000),
            arg(2).unwrap_or(&local_url),
            number(3, 200),
        ),
        Some("batches") => batches(number(1, 20), arg(2).unwrap_or(&local_url)),
        _ => Err("usage: http_load rust N [URL] [INFLIGHT] | batches B [URL]".into()),
    }
}
