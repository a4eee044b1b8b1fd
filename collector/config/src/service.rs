//! The `service` section: enabled extensions, pipelines and the collector's own telemetry.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::id::{ComponentId, PipelineId};

/// The validated service section.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub extensions: Vec<ComponentId>,
    pub pipelines: BTreeMap<PipelineId, Pipeline>,
    pub telemetry: Telemetry,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pipeline {
    pub receivers: Vec<ComponentId>,
    pub processors: Vec<ComponentId>,
    pub exporters: Vec<ComponentId>,
}

/// The service section as written, before references are checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawService {
    pub extensions: Vec<String>,
    pub pipelines: BTreeMap<String, RawPipeline>,
    pub telemetry: Telemetry,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawPipeline {
    pub receivers: Vec<String>,
    pub processors: Vec<String>,
    pub exporters: Vec<String>,
}

/// `service.telemetry`: the collector's own logs and metrics.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Telemetry {
    pub logs: TelemetryLogs,
    pub metrics: TelemetryMetrics,
    /// Accepted for compatibility; kotel does not trace itself.
    pub traces: Option<Value>,
    /// Resource attributes for the collector's own telemetry.
    pub resource: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryLogs {
    /// `debug`, `info` (default), `warn`, `error`.
    pub level: String,
    /// `console` (default) or `json`.
    pub encoding: String,
    pub development: bool,
    pub output_paths: Vec<String>,
    pub error_output_paths: Vec<String>,
    pub sampling: Option<Value>,
    pub disable_caller: bool,
    pub disable_stacktrace: bool,
    pub initial_fields: BTreeMap<String, Value>,
}

impl Default for TelemetryLogs {
    fn default() -> Self {
        Self {
            level: "info".into(),
            encoding: "console".into(),
            development: false,
            output_paths: Vec::new(),
            error_output_paths: Vec::new(),
            sampling: None,
            disable_caller: false,
            disable_stacktrace: false,
            initial_fields: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryMetrics {
    /// `none`, `basic`, `normal` (default), `detailed`.
    pub level: String,
    /// Legacy Prometheus address, e.g. `0.0.0.0:8888`.
    pub address: Option<String>,
    /// Newer form: `[{pull: {exporter: {prometheus: {host, port}}}}]`.
    pub readers: Vec<Value>,
}

impl Default for TelemetryMetrics {
    fn default() -> Self {
        Self {
            level: "normal".into(),
            address: None,
            readers: Vec::new(),
        }
    }
}

impl TelemetryMetrics {
    /// Where the Prometheus endpoint listens: `address`, else the first pull reader, else
    /// `0.0.0.0:8888`. `None` when metrics are off (`level: none`).
    pub fn prometheus_address(&self) -> Option<String> {
        if self.level == "none" {
            return None;
        }
        if let Some(a) = &self.address {
            return Some(a.clone());
        }
        for r in &self.readers {
            let prom = r.pointer("/pull/exporter/prometheus");
            if let Some(p) = prom {
                let host = p.get("host").and_then(Value::as_str).unwrap_or("0.0.0.0");
                let port = p
                    .get("port")
                    .and_then(|v| {
                        v.as_u64()
                            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    })
                    .unwrap_or(8888);
                return Some(format!("{host}:{port}"));
            }
        }
        Some("0.0.0.0:8888".into())
    }
}
