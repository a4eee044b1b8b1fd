//! `debug` exporter: writes telemetry to the collector's log (or to a given writer).
//!
//! `basic` writes one line per request with item counts, `normal` adds one line per item,
//! `detailed` adds every field of every resource, scope and item. Sampling settings are
//! accepted; every request is written.

use std::io::Write;
use std::sync::Mutex;

use kotel_config::exporters::debug::{DebugExporterConfig, Verbosity};
use kotel_pipeline::Payload;

use super::{Outgoing, SendError, Sender};

const TARGET: &str = "kotelcol::debug_exporter";

pub struct DebugSender {
    verbosity: Verbosity,
    /// `None`: the collector's log.
    out: Option<Mutex<Box<dyn Write + Send>>>,
}

impl DebugSender {
    pub fn new(cfg: &DebugExporterConfig) -> Self {
        Self {
            verbosity: cfg.verbosity,
            out: None,
        }
    }

    /// Writes lines to `out` instead of the log.
    pub fn with_writer(cfg: &DebugExporterConfig, out: impl Write + Send + 'static) -> Self {
        Self {
            verbosity: cfg.verbosity,
            out: Some(Mutex::new(Box::new(out))),
        }
    }
}

#[async_trait::async_trait]
impl Sender for DebugSender {
    async fn send(&self, request: &Outgoing) -> Result<(), SendError> {
        let decoded = request
            .decode()
            .map_err(|e| SendError::Permanent(format!("cannot decode request: {e}")))?;
        let lines = render(&decoded, self.verbosity);
        let Some(out) = &self.out else {
            for line in &lines {
                tracing::info!(target: TARGET, "{line}");
            }
            return Ok(());
        };
        let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .try_for_each(|l| writeln!(out, "{l}"))
            .and_then(|_| out.flush())
            .map_err(|e| SendError::Permanent(format!("cannot write debug output: {e}")))
    }
}

/// The lines the exporter writes for one request.
pub fn render(p: &Payload, verbosity: Verbosity) -> Vec<String> {
    let signal = p.signal();
    let mut lines = vec![format!(
        "{}: {} resources, {} {}",
        signal.as_str(),
        resources(p),
        p.item_count(),
        signal.item_word()
    )];
    match verbosity {
        Verbosity::Basic => {}
        Verbosity::Normal => items(p, &mut lines),
        Verbosity::Detailed => details(p, &mut lines),
    }
    lines
}

fn resources(p: &Payload) -> usize {
    match p {
        Payload::Traces(r) => r.resource_spans.len(),
        Payload::Metrics(r) => r.resource_metrics.len(),
        Payload::Logs(r) => r.resource_logs.len(),
    }
}

/// One line per item: its name or body and identifiers.
fn items(p: &Payload, lines: &mut Vec<String>) {
    match p {
        Payload::Traces(r) => lines.extend(
            r.resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .map(|s| {
                    format!(
                        "span {} trace_id={} span_id={}",
                        s.name,
                        hex(&s.trace_id),
                        hex(&s.span_id)
                    )
                }),
        ),
        Payload::Metrics(r) => lines.extend(
            r.resource_metrics
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .map(|m| format!("metric {} unit={}", m.name, m.unit)),
        ),
        Payload::Logs(r) => lines.extend(
            r.resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .flat_map(|s| &s.log_records)
                .map(|l| {
                    let body = l
                        .body
                        .as_ref()
                        .and_then(|b| b.value.as_ref())
                        .map(|v| format!("{v:?}"))
                        .unwrap_or_default();
                    format!("log severity={} body={body}", l.severity_text)
                }),
        ),
    }
}

/// Every field: resources, scopes and items as their full debug form.
fn details(p: &Payload, lines: &mut Vec<String>) {
    fn block(lines: &mut Vec<String>, title: String, value: &dyn std::fmt::Debug) {
        lines.push(title);
        lines.extend(format!("{value:#?}").lines().map(|l| format!("  {l}")));
    }
    macro_rules! walk {
        ($resources:expr, $scopes:ident, $items:ident, $word:literal) => {
            for (i, r) in $resources.iter().enumerate() {
                block(lines, format!("resource #{i}"), &r.resource);
                for (j, s) in r.$scopes.iter().enumerate() {
                    block(lines, format!("scope #{j}"), &s.scope);
                    for (k, item) in s.$items.iter().enumerate() {
                        block(lines, format!("{} #{k}", $word), item);
                    }
                }
            }
        };
    }
    match p {
        Payload::Traces(r) => walk!(r.resource_spans, scope_spans, spans, "span"),
        Payload::Metrics(r) => walk!(r.resource_metrics, scope_metrics, metrics, "metric"),
        Payload::Logs(r) => walk!(r.resource_logs, scope_logs, log_records, "log record"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kotel_pipeline::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;

    fn traces() -> Payload {
        let attr = KeyValue {
            key: "http.route".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("/checkout".into())),
            }),
            ..Default::default()
        };
        Payload::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: ["GET /a", "GET /b"]
                        .iter()
                        .map(|n| Span {
                            name: n.to_string(),
                            trace_id: vec![0xab; 16],
                            span_id: vec![0xcd; 8],
                            attributes: vec![attr.clone()],
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    #[test]
    fn verbosity_levels_differ() {
        let p = traces();
        let basic = render(&p, Verbosity::Basic);
        assert_eq!(basic, vec!["traces: 1 resources, 2 spans".to_string()]);

        let normal = render(&p, Verbosity::Normal).join("\n");
        assert!(normal.starts_with(&basic[0]));
        assert!(normal.contains("span GET /a trace_id=abababab"), "{normal}");
        assert!(normal.contains(&format!("span_id={}", "cd".repeat(8))));
        assert!(!normal.contains("http.route"), "{normal}");

        let detailed = render(&p, Verbosity::Detailed).join("\n");
        assert!(detailed.starts_with(&basic[0]));
        assert!(detailed.contains("span #1"), "{detailed}");
        assert!(
            detailed.contains("http.route") && detailed.contains("/checkout"),
            "{detailed}"
        );
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn sender_writes_the_rendered_lines() {
        let buf = Buf::default();
        let cfg = DebugExporterConfig {
            verbosity: Verbosity::Normal,
            ..Default::default()
        };
        let sender = DebugSender::with_writer(&cfg, buf.clone());
        sender.send(&Outgoing::encode(&traces())).await.unwrap();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains("span GET /b"), "{text}");
    }
}
