//! The e2e workload. Run in a pod, it writes `WORKLOAD_LINES` numbered lines at `WORKLOAD_RATE`
//! lines a second, alternating stdout and stderr, every tenth line long enough (20 KiB) that the
//! container runtime splits it into partial (`P`) chunks. It also sends `WORKLOAD_OTLP_ITEMS`
//! numbered spans, metric points and log records (`WORKLOAD_OTLP_RATE` of each a second) over
//! OTLP/gRPC to `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (the node's collector), naming itself only by `k8s.pod.uid` from the downward API so that the
//! collector's k8sattributes adds the rest. Then it prints `done` and waits for SIGTERM, so the
//! kubelet never restarts it and nothing is sent twice.
//!
//! Every line is `kotel-e2e run=<run> stream=<stdout|stderr> seq=<n> <padding>`, so a test can
//! count each number exactly once.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

const LONG_EVERY: u64 = 10;
const LONG_LEN: usize = 20 * 1024;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_str(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// One numbered line, without its newline.
fn line(run: &str, stream: &str, seq: u64) -> String {
    let mut s = format!("kotel-e2e run={run} stream={stream} seq={seq} ");
    let pad = if seq % LONG_EVERY == LONG_EVERY - 1 {
        LONG_LEN
    } else {
        40
    };
    s.extend(std::iter::repeat_n('x', pad));
    s
}

fn kv(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn resource(run: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", "kotel-e2e-workload".into()),
            kv("k8s.pod.uid", env_str("POD_UID")),
            kv("kotel.e2e.run", run.into()),
        ],
        ..Default::default()
    })
}

async fn send_otlp(endpoint: String, run: String, items: u64, rate: u64) -> Result<(), String> {
    let period = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let mut tick = tokio::time::interval(period);
    let channel = loop {
        match tonic::transport::Endpoint::from_shared(endpoint.clone())
            .map_err(|e| format!("endpoint {endpoint}: {e}"))?
            .connect()
            .await
        {
            Ok(c) => break c,
            Err(e) => {
                eprintln!("otlp: connecting to {endpoint}: {e}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut traces = TraceServiceClient::new(channel.clone());
    let mut metrics = MetricsServiceClient::new(channel.clone());
    let mut logs = LogsServiceClient::new(channel);
    for seq in 0..items {
        tick.tick().await;
        let t = now_nanos();
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&t.to_be_bytes());
        trace_id[8..].copy_from_slice(&seq.to_be_bytes());
        let span = Span {
            trace_id: trace_id.to_vec(),
            span_id: (seq + 1).to_be_bytes().to_vec(),
            name: format!("kotel-e2e-span-{seq}"),
            kind: 1,
            start_time_unix_nano: t,
            end_time_unix_nano: t + 1000,
            attributes: vec![kv_int("kotel.e2e.seq", seq as i64)],
            ..Default::default()
        };
        let point = NumberDataPoint {
            attributes: vec![kv_int("kotel.e2e.seq", seq as i64)],
            time_unix_nano: t,
            value: Some(number_data_point::Value::AsInt(seq as i64)),
            ..Default::default()
        };
        let metric = Metric {
            name: "kotel_e2e_items".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![point],
                aggregation_temporality: AggregationTemporality::Delta as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        let record = LogRecord {
            time_unix_nano: t,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "kotel-e2e otlp-log seq={seq}"
                ))),
            }),
            attributes: vec![kv_int("kotel.e2e.seq", seq as i64)],
            ..Default::default()
        };
        // Each item is retried until the collector accepts it: a refusal means not delivered.
        loop {
            let r = traces
                .export(ExportTraceServiceRequest {
                    resource_spans: vec![ResourceSpans {
                        resource: resource(&run),
                        scope_spans: vec![ScopeSpans {
                            spans: vec![span.clone()],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                })
                .await;
            if r.is_ok() {
                break;
            }
            eprintln!("otlp traces seq={seq}: {:?}; retrying", r.err());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        loop {
            let r = metrics
                .export(ExportMetricsServiceRequest {
                    resource_metrics: vec![ResourceMetrics {
                        resource: resource(&run),
                        scope_metrics: vec![ScopeMetrics {
                            metrics: vec![metric.clone()],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                })
                .await;
            if r.is_ok() {
                break;
            }
            eprintln!("otlp metrics seq={seq}: {:?}; retrying", r.err());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        loop {
            let r = logs
                .export(ExportLogsServiceRequest {
                    resource_logs: vec![ResourceLogs {
                        resource: resource(&run),
                        scope_logs: vec![ScopeLogs {
                            log_records: vec![record.clone()],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                })
                .await;
            if r.is_ok() {
                break;
            }
            eprintln!("otlp logs seq={seq}: {:?}; retrying", r.err());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(())
}

fn write_lines(run: &str, lines: u64, rate: u64) {
    let period = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let start = std::time::Instant::now();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for seq in 0..lines {
        let stream = if seq % 2 == 0 { "stdout" } else { "stderr" };
        let text = line(run, stream, seq);
        // One write per line: the runtime sees each whole line (or its 16 KiB chunks) at once.
        let r = if seq % 2 == 0 {
            writeln!(out, "{text}").and_then(|_| out.flush())
        } else {
            writeln!(err, "{text}").and_then(|_| err.flush())
        };
        if r.is_err() {
            std::process::exit(3);
        }
        let due = period * (seq as u32 + 1);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let run = std::env::var("WORKLOAD_RUN").unwrap_or_else(|_| "0".into());
    let lines = env_u64("WORKLOAD_LINES", 1000);
    let rate = env_u64("WORKLOAD_RATE", 100);
    let items = env_u64("WORKLOAD_OTLP_ITEMS", 0);
    let otlp_rate = env_u64("WORKLOAD_OTLP_RATE", 50);
    let endpoint = env_str("OTEL_EXPORTER_OTLP_ENDPOINT");

    let otlp = (items > 0 && !endpoint.is_empty())
        .then(|| tokio::spawn(send_otlp(endpoint, run.clone(), items, otlp_rate)));
    let (l_run, l_lines) = (run.clone(), lines);
    tokio::task::spawn_blocking(move || write_lines(&l_run, l_lines, rate))
        .await
        .expect("the line writer does not panic");
    if let Some(task) = otlp {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("otlp: {e}"),
            Err(e) => eprintln!("otlp task: {e}"),
        }
    }
    println!("kotel-e2e run={run} done lines={lines} otlp_items={items}");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    term.recv().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tenth_line_is_long_and_each_names_its_number() {
        assert!(line("r", "stdout", 9).len() > LONG_LEN);
        assert!(line("r", "stdout", 8).len() < 200);
        assert!(line("r", "stderr", 7).starts_with("kotel-e2e run=r stream=stderr seq=7 "));
    }
}
