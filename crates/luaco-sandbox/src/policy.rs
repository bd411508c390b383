//! [`SandboxPolicy`]: what an untrusted script is granted, and
//! [`ScopedHttp`], the HTTP backend that enforces its network grant.

use std::path::PathBuf;
use std::rc::Rc;

use luaco_io::{Error, HttpClient, HttpRequest, HttpResponse, LocalBoxFuture};

/// What an untrusted script may reach. The default grants nothing: safe
/// globals only, no network, no file system.
/// Build with the `with_*` methods or struct-update syntax.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SandboxPolicy {
    /// `http.request` / `http_get` are allowed.
    pub allow_net: bool,
    /// With `allow_net`, only these `host:port` pairs (empty: any).
    pub net_allow_list: Vec<String>,
    /// `fs.*` is allowed under this directory only (no escape by `..`,
    /// absolute paths or symlinks); `None`: no file system.
    pub fs_root: Option<PathBuf>,
}

impl SandboxPolicy {
    /// The strict policy: nothing beyond safe globals.
    pub fn strict() -> SandboxPolicy {
        SandboxPolicy::default()
    }

    /// This policy with the network allowed (to any host).
    pub fn with_net(mut self) -> SandboxPolicy {
        self.allow_net = true;
        self
    }

    /// This policy with the network allowed to `host:port` pairs only.
    pub fn with_net_to(
        mut self,
        hosts: impl IntoIterator<Item = impl Into<String>>,
    ) -> SandboxPolicy {
        self.allow_net = true;
        self.net_allow_list = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// This policy with `fs.*` confined to `root`.
    pub fn with_fs_root(mut self, root: impl Into<PathBuf>) -> SandboxPolicy {
        self.fs_root = Some(root.into());
        self
    }

    /// The HTTP backend a script under this policy gets: `None` when the
    /// network is not allowed (scripts get kind `"permission"`), `inner`
    /// wrapped in the allow-list otherwise.
    pub fn http(&self, inner: Rc<dyn HttpClient>) -> Option<Rc<dyn HttpClient>> {
        if !self.allow_net {
            return None;
        }
        if self.net_allow_list.is_empty() {
            return Some(inner);
        }
        Some(Rc::new(ScopedHttp {
            inner,
            allowed: self.net_allow_list.clone(),
        }))
    }
}

/// An [`HttpClient`] that sends only to an allow-list of `host:port`
/// pairs; anything else fails with [`Error::Permission`].
#[derive(Clone)]
pub struct ScopedHttp {
    inner: Rc<dyn HttpClient>,
    allowed: Vec<String>,
}

impl std::fmt::Debug for ScopedHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedHttp")
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl ScopedHttp {
    /// Sends through `inner`, only to `allowed` `host:port` pairs.
    pub fn new(inner: Rc<dyn HttpClient>, allowed: Vec<String>) -> ScopedHttp {
        ScopedHttp { inner, allowed }
    }

    fn permits(&self, url: &url::Url) -> bool {
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        let target = format!("{host}:{port}");
        self.allowed.iter().any(|a| a.eq_ignore_ascii_case(&target))
    }
}

impl HttpClient for ScopedHttp {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<Result<HttpResponse, Error>> {
        if !self.permits(&request.url) {
            let url = request.url.to_string();
            return Box::pin(async move {
                Err(Error::Permission(format!(
                    "{url}: the sandbox allows the network only to {}",
                    "its allow-list"
                )))
            });
        }
        self.inner.send(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use luaco_io::MockHttp;

    fn get(client: &dyn HttpClient, url: &str) -> Result<HttpResponse, Error> {
        let url = url::Url::parse(url).expect("url");
        futures_lite::future::block_on(client.send(HttpRequest::get(url)))
    }

    #[test]
    fn the_network_grant_and_its_allow_list_are_enforced() {
        let inner: Rc<dyn HttpClient> = Rc::new(
            MockHttp::new()
                .route("GET", "http://127.0.0.1:8080/a", 200, "a")
                .route("GET", "http://127.0.0.1:9090/b", 200, "b"),
        );
        assert!(SandboxPolicy::strict().http(inner.clone()).is_none());
        let any = SandboxPolicy::strict()
            .with_net()
            .http(inner.clone())
            .expect("net");
        assert_eq!(get(&*any, "http://127.0.0.1:9090/b").expect("b").body, b"b");

        let scoped = SandboxPolicy::strict()
            .with_net_to(["127.0.0.1:8080"])
            .http(inner)
            .expect("net");
        assert_eq!(
            get(&*scoped, "http://127.0.0.1:8080/a").expect("a").body,
            b"a"
        );
        // host:port as written: another port, or a name for the same address, is not it.
        for url in ["http://127.0.0.1:9090/b", "http://localhost:8080/a"] {
            match get(&*scoped, url) {
                Err(Error::Permission(m)) => assert!(m.contains("allow-list"), "{m}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}
