//! The kubelet HTTP(S) client: `GET` a path, with credentials, a deadline and a body limit.
//!
//! One HTTP/1.1 connection is kept between scrapes and replaced when it breaks; the kubelet is
//! one host and scrapes are sequential, so a pool would buy nothing.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::auth::{self, AuthError, TlsSettings, TokenFile};
use crate::config::{Auth, Endpoint, Resolved, Scheme};

/// A node's summary is a few MB at most; refuse anything far beyond that.
const MAX_BODY: usize = 64 << 20;
/// How much of an error response is kept for the log.
const MAX_ERROR_BODY: usize = 512;

/// Why a request failed. `reason()` is the bounded label for the error counter.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("kubelet request GET {url} failed: connecting: {source}")]
    Connect { url: String, source: std::io::Error },
    #[error("kubelet request GET {url} failed: TLS handshake: {source}")]
    Tls { url: String, source: std::io::Error },
    #[error("kubelet request GET {url} failed: {source}")]
    Auth { url: String, source: AuthError },
    #[error("kubelet request GET {url} failed - {status:?}, response: {body:?}")]
    Status {
        url: String,
        status: StatusCode,
        body: String,
    },
    #[error("kubelet request GET {url} failed: no response within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("kubelet request GET {url} failed: {source}")]
    Http { url: String, source: hyper::Error },
    #[error("kubelet request GET {url} failed: reading the body: {reason}")]
    Body { url: String, reason: String },
}

impl FetchError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "connect",
            Self::Tls { .. } => "tls",
            Self::Auth { .. } => "credentials",
            Self::Status { .. } => "http_status",
            Self::Timeout { .. } => "timeout",
            Self::Http { .. } => "http",
            Self::Body { .. } => "body",
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Connect { url, .. }
            | Self::Tls { url, .. }
            | Self::Auth { url, .. }
            | Self::Status { url, .. }
            | Self::Timeout { url, .. }
            | Self::Http { url, .. }
            | Self::Body { url, .. } => url,
        }
    }

    /// The HTTP status, when the kubelet answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(status.as_u16()),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("kubelet client TLS setup: {0}")]
    Tls(#[from] AuthError),
    #[error("kubelet host {0:?} is not a valid TLS server name")]
    ServerName(String),
}

struct TlsTarget {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

/// A client for one kubelet.
pub struct KubeletClient {
    endpoint: Endpoint,
    authority: String,
    tls: Option<TlsTarget>,
    token: Option<TokenFile>,
    timeout: Duration,
    conn: tokio::sync::Mutex<Option<SendRequest<Empty<Bytes>>>>,
}

impl KubeletClient {
    pub fn new(r: &Resolved) -> Result<Self, ClientError> {
        let tls = match r.endpoint.scheme {
            Scheme::Http => None,
            Scheme::Https => {
                let client_cert = match &r.auth {
                    Auth::Tls {
                        cert_file,
                        key_file,
                    } => Some((cert_file.as_path(), key_file.as_path())),
                    _ => None,
                };
                let config = auth::client_config(&TlsSettings {
                    ca_file: r.ca_file.as_deref(),
                    client_cert,
                    insecure_skip_verify: r.insecure_skip_verify,
                })?;
                let server_name = ServerName::try_from(r.endpoint.host.clone())
                    .map_err(|_| ClientError::ServerName(r.endpoint.host.clone()))?;
                Some(TlsTarget {
                    connector: TlsConnector::from(Arc::new(config)),
                    server_name,
                })
            }
        };
        let token = match &r.auth {
            Auth::ServiceAccount { token_file } => Some(TokenFile::new(token_file.clone())),
            _ => None,
        };
        Ok(Self {
            authority: r.endpoint.authority(),
            endpoint: r.endpoint.clone(),
            tls,
            token,
            timeout: r.timeout,
            conn: tokio::sync::Mutex::new(None),
        })
    }

    pub fn url(&self, path: &str) -> String {
        self.endpoint.url(path)
    }

    /// `GET path`; the body of a 200 response.
    pub async fn get(&self, path: &str) -> Result<Bytes, FetchError> {
        let url = self.url(path);
        match tokio::time::timeout(self.timeout, self.get_inner(path, &url)).await {
            Ok(result) => result,
            Err(_) => {
                // The connection may be mid-response; never reuse it.
                *self.conn.lock().await = None;
                Err(FetchError::Timeout {
                    url,
                    timeout: self.timeout,
                })
            }
        }
    }

    async fn get_inner(&self, path: &str, url: &str) -> Result<Bytes, FetchError> {
        let mut request = Request::get(format!("{}{path}", self.endpoint.base_path))
            .header(header::HOST, &self.authority)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            let value = token.header().map_err(|source| FetchError::Auth {
                url: url.to_string(),
                source,
            })?;
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .expect("a GET with valid headers");

        let mut slot = self.conn.lock().await;
        let mut reused = slot.take();
        if let Some(sender) = reused.as_mut()
            && sender.ready().await.is_err()
        {
            reused = None;
        }
        let response = match reused {
            Some(mut sender) => match sender.send_request(clone_request(&request)).await {
                Ok(r) => {
                    *slot = Some(sender);
                    r
                }
                // The kubelet closed an idle connection as we reused it: one fresh try.
                Err(_) => self.send_fresh(&mut slot, request, url).await?,
            },
            None => self.send_fresh(&mut slot, request, url).await?,
        };
        drop(slot);

        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| FetchError::Body {
                url: url.to_string(),
                reason: e.to_string(),
            })?
            .to_bytes();
        if status != StatusCode::OK {
            let end = body.len().min(MAX_ERROR_BODY);
            return Err(FetchError::Status {
                url: url.to_string(),
                status,
                body: String::from_utf8_lossy(&body[..end]).trim().to_string(),
            });
        }
        Ok(body)
    }

    async fn send_fresh(
        &self,
        slot: &mut Option<SendRequest<Empty<Bytes>>>,
        request: Request<Empty<Bytes>>,
        url: &str,
    ) -> Result<http::Response<hyper::body::Incoming>, FetchError> {
        let mut sender = self.connect(url).await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|source| FetchError::Http {
                url: url.to_string(),
                source,
            })?;
        *slot = Some(sender);
        Ok(response)
    }

    async fn connect(&self, url: &str) -> Result<SendRequest<Empty<Bytes>>, FetchError> {
        let tcp = TcpStream::connect((self.endpoint.host.as_str(), self.endpoint.port))
            .await
            .map_err(|source| FetchError::Connect {
                url: url.to_string(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let http_err = |source| FetchError::Http {
            url: url.to_string(),
            source,
        };
        match &self.tls {
            Some(t) => {
                let stream = t
                    .connector
                    .connect(t.server_name.clone(), tcp)
                    .await
                    .map_err(|source| FetchError::Tls {
                        url: url.to_string(),
                        source,
                    })?;
                let (sender, conn) = http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(http_err)?;
                spawn_connection(conn);
                Ok(sender)
            }
            None => {
                let (sender, conn) = http1::handshake(TokioIo::new(tcp))
                    .await
                    .map_err(http_err)?;
                spawn_connection(conn);
                Ok(sender)
            }
        }
    }
}

fn spawn_connection<T>(conn: http1::Connection<T, Empty<Bytes>>)
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "kubelet connection closed");
        }
    });
}

fn clone_request(r: &Request<Empty<Bytes>>) -> Request<Empty<Bytes>> {
    let mut out = Request::new(Empty::new());
    *out.method_mut() = r.method().clone();
    *out.uri_mut() = r.uri().clone();
    *out.headers_mut() = r.headers().clone();
    out
}
