//! Concurrent GETs against a server on 127.0.0.1: a luaco script vs the
//! same client driven from Rust alone, in one run. `cargo xtask bench`
//! prints the ratio (throughput of luaco / throughput of plain Rust).
//!
//! 1,000 at once through the default plain-HTTP client; 250 through surf,
//! whose curl agent thread dies ("Unrecoverable error in select/poll") at
//! 1,000 concurrent requests with the server in the same process.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use futures_lite::future;
use luaco::io::testing::TestServer;
use luaco::io::{H1Client, HttpClient, HttpRequest, SurfClient};
use luaco::{Config, Runtime, ScriptContext, ScriptValue};

fn request(url: &url::Url) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        url: url.clone(),
        headers: Vec::new(),
        body: None,
    }
}

/// All requests at once from Rust, on the same single-threaded executor
/// family luaco uses.
fn rust_alone(client: &Rc<dyn HttpClient>, url: &url::Url, requests: i64) -> Duration {
    let start = Instant::now();
    let ex = async_executor::LocalExecutor::new();
    let tasks: Vec<_> = (0..requests)
        .map(|_| {
            let (c, u) = (client.clone(), url.clone());
            ex.spawn(async move { c.send(request(&u)).await.map(|r| r.status) })
        })
        .collect();
    future::block_on(ex.run(async {
        for t in tasks {
            assert_eq!(t.await.expect("response"), 200);
        }
    }));
    start.elapsed()
}

fn luaco_script(rt: &Runtime, url: &str, requests: i64) -> Duration {
    let start = Instant::now();
    let p = rt
        .create_async(
            &format!(
                r#"
            local ps = {{}}
            for i = 1, {requests} do ps[i] = http_get("{url}") end
            local rs = await(all(ps))
            for i = 1, rs.n do assert(rs[i].status == 200) end
            return rs.n
        "#
            ),
            ScriptContext::new("bench"),
        )
        .expect("compile");
    assert_eq!(
        rt.block_on(&p).expect("script"),
        ScriptValue::Integer(requests)
    );
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let server = TestServer::start().expect("server");
    let url: url::Url = format!("{}/hello", server.url()).parse().expect("url");
    let mut g = c.benchmark_group("http");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.warm_up_time(Duration::from_secs(1));
    for (name, client, requests) in [
        ("h1", Rc::new(H1Client::new()) as Rc<dyn HttpClient>, 1000),
        (
            "surf",
            Rc::new(SurfClient::new()) as Rc<dyn HttpClient>,
            250,
        ),
    ] {
        g.bench_function(format!("{name}_rust_alone"), |b| {
            b.iter_custom(|n| (0..n).map(|_| rust_alone(&client, &url, requests)).sum())
        });
        let rt = Runtime::new(Config {
            http_client: Some(client.clone()),
            ..Config::default()
        })
        .expect("runtime");
        g.bench_function(format!("{name}_luaco_script"), |b| {
            b.iter_custom(|n| {
                (0..n)
                    .map(|_| luaco_script(&rt, url.as_str(), requests))
                    .sum()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
