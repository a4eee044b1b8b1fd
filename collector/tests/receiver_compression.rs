//! The OTLP receiver accepts zstd over HTTP (protobuf and JSON) and gzip and zstd over gRPC;
//! everything sent arrives at the backend. (Corrupt and oversize gzip are in malformed.rs.)

mod common;

use common::{Collector, Sink, config, spans_in, trace_request};
use kotel_pipeline::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use kotel_pipeline::proto::trace::v1::Span;
use kotel_pipeline::{ExportTraceServiceRequest, Payload, Signal};
use prost::Message;
use tonic::codec::CompressionEncoding;

fn spans(name: &str, n: usize) -> ExportTraceServiceRequest {
    trace_request(
        (0..n)
            .map(|i| Span {
                trace_id: vec![9; 16],
                span_id: vec![i as u8 + 1; 8],
                name: name.into(),
                ..Default::default()
            })
            .collect(),
    )
}

async fn post_zstd(url: String, content_type: &str, body: &[u8]) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .header("content-encoding", "zstd")
        .body(zstd::bulk::compress(body, 3).unwrap())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zstd_and_gzip_requests_are_accepted() {
    let (sink, sink_addr, _stop) = Sink::start().await;
    let collector = Collector::start(&config(sink_addr, "batch", "")).await;
    let http = collector.http.unwrap();

    let proto = spans("http-zstd-proto", 2).encode_to_vec();
    let status = post_zstd(
        format!("http://{http}/v1/traces"),
        "application/x-protobuf",
        &proto,
    )
    .await;
    assert_eq!(status, 200, "zstd protobuf");

    let json = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
        {"body":{"stringValue":"zstd json"}},{"body":{"stringValue":"again"}}]}]}]}"#;
    let status = post_zstd(
        format!("http://{http}/v1/logs"),
        "application/json",
        json.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "zstd JSON");

    for (encoding, n) in [
        (CompressionEncoding::Zstd, 3),
        (CompressionEncoding::Gzip, 4),
    ] {
        let mut client = TraceServiceClient::connect(format!("http://{}", collector.grpc.unwrap()))
            .await
            .unwrap()
            .send_compressed(encoding);
        client
            .export(spans(&format!("grpc-{encoding:?}"), n))
            .await
            .unwrap_or_else(|e| panic!("{encoding:?}: {e}"));
    }

    let count = |ps: &[Payload], signal| -> usize {
        ps.iter()
            .filter(|p| p.signal() == signal)
            .map(Payload::item_count)
            .sum()
    };
    sink.wait_for("9 spans and 2 log records", |ps| {
        count(ps, Signal::Traces) >= 9 && count(ps, Signal::Logs) >= 2
    })
    .await;
    assert_eq!(sink.items(Signal::Traces).await, 9);
    assert_eq!(sink.items(Signal::Logs).await, 2);
    let names: Vec<String> = spans_in(&sink.received.lock().await)
        .map(|s| s.name.clone())
        .collect();
    for name in ["http-zstd-proto", "grpc-Zstd", "grpc-Gzip"] {
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
    }
    collector.stop().await;
}
