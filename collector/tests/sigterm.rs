//! A clean SIGTERM flushes accepted data: the kotelcol binary runs as a child process with a
//! batch timeout of an hour, so what a client sent sits in the batch buffer until the staged
//! shutdown drains it to the exporter and the exporter delivers it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::Sink;
use kotel_pipeline::proto::collector::logs::v1::logs_service_client::LogsServiceClient;
use kotel_pipeline::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use kotel_pipeline::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use kotel_pipeline::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use kotel_pipeline::{ExportLogsServiceRequest, ExportTraceServiceRequest, Signal};

/// Kills the child if the test fails before its SIGTERM.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .status();
    }
}

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
    let mut child = Command::new(env!("CARGO_BIN_EXE_kotelcol"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let guard = KillOnDrop(child.id());
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening")
                && let Some(a) = line.split("addr=").nth(1)
            {
                let _ = addr_tx.send(a.split_whitespace().next().unwrap().to_string());
            }
            lines.push(line);
        }
        lines
    });
    let addr = addr_rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("kotelcol logs its listening address");

    let mut traces = TraceServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut logs = LogsServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    for i in 0..10u8 {
        traces
            .export(ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: vec![
                            Span {
                                trace_id: vec![i + 1; 16],
                                span_id: vec![1; 8],
                                name: "before-sigterm".into(),
                                ..Default::default()
                            };
                            7
                        ],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            })
            .await
            .unwrap();
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

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::mem::forget(guard);
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let lines = log.join().unwrap();
    assert!(exit.success(), "kotelcol exited with {exit}: {lines:#?}");
    assert_eq!(sink.items(Signal::Traces).await, 70);
    assert_eq!(sink.items(Signal::Logs).await, 30);
    assert!(lines.iter().any(|l| l.contains("shutdown complete")));
}
