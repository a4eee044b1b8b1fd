//! `debug` exporter: writes telemetry to the collector's log.
//!
//! `basic` logs one line per request with item counts, `normal` one line per item, `detailed`
//! every field of every item. Sampling settings are accepted; every request is logged.

use kotel_config::exporters::debug::{DebugExporterConfig, Verbosity};
use kotel_pipeline::Payload;

use super::{Outgoing, SendError, Sender};

pub struct DebugSender {
    verbosity: Verbosity,
}

impl DebugSender {
    pub fn new(cfg: &DebugExporterConfig) -> Self {
        Self {
            verbosity: cfg.verbosity,
        }
    }
}

#[async_trait::async_trait]
impl Sender for DebugSender {
    async fn send(&self, request: &Outgoing) -> Result<(), SendError> {
        let decoded = request
            .decode()
            .map_err(|e| SendError::Permanent(format!("cannot decode request: {e}")))?;
        let p = &decoded;
        let signal = p.signal().as_str();
        let resources = match p {
            Payload::Traces(r) => r.resource_spans.len(),
            Payload::Metrics(r) => r.resource_metrics.len(),
            Payload::Logs(r) => r.resource_logs.len(),
        };
        tracing::info!(
            target: "kotelcol::debug_exporter",
            signal,
            resources,
            items = p.item_count(),
            "{signal}"
        );
        match self.verbosity {
            Verbosity::Basic => {}
            Verbosity::Normal => log_items(p),
            Verbosity::Detailed => {
                tracing::info!(target: "kotelcol::debug_exporter", "{p:#?}");
            }
        }
        Ok(())
    }
}

fn log_items(p: &Payload) {
    match p {
        Payload::Traces(r) => {
            for s in r
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
            {
                tracing::info!(
                    target: "kotelcol::debug_exporter",
                    trace_id = %hex(&s.trace_id),
                    span_id = %hex(&s.span_id),
                    "{}",
                    s.name
                );
            }
        }
        Payload::Metrics(r) => {
            for m in r
                .resource_metrics
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
            {
                tracing::info!(target: "kotelcol::debug_exporter", unit = %m.unit, "{}", m.name);
            }
        }
        Payload::Logs(r) => {
            for l in r
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .flat_map(|s| &s.log_records)
            {
                let body = l
                    .body
                    .as_ref()
                    .and_then(|b| b.value.as_ref())
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_default();
                tracing::info!(
                    target: "kotelcol::debug_exporter",
                    severity = %l.severity_text,
                    "{body}"
                );
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
