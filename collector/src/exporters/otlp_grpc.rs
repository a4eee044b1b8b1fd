//! `otlp` (`otlp_grpc`) exporter: OTLP over gRPC with tonic.
//!
//! Requests are encoded once per attempt straight from the envelope (no copy of the message) and
//! framed by a pass-through codec; gzip (default) or zstd compress the frame.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use kotel_config::exporters::otlp::OtlpExporterConfig;
use kotel_pipeline::{ClientAuth, error_chain, with_sources};
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::codec::{RawCodec, signal_path};
use super::{Outgoing, SendError, Sender};
use crate::rpc_status::Status;

#[derive(Debug, thiserror::Error)]
pub enum OtlpGrpcError {
    #[error("endpoint {endpoint:?}: {message}")]
    Endpoint { endpoint: String, message: String },
    #[error("tls: cannot read {path}: {source}")]
    TlsFile {
        path: String,
        source: std::io::Error,
    },
    #[error("tls: {0}")]
    Tls(String),
    #[error("header {0:?} is not a valid gRPC metadata entry")]
    Header(String),
}

pub struct OtlpGrpcSender {
    /// The endpoint as configured, named in every send error.
    endpoint: String,
    channel: Channel,
    compression: Option<CompressionEncoding>,
    headers: Vec<(
        MetadataKey<tonic::metadata::Ascii>,
        MetadataValue<tonic::metadata::Ascii>,
    )>,
    auth: Option<Arc<dyn ClientAuth>>,
}

impl OtlpGrpcSender {
    /// Connects lazily: the first send opens the connection, so a backend that is down at start
    /// is retried like any other failure.
    pub fn new(cfg: &OtlpExporterConfig) -> Result<Self, OtlpGrpcError> {
        let endpoint_err = |message: String| OtlpGrpcError::Endpoint {
            endpoint: cfg.endpoint.clone(),
            message,
        };
        let (url, use_tls) = target(&cfg.endpoint, cfg.tls.insecure);
        let mut endpoint = Endpoint::from_str(&url)
            .map_err(|e| endpoint_err(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        if let Some(k) = &cfg.keepalive {
            endpoint = endpoint
                .http2_keep_alive_interval(k.time)
                .keep_alive_timeout(k.timeout)
                .keep_alive_while_idle(k.permit_without_stream);
        }
        if use_tls {
            if cfg.tls.insecure_skip_verify {
                return Err(OtlpGrpcError::Tls(
                    "insecure_skip_verify is not supported by the gRPC exporter; set ca_file"
                        .into(),
                ));
            }
            let read = |path: &String| {
                std::fs::read(path).map_err(|source| OtlpGrpcError::TlsFile {
                    path: path.clone(),
                    source,
                })
            };
            let mut tls = ClientTlsConfig::new();
            let ca = match (&cfg.tls.ca_pem, &cfg.tls.ca_file) {
                (Some(p), _) => Some(p.as_bytes().to_vec()),
                (None, Some(f)) => Some(read(f)?),
                (None, None) => None,
            };
            tls = match ca {
                Some(pem) => {
                    let t = tls.ca_certificate(Certificate::from_pem(pem));
                    if cfg.tls.include_system_ca_certs_pool {
                        t.with_native_roots()
                    } else {
                        t
                    }
                }
                None => tls.with_native_roots(),
            };
            if let (Some(c), Some(k)) = (&cfg.tls.cert_file, &cfg.tls.key_file) {
                tls = tls.identity(Identity::from_pem(read(c)?, read(k)?));
            }
            if let Some(name) = &cfg.tls.server_name_override {
                tls = tls.domain_name(name.clone());
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| OtlpGrpcError::Tls(e.to_string()))?;
        }
        let compression = match cfg.compression.as_str() {
            "gzip" => Some(CompressionEncoding::Gzip),
            "zstd" => Some(CompressionEncoding::Zstd),
            _ => None,
        };
        let headers = cfg
            .headers
            .iter()
            .map(|(k, v)| {
                let key = MetadataKey::from_str(&k.to_ascii_lowercase())
                    .map_err(|_| OtlpGrpcError::Header(k.clone()))?;
                let value = MetadataValue::try_from(v.as_str())
                    .map_err(|_| OtlpGrpcError::Header(k.clone()))?;
                Ok((key, value))
            })
            .collect::<Result<_, OtlpGrpcError>>()?;
        Ok(Self {
            endpoint: cfg.endpoint.clone(),
            channel: endpoint.connect_lazy(),
            compression,
            headers,
            auth: None,
        })
    }

    /// Adds the authenticator's header to every request (`auth.authenticator`).
    pub fn with_auth(self, auth: Option<Arc<dyn ClientAuth>>) -> Self {
        Self { auth, ..self }
    }
}

/// The URL to dial and whether to use TLS, for an endpoint as upstream accepts it: `host:port`
/// (TLS unless `tls.insecure`), `http://` or `https://` URLs (the scheme decides), or a gRPC
/// name `dns:[//resolver]/host:port` or `passthrough:///host:port` (TLS unless insecure).
pub fn target(endpoint: &str, insecure: bool) -> (String, bool) {
    let with_tls = |host: &str| {
        let scheme = if insecure { "http" } else { "https" };
        (format!("{scheme}://{host}"), !insecure)
    };
    for scheme in ["dns:", "passthrough:"] {
        if let Some(rest) = endpoint.strip_prefix(scheme) {
            // `//resolver/host:port` or `///host:port` or `host:port`: the name follows the
            // last slash; kotelcol resolves it with the system resolver.
            return with_tls(rest.rsplit('/').next().unwrap_or(rest));
        }
    }
    if endpoint.contains("://") {
        (endpoint.to_string(), endpoint.starts_with("https://"))
    } else {
        with_tls(endpoint)
    }
}

#[async_trait::async_trait]
impl Sender for OtlpGrpcSender {
    async fn send(&self, request: &Outgoing) -> Result<(), SendError> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        if let Some(c) = self.compression {
            grpc = grpc.send_compressed(c);
        }
        grpc.ready().await.map_err(|e| {
            SendError::retryable(format!(
                "{}: connection not ready: {}",
                self.endpoint,
                error_chain(&e)
            ))
        })?;
        let path = http::uri::PathAndQuery::from_static(signal_path(request.signal));
        let mut call = tonic::Request::new(request.body.clone());
        for (k, v) in &self.headers {
            call.metadata_mut().insert(k.clone(), v.clone());
        }
        if let Some(auth) = &self.auth {
            let (name, value) = auth.header();
            // Header names are lower-case ASCII and values visible ASCII, as metadata needs.
            if let (Ok(k), Ok(v)) = (
                MetadataKey::from_bytes(name.as_str().as_bytes()),
                MetadataValue::try_from(value.as_bytes()),
            ) {
                call.metadata_mut().insert(k, v);
            }
        }
        match grpc.unary(call, path, RawCodec).await {
            Ok(response) => {
                if let Some(p) = response.into_inner().partial_success
                    && p.is_partial()
                {
                    tracing::warn!(
                        rejected = p.rejected,
                        message = %p.error_message,
                        "partial success response"
                    );
                }
                Ok(())
            }
            Err(status) => Err(classify(&status).context(&self.endpoint)),
        }
    }
}

/// The retryable codes of the OTLP spec; RESOURCE_EXHAUSTED only with RetryInfo.
pub fn classify(status: &tonic::Status) -> SendError {
    use tonic::Code::*;
    let detailed = Status::from_tonic(status);
    let throttle = detailed.retry_after();
    let message = with_sources(format!("{:?}: {}", status.code(), status.message()), status);
    match status.code() {
        Cancelled | DeadlineExceeded | Aborted | OutOfRange | Unavailable | DataLoss => {
            SendError::Retryable { message, throttle }
        }
        ResourceExhausted if throttle.is_some() => SendError::Retryable { message, throttle },
        _ => SendError::Permanent(message),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kotel_pipeline::Signal;

    use super::*;

    #[test]
    fn targets_as_upstream() {
        let t = |e: &str, insecure| target(e, insecure);
        assert_eq!(t("h:4317", false), ("https://h:4317".into(), true));
        assert_eq!(t("h:4317", true), ("http://h:4317".into(), false));
        assert_eq!(t("http://h:4317", false), ("http://h:4317".into(), false));
        assert_eq!(t("https://h:4317", true), ("https://h:4317".into(), true));
        assert_eq!(t("dns:///h:4317", true), ("http://h:4317".into(), false));
        assert_eq!(t("dns:///h:4317", false), ("https://h:4317".into(), true));
        assert_eq!(
            t("dns://8.8.8.8/h:4317", true),
            ("http://h:4317".into(), false)
        );
        assert_eq!(t("dns:h:4317", true), ("http://h:4317".into(), false));
        assert_eq!(
            t("passthrough:///h:4317", true),
            ("http://h:4317".into(), false)
        );
    }

    #[tokio::test]
    async fn a_failed_send_names_the_endpoint_and_the_cause() {
        // A loopback port with nothing listening.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cfg = OtlpExporterConfig {
            endpoint: format!("127.0.0.1:{port}"),
            ..Default::default()
        };
        cfg.tls.insecure = true;
        let sender = OtlpGrpcSender::new(&cfg).unwrap();
        let req = Outgoing {
            signal: Signal::Traces,
            items: 1,
            body: Bytes::new(),
            acks: Default::default(),
        };
        let err = sender.send(&req).await.unwrap_err().to_string();
        assert!(err.starts_with(&format!("127.0.0.1:{port}: ")), "{err}");
        assert!(
            err.to_lowercase().contains("refused"),
            "the cause is missing: {err}"
        );
    }
}
