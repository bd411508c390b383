//! Opening connections: DNS, TCP, TLS (rustls, with ALPN), and the stream
//! type hyper reads and writes.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncRead, AsyncWrite, FutureExt};
use futures_rustls::client::TlsStream;
use futures_rustls::rustls;
use futures_rustls::TlsConnector;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::error::Error;

/// Where a request goes.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub tls: bool,
    pub host: url::Host<String>,
    pub port: u16,
}

impl Target {
    pub(crate) fn of(url: &url::Url) -> Result<Target, Error> {
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(Error::Invalid(format!("unsupported scheme '{other}'"))),
        };
        let host = url
            .host()
            .ok_or_else(|| Error::Invalid(format!("{url}: no host")))?
            .to_owned();
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        Ok(Target { tls, host, port })
    }

    /// The pool key.
    pub(crate) fn key(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }
}

/// A TCP stream, plain or with TLS.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(Async<TcpStream>),
    Tls(Box<TlsStream<Async<TcpStream>>>),
}

impl Stream {
    /// True when TLS negotiated HTTP/2.
    pub(crate) fn is_h2(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(tls) => tls.get_ref().1.alpn_protocol() == Some(b"h2"),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

/// Builds the rustls configuration: the webpki roots (if wanted) plus the
/// host's own certificates, DER or PEM.
pub(crate) fn tls_config(
    extra_roots: &[Vec<u8>],
    webpki_roots: bool,
    http2: bool,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    if webpki_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for cert in extra_roots {
        for der in parse_certificates(cert)? {
            roots
                .add(der)
                .map_err(|e| Error::Invalid(format!("bad root certificate: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Invalid(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

fn parse_certificates(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    use rustls_pki_types::pem::PemObject;
    if !bytes.starts_with(b"-----BEGIN") {
        return Ok(vec![CertificateDer::from(bytes.to_vec())]);
    }
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(bytes).collect();
    let certs = certs.map_err(|e| Error::Invalid(format!("bad PEM root certificate: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Invalid("no certificate in the PEM root".into()));
    }
    Ok(certs)
}

/// Resolves and connects, trying each address in turn, within `limit`.
pub(crate) async fn connect(
    target: &Target,
    tls: Option<&Arc<rustls::ClientConfig>>,
    limit: Duration,
    what: &str,
) -> Result<Stream, Error> {
    let open = async {
        let addrs = resolve(target, what).await?;
        let mut last = None;
        for addr in addrs {
            match Async::<TcpStream>::connect(addr).await {
                Ok(tcp) => {
                    // Requests are written whole; Nagle would only delay them.
                    let _ = tcp.get_ref().set_nodelay(true);
                    return handshake(target, tls, tcp, what).await;
                }
                Err(e) => last = Some(e),
            }
        }
        Err(Error::Network(match last {
            Some(e) => format!("{what}: {e}"),
            None => format!("{what}: the host has no address"),
        }))
    };
    open.or(async {
        Timer::after(limit).await;
        Err(Error::Timeout(format!(
            "{what}: no connection within {} ms",
            limit.as_millis()
        )))
    })
    .await
}

async fn resolve(target: &Target, what: &str) -> Result<Vec<SocketAddr>, Error> {
    let port = target.port;
    match &target.host {
        url::Host::Ipv4(ip) => Ok(vec![SocketAddr::new(IpAddr::V4(*ip), port)]),
        url::Host::Ipv6(ip) => Ok(vec![SocketAddr::new(IpAddr::V6(*ip), port)]),
        url::Host::Domain(name) => {
            let name = name.clone();
            // The system resolver blocks; it runs on the blocking pool.
            blocking::unblock(move || (name.as_str(), port).to_socket_addrs())
                .await
                .map(|a| a.collect())
                .map_err(|e| Error::Network(format!("{what}: cannot resolve the host: {e}")))
        }
    }
}

async fn handshake(
    target: &Target,
    tls: Option<&Arc<rustls::ClientConfig>>,
    tcp: Async<TcpStream>,
    what: &str,
) -> Result<Stream, Error> {
    let Some(config) = tls.filter(|_| target.tls) else {
        return Ok(Stream::Plain(tcp));
    };
    let name = match &target.host {
        url::Host::Domain(d) => ServerName::try_from(d.clone())
            .map_err(|e| Error::Invalid(format!("{what}: bad TLS name: {e}")))?,
        url::Host::Ipv4(ip) => ServerName::IpAddress(IpAddr::V4(*ip).into()),
        url::Host::Ipv6(ip) => ServerName::IpAddress(IpAddr::V6(*ip).into()),
    };
    let stream = TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| Error::Network(format!("{what}: TLS handshake failed: {e}")))?;
    Ok(Stream::Tls(Box::new(stream)))
}
