//! Listening sockets, optional TLS, and the connection loop shared by every server in the
//! collector (OTLP gRPC and HTTP, health check, Prometheus metrics).
//!
//! One loop means TLS, peer addresses and graceful shutdown behave the same everywhere: the
//! peer address of each connection is put in the request's extensions as [`PeerAddr`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use kotel_config::receivers::otlp::TlsServerConfig;
use kotel_pipeline::Shutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long open connections get to finish their requests once a server stops.
const GRACEFUL_CLOSE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot listen on {endpoint}: {source}")]
    Bind {
        endpoint: String,
        source: std::io::Error,
    },
    #[error("TLS: cannot read {path}: {source}")]
    TlsFile {
        path: String,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
}

/// The client address of a request's connection, in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Which HTTP versions a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 and HTTP/2 (h2c by prior knowledge, h2 via ALPN).
    Auto,
    /// HTTP/2 only (gRPC).
    Http2,
}

/// A bound listener, with its TLS acceptor when TLS is configured.
pub struct Listener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    protocol: Protocol,
    max_concurrent_streams: Option<u32>,
}

impl Listener {
    pub fn local_addr(&self) -> SocketAddr {
        self.tcp
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    pub fn with_max_concurrent_streams(mut self, n: u32) -> Self {
        self.max_concurrent_streams = (n > 0).then_some(n);
        self
    }
}

/// Binds `host:port` (an empty host means every interface).
pub async fn bind(
    endpoint: &str,
    tls: Option<&TlsServerConfig>,
    protocol: Protocol,
) -> Result<Listener, NetError> {
    let addr = if endpoint.starts_with(':') {
        format!("0.0.0.0{endpoint}")
    } else {
        endpoint.to_string()
    };
    let tcp = TcpListener::bind(&addr)
        .await
        .map_err(|source| NetError::Bind {
            endpoint: endpoint.to_string(),
            source,
        })?;
    let tls = tls.map(|t| tls_acceptor(t, protocol)).transpose()?;
    Ok(Listener {
        tcp,
        tls,
        protocol,
        max_concurrent_streams: None,
    })
}

fn read_pem(file: &Option<String>, pem: &Option<String>, what: &str) -> Result<Vec<u8>, NetError> {
    match (file, pem) {
        (_, Some(p)) => Ok(p.as_bytes().to_vec()),
        (Some(path), None) => std::fs::read(path).map_err(|source| NetError::TlsFile {
            path: path.clone(),
            source,
        }),
        (None, None) => Err(NetError::Tls(format!(
            "{what}_file or {what}_pem is required"
        ))),
    }
}

fn tls_acceptor(cfg: &TlsServerConfig, protocol: Protocol) -> Result<TlsAcceptor, NetError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert_pem = read_pem(&cfg.cert_file, &cfg.cert_pem, "cert")?;
    let key_pem = read_pem(&cfg.key_file, &cfg.key_pem, "key")?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| NetError::Tls(format!("bad certificate PEM: {e}")))?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| NetError::Tls(format!("bad key PEM: {e}")))?
        .ok_or_else(|| NetError::Tls("no private key in key PEM".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] =
        match cfg.min_version.as_deref().unwrap_or("1.2") {
            "1.3" => &[&rustls::version::TLS13],
            "1.2" | "1.0" | "1.1" => &[&rustls::version::TLS12, &rustls::version::TLS13],
            other => return Err(NetError::Tls(format!("unsupported min_version {other:?}"))),
        };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| NetError::Tls(e.to_string()))?;
    let builder = match &cfg.client_ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|source| NetError::TlsFile {
                path: path.clone(),
                source,
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pemfile::certs(&mut pem.as_slice()) {
                let c = c.map_err(|e| NetError::Tls(format!("bad client CA PEM: {e}")))?;
                roots
                    .add(c)
                    .map_err(|e| NetError::Tls(format!("bad client CA: {e}")))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| NetError::Tls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| NetError::Tls(e.to_string()))?;
    config.alpn_protocols = match protocol {
        Protocol::Http2 => vec![b"h2".to_vec()],
        Protocol::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves a plain async function until `shutdown`; the handler gets the peer address.
pub async fn serve_fn<F, Fut>(listener: Listener, handler: F, shutdown: Shutdown)
where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    serve(
        listener,
        move |peer| {
            let handler = handler.clone();
            hyper::service::service_fn(move |req| handler(req, peer))
        },
        shutdown,
    )
    .await;
}

/// Accepts connections until `shutdown`, serving each with the service `make(peer)` returns,
/// then gives open connections [`GRACEFUL_CLOSE`] to finish.
pub async fn serve<M, S, B>(listener: Listener, make: M, shutdown: Shutdown)
where
    M: Fn(SocketAddr) -> S + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    if listener.protocol == Protocol::Http2 {
        builder = builder.http2_only();
    }
    builder
        .http2()
        .max_concurrent_streams(listener.max_concurrent_streams);
    let builder = Arc::new(builder);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let local = listener.local_addr();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.tcp.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%local, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let svc = make(peer);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        match listener.tls.clone() {
            None => {
                tokio::spawn(serve_conn(builder, watcher, stream, svc));
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    match acceptor.accept(stream).await {
                        Ok(tls) => serve_conn(builder, watcher, tls, svc).await,
                        Err(error) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(GRACEFUL_CLOSE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!(%local, "connections still open after the graceful close period");
    }
}

async fn serve_conn<I, S, B>(
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: hyper_util::server::graceful::Watcher,
    io: I,
    svc: S,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let conn = builder.serve_connection(TokioIo::new(io), svc).into_owned();
    if let Err(error) = watcher.watch(conn).await {
        tracing::debug!(%error, "connection ended with an error");
    }
}
