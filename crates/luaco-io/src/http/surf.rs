//! [`SurfClient`]: an opt-in HTTP backend (cargo feature `surf`), surf 2.3
//! with its curl client.

use std::cell::OnceCell;

use super::{HttpClient, HttpRequest, HttpResponse, LocalBoxFuture};
use crate::error::Error;

/// HTTP through surf's curl client (isahc + libcurl). Off by default:
/// [`HyperClient`](crate::HyperClient) is the default backend; this one
/// stays for hosts that already link libcurl and want its behaviour.
///
/// Why curl among surf's clients: of surf's clients, only the curl one speaks HTTP/1.0,
/// 1.1 and 2 and current TLS (through the system OpenSSL); `h1-client-no-tls`
/// rejects HTTP/1.0 responses and `h1-client-rustls` pins 2020-era rustls.
/// The costs: libcurl is built from source (needs `pkg-config` and
/// `libssl-dev`), and isahc runs one helper thread for its event loop.
///
/// Connections are pooled per host and reused across requests. The surf
/// client is made on the first request, so a script that never uses HTTP
/// never starts curl's thread. Redirects are not followed (a 3xx is the
/// response) and surf's own timeout is off: `timeout_ms` is enforced by
/// luaco, by dropping the request future.
#[derive(Debug, Default)]
pub struct SurfClient {
    client: OnceCell<surf::Client>,
}

impl SurfClient {
    /// A client that connects on first use.
    pub fn new() -> SurfClient {
        SurfClient::default()
    }

    fn client(&self) -> Result<surf::Client, Error> {
        if let Some(c) = self.client.get() {
            return Ok(c.clone());
        }
        let client: surf::Client = surf::Config::new()
            .set_timeout(None)
            .set_http_keep_alive(true)
            .set_tcp_no_delay(true)
            .set_max_connections_per_host(64)
            .try_into()
            .map_err(|e| Error::Network(format!("cannot start the HTTP client: {e}")))?;
        Ok(self.client.get_or_init(|| client).clone())
    }
}

fn to_surf(request: HttpRequest) -> Result<surf::Request, Error> {
    let method: surf::http::Method = request
        .method
        .parse()
        .map_err(|_| Error::Invalid(format!("unsupported method '{}'", request.method)))?;
    let mut builder = surf::RequestBuilder::new(method, request.url);
    for (k, v) in &request.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    Ok(builder.build())
}

impl HttpClient for SurfClient {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<Result<HttpResponse, Error>> {
        let prepared = self.client().and_then(|c| Ok((c, to_surf(request)?)));
        Box::pin(async move {
            let (client, request) = prepared?;
            let url = request.url().to_string();
            let mut response = client
                .send(request)
                .await
                .map_err(|e| Error::Network(format!("{url}: {e}")))?;
            let body = response
                .body_bytes()
                .await
                .map_err(|e| Error::Network(format!("{url}: reading the body: {e}")))?;
            let mut headers = Vec::new();
            for (name, values) in response.iter() {
                let joined = values
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                headers.push((name.as_str().to_ascii_lowercase(), joined));
            }
            Ok(HttpResponse {
                status: u16::from(response.status()),
                headers,
                body,
            })
        })
    }
}
