//! The Lua side of HTTP: `http.request{...}` and `http_get(url, opts)`.

use std::rc::Rc;
use std::time::Duration;

use luaco_core::{duration_from_ms, type_error, ApiResult, Engine, ErrorKind, ScriptError};
use mlua::{Function, Lua, MultiValue, Table, Value};

use super::{HttpClient, HttpRequest, HttpResponse, RequestLimits};
use crate::error::Error;

/// The fields a request table may have; anything else is a mistake worth
/// raising (a misspelt `timeout_ms` would otherwise wait for ever).
const FIELDS: [&str; 5] = ["method", "url", "headers", "body", "timeout_ms"];

/// Raises kind "type" for a field outside [`FIELDS`] (or `url` in
/// `http_get`'s options, where the URL is the first argument).
fn check_fields(opts: &Table, op: &str, url_allowed: bool) -> ApiResult<()> {
    let bad = |msg: String| ScriptError::new(ErrorKind::Type, format!("{op}: {msg}"));
    for pair in opts.pairs::<Value, Value>() {
        let (k, _) = pair.map_err(ScriptError::from)?;
        let Value::String(name) = &k else {
            return Err(bad(format!(
                "request fields are named by strings, got a {} key",
                k.type_name()
            )));
        };
        let name = name.to_string_lossy();
        if name == "url" && !url_allowed {
            return Err(bad("the URL is the first argument, not an option".into()));
        }
        if !FIELDS.contains(&name.as_str()) {
            return Err(bad(format!(
                "unknown request field '{name}' (known: {})",
                FIELDS.join(", ")
            )));
        }
    }
    Ok(())
}

/// Checks that `url` is an absolute http(s) URL with a host.
fn parse_url(url: &str) -> ApiResult<url::Url> {
    let bad = |msg: String| ScriptError::new(ErrorKind::Type, format!("http.request: {msg}"));
    let parsed = url::Url::parse(url).map_err(|e| bad(format!("malformed URL '{url}': {e}")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Never sent, and never echoed in error messages either.
        return Err(bad(
            "credentials in the URL are not supported: send an authorization header".into(),
        ));
    }
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(bad(format!(
            "malformed URL '{url}': only http:// and https:// URLs with a host"
        )));
    }
    Ok(parsed)
}

/// Reads a request: `url` and the fields of `opts`. Errors here reject.
fn parse_request(
    lua: &Lua,
    url: &Value,
    opts: Option<&Table>,
) -> ApiResult<(HttpRequest, Option<Duration>)> {
    let field = |name: &str| -> ApiResult<Value> {
        match opts {
            Some(t) => t.get::<Value>(name).map_err(ScriptError::from),
            None => Ok(Value::Nil),
        }
    };
    let bad = |msg: String| ScriptError::new(ErrorKind::Type, format!("http.request: {msg}"));
    let wrong = |name: &str, want: &str, got: &Value| {
        bad(format!("{name} must be {want}, got {}", got.type_name()))
    };
    let url = match url {
        Value::String(s) => s.to_string_lossy().to_string(),
        other => return Err(wrong("url", "a string", other)),
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
        other => return Err(wrong("method", "a string", &other)),
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
        other => return Err(wrong("headers", "a table", &other)),
    }
    let body = match field("body")? {
        Value::Nil => None,
        Value::String(s) => Some(s.as_bytes().to_vec()),
        other => return Err(wrong("body", "a string", &other)),
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

/// `http.request{...}`: the argument's type and its field names are
/// checked at once (raised); everything else rejects.
fn request(
    engine: &Engine,
    lua: &Lua,
    client: Option<Rc<dyn HttpClient>>,
    limits: RequestLimits,
    args: MultiValue,
) -> ApiResult<Value> {
    let Some(Value::Table(opts)) = args.front() else {
        return Err(type_error(lua, "http.request", 1, "table", args.front()));
    };
    check_fields(opts, "http.request", true)?;
    let url = opts.get::<Value>("url").map_err(ScriptError::from)?;
    send(engine, client, limits, parse_request(lua, &url, Some(opts)))
}

/// `http_get(url, opts)`: `http.request` with `url` set and `opts`' fields.
fn get(
    engine: &Engine,
    lua: &Lua,
    client: Option<Rc<dyn HttpClient>>,
    limits: RequestLimits,
    args: MultiValue,
) -> ApiResult<Value> {
    let url = match args.front() {
        Some(v @ Value::String(_)) => v.clone(),
        other => return Err(type_error(lua, "http_get", 1, "string", other)),
    };
    let opts = match args.get(1) {
        None | Some(Value::Nil) => None,
        Some(Value::Table(t)) => {
            check_fields(t, "http_get", false)?;
            Some(t)
        }
        other => return Err(type_error(lua, "http_get", 2, "table or nil", other)),
    };
    send(engine, client, limits, parse_request(lua, &url, opts))
}

/// Starts a parsed request. Past the argument checks every failure is a
/// rejection: a malformed URL rejects with kind "type", a denied one with
/// "permission", an oversized body with "limit".
fn send(
    engine: &Engine,
    client: Option<Rc<dyn HttpClient>>,
    limits: RequestLimits,
    parsed: ApiResult<(HttpRequest, Option<Duration>)>,
) -> ApiResult<Value> {
    let prepared = parsed.and_then(|(req, timeout)| {
        let size = req.body.as_ref().map_or(0, Vec::len);
        if size > limits.max_request_body {
            return Err(Error::Limit(format!(
                "{}: the request body ({size} bytes) exceeds max_request_body ({} bytes)",
                req.url, limits.max_request_body
            ))
            .into_script("http.request"));
        }
        match client {
            Some(client) => Ok((client, req, timeout.or(limits.timeout))),
            None => Err(
                Error::Permission(format!("network access is not allowed ({})", req.url))
                    .into_script("http.request"),
            ),
        }
    });
    let deadline = prepared
        .as_ref()
        .ok()
        .and_then(|(_, req, t)| t.map(|t| (t, req.url.to_string())));
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
    match deadline {
        // The one timer path of the loop: the timeout cancels the request's
        // promise, which drops the backend's future and its connection.
        Some((limit, url)) => {
            let timeout_with: Function = engine
                .internals()
                .get("timeout_with")
                .map_err(ScriptError::from)?;
            let ms = limit.as_secs_f64() * 1000.0;
            let message = format!("http.request: {url}: no complete response within {ms} ms");
            timeout_with
                .call((promise, ms, message))
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
    limits: RequestLimits,
) -> mlua::Result<()> {
    let http = lua.create_table()?;
    let (e, c) = (engine.clone(), client.clone());
    let request_fn = engine.api_function(lua, move |lua, args| {
        request(&e, lua, c.clone(), limits, args)
    })?;
    http.raw_set("request", request_fn)?;
    let (e, c) = (engine.clone(), client);
    let get_fn =
        engine.api_function(lua, move |lua, args| get(&e, lua, c.clone(), limits, args))?;
    http.raw_set("get", get_fn.clone())?;
    api.raw_set("http", http)?;
    api.raw_set("http_get", get_fn)?;
    Ok(())
}
