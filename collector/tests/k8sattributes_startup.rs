//! The kotelcol binary starts with a k8sattributes processor while its API server is unreachable,
//! and data flows through unenriched meanwhile. A child process, so that nothing in the test has
//! chosen rustls' process-wide crypto provider for the collector: kotelcol links both ring and
//! aws-lc-rs, and kube's client used to panic at startup there.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::Sink;
use kotel_pipeline::Signal;
use kotel_pipeline::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use kotel_pipeline::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use kotel_pipeline::{ExportTraceServiceRequest, Payload};

/// Kills the child however the test ends.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kotelcol_starts_with_k8sattributes_and_an_unreachable_api_server() {
    let (sink, sink_addr, _stop) = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    // An API server address nobody listens on.
    let api_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            r#"apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {{server: "https://127.0.0.1:{api_port}", insecure-skip-tls-verify: true}}
users:
- name: u
  user: {{token: not-a-real-token}}
contexts:
- name: c
  context: {{cluster: c, user: u}}
current-context: c
"#
        ),
    )
    .unwrap();
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
  k8sattributes:
    auth_type: kubeConfig
    filter: {{node: node-a}}
exporters:
  otlp:
    endpoint: {sink_addr}
    tls: {{insecure: true}}
service:
  telemetry:
    logs: {{level: info}}
    metrics: {{address: "127.0.0.1:0"}}
  pipelines:
    traces: {{receivers: [otlp], processors: [k8sattributes], exporters: [otlp]}}
"#
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kotelcol"))
        .arg("--config")
        .arg(&config)
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _guard = KillOnDrop(child.id());
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
    // The channel closes when kotelcol exits (its stderr ends) without having listened.
    let Ok(addr) = addr_rx.recv_timeout(std::time::Duration::from_secs(60)) else {
        let _ = child.kill();
        let lines = log.join().unwrap();
        panic!(
            "kotelcol never listened; its log ends:\n{}",
            lines[lines.len().saturating_sub(20)..].join("\n")
        );
    };

    let mut traces = TraceServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    traces
        .export(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![1; 16],
                        span_id: vec![1; 8],
                        name: "before-any-sync".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
        .await
        .expect("the processor does not wait for the API server");
    sink.wait_for("the span", |got| !got.is_empty()).await;
    assert_eq!(sink.items(Signal::Traces).await, 1);
    let got = sink.received.lock().await;
    let Payload::Traces(t) = &got[0] else {
        panic!("traces expected")
    };
    let keys: Vec<&str> = t.resource_spans[0]
        .resource
        .iter()
        .flat_map(|r| &r.attributes)
        .map(|kv| kv.key.as_str())
        .collect();
    assert!(
        !keys.contains(&"k8s.pod.name"),
        "nothing synced, so nothing to add: {keys:?}"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "kotelcol keeps running"
    );
}
