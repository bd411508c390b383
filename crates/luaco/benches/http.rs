//! 2,000 GETs with 200 in flight against a server on 127.0.0.1 (200
//! workers, ten requests each), from a luaco script and from Rust alone on
//! the same [`HyperClient`], in one run. `cargo xtask bench` prints the
//! ratio (throughput of luaco / throughput of plain Rust).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use luaco::io::testing::TestServer;
use luaco::io::{HttpClient, HttpRequest, HyperClient};
use luaco::{Config, Runtime, ScriptContext, ScriptValue};

const WORKERS: i64 = 200;
const EACH: i64 = 10;

/// The same requests from Rust, on the executor family luaco uses.
fn rust_alone(client: &Rc<dyn HttpClient>, url: &url::Url) -> Duration {
    let start = Instant::now();
    let ex = async_executor::LocalExecutor::new();
    let tasks: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (c, u) = (client.clone(), url.clone());
            ex.spawn(async move {
                for _ in 0..EACH {
                    let r = c.send(HttpRequest::get(u.clone())).await.expect("response");
                    assert_eq!(r.status, 200);
                }
            })
        })
        .collect();
    async_io::block_on(ex.run(async {
        for t in tasks {
            t.await;
        }
    }));
    start.elapsed()
}

fn luaco_script(rt: &Runtime, url: &str) -> Duration {
    let start = Instant::now();
    let p = rt
        .create_async(
            format!(
                r#"
            local workers = {{}}
            for w = 1, {WORKERS} do
              workers[w] = async(function()
                for _ = 1, {EACH} do assert(await(http_get("{url}")).status == 200) end
              end)
            end
            await(all(workers))
            return {WORKERS} * {EACH}
        "#
            ),
            ScriptContext::new("bench"),
        )
        .expect("compile");
    assert_eq!(
        rt.block_on(&p).expect("script"),
        ScriptValue::Integer(WORKERS * EACH)
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
    let client = Rc::new(HyperClient::new()) as Rc<dyn HttpClient>;
    g.bench_function("hyper_rust_alone", |b| {
        b.iter_custom(|n| (0..n).map(|_| rust_alone(&client, &url)).sum())
    });
    let rt = Runtime::new(Config {
        http_client: Some(client.clone()),
        ..Config::default()
    })
    .expect("runtime");
    g.bench_function("hyper_luaco_script", |b| {
        b.iter_custom(|n| (0..n).map(|_| luaco_script(&rt, url.as_str())).sum())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
