//! Malformed input gets the status the OTLP spec names, is counted, and the collector keeps
//! serving: truncated protobuf, invalid JSON, wrong content type, corrupt gzip, oversize
//! bodies (plain and as a decompression bomb), unknown paths, wrong methods, oversize gRPC
//! messages. Error bodies are a google.rpc.Status in the request's encoding.

mod common;

use std::io::Write;

use common::{Collector, Sink, trace_request};
use kotel_pipeline::ExportTraceServiceRequest;
use kotel_pipeline::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use kotel_pipeline::proto::trace::v1::Span;
use kotelcol::rpc_status::Status;
use prost::Message;

fn traces(n: usize, name_len: usize) -> ExportTraceServiceRequest {
    trace_request(
        (0..n)
            .map(|i| Span {
                trace_id: vec![7; 16],
                span_id: vec![(i % 250) as u8 + 1; 8],
                name: "x".repeat(name_len),
                ..Default::default()
            })
            .collect(),
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

const CONFIG: &str = r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
        max_recv_msg_size_mib: 1
      http:
        endpoint: 127.0.0.1:0
        max_request_body_size: 65536
exporters:
  otlp:
    endpoint: SINK
    tls: {insecure: true}
service:
  telemetry:
    logs: {level: error}
    metrics: {address: "127.0.0.1:0"}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp]
"#;

struct Case {
    what: &'static str,
    method: reqwest::Method,
    path: &'static str,
    content_type: Option<&'static str>,
    encoding: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    reason: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_their_status_and_are_counted() {
    let (sink, sink_addr, _stop) = Sink::start().await;
    let collector = Collector::start(&CONFIG.replace("SINK", &sink_addr.to_string())).await;
    let base = format!("http://{}", collector.http.unwrap());
    let good = traces(3, 8).encode_to_vec();
    let proto = Some("application/x-protobuf");
    let json = Some("application/json");
    let cases = vec![
        Case {
            what: "truncated protobuf",
            method: reqwest::Method::POST,
            path: "/v1/traces",
            content_type: proto,
            encoding: None,
            body: good[..good.len() - 5].to_vec(),
            status: 400,
            reason: "bad_payload",
        },
        Case {
            what: "invalid JSON",
            method: reqwest::Method::POST,
            path: "/v1/traces",
            content_type: json,
            encoding: None,
            body: b"{\"resourceSpans\": [".to_vec(),
            status: 400,
            reason: "bad_payload",
        },
        Case {
            what: "wrong content type",
            method: reqwest::Method::POST,
            path: "/v1/traces",
            content_type: Some("text/plain"),
            encoding: None,
            body: good.clone(),
            status: 415,
            reason: "unsupported_media_type",
        },
        Case {
            what: "corrupt gzip",
            method: reqwest::Method::POST,
            path: "/v1/traces",
            content_type: proto,
            encoding: Some("gzip"),
            body: b"\x1f\x8b\x08\x00garbage-garbage".to_vec(),
            status: 400,
            reason: "bad_encoding",
        },
        Case {
            what: "unknown encoding",
            method: reqwest::Method::POST,
            path: "/v1/traces",
            content_type: proto,
            encoding: Some("br"),
            body: good.clone(),
            status: 400,
            reason: "unsupported_encoding",
        },
        Case {
            what: "oversize body",
            method: reqwest::Method::POST,
            path: "/v1/traces",
            content_type: proto,
            encoding: None,
            body: traces(200, 1000).encode_to_vec(),
            status: 413,
            reason: "too_large",
        },
        Case {
            what: "decompression bomb",
            method: reqwest::Method::POST,
            path: "/v1/traces",
            content_type: proto,
            encoding: Some("gzip"),
            body: gzip(&traces(200, 1000).encode_to_vec()),
            status: 413,
            reason: "too_large",
        },
        Case {
            what: "unknown path",
            method: reqwest::Method::POST,
            path: "/v1/spans",
            content_type: proto,
            encoding: None,
            body: good.clone(),
            status: 404,
            reason: "not_found",
        },
        Case {
            what: "signal without a pipeline",
            method: reqwest::Method::POST,
            path: "/v1/logs",
            content_type: proto,
            encoding: None,
            body: Vec::new(),
            status: 404,
            reason: "not_found",
        },
        Case {
            what: "wrong method",
            method: reqwest::Method::GET,
            path: "/v1/traces",
            content_type: None,
            encoding: None,
            body: Vec::new(),
            status: 405,
            reason: "method_not_allowed",
        },
    ];
    let client = reqwest::Client::new();
    for case in &cases {
        let mut req = client.request(case.method.clone(), format!("{base}{}", case.path));
        if let Some(ct) = case.content_type {
            req = req.header("content-type", ct);
        }
        if let Some(enc) = case.encoding {
            req = req.header("content-encoding", enc);
        }
        let resp = req.body(case.body.clone()).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), case.status, "{}", case.what);
        let ct = resp
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let body = resp.bytes().await.unwrap();
        if ct == "application/x-protobuf" {
            let s = Status::decode(body.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", case.what));
            assert!(!s.message.is_empty(), "{}", case.what);
        } else {
            let v: serde_json::Value =
                serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{}: {e}", case.what));
            assert!(v["code"].as_i64().unwrap() > 0, "{}", case.what);
            assert!(v["message"].as_str().is_some(), "{}", case.what);
        }
        // Still serving: a good request right after is accepted.
        let ok = client
            .post(format!("{base}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(good.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            ok.status().as_u16(),
            200,
            "good request after {}",
            case.what
        );
    }
    for reason in [
        "bad_payload",
        "unsupported_media_type",
        "bad_encoding",
        "unsupported_encoding",
        "too_large",
        "not_found",
        "method_not_allowed",
    ] {
        let expected = cases.iter().filter(|c| c.reason == reason).count() as f64;
        let got = collector
            .metric(
                "otelcol_receiver_failed_requests",
                &[("transport", "http"), ("reason", reason)],
            )
            .await;
        assert_eq!(got, expected, "failed requests counted for {reason}");
    }

    // JSON with OTLP rules: hex ids, integers as strings, unknown fields ignored; answered in JSON.
    let resp = client
        .post(format!("{base}/v1/traces"))
        .header("content-type", "application/json")
        .body(r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"AABBCCDDEEFF0011","name":"json-span","kind":2,"startTimeUnixNano":"5","futureField":true}]}]}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");

    // gRPC: a message over max_recv_msg_size_mib is refused, and the server keeps serving.
    let mut grpc = TraceServiceClient::connect(format!("http://{}", collector.grpc.unwrap()))
        .await
        .unwrap();
    let err = grpc.export(traces(2000, 1000)).await.unwrap_err();
    // As upstream: RESOURCE_EXHAUSTED, which OTLP clients do not retry without RetryInfo
    // (OUT_OF_RANGE, tonic's own answer, they would retry for ever).
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    grpc.export(traces(1, 8)).await.unwrap();

    sink.wait_for("the JSON span", |ps| {
        ps.iter().any(|p| match p {
            kotel_pipeline::Payload::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .any(|s| {
                    s.name == "json-span"
                        && s.trace_id == (1..=16).collect::<Vec<u8>>()
                        && s.span_id == [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11]
                        && s.start_time_unix_nano == 5
                }),
            _ => false,
        })
    })
    .await;
    collector.stop().await;
}
