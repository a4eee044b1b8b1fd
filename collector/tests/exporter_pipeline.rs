//! Exporter settings from the YAML reach the running exporter: an otlphttp exporter in a
//! collector honours its sending_queue size (the capacity gauge on /metrics), its timeout
//! (an attempt without answer is retried) and Retry-After, and counts what it sent.

mod common;
mod scripted;

use std::time::Duration;

use common::Collector;
use kotel_pipeline::ExportTraceServiceRequest;
use kotel_pipeline::Payload;
use kotel_pipeline::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use scripted::{Answer, Backend, arrivals, spans};

fn config(backend: std::net::SocketAddr) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:0"}}
exporters:
  otlphttp:
    endpoint: http://{backend}
    compression: none
    timeout: 300ms
    retry_on_failure: {{initial_interval: 10ms, randomization_factor: 0}}
    sending_queue: {{queue_size: 7, num_consumers: 1}}
service:
  telemetry:
    logs: {{level: error}}
    metrics: {{address: "127.0.0.1:0"}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp]}}
"#
    )
}

fn request(n: usize) -> ExportTraceServiceRequest {
    match spans(n) {
        Payload::Traces(r) => r,
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_settings_reach_the_exporter() {
    // First attempt: no answer within the timeout; second: 503 asking for a second; then OK.
    let backend = Backend::new([Answer::Hold, Answer::Http(503, Some("1"))], Answer::Ok);
    let (addr, _stop) = backend.serve_http().await;
    let collector = Collector::start(&config(addr)).await;
    let exporter = [("exporter", "otlphttp")];
    assert_eq!(
        collector
            .metric("otelcol_exporter_queue_capacity", &exporter)
            .await,
        7.0
    );

    let mut client = TraceServiceClient::connect(format!("http://{}", collector.grpc.unwrap()))
        .await
        .unwrap();
    client.export(request(3)).await.unwrap();
    let a = arrivals(&backend, 3).await;
    assert!(
        a[1].at - a[0].at >= Duration::from_millis(300),
        "retried before the timeout"
    );
    assert!(
        a[2].at - a[1].at >= Duration::from_secs(1),
        "Retry-After ignored"
    );
    for _ in 0..600 {
        if collector
            .metric("otelcol_exporter_sent_spans", &exporter)
            .await
            == 3.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        collector
            .metric("otelcol_exporter_sent_spans", &exporter)
            .await,
        3.0
    );
    assert_eq!(
        collector
            .metric("otelcol_exporter_send_failed_spans", &exporter)
            .await,
        0.0
    );
    // The abandoned first attempt may still be answered OK server-side, hence at least.
    assert!(backend.accepted_spans() >= 3);
    backend.release();
    collector.stop().await;
}
