//! The kotelcol binary starts with a k8sattributes processor while its API server is unreachable,
//! and data flows through unenriched meanwhile. A child process, so that nothing in the test has
//! chosen rustls' process-wide crypto provider for the collector: kotelcol links both ring and
//! aws-lc-rs, and kube's client used to panic at startup there.

mod common;

use common::{Process, Sink, trace_request};
use kotel_pipeline::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use kotel_pipeline::proto::trace::v1::Span;
use kotel_pipeline::{Payload, Signal};

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
    let mut kotelcol = Process::spawn(&config, &[("KUBECONFIG", kubeconfig.as_os_str())]);
    let addr = kotelcol.listening_addr();

    let mut traces = TraceServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let span = Span {
        trace_id: vec![1; 16],
        span_id: vec![1; 8],
        name: "before-any-sync".into(),
        ..Default::default()
    };
    traces
        .export(trace_request(vec![span]))
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
    assert!(kotelcol.is_running(), "kotelcol keeps running");
}
