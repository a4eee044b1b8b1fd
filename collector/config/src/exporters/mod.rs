//! Exporter configs and the settings they share (retry, queue, client TLS).

pub mod debug;
pub mod otlp;
pub mod otlphttp;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::duration;

/// `retry_on_failure` (upstream `configretry.BackOffConfig`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    pub enabled: bool,
    /// Default 5s.
    #[serde(deserialize_with = "duration::de")]
    pub initial_interval: Duration,
    /// Default 30s.
    #[serde(deserialize_with = "duration::de")]
    pub max_interval: Duration,
    /// Give up after this long; 0 retries forever. Default 5m.
    #[serde(deserialize_with = "duration::de")]
    pub max_elapsed_time: Duration,
    /// Default 1.5.
    pub multiplier: f64,
    /// Each interval is scaled by a random factor in [1 - r, 1 + r]; default 0.5.
    pub randomization_factor: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            initial_interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(30),
            max_elapsed_time: Duration::from_secs(300),
            multiplier: 1.5,
            randomization_factor: 0.5,
        }
    }
}

/// `sending_queue`: a bounded queue in front of the exporter's consumers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    pub enabled: bool,
    /// Consumers sending concurrently; default 10.
    pub num_consumers: usize,
    /// Capacity in requests; default 1000.
    pub queue_size: usize,
    /// What `queue_size` counts.
    pub sizer: QueueSizer,
    /// When full: wait for room (`true`) instead of refusing the data at once (default false).
    pub block_on_overflow: bool,
    pub wait_for_result: bool,
    /// A `file_storage` extension id: the queue is kept on disk there, across restarts.
    pub storage: Option<String>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            num_consumers: 10,
            queue_size: 1000,
            sizer: QueueSizer::Requests,
            block_on_overflow: false,
            wait_for_result: false,
            storage: None,
        }
    }
}

/// What a sending queue's `queue_size` counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueSizer {
    #[default]
    Requests,
    Items,
    /// Upstream counts bytes of the serialized data; kotel does not.
    Bytes,
}

impl QueueConfig {
    /// What kotel runs: a queue counted in requests or items, in memory or (with `storage`,
    /// checked against the extensions by the config) on disk.
    pub(crate) fn validate(&self, path: &str) -> Result<(), crate::error::ConfigError> {
        use crate::error::ConfigError;
        if self.sizer == QueueSizer::Bytes {
            return Err(ConfigError::unsupported(
                format!("{path}.sending_queue.sizer"),
                "bytes is not supported by kotel (requests or items)",
            ));
        }
        Ok(())
    }
}

/// Client-side TLS (upstream `configtls.ClientConfig`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsClientConfig {
    /// Plain text (no TLS) for gRPC.
    pub insecure: bool,
    pub insecure_skip_verify: bool,
    pub ca_file: Option<String>,
    pub ca_pem: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub server_name_override: Option<String>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    pub include_system_ca_certs_pool: bool,
}

pub(crate) type Headers = BTreeMap<String, String>;

pub(crate) fn check_compression(path: &str, c: &str) -> Result<(), crate::error::ConfigError> {
    if matches!(c, "" | "none" | "gzip" | "zstd") {
        Ok(())
    } else {
        Err(crate::error::ConfigError::unsupported(
            format!("{path}.compression"),
            format!("{c:?} is not supported (gzip, zstd or none)"),
        ))
    }
}
