//! `otlp` (new name `otlp_grpc`) exporter: OTLP over gRPC.

use std::time::Duration;

use serde::Deserialize;

use super::{Headers, QueueConfig, RetryConfig, TlsClientConfig, check_compression};
use crate::duration;
use crate::error::ConfigError;
use crate::extensions::auth::AuthRef;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpExporterConfig {
    /// `host:port` or a URL; required.
    pub endpoint: String,
    /// Default `gzip`.
    pub compression: String,
    pub tls: TlsClientConfig,
    pub headers: Headers,
    /// Per attempt; default 5s.
    #[serde(deserialize_with = "duration::de")]
    pub timeout: Duration,
    pub retry_on_failure: RetryConfig,
    pub sending_queue: QueueConfig,
    pub balancer_name: Option<String>,
    pub wait_for_ready: bool,
    /// HTTP/2 pings on the connection (upstream's `keepalive`); none when absent.
    pub keepalive: Option<KeepaliveConfig>,
    /// A client authenticator extension's header on every request.
    pub auth: Option<AuthRef>,
}

/// gRPC client keepalive, as upstream's `configgrpc.KeepaliveClientConfig`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveConfig {
    /// Ping after this long without activity.
    #[serde(deserialize_with = "duration::de")]
    pub time: Duration,
    /// Close the connection when a ping is not answered within this.
    #[serde(deserialize_with = "duration::de")]
    pub timeout: Duration,
    /// Ping even when no request is in flight.
    pub permit_without_stream: bool,
}

impl Default for KeepaliveConfig {
    // gRPC's own defaults when keepalive is on: never below 10 s, 20 s to answer.
    fn default() -> Self {
        Self {
            time: Duration::from_secs(10),
            timeout: Duration::from_secs(20),
            permit_without_stream: false,
        }
    }
}

impl Default for OtlpExporterConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            compression: "gzip".into(),
            tls: TlsClientConfig::default(),
            headers: Headers::new(),
            timeout: Duration::from_secs(5),
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
            balancer_name: None,
            wait_for_ready: false,
            keepalive: None,
            auth: None,
        }
    }
}

impl OtlpExporterConfig {
    pub(crate) fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.endpoint.is_empty() {
            return Err(ConfigError::new(format!("{path}.endpoint"), "required"));
        }
        self.sending_queue.validate(path)?;
        check_compression(path, &self.compression)
    }
}
