//! TLS with client-certificate authentication on both OTLP transports (issue 16), with real
//! clients (reqwest for OTLP/HTTP, tonic for gRPC): a client holding a certificate from the
//! configured CA is served; one without is refused at the handshake and nothing reaches the
//! pipeline.

mod common;

use kotel_config::receivers::otlp::OtlpReceiverConfig;
use kotel_pipeline::ExportLogsServiceRequest;
use kotel_pipeline::proto::collector::logs::v1::logs_service_client::LogsServiceClient;
use kotel_pipeline::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn logs() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(); 3],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// (certificate PEM, key PEM) signed by `ca`.
fn leaf(ca: &CertifiedIssuer<'_, KeyPair>, name: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .signed_by(&key, ca)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_on_both_transports() {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let (server_cert, server_key) = leaf(&ca, "localhost");
    let (client_cert, client_key) = leaf(&ca, "app");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let tls = serde_json::json!({
        "cert_pem": server_cert, "key_pem": server_key,
        "client_ca_file": ca_file.to_str().unwrap(),
    });
    let cfg: OtlpReceiverConfig = serde_json::from_value(serde_json::json!({"protocols": {
        "grpc": {"endpoint": "127.0.0.1:0", "tls": tls},
        "http": {"endpoint": "127.0.0.1:0", "tls": tls},
    }}))
    .unwrap();
    let receiver = common::LogsReceiver::start(&cfg).await;
    let (sink, addrs) = (&receiver.sink, &receiver.addrs);

    // OTLP/HTTP: with the client certificate, served; without, refused.
    let url = format!("https://localhost:{}/v1/logs", addrs["http"].port());
    let root = reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap();
    let http = |identity: Option<reqwest::Identity>| {
        let mut b = reqwest::Client::builder().tls_certs_only([root.clone()]);
        if let Some(id) = identity {
            b = b.identity(id);
        }
        b.build().unwrap()
    };
    let identity =
        reqwest::Identity::from_pem(format!("{client_cert}{client_key}").as_bytes()).unwrap();
    let ok = http(Some(identity))
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(logs().encode_to_vec())
        .send()
        .await
        .expect("a client with a certificate is served");
    assert_eq!(ok.status().as_u16(), 200);
    let refused = http(None)
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(logs().encode_to_vec())
        .send()
        .await;
    assert!(
        refused.is_err(),
        "served without a client certificate: {refused:?}"
    );

    // gRPC: the same.
    let endpoint = format!("https://localhost:{}", addrs["grpc"].port());
    let grpc = |with_identity: bool| {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca.pem()))
            .domain_name("localhost");
        if with_identity {
            tls = tls.identity(Identity::from_pem(&client_cert, &client_key));
        }
        let endpoint = endpoint.clone();
        async move {
            let channel = Channel::from_shared(endpoint)
                .unwrap()
                .tls_config(tls)
                .unwrap()
                .connect()
                .await?;
            LogsServiceClient::new(channel)
                .export(logs())
                .await
                .map_err(|s| -> Box<dyn std::error::Error> { Box::new(s) })?;
            Ok::<(), Box<dyn std::error::Error>>(())
        }
    };
    grpc(true)
        .await
        .expect("a gRPC client with a certificate is served");
    assert!(
        grpc(false).await.is_err(),
        "a gRPC client without a certificate was served"
    );

    // Exactly the two accepted requests reached the pipeline.
    let received = sink.take().await;
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|e| e.payload.item_count() == 3));
    receiver.stop().await;
}
