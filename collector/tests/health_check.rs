//! health_check: 503 until the collector is ready, 200 while pipelines run, 503 again during
//! the staged shutdown, 404 off its path; upstream's defaults (localhost:13133, "/").

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Collector, Sink, trace_request};
use kotel_config::{Config, ExtensionConfig};
use kotel_pipeline::Shutdown;
use kotel_pipeline::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use kotel_pipeline::proto::trace::v1::Span;
use kotel_pipeline::{ExportTraceServiceRequest, Signal};
use kotelcol::extensions::health_check::{self, Readiness};
use kotelcol::net::{self, Protocol};

async fn status(url: &str) -> u16 {
    reqwest::get(url).await.unwrap().status().as_u16()
}

#[test]
fn defaults_are_upstreams() {
    let cfg = Config::from_yaml(
        r#"
receivers: {otlp: {protocols: {grpc: {}}}}
exporters: {debug: {}}
extensions: {health_check: {}}
service:
  extensions: [health_check]
  pipelines: {traces: {receivers: [otlp], exporters: [debug]}}
"#,
    )
    .unwrap();
    let (_, ext) = cfg.active_extensions().next().unwrap();
    let ExtensionConfig::HealthCheck(h) = ext else {
        panic!("not a health_check: {ext:?}");
    };
    assert_eq!(h.endpoint, "localhost:13133");
    assert_eq!(h.path, "/");
}

/// The endpoint alone on a loopback port: (base URL, its readiness, its stop).
async fn serve(path: &str, bodies: Option<(&str, &str)>) -> (String, Readiness, Shutdown) {
    let listener = net::bind("127.0.0.1:0", None, Protocol::Auto)
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr());
    let ready = Readiness::default();
    let stop = Shutdown::new();
    tokio::spawn(health_check::serve(
        listener,
        path.into(),
        bodies.map(|(h, u)| (h.into(), u.into())),
        ready.clone(),
        stop.clone(),
    ));
    (base, ready, stop)
}

#[tokio::test]
async fn answers_follow_readiness_and_path() {
    let (base, ready, stop) = serve("/health", None).await;
    let url = format!("{base}/health");
    assert_eq!(status(&url).await, 503, "not ready yet");
    ready.set(true);
    assert_eq!(status(&url).await, 200);
    assert_eq!(status(&format!("{url}?probe=liveness")).await, 200);
    assert_eq!(status(&format!("{base}/")).await, 404);
    assert_eq!(status(&format!("{base}/healthz")).await, 404);
    ready.set(false);
    assert_eq!(status(&url).await, 503, "shutting down");
    stop.cancel();
}

const CONFIG: &str = r#"
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0"}
exporters:
  otlp:
    endpoint: SINK
    tls: {insecure: true}
    retry_on_failure: {initial_interval: 50ms, max_interval: 100ms, max_elapsed_time: 0s}
extensions:
  health_check: {endpoint: "127.0.0.1:0", path: /health/status}
service:
  extensions: [health_check]
  telemetry:
    logs: {level: error}
    metrics: {address: "127.0.0.1:0"}
  pipelines:
    traces: {receivers: [otlp], exporters: [otlp]}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_service_is_healthy_then_unhealthy_while_shutting_down() {
    let (sink, sink_addr, _stop) = Sink::start().await;
    let collector = Collector::start(&CONFIG.replace("SINK", &sink_addr.to_string())).await;
    let base = format!("http://{}", collector.health.expect("health_check runs"));
    let url = format!("{base}/health/status");
    let mut answered = 0;
    for _ in 0..100 {
        answered = status(&url).await;
        if answered == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answered, 200, "never healthy");
    assert_eq!(status(&format!("{base}/")).await, 404);

    // A backend that does not answer keeps the exporter's last send open, so the shutdown's
    // flush stage lasts until it answers: the window in which health must say 503.
    sink.stalling.store(true, Ordering::SeqCst);
    let mut client = TraceServiceClient::connect(format!("http://{}", collector.grpc.unwrap()))
        .await
        .unwrap();
    client.export(one_span()).await.unwrap();
    let stopping = tokio::spawn(collector.stop());
    let mut during = Vec::new();
    for _ in 0..40 {
        during.push(status(&url).await);
        if during.last() == Some(&503) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        during.last(),
        Some(&503),
        "answers during shutdown: {during:?}"
    );
    sink.stalling.store(false, Ordering::SeqCst);
    stopping.await.unwrap();
    assert_eq!(
        sink.items(Signal::Traces).await,
        1,
        "flushed after recovery"
    );
}

fn one_span() -> ExportTraceServiceRequest {
    trace_request(vec![Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: "s".into(),
        ..Default::default()
    }])
}

/// Upstream's `response_body` (issue 12): the configured bodies replace the JSON status; the
/// status code still tells healthy from not.
#[tokio::test]
async fn response_body_replaces_the_json_status() {
    let (base, ready, stop) = serve("/", Some(("I'm OK", "I'm not well"))).await;
    let get = |url: String| async move {
        let r = reqwest::get(url).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(
        get(format!("{base}/")).await,
        (503, "I'm not well".to_string())
    );
    ready.set(true);
    assert_eq!(get(format!("{base}/")).await, (200, "I'm OK".to_string()));
    assert_eq!(get(format!("{base}/other")).await.0, 404);
    stop.cancel();
}
