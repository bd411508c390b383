//! 1,000 concurrent GETs against a loopback server, either from a luaco
//! script or from Rust alone, printing the wall time and the process's peak
//! memory. `cargo xtask bench` runs both and compares.
//!
//! Run: `cargo run --release -p luaco --example http_load -- luaco|rust [N]`

use std::rc::Rc;
use std::time::Instant;

use luaco::io::testing::TestServer;
use luaco::io::{HttpClient, HttpRequest, HyperClient};
use luaco::{Config, Runtime, ScriptContext};

/// The process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "luaco".into());
    let n: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let server = TestServer::start()?;
    let url = format!("{}/hello", server.url());
    let before = peak_rss_kib();
    let start = Instant::now();
    match mode.as_str() {
        "rust" => {
            let client: Rc<dyn HttpClient> = Rc::new(HyperClient::new());
            let parsed: url::Url = url.parse()?;
            let ex = async_executor::LocalExecutor::new();
            let tasks: Vec<_> = (0..n)
                .map(|_| {
                    let (c, u) = (client.clone(), parsed.clone());
                    ex.spawn(async move { c.send(HttpRequest::get(u)).await.map(|r| r.status) })
                })
                .collect();
            async_io::block_on(ex.run(async {
                for t in tasks {
                    assert_eq!(t.await.expect("response"), 200);
                }
            }));
        }
        _ => {
            let rt = Runtime::new(Config::default())?;
            rt.lua().globals().set("URL", url)?;
            rt.lua().globals().set("N", n)?;
            let p = rt.create_async(
                "local ps = {} for i = 1, N do ps[i] = http_get(URL) end
                 local rs = await(all(ps)) for i = 1, rs.n do assert(rs[i].status == 200) end",
                ScriptContext::new("load"),
            )?;
            rt.block_on(&p)?;
        }
    }
    println!(
        "mode={mode} requests={n} ms={:.1} peak_rss_kib={} baseline_rss_kib={before}",
        start.elapsed().as_secs_f64() * 1000.0,
        peak_rss_kib()
    );
    Ok(())
}
