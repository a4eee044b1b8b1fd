//! A clean SIGTERM flushes accepted data: the kotelcol binary runs as a child process with a
//! batch timeout of an hour, so what a client sent sits in the batch buffer until the staged
//! shutdown drains it to the exporter and the exporter delivers it.

mod common;

use common::{Process, Sink, trace_request};
use kotel_pipeline::proto::collector::logs::v1::logs_service_client::LogsServiceClient;
use kotel_pipeline::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use kotel_pipeline::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use kotel_pipeline::proto::trace::v1::Span;
use kotel_pipeline::{ExportLogsServiceRequest, Signal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_what_was_accepted() {
    let (sink, sink_addr, _stop) = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:0"}}
processors:
  batch:
    timeout: 1h
    send_batch_size: 100000
exporters:
  otlp:
    endpoint: {sink_addr}
    tls: {{insecure: true}}
service:
  telemetry:
    logs: {{level: info}}
    metrics: {{address: "127.0.0.1:0"}}
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [otlp]}}
    logs: {{receivers: [otlp], processors: [batch], exporters: [otlp]}}
"#
        ),
    )
    .unwrap();
    let mut kotelcol = Process::spawn(&config, &[]);
    let addr = kotelcol.listening_addr();

    let mut traces = TraceServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut logs = LogsServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    for i in 0..10u8 {
        let span = Span {
            trace_id: vec![i + 1; 16],
            span_id: vec![1; 8],
            name: "before-sigterm".into(),
            ..Default::default()
        };
        traces.export(trace_request(vec![span; 7])).await.unwrap();
        logs.export(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord::default(); 3],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
        .await
        .unwrap();
    }
    assert_eq!(sink.items(Signal::Traces).await, 0, "still batched");

    let (exit, lines) = kotelcol.sigterm().await;
    assert!(exit.success(), "kotelcol exited with {exit}: {lines:#?}");
    assert_eq!(sink.items(Signal::Traces).await, 70);
    assert_eq!(sink.items(Signal::Logs).await, 30);
    assert!(lines.iter().any(|l| l.contains("shutdown complete")));
}
