//! The OTLP receiver asks its pipeline before decoding: while the pipeline refuses every request
//! (the memory limiter past its limits), gRPC and HTTP protobuf requests are refused without
//! being decoded, with the same retryable answers, and their items are still counted as refused.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::LogsReceiver;
use kotel_config::receivers::otlp::OtlpReceiverConfig;
use kotel_pipeline::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use kotel_pipeline::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use kotel_pipeline::{
    CaptureSink, ConsumeError, Consumer, Envelope, ExportTraceServiceRequest, Refusal, Signal,
};
use kotelcol::receivers::SignalConsumers;
use kotelcol::rpc_status::Status;
use prost::Message;

/// A pipeline that refuses everything while `closed`, and counts what reaches `offer`.
#[derive(Default)]
struct Gate {
    closed: AtomicBool,
    offered: AtomicUsize,
}

impl Gate {
    fn refusal() -> ConsumeError {
        ConsumeError::Refused {
            reason: "memory".into(),
            retry_after: Some(Duration::from_secs(1)),
        }
    }
}

#[async_trait::async_trait]
impl Consumer for Gate {
    async fn offer(&self, data: Envelope) -> Result<(), Refusal> {
        self.offered.fetch_add(1, Ordering::SeqCst);
        if self.closed.load(Ordering::SeqCst) {
            return Err(Refusal::new(Self::refusal(), data));
        }
        Ok(())
    }

    fn admit(&self) -> Result<(), ConsumeError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Self::refusal());
        }
        Ok(())
    }
}

fn spans(n: usize) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: (0..n)
                    .map(|i| Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        name: format!("s{i}"),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test]
async fn a_refusing_pipeline_refuses_before_decoding_and_counts_the_items() {
    let cfg: OtlpReceiverConfig = serde_yaml_ng::from_str(
        "protocols:\n  grpc:\n    endpoint: 127.0.0.1:0\n  http:\n    endpoint: 127.0.0.1:0\n",
    )
    .unwrap();
    let gate = Arc::new(Gate::default());
    let consumers = SignalConsumers {
        traces: Some(gate.clone() as Arc<dyn Consumer>),
        ..Default::default()
    };
    let receiver = LogsReceiver::with_consumers(&cfg, consumers, CaptureSink::new()).await;
    let (addrs, grpc, http) = (
        &receiver.addrs,
        &receiver.counters["grpc"],
        &receiver.counters["http"],
    );

    let mut client = TraceServiceClient::connect(format!("http://{}", addrs["grpc"]))
        .await
        .unwrap();
    let mut gzip = client
        .clone()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let http_url = format!("http://{}/v1/traces", addrs["http"]);
    let post = |content_type: &'static str, body: Vec<u8>| {
        reqwest::Client::new()
            .post(&http_url)
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    // Open: accepted and offered.
    client.export(spans(2)).await.unwrap();
    assert_eq!(gate.offered.load(Ordering::SeqCst), 1);

    gate.closed.store(true, Ordering::SeqCst);
    for (client, n) in [(&mut client, 7), (&mut gzip, 5)] {
        let status = client.export(spans(n)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(Status::from_tonic(&status).retry_after().is_some());
    }
    let resp = post("application/x-protobuf", spans(3).encode_to_vec())
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    // Nothing was decoded and offered while the pipeline refused ...
    assert_eq!(gate.offered.load(Ordering::SeqCst), 1);
    // ... and every refused item is counted, per transport.
    assert_eq!(grpc.refused[Signal::Traces].get(), 12);
    assert_eq!(http.refused[Signal::Traces].get(), 3);

    // JSON has no count without decoding: it is decoded and refused by the pipeline itself.
    let json = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"j"}]}]}]}"#;
    let resp = post("application/json", json.into()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(gate.offered.load(Ordering::SeqCst), 2);

    // Open again: requests flow.
    gate.closed.store(false, Ordering::SeqCst);
    client.export(spans(1)).await.unwrap();
    let resp = post("application/x-protobuf", spans(1).encode_to_vec())
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(gate.offered.load(Ordering::SeqCst), 4);

    receiver.stop().await;
}
