//! `otlphttp` (`otlp_http`) exporter: OTLP/HTTP with protobuf (default) or JSON bodies.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kotel_config::Signal as ConfigSignal;
use kotel_config::exporters::otlphttp::OtlpHttpExporterConfig;
use kotel_pipeline::{ClientAuth, Payload, Signal};

use super::codec::PartialSuccess;
use super::{Outgoing, SendError, Sender};

/// Response bodies read for error messages are cut here, as upstream.
const MAX_ERROR_BODY: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum OtlpHttpError {
    #[error("tls: cannot read {path}: {source}")]
    TlsFile {
        path: String,
        source: std::io::Error,
    },
    #[error("http client: {0}")]
    Client(String),
    #[error("header {0:?} is not a valid HTTP header")]
    Header(String),
}

pub struct OtlpHttpSender {
    client: reqwest::Client,
    urls: [Option<String>; 3],
    json: bool,
    compression: Compression,
    headers: http::HeaderMap,
    auth: Option<Arc<dyn ClientAuth>>,
}

#[derive(Clone, Copy)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

impl OtlpHttpSender {
    pub fn new(cfg: &OtlpHttpExporterConfig) -> Result<Self, OtlpHttpError> {
        let read = |path: &String| {
            std::fs::read(path).map_err(|source| OtlpHttpError::TlsFile {
                path: path.clone(),
                source,
            })
        };
        let ca = match (&cfg.tls.ca_pem, &cfg.tls.ca_file) {
            (Some(p), _) => Some(p.as_bytes().to_vec()),
            (None, Some(f)) => Some(read(f)?),
            (None, None) => None,
        };
        let ca = ca
            .map(|pem| {
                reqwest::Certificate::from_pem(&pem)
                    .map_err(|e| OtlpHttpError::Client(format!("bad CA PEM: {e}")))
            })
            .transpose()?;
        let identity =
            match (&cfg.tls.cert_file, &cfg.tls.key_file) {
                (Some(c), Some(k)) => {
                    let mut pem = read(c)?;
                    pem.extend(read(k)?);
                    Some(reqwest::Identity::from_pem(&pem).map_err(|e| {
                        OtlpHttpError::Client(format!("bad client certificate: {e}"))
                    })?)
                }
                _ => None,
            };
        // system_roots: the machine's CA bundle plus `ca`; else only `ca`.
        let build = |system_roots: bool| {
            let mut b = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .danger_accept_invalid_certs(cfg.tls.insecure_skip_verify);
            let roots = ca.iter().cloned();
            b = if system_roots {
                b.tls_certs_merge(roots)
            } else {
                b.tls_certs_only(roots)
            };
            if let Some(id) = identity.clone() {
                b = b.identity(id);
            }
            if let Some(proxy) = &cfg.proxy_url {
                b = b.proxy(reqwest::Proxy::all(proxy.as_str())?);
            }
            b.build()
        };
        // An image without a CA bundle (FROM scratch) must still export over http://, and over
        // https:// to a server its tls.ca_file vouches for: without system roots, use only those.
        let client = match build(true) {
            Ok(c) => c,
            Err(system) => {
                let c = build(false).map_err(|e| OtlpHttpError::Client(e.to_string()))?;
                tracing::warn!(
                    endpoint = ?cfg.url_for(ConfigSignal::Traces),
                    error = %system,
                    "otlphttp: no system CA certificates; https trusts only tls.ca_file"
                );
                c
            }
        };
        let mut headers = http::HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name = http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| OtlpHttpError::Header(k.clone()))?;
            let value =
                http::HeaderValue::from_str(v).map_err(|_| OtlpHttpError::Header(k.clone()))?;
            headers.insert(name, value);
        }
        Ok(Self {
            client,
            urls: [
                cfg.url_for(ConfigSignal::Traces),
                cfg.url_for(ConfigSignal::Metrics),
                cfg.url_for(ConfigSignal::Logs),
            ],
            json: cfg.encoding == "json",
            compression: match cfg.compression.as_str() {
                "gzip" => Compression::Gzip,
                "zstd" => Compression::Zstd,
                _ => Compression::None,
            },
            headers,
            auth: None,
        })
    }

    /// Adds the authenticator's header to every request (`auth.authenticator`).
    pub fn with_auth(self, auth: Option<Arc<dyn ClientAuth>>) -> Self {
        Self { auth, ..self }
    }
}

fn body(request: &Outgoing, json: bool) -> Result<Vec<u8>, SendError> {
    if !json {
        return Ok(request.body.to_vec());
    }
    let payload = &request
        .decode()
        .map_err(|e| SendError::Permanent(format!("cannot decode queued request: {e}")))?;
    let r = match payload {
        Payload::Traces(r) => serde_json::to_vec(r),
        Payload::Metrics(r) => serde_json::to_vec(r),
        Payload::Logs(r) => serde_json::to_vec(r),
    };
    r.map_err(|e| SendError::Permanent(format!("cannot encode JSON: {e}")))
}

/// `Retry-After` as delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[async_trait::async_trait]
impl Sender for OtlpHttpSender {
    async fn send(&self, request: &Outgoing) -> Result<(), SendError> {
        let signal = request.signal;
        let i = match signal {
            Signal::Traces => 0,
            Signal::Metrics => 1,
            Signal::Logs => 2,
        };
        let Some(url) = &self.urls[i] else {
            return Err(SendError::Permanent(format!(
                "no endpoint configured for {}",
                signal.as_str()
            )));
        };
        let raw = body(request, self.json)?;
        let mut req = self.client.post(url).headers(self.headers.clone()).header(
            http::header::CONTENT_TYPE,
            if self.json {
                "application/json"
            } else {
                "application/x-protobuf"
            },
        );
        if let Some(auth) = &self.auth {
            let (name, value) = auth.header();
            req = req.header(name, value);
        }
        let payload = match self.compression {
            Compression::None => raw,
            Compression::Gzip => {
                use std::io::Write;
                req = req.header(http::header::CONTENT_ENCODING, "gzip");
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(&raw)
                    .and_then(|_| enc.finish())
                    .map_err(|e| SendError::Permanent(format!("gzip: {e}")))?
            }
            Compression::Zstd => {
                req = req.header(http::header::CONTENT_ENCODING, "zstd");
                zstd::bulk::compress(&raw, 1)
                    .map_err(|e| SendError::Permanent(format!("zstd: {e}")))?
            }
        };
        let resp = req
            .body(payload)
            .send()
            .await
            .map_err(|e| SendError::retryable(format!("request to {url} failed: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            // Logged as upstream does: the backend took the request and dropped part of it.
            let body = resp.bytes().await.unwrap_or_default();
            if let Some(p) = PartialSuccess::from_http_body(&body, self.json)
                && p.is_partial()
            {
                tracing::warn!(
                    rejected = p.rejected,
                    message = %p.error_message,
                    "partial success response"
                );
            }
            return Ok(());
        }
        let throttle = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = resp.bytes().await.unwrap_or_default();
        let text = String::from_utf8_lossy(&text[..text.len().min(MAX_ERROR_BODY)]).into_owned();
        let message = format!("{url} answered {status}: {}", text.trim());
        match status.as_u16() {
            429 | 502 | 503 | 504 => Err(SendError::Retryable { message, throttle }),
            _ => Err(SendError::Permanent(message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        let later = SystemTime::now() + Duration::from_secs(120);
        let d = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
