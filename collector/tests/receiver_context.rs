//! The OTLP receiver on its own: TLS on the HTTP listener, CORS preflight and headers,
//! `include_metadata` and the peer address reaching the pipeline as request context.

mod common;

use kotel_config::receivers::otlp::OtlpReceiverConfig;
use kotel_pipeline::ExportLogsServiceRequest;
use kotel_pipeline::proto::collector::logs::v1::logs_service_client::LogsServiceClient;
use kotel_pipeline::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;

fn logs() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(); 2],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_cors_metadata_and_peer() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let yaml = serde_json::json!({
        "protocols": {
            "grpc": {"endpoint": "127.0.0.1:0", "include_metadata": true},
            "http": {
                "endpoint": "127.0.0.1:0",
                "include_metadata": true,
                "tls": {"cert_pem": cert.cert.pem(), "key_pem": cert.signing_key.serialize_pem()},
                "cors": {"allowed_origins": ["https://*.example.com"], "max_age": 600}
            }
        }
    });
    let cfg: OtlpReceiverConfig = serde_json::from_value(yaml).unwrap();
    let receiver = common::LogsReceiver::start(&cfg).await;
    let (sink, addrs) = (&receiver.sink, &receiver.addrs);

    // HTTPS with a tenant header.
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/v1/logs", addrs["http"].port());
    let resp = client
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .header("x-tenant", "blue")
        .header("origin", "https://app.example.com")
        .body(logs().encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    // Plain HTTP on the TLS port is not served.
    let plain = reqwest::Client::new()
        .post(format!("http://localhost:{}/v1/logs", addrs["http"].port()))
        .body(Vec::new())
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // CORS preflight: allowed origin gets the headers, another origin does not.
    let pre = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let ok = pre("https://web.example.com").await.unwrap();
    assert_eq!(ok.status().as_u16(), 204);
    assert_eq!(ok.headers()["access-control-allow-methods"], "POST");
    assert_eq!(ok.headers()["access-control-max-age"], "600");
    let denied = pre("https://evil.test").await.unwrap();
    assert!(!denied.headers().contains_key("access-control-allow-origin"));

    // gRPC with metadata.
    let mut grpc = LogsServiceClient::connect(format!("http://{}", addrs["grpc"]))
        .await
        .unwrap();
    let mut req = tonic::Request::new(logs());
    req.metadata_mut()
        .insert("x-tenant", "green".parse().unwrap());
    grpc.export(req).await.unwrap();

    let got = sink.take().await;
    assert_eq!(got.len(), 2);
    let tenants: Vec<String> = got
        .iter()
        .map(|e| {
            assert!(e.context.peer.unwrap().ip().is_loopback());
            e.context.metadata.as_ref().unwrap()["x-tenant"][0].clone()
        })
        .collect();
    assert_eq!(tenants, ["blue", "green"]);
    receiver.stop().await;
}
