//! `otlp` receiver: OTLP over gRPC (default `localhost:4317`) and HTTP (default `localhost:4318`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::{duration, serde_util, size};

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpReceiverConfig {
    #[serde(default)]
    pub protocols: Protocols,
}

/// A protocol key present with no body (`grpc:`) is enabled with its defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocols {
    #[serde(default, deserialize_with = "serde_util::present")]
    pub grpc: Option<GrpcServerConfig>,
    #[serde(default, deserialize_with = "serde_util::present")]
    pub http: Option<HttpServerConfig>,
}

impl OtlpReceiverConfig {
    pub(crate) fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.protocols.grpc.is_none() && self.protocols.http.is_none() {
            return Err(ConfigError::new(
                format!("{path}.protocols"),
                "must specify at least one protocol when using the OTLP receiver",
            ));
        }
        if let Some(g) = &self.protocols.grpc {
            if g.transport != "tcp" {
                return Err(ConfigError::unsupported(
                    format!("{path}.protocols.grpc.transport"),
                    format!("{:?} is not supported by kotel (tcp)", g.transport),
                ));
            }
            port_of(&g.endpoint)
                .map_err(|m| ConfigError::new(format!("{path}.protocols.grpc.endpoint"), m))?;
        }
        if let Some(h) = &self.protocols.http {
            port_of(&h.endpoint)
                .map_err(|m| ConfigError::new(format!("{path}.protocols.http.endpoint"), m))?;
        }
        Ok(())
    }
}

/// The port of a `host:port` endpoint (host may be empty or an unexpanded `${env:…}` reference).
pub fn port_of(endpoint: &str) -> Result<u16, String> {
    let (_, port) = endpoint
        .rsplit_once(':')
        .ok_or_else(|| format!("endpoint {endpoint:?} must be host:port"))?;
    port.parse()
        .map_err(|_| format!("endpoint {endpoint:?}: port {port:?} is not a number 0-65535"))
}

/// gRPC server settings (upstream `configgrpc.ServerConfig`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcServerConfig {
    /// Listen address; default `localhost:4317`.
    pub endpoint: String,
    /// `tcp` (default) or `unix`.
    pub transport: String,
    /// Largest accepted message in MiB; 0 means the gRPC default of 4 MiB.
    pub max_recv_msg_size_mib: u64,
    /// 0 means unlimited.
    pub max_concurrent_streams: u32,
    #[serde(deserialize_with = "size::de")]
    pub read_buffer_size: u64,
    #[serde(deserialize_with = "size::de")]
    pub write_buffer_size: u64,
    pub keepalive: Option<Keepalive>,
    pub tls: Option<TlsServerConfig>,
    /// Pass request headers on as request metadata.
    pub include_metadata: bool,
}

impl Default for GrpcServerConfig {
    fn default() -> Self {
        Self {
            endpoint: "localhost:4317".into(),
            transport: "tcp".into(),
            max_recv_msg_size_mib: 0,
            max_concurrent_streams: 0,
            read_buffer_size: 512 * 1024,
            write_buffer_size: 0,
            keepalive: None,
            tls: None,
            include_metadata: false,
        }
    }
}

impl GrpcServerConfig {
    /// The effective message size limit in bytes.
    pub fn max_recv_msg_size(&self) -> usize {
        let mib = if self.max_recv_msg_size_mib == 0 {
            4
        } else {
            self.max_recv_msg_size_mib
        };
        (mib as usize) << 20
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keepalive {
    pub server_parameters: Option<KeepaliveServerParameters>,
    pub enforcement_policy: Option<KeepaliveEnforcementPolicy>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepaliveServerParameters {
    #[serde(default, deserialize_with = "duration::de_opt")]
    pub max_connection_idle: Option<Duration>,
    #[serde(default, deserialize_with = "duration::de_opt")]
    pub max_connection_age: Option<Duration>,
    #[serde(default, deserialize_with = "duration::de_opt")]
    pub max_connection_age_grace: Option<Duration>,
    #[serde(default, deserialize_with = "duration::de_opt")]
    pub time: Option<Duration>,
    #[serde(default, deserialize_with = "duration::de_opt")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepaliveEnforcementPolicy {
    #[serde(default, deserialize_with = "duration::de_opt")]
    pub min_time: Option<Duration>,
    #[serde(default)]
    pub permit_without_stream: bool,
}

/// HTTP server settings (upstream `confighttp.ServerConfig`) plus the OTLP URL paths.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpServerConfig {
    /// Listen address; default `localhost:4318`.
    pub endpoint: String,
    /// Largest request body, compressed or decompressed; default 20 MiB.
    #[serde(deserialize_with = "size::de")]
    pub max_request_body_size: u64,
    pub include_metadata: bool,
    pub tls: Option<TlsServerConfig>,
    pub cors: Option<CorsConfig>,
    /// Accepted `Content-Encoding`s; default `["", "gzip", "zstd", "zlib", "deflate"]`.
    pub compression_algorithms: Option<Vec<String>>,
    pub response_headers: BTreeMap<String, String>,
    pub traces_url_path: String,
    pub metrics_url_path: String,
    pub logs_url_path: String,
    #[serde(deserialize_with = "duration::de")]
    pub read_timeout: Duration,
    #[serde(deserialize_with = "duration::de")]
    pub read_header_timeout: Duration,
    #[serde(deserialize_with = "duration::de")]
    pub write_timeout: Duration,
    #[serde(deserialize_with = "duration::de")]
    pub idle_timeout: Duration,
    pub keep_alives_enabled: bool,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        Self {
            endpoint: "localhost:4318".into(),
            max_request_body_size: 20 << 20,
            include_metadata: false,
            tls: None,
            cors: None,
            compression_algorithms: None,
            response_headers: BTreeMap::new(),
            traces_url_path: "/v1/traces".into(),
            metrics_url_path: "/v1/metrics".into(),
            logs_url_path: "/v1/logs".into(),
            read_timeout: Duration::ZERO,
            read_header_timeout: Duration::ZERO,
            write_timeout: Duration::ZERO,
            idle_timeout: Duration::ZERO,
            keep_alives_enabled: true,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins allowed, wildcards like `https://*.example.com` allowed; empty turns CORS off.
    pub allowed_origins: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub exposed_headers: Vec<String>,
    /// Seconds a browser may cache a preflight answer.
    pub max_age: u64,
}

/// Server-side TLS (upstream `configtls.ServerConfig`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsServerConfig {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub cert_pem: Option<String>,
    pub key_pem: Option<String>,
    pub ca_file: Option<String>,
    /// Clients must present a certificate signed by this CA (mTLS).
    pub client_ca_file: Option<String>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    #[serde(deserialize_with = "duration::de_opt")]
    pub reload_interval: Option<Duration>,
}
