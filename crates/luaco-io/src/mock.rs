//! [`MockHttp`]: canned responses by method and URL, for tests of the Lua
//! layer and of users' scripts.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::error::Error;
use crate::http::{HttpClient, HttpRequest, HttpResponse, LocalBoxFuture};

/// Answers requests from a table of routes; anything else gets a 404.
/// Every request is recorded, so tests can assert on what was sent.
///
/// ```
/// use luaco_io::{HttpClient, MockHttp};
/// let mock = MockHttp::new().route("GET", "http://api.test/v1", 200, "hello");
/// let req = luaco_io::HttpRequest {
///     method: "GET".into(),
///     url: "http://api.test/v1".parse().unwrap(),
///     headers: vec![],
///     body: None,
/// };
/// let res = futures_lite::future::block_on(mock.send(req)).unwrap();
/// assert_eq!((res.status, res.body.as_slice()), (200, &b"hello"[..]));
/// assert_eq!(mock.requests().len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct MockHttp {
    routes: HashMap<(String, String), Result<HttpResponse, String>>,
    log: RefCell<Vec<HttpRequest>>,
}

impl MockHttp {
    /// A mock with no routes.
    pub fn new() -> MockHttp {
        MockHttp::default()
    }

    /// Answers `method url` with `status` and `body` (content-type text/plain).
    pub fn route(self, method: &str, url: &str, status: u16, body: impl Into<Vec<u8>>) -> MockHttp {
        self.respond(
            method,
            url,
            HttpResponse {
                status,
                headers: vec![("content-type".into(), "text/plain".into())],
                body: body.into(),
            },
        )
    }

    /// Answers `method url` with `response`.
    pub fn respond(mut self, method: &str, url: &str, response: HttpResponse) -> MockHttp {
        self.routes.insert(key(method, url), Ok(response));
        self
    }

    /// Fails `method url` with a network error saying `message`.
    pub fn fail(mut self, method: &str, url: &str, message: &str) -> MockHttp {
        self.routes
            .insert(key(method, url), Err(message.to_owned()));
        self
    }

    /// The requests sent so far, oldest first.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.log.borrow().clone()
    }
}

fn key(method: &str, url: &str) -> (String, String) {
    let url = url::Url::parse(url).map_or_else(|_| url.to_owned(), |u| u.to_string());
    (method.to_ascii_uppercase(), url)
}

impl HttpClient for MockHttp {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<Result<HttpResponse, Error>> {
        let found = self
            .routes
            .get(&key(&request.method, request.url.as_str()))
            .cloned();
        self.log.borrow_mut().push(request);
        Box::pin(async move {
            match found {
                Some(Ok(response)) => Ok(response),
                Some(Err(message)) => Err(Error::Network(message)),
                None => Ok(HttpResponse {
                    status: 404,
                    headers: vec![("content-type".into(), "text/plain".into())],
                    body: b"no such route".to_vec(),
                }),
            }
        })
    }
}
