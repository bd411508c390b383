//! The messages of an exchange: building hyper's request from ours,
//! reading a response body within its cap, and naming what went wrong.

use std::future::poll_fn;
use std::pin::Pin;

use bytes::Bytes;
use http_body::Body as _;
use http_body_util::Full;

use super::client::ClientConfig;
use super::conn::Target;
use super::{HttpRequest, HttpResponse};
use crate::error::Error;

/// The request body type every connection carries.
pub(crate) type Body = Full<Bytes>;

pub(crate) fn build_request(
    request: &HttpRequest,
    target: &Target,
    h2: bool,
    body: Bytes,
) -> Result<http::Request<Body>, Error> {
    let url = &request.url;
    let bad = |e: http::Error| Error::Invalid(format!("{url}: {e}"));
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    // HTTP/2 carries scheme and authority as pseudo-headers.
    let uri = if h2 {
        let scheme = if target.tls { "https" } else { "http" };
        match url.port() {
            Some(p) => format!("{scheme}://{}:{p}{path}", target.host),
            None => format!("{scheme}://{}{path}", target.host),
        }
    } else {
        path
    };
    let mut builder = http::Request::builder()
        .method(request.method.as_str())
        .uri(uri);
    let has = |name: &str| {
        request
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    if !h2 && !has("host") {
        let default = if target.tls { 443 } else { 80 };
        let host = match url.port() {
            Some(p) if p != default => format!("{}:{p}", target.host),
            _ => target.host.to_string(),
        };
        builder = builder.header(http::header::HOST, host);
    }
    if !has("user-agent") {
        builder = builder.header(
            http::header::USER_AGENT,
            concat!("luaco/", env!("CARGO_PKG_VERSION")),
        );
    }
    for (k, v) in &request.headers {
        if h2 && is_connection_specific(k) {
            continue;
        }
        // The body's framing is ours: a length that disagrees with the body
        // would desynchronise the connection, a transfer coding would
        // have to be honoured byte by byte.
        if k.eq_ignore_ascii_case("content-length") {
            if v.trim().parse::<usize>().ok() != Some(body.len()) {
                return Err(Error::Invalid(format!(
                    "{url}: content-length header says {v} but the body is {} bytes",
                    body.len()
                )));
            }
            continue;
        }
        if k.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Error::Invalid(format!(
                "{url}: transfer-encoding is set by the client, not by a header"
            )));
        }
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder.body(Full::new(body)).map_err(bad)
}

/// Headers HTTP/2 forbids (RFC 9113 §8.2.2).
fn is_connection_specific(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "host",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// Reads the whole body as it arrives, up to `max` bytes.
pub(crate) async fn collect(
    body: &mut hyper::body::Incoming,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, Error> {
    // hyper's hint is exact for a declared length, and zero where no body
    // can follow whatever the header says (HEAD, 204, 304).
    let hint = body.size_hint();
    if hint.upper() == Some(0) {
        return Ok(Vec::new());
    }
    let declared = hint.exact();
    let over = |size: String| {
        Error::Limit(format!(
            "{what}: the response body ({size}) exceeds max_response_body ({max} bytes)"
        ))
    };
    if let Some(n) = declared {
        if n > max as u64 {
            return Err(over(format!("{n} bytes declared")));
        }
    }
    // The declared length only sizes the first allocation, within the cap
    // and a sane first step, so a lying header cannot reserve memory.
    let first = declared.map_or(0, |n| n.min(1 << 20) as usize);
    let mut data = Vec::with_capacity(first);
    let mut body = Pin::new(body);
    while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame
            .map_err(|e| Error::Network(format!("{what}: reading the body: {}", chain(&e))))?;
        if let Ok(chunk) = frame.into_data() {
            if data.len() + chunk.len() > max {
                return Err(over(format!("more than {max} bytes")));
            }
            // Out of memory is an error here, not an abort in the allocator.
            data.try_reserve(chunk.len()).map_err(|_| {
                Error::Limit(format!(
                    "{what}: not enough memory for the response body ({} bytes so far)",
                    data.len()
                ))
            })?;
            data.extend_from_slice(&chunk);
        }
    }
    Ok(data)
}

pub(crate) fn response_of(head: http::response::Parts, body: Vec<u8>) -> HttpResponse {
    let mut headers: Vec<(String, String)> = Vec::with_capacity(head.headers.keys_len());
    for name in head.headers.keys() {
        let joined = head
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .collect::<Vec<_>>()
            .join(", ");
        headers.push((name.as_str().to_owned(), joined));
    }
    HttpResponse {
        status: head.status.as_u16(),
        headers,
        body,
    }
}

/// hyper's message and its causes, `: `-joined.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

pub(crate) fn network(what: &str, e: &hyper::Error) -> Error {
    Error::Network(format!("{what}: {}", chain(e)))
}

pub(crate) fn classify(what: &str, e: &hyper::Error, config: &ClientConfig) -> Error {
    // hyper names this case only in its message (`is_parse_too_large` is
    // server-side); too many headers is the same parse error.
    if e.is_parse() && e.to_string().contains("too large") {
        return Error::Limit(format!(
            "{what}: the response head exceeds max_response_head ({} bytes) or max_response_headers ({})",
            config.max_response_head, config.max_response_headers
        ));
    }
    if e.is_parse() || e.is_parse_status() {
        return Error::Network(format!("{what}: invalid response: {}", chain(e)));
    }
    if h2_head_too_large(e) {
        return Error::Limit(format!(
            "{what}: the HTTP/2 response head exceeds max_response_head ({} bytes) ({})",
            config.max_response_head,
            chain(e)
        ));
    }
    network(what, e)
}

/// Whether HTTP/2 itself (not the server) refused a response head: h2
/// resets a stream whose header list passes the size it advertised
/// (`max_header_list_size`, set from `max_response_head`) with a
/// PROTOCOL_ERROR of its own; a head in many frames ends the connection
/// with ENHANCE_YOUR_CALM (too many CONTINUATION frames) or with
/// COMPRESSION_ERROR (the decoder stopped at the cap). The last could also
/// be a server's broken compression: the message keeps h2's own words.
fn h2_head_too_large(e: &hyper::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.is_library()
                && matches!(
                    h2.reason(),
                    Some(
                        h2::Reason::PROTOCOL_ERROR
                            | h2::Reason::ENHANCE_YOUR_CALM
                            | h2::Reason::COMPRESSION_ERROR
                    )
                );
        }
        source = err.source();
    }
    false
}
