//! What the exporters put on the wire arrives intact: otlphttp with every compression and
//! both encodings (protobuf, OTLP JSON with hex ids and 64-bit integers), otlp with gzip and
//! zstd, and the configured headers on both.

mod scripted;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kotel_config::exporters::TlsClientConfig;
use kotel_config::exporters::otlp::OtlpExporterConfig;
use kotel_config::exporters::otlphttp::OtlpHttpExporterConfig;
use kotel_pipeline::{Consumer, Envelope};
use kotelcol::exporters::otlp_grpc::OtlpGrpcSender;
use kotelcol::exporters::otlp_http::OtlpHttpSender;
use kotelcol::exporters::{SendPolicy, Sender};
use scripted::{Answer, Backend, Harness, no_queue, retry, spans};

fn policy() -> SendPolicy {
    SendPolicy {
        timeout: Duration::from_secs(10),
        retry: retry(Duration::from_millis(10), Duration::from_secs(1)),
    }
}

fn headers() -> BTreeMap<String, String> {
    BTreeMap::from([("X-Tenant".to_string(), "team-a".to_string())])
}

/// Sends five spans once and returns what the backend decoded, with the tenant header.
async fn round_trip(backend: &Backend, sender: Arc<dyn Sender>, what: &str) {
    let h = Harness::new(sender, policy(), &no_queue());
    let sent = spans(5);
    h.exporter
        .consume(Envelope::new(sent.clone()))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let arrival = backend.arrivals().pop().expect("a request arrived");
    assert_eq!(
        arrival.payload.as_ref(),
        Some(&sent),
        "{what}: payload differs"
    );
    let tenant = arrival
        .headers
        .get("x-tenant")
        .and_then(|v| v.to_str().ok());
    assert_eq!(tenant, Some("team-a"), "{what}: header missing");
}

#[tokio::test]
async fn otlphttp_compressions_and_encodings_arrive_intact() {
    let backend = Backend::new([], Answer::Ok);
    let (addr, _stop) = backend.serve_http().await;
    for compression in ["none", "gzip", "zstd"] {
        for encoding in ["proto", "json"] {
            let cfg = OtlpHttpExporterConfig {
                endpoint: Some(format!("http://{addr}/")),
                compression: compression.into(),
                encoding: encoding.into(),
                headers: headers(),
                ..Default::default()
            };
            let sender = Arc::new(OtlpHttpSender::new(&cfg).unwrap());
            round_trip(&backend, sender, &format!("{compression}/{encoding}")).await;
        }
    }
}

fn grpc(addr: SocketAddr, compression: &str) -> Arc<dyn Sender> {
    let cfg = OtlpExporterConfig {
        endpoint: addr.to_string(),
        compression: compression.into(),
        tls: TlsClientConfig {
            insecure: true,
            ..Default::default()
        },
        headers: headers(),
        ..Default::default()
    };
    Arc::new(OtlpGrpcSender::new(&cfg).unwrap())
}

#[tokio::test]
async fn otlp_compressions_arrive_intact() {
    let backend = Backend::new([], Answer::Ok);
    let (addr, _stop) = backend.serve_grpc().await;
    for compression in ["none", "gzip", "zstd"] {
        round_trip(&backend, grpc(addr, compression), compression).await;
    }
}

#[tokio::test]
async fn otlp_dials_grpc_dns_names() {
    let backend = Backend::new([], Answer::Ok);
    let (addr, _stop) = backend.serve_grpc().await;
    let cfg = OtlpExporterConfig {
        endpoint: format!("dns:///{addr}"),
        tls: TlsClientConfig {
            insecure: true,
            ..Default::default()
        },
        headers: headers(),
        ..Default::default()
    };
    let sender = Arc::new(OtlpGrpcSender::new(&cfg).unwrap());
    round_trip(&backend, sender, "dns:///").await;
}

/// `proxy_url` (issue 12): every request goes to the proxy, in absolute form, naming the real
/// backend (a name that never resolves: only the proxy, on loopback, is dialled).
#[tokio::test]
async fn otlphttp_sends_through_its_proxy_url() {
    let backend = Backend::new([], Answer::Ok);
    let (addr, _stop) = backend.serve_http().await;
    let cfg = OtlpHttpExporterConfig {
        endpoint: Some("http://backend.kotel-test.invalid:4318/".into()),
        proxy_url: Some(format!("http://{addr}")),
        headers: headers(),
        ..Default::default()
    };
    let sender = Arc::new(OtlpHttpSender::new(&cfg).unwrap());
    let h = Harness::new(sender, policy(), &no_queue());
    let sent = spans(3);
    h.exporter
        .consume(Envelope::new(sent.clone()))
        .await
        .expect("sent through the proxy");
    let arrival = backend.arrivals().pop().expect("the proxy got the request");
    assert_eq!(arrival.payload.as_ref(), Some(&sent));
    let host = arrival.headers.get("host").and_then(|v| v.to_str().ok());
    assert_eq!(host, Some("backend.kotel-test.invalid:4318"));
}

/// `keepalive` (issue 12) is accepted and the connection works with pings on.
#[tokio::test]
async fn otlp_with_keepalive_arrives_intact() {
    let backend = Backend::new([], Answer::Ok);
    let (addr, _stop) = backend.serve_grpc().await;
    let cfg: OtlpExporterConfig = serde_yaml_ng::from_str(&format!(
        "{{endpoint: '{addr}', tls: {{insecure: true}}, headers: {{X-Tenant: team-a}},
          keepalive: {{time: 10s, timeout: 5s, permit_without_stream: true}}}}"
    ))
    .expect("upstream's keepalive block");
    let k = cfg.keepalive.clone().expect("keepalive set");
    assert_eq!(
        (k.time, k.timeout, k.permit_without_stream),
        (Duration::from_secs(10), Duration::from_secs(5), true)
    );
    let sender = Arc::new(OtlpGrpcSender::new(&cfg).unwrap());
    round_trip(&backend, sender, "keepalive").await;
}
