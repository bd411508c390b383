//! HTTP: the [`HttpClient`] trait, its request and response types, and the
//! Lua `http.request` / `http_get` functions.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use luaco_core::{duration_from_ms, type_error, ApiResult, Engine, ErrorKind, ScriptError};
use mlua::{Function, Lua, MultiValue, Table, Value};

use crate::error::Error;

/// A boxed, single-threaded future, as backends return them.
pub type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T> + 'static>>;

/// An HTTP request, already validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method, upper-case (`GET`, `POST`, …).
    pub method: String,
    /// An absolute `http` or `https` URL.
    pub url: url::Url,
    /// Header names and values, in the order given.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
}

/// An HTTP response. Any status is a response, 4xx and 5xx included.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower-case) and values; repeated headers are joined with `", "`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Sends HTTP requests. The runtime holds one as a trait object; implement
/// it to route scripts' requests anywhere (a proxy, a cache, a mock).
///
/// Dropping the returned future must abort the request: that is how
/// cancellation and `timeout_ms` reach the backend.
pub trait HttpClient {
    /// Sends `request` and resolves to the response. Connection failures
    /// are [`Error::Network`].
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<Result<HttpResponse, Error>>;
}

impl fmt::Debug for dyn HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HttpClient")
    }
}

/// Checks that `url` is an absolute http(s) URL with a host.
fn parse_url(url: &str) -> ApiResult<url::Url> {
    let bad = |msg: String| ScriptError::new(ErrorKind::Type, format!("http.request: {msg}"));
    let parsed = url::Url::parse(url).map_err(|e| bad(format!("malformed URL '{url}': {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(bad(format!(
            "malformed URL '{url}': only http:// and https:// URLs with a host"
        )));
    }
    Ok(parsed)
}

/// Reads the options table of `http.request`.
fn parse_request(lua: &Lua, args: &MultiValue) -> ApiResult<(HttpRequest, Option<Duration>)> {
    let Some(Value::Table(opts)) = args.front() else {
        return Err(type_error(lua, "http.request", 1, "table", args.front()));
    };
    let field =
        |name: &str| -> ApiResult<Value> { opts.get::<Value>(name).map_err(ScriptError::from) };
    let bad = |msg: String| ScriptError::new(ErrorKind::Type, format!("http.request: {msg}"));
    let url = match field("url")? {
        Value::String(s) => s.to_string_lossy().to_string(),
        other => {
            return Err(bad(format!(
                "url must be a string, got {}",
                other.type_name()
            )))
        }
    };
    let parsed = parse_url(&url)?;

    let method = match field("method")? {
        Value::Nil => "GET".to_owned(),
        Value::String(s) => {
            let m = s.to_string_lossy().to_ascii_uppercase();
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(bad(format!("invalid method '{m}'")));
            }
            m
        }
        other => {
            return Err(bad(format!(
                "method must be a string, got {}",
                other.type_name()
            )))
        }
    };
    let mut headers = Vec::new();
    match field("headers")? {
        Value::Nil => {}
        Value::Table(t) => {
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair.map_err(ScriptError::from)?;
                let (Value::String(k), Value::String(v)) = (&k, &v) else {
                    return Err(bad("headers must map strings to strings".into()));
                };
                let (k, v) = (
                    k.to_string_lossy().to_string(),
                    v.to_string_lossy().to_string(),
                );
                if k.is_empty() || k.contains([':', '\r', '\n', ' ']) || v.contains(['\r', '\n']) {
                    return Err(bad(format!("invalid header '{k}'")));
                }
                headers.push((k, v));
            }
            headers.sort();
        }
        other => {
            return Err(bad(format!(
                "headers must be a table, got {}",
                other.type_name()
            )))
        }
    }
    let body = match field("body")? {
        Value::Nil => None,
        Value::String(s) => Some(s.as_bytes().to_vec()),
        other => {
            return Err(bad(format!(
                "body must be a string, got {}",
                other.type_name()
            )))
        }
    };
    let timeout = match field("timeout_ms")? {
        Value::Nil => None,
        v => Some(duration_from_ms(lua, "http.request", 1, Some(&v))?),
    };
    Ok((
        HttpRequest {
            method,
            url: parsed,
            headers,
            body,
        },
        timeout,
    ))
}

fn response_table(lua: &Lua, response: HttpResponse) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 3)?;
    t.raw_set("status", response.status)?;
    t.raw_set("body", lua.create_string(&response.body)?)?;
    let headers = lua.create_table_with_capacity(0, response.headers.len())?;
    for (k, v) in response.headers {
        // Backends already lower-case names; custom ones may not.
        if k.bytes().any(|b| b.is_ascii_uppercase()) {
            headers.raw_set(k.to_ascii_lowercase(), v)?;
        } else {
            headers.raw_set(k, v)?;
        }
    }
    t.raw_set("headers", headers)?;
    Ok(t)
}

/// Sends the request on the loop; the promise settles with the response
/// table. A timeout drops the backend's future, which aborts the request.
fn request(
    engine: &Engine,
    lua: &Lua,
    client: Option<Rc<dyn HttpClient>>,
    args: MultiValue,
) -> ApiResult<Value> {
    if !matches!(args.front(), Some(Value::Table(_))) {
        return Err(type_error(lua, "http.request", 1, "table", args.front()));
    }
    send(engine, client, parse_request(lua, &args))
}

/// Starts a parsed request. Past the argument's type every failure is a
/// rejection: a malformed URL rejects with kind "type", a
/// denied one with "permission".
fn send(
    engine: &Engine,
    client: Option<Rc<dyn HttpClient>>,
    parsed: ApiResult<(HttpRequest, Option<Duration>)>,
) -> ApiResult<Value> {
    let prepared = parsed.and_then(|(req, timeout)| match client {
        Some(client) => Ok((client, req, timeout)),
        None => Err(
            Error::Permission(format!("network access is not allowed ({})", req.url))
                .into_script("http.request"),
        ),
    });
    let timeout = prepared.as_ref().ok().and_then(|(_, _, t)| *t);
    let future = async move {
        let (client, req, _) = prepared?;
        client
            .send(req)
            .await
            .map_err(|e| e.into_script("http.request"))
    };
    let promise = engine
        .spawn_future(future, |lua, response| {
            response_table(lua, response).map(Value::Table)
        })
        .map_err(ScriptError::from)?;
    match timeout {
        // The one timer path of the loop: `timeout` cancels the request's
        // promise, which drops the backend's future and its connection.
        Some(limit) => {
            let timeout: Function = engine
                .api()
                .get::<Table>("promise")
                .and_then(|p| p.get("timeout"))
                .map_err(ScriptError::from)?;
            timeout
                .call((promise, limit.as_secs_f64() * 1000.0))
                .map_err(ScriptError::from)
        }
        None => Ok(promise),
    }
}

pub(crate) fn install(
    engine: &Engine,
    lua: &Lua,
    api: &Table,
    client: Option<Rc<dyn HttpClient>>,
) -> mlua::Result<()> {
    let http = lua.create_table()?;
    let (e, c) = (engine.clone(), client.clone());
    let request_fn =
        engine.api_function(lua, move |lua, args| request(&e, lua, c.clone(), args))?;
    http.raw_set("request", request_fn)?;
    let (e, c) = (engine.clone(), client);
    let get = engine.api_function(lua, move |lua, args| {
        let url = match args.front() {
            Some(Value::String(s)) => s.to_string_lossy().to_string(),
            other => return Err(type_error(lua, "http_get", 1, "string", other)),
        };
        let parsed = parse_url(&url).map(|url| {
            let req = HttpRequest {
                method: "GET".into(),
                url,
                headers: Vec::new(),
                body: None,
            };
            (req, None)
        });
        send(&e, c.clone(), parsed)
    })?;
    http.raw_set("get", get.clone())?;
    api.raw_set("http", http)?;
    api.raw_set("http_get", get)?;
    Ok(())
}
