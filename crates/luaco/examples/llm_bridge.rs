//! The host bridge: a Rust async function ("complete a prompt", served by a
//! local HTTP server standing in for an LLM API) exposed to Lua with
//! `register_async`, then called from many Lua tasks at once.
//!
//! Run: `cargo run -p luaco --example llm_bridge`. To copy it into your
//! own crate, depend on `luaco` with the `test-server` feature (for the
//! stand-in server); everything else it uses is re-exported by luaco.

use std::rc::Rc;
use std::time::Duration;

use luaco::io::testing::TestServer;
use luaco::io::{HttpClient, HttpRequest, HyperClient};
use luaco::{Config, ErrorKind, Runtime, ScriptContext, ScriptError, ScriptValue};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The "model API": a server on 127.0.0.1 that answers POST /complete.
    let server = TestServer::start()?;
    let endpoint: luaco::io::url::Url = format!("{}/complete", server.url()).parse()?;

    let rt = Runtime::new(Config {
        max_execution_time: Some(Duration::from_secs(10)),
        ..Config::default()
    })?;
    // One HTTP client shared by every call the scripts make.
    let client = Rc::new(HyperClient::new());
    rt.register_async("complete", move |args| {
        let (client, endpoint) = (client.clone(), endpoint.clone());
        async move {
            let prompt = match args.first() {
                Some(ScriptValue::String(p)) => p.clone(),
                _ => {
                    return Err(ScriptError::new(
                        ErrorKind::Type,
                        "complete(prompt) wants a string",
                    ))
                }
            };
            let response = client
                .send(HttpRequest {
                    method: "POST".into(),
                    url: endpoint,
                    headers: vec![("content-type".into(), "text/plain".into())],
                    body: Some(prompt.into_bytes()),
                })
                .await
                .map_err(|e| e.into_script("complete"))?;
            Ok(ScriptValue::String(
                String::from_utf8_lossy(&response.body).into_owned(),
            ))
        }
    })?;

    let p = rt.create_async(
        r#"
        local prompts = { "a haiku about coroutines", "a limerick about promises", "a koan about await" }
        local answers = await(map(prompts, function(p) return complete(p) end))
        for i = 1, answers.n do print(answers[i]) end
        local ok, err = pcall(await, complete(42))
        print("bad call: " .. err.kind .. ": " .. err.message)
        return answers.n
    "#,
        ScriptContext::new("agent"),
    )?;
    let n = rt.block_on(&p)?;
    println!("{n} completions");
    Ok(())
}
