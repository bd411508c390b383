//! `Config` reaches the default HTTP client: a private CA for https, the
//! default request timeout, the caps; a bad certificate is an error.

use std::time::Duration;

use luaco::io::testing::TestServer;
use luaco::io::{ClientConfig, RequestLimits};
use luaco::{Config, Error, Runtime, ScriptContext, ScriptValue};

#[test]
fn config_sets_up_the_default_client() -> luaco::Result<()> {
    let (server, ca) = TestServer::start_tls().expect("tls server");
    let rt = Runtime::new(Config {
        http: ClientConfig {
            root_certificates: vec![ca],
            max_response_body: 8,
            ..ClientConfig::default()
        },
        request_limits: RequestLimits {
            timeout: Some(Duration::from_millis(200)),
            ..RequestLimits::default()
        },
        ..Config::default()
    })?;
    rt.lua().globals().set("BASE", server.url())?;
    let p = rt.create_async(
        r#"
        local r = await(http_get(BASE .. "/hello"))
        assert(r.status == 200 and r.body == "hello")
        local ok, e = pcall(await, http_get(BASE .. "/json"))           -- 42 bytes > 8
        assert(not ok and e.kind == "limit", tostring(e))
        local ok2, e2 = pcall(await, http_get(BASE .. "/slow?ms=3000"))  -- the default timeout
        assert(not ok2 and e2.kind == "timeout", tostring(e2))
        return "ok"
    "#,
        ScriptContext::new("config"),
    )?;
    assert_eq!(rt.block_on(&p)?, ScriptValue::String("ok".into()));
    Ok(())
}

#[test]
fn a_bad_root_certificate_fails_runtime_creation() {
    let made = Runtime::new(Config {
        http: ClientConfig {
            root_certificates: vec![b"-----BEGIN CERTIFICATE-----\n!!\n".to_vec()],
            ..ClientConfig::default()
        },
        ..Config::default()
    });
    assert!(matches!(made, Err(Error::Io(_))), "{:?}", made.err());
}
