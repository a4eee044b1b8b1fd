//! The node components built by their own crates are wired into kotelcol's topology: a filelog
//! receiver with file_storage checkpoints feeds a logs pipeline to a capture sink, counted as
//! a receiver like any other.

mod common;

use common::{Collector, Sink};
use kotel_pipeline::Signal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filelog_with_file_storage_reaches_the_sink() {
    let (sink, sink_addr, _stop) = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("app.log");
    std::fs::write(&logs, "first line\nsecond line\nthird line\n").unwrap();
    let storage = dir.path().join("state");
    let yaml = format!(
        r#"
extensions:
  file_storage:
    directory: {storage}
    create_directory: true
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:0"}}
  filelog:
    include: [{logs}]
    start_at: beginning
    poll_interval: 50ms
    storage: file_storage
processors:
  batch: {{timeout: 50ms}}
exporters:
  otlp:
    endpoint: {sink_addr}
    tls: {{insecure: true}}
service:
  extensions: [file_storage]
  telemetry:
    logs: {{level: warn}}
    metrics: {{address: "127.0.0.1:0"}}
  pipelines:
    logs:
      receivers: [otlp, filelog]
      processors: [batch]
      exporters: [otlp]
"#,
        storage = storage.display(),
        logs = logs.display(),
    );
    let collector = Collector::start(&yaml).await;
    for _ in 0..600 {
        if sink.items(Signal::Logs).await >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(sink.items(Signal::Logs).await, 3);
    assert_eq!(
        collector
            .metric(
                "otelcol_receiver_accepted_log_records",
                &[("receiver", "filelog"), ("transport", "")]
            )
            .await,
        3.0
    );
    collector.stop().await;
    assert!(
        storage.join("receiver_filelog_").exists(),
        "checkpoint directory per component"
    );
}
