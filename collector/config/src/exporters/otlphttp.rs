//! `otlphttp` (new name `otlp_http`) exporter: OTLP/HTTP with protobuf bodies.

use std::time::Duration;

use serde::Deserialize;

use super::{Headers, QueueConfig, RetryConfig, TlsClientConfig, check_compression};
use crate::duration;
use crate::error::ConfigError;
use crate::extensions::auth::AuthRef;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpHttpExporterConfig {
    /// Base URL; `/v1/traces` etc. are appended. One of this or the per-signal endpoints.
    pub endpoint: Option<String>,
    pub traces_endpoint: Option<String>,
    pub metrics_endpoint: Option<String>,
    pub logs_endpoint: Option<String>,
    /// Default `gzip`.
    pub compression: String,
    /// `proto` (default) or `json`.
    pub encoding: String,
    pub tls: TlsClientConfig,
    pub headers: Headers,
    /// Per attempt; default 30s as upstream's HTTP client.
    #[serde(deserialize_with = "duration::de")]
    pub timeout: Duration,
    pub retry_on_failure: RetryConfig,
    pub sending_queue: QueueConfig,
    /// An HTTP proxy every request goes through (upstream's `proxy_url`); without it the
    /// `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` variables apply, as in Go.
    pub proxy_url: Option<String>,
    /// A client authenticator extension's header on every request.
    pub auth: Option<AuthRef>,
}

impl Default for OtlpHttpExporterConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            traces_endpoint: None,
            metrics_endpoint: None,
            logs_endpoint: None,
            compression: "gzip".into(),
            encoding: "proto".into(),
            tls: TlsClientConfig::default(),
            headers: Headers::new(),
            timeout: Duration::from_secs(30),
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
            proxy_url: None,
            auth: None,
        }
    }
}

impl OtlpHttpExporterConfig {
    pub(crate) fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let any = self.endpoint.is_some()
            || self.traces_endpoint.is_some()
            || self.metrics_endpoint.is_some()
            || self.logs_endpoint.is_some();
        if !any {
            return Err(ConfigError::new(
                format!("{path}.endpoint"),
                "required (or traces_endpoint, metrics_endpoint, logs_endpoint)",
            ));
        }
        self.sending_queue.validate(path)?;
        if let Some(proxy) = &self.proxy_url
            && !(proxy.starts_with("http://") || proxy.starts_with("https://"))
        {
            return Err(ConfigError::new(
                format!("{path}.proxy_url"),
                format!("{proxy:?} must be an http:// or https:// URL"),
            ));
        }
        if !matches!(self.encoding.as_str(), "proto" | "json") {
            return Err(ConfigError::new(
                format!("{path}.encoding"),
                "must be proto or json",
            ));
        }
        check_compression(path, &self.compression)
    }

    /// The URL for a signal: its own endpoint, or the base endpoint plus `/v1/<signal>`.
    pub fn url_for(&self, signal: crate::Signal) -> Option<String> {
        let own = match signal {
            crate::Signal::Traces => &self.traces_endpoint,
            crate::Signal::Metrics => &self.metrics_endpoint,
            crate::Signal::Logs => &self.logs_endpoint,
        };
        own.clone().or_else(|| {
            self.endpoint
                .as_ref()
                .map(|base| format!("{}/v1/{}", base.trim_end_matches('/'), signal.as_str()))
        })
    }
}
