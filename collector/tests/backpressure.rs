//! Backpressure: with the backend down, the exporter retries and its queue fills, the batch
//! buffer fills, and clients get retryable refusals (gRPC UNAVAILABLE with RetryInfo, HTTP 503
//! with Retry-After) instead of the collector growing. Bytes held stay bounded. Once the backend
//! is back, every span that was accepted arrives.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use common::{Collector, Sink, config, spans_in, trace_request};
use kotel_pipeline::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use kotel_pipeline::proto::trace::v1::Span;
use kotel_pipeline::{ExportTraceServiceRequest, Payload};
use kotelcol::rpc_status::Status;
use prost::Message;

fn request(first: u32, n: u32) -> ExportTraceServiceRequest {
    trace_request(
        (first..first + n)
            .map(|i| Span {
                trace_id: [i.to_be_bytes().as_slice(), &[1; 12]].concat(),
                span_id: vec![2; 8],
                name: format!("span-{i}"),
                ..Default::default()
            })
            .collect(),
    )
}

fn ids(ps: &[Payload]) -> BTreeSet<u32> {
    spans_in(ps)
        .map(|s| u32::from_be_bytes(s.trace_id[..4].try_into().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_exporter_refuses_intake_and_loses_nothing_accepted() {
    let (sink, sink_addr, _stop) = Sink::start().await;
    sink.refusing.store(true, Ordering::SeqCst);
    let exporter = "    compression: none
    retry_on_failure:
      initial_interval: 20ms
      max_interval: 100ms
      max_elapsed_time: 0s
    sending_queue:
      num_consumers: 1
      queue_size: 2";
    let collector = Collector::start(&config(sink_addr, "batch", exporter)).await;
    let mut client = TraceServiceClient::connect(format!("http://{}", collector.grpc.unwrap()))
        .await
        .unwrap();

    let per_request = 50u32;
    let mut accepted = BTreeSet::new();
    let mut grpc_refusals = 0;
    let mut next = 0u32;
    let mut max_held = 0.0f64;
    // Until the collector has refused a few requests (bounded by a request count, not time).
    for _ in 0..400 {
        match client.export(request(next, per_request)).await {
            Ok(_) => accepted.extend(next..next + per_request),
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                let detail = Status::from_tonic(&status);
                assert!(detail.retry_after().is_some(), "RetryInfo on refusal");
                grpc_refusals += 1;
            }
        }
        next += per_request;
        max_held = max_held.max(collector.metric("kotelcol_held_bytes", &[]).await);
        if grpc_refusals >= 3 {
            break;
        }
    }
    assert!(grpc_refusals >= 3, "the collector never pushed back");
    assert!(!accepted.is_empty());

    // HTTP clients are refused too, with 503 and Retry-After.
    let resp = reqwest::Client::new()
        .post(format!("http://{}/v1/traces", collector.http.unwrap()))
        .header("content-type", "application/x-protobuf")
        .body(request(1_000_000, per_request).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert!(resp.headers().contains_key("retry-after"));

    // Bounded: the batch buffer holds at most 4 × send_batch_size spans and the queue 2
    // requests plus one in flight, so what is held is a few hundred spans' worth.
    let span_bytes = request(0, 1).encoded_len() as f64;
    assert!(max_held <= span_bytes * 1500.0, "held {max_held} bytes");
    let cap = collector
        .metric("otelcol_exporter_queue_capacity", &[("exporter", "otlp")])
        .await;
    let size = collector
        .metric("otelcol_exporter_queue_size", &[("exporter", "otlp")])
        .await;
    assert_eq!(cap, 2.0);
    assert!(size <= cap);
    assert!(
        collector
            .metric("otelcol_receiver_refused_spans", &[("receiver", "otlp")])
            .await
            >= f64::from(3 * per_request)
    );

    // The backend recovers: everything accepted arrives.
    sink.refusing.store(false, Ordering::SeqCst);
    let want = accepted.clone();
    sink.wait_for("every accepted span", |ps| want.is_subset(&ids(ps)))
        .await;
    collector.stop().await;
}
