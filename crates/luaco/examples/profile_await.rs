//! Runs one hot path many times, for a profiler: `settled` (await of a
//! settled promise), `sleep0` (a full turn) or `spawn` (spawn + complete).
use luaco::{Config, Runtime, ScriptContext};

fn main() -> luaco::Result<()> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "settled".into());
    let rt = Runtime::new(Config::default())?;
    let server = luaco::io::testing::TestServer::start().map_err(mlua::Error::external)?;
    rt.lua()
        .globals()
        .set("URL", format!("{}/hello", server.url()))?;

    let src = match which.as_str() {
        "sleep0" => "for _ = 1, 300000 do await(sleep(0)) end",
        "spawn" => "local d = 0 local function w() d = d + 1 end for i = 1, 300000 do async(w) if i % 1000 == 0 then coroutine.yield() end end coroutine.yield()",
        "http" => "for _ = 1, 20 do local ps = {} for i = 1, 1000 do ps[i] = http_get(URL) end await(all(ps)) end",
        _ => "local p = promise.resolve(1) for _ = 1, 3000000 do await(p) end",
    };
    let p = rt.create_async(src, ScriptContext::new("prof"))?;
    rt.block_on(&p)?;
    Ok(())
}
