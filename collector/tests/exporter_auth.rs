//! `auth.authenticator` on the otlp and otlphttp exporters (issue 12): a `bearertokenauth` whose
//! token is a file (read again when it is rotated) and a `basicauth` with `client_auth` put
//! their header on every request, through the whole collector as configured (what an exporter
//! may name is kotel-config's test, `collector/config/tests/validate.rs`).

mod common;
mod scripted;

use common::{Collector, trace_request};
use kotel_pipeline::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use kotel_pipeline::proto::trace::v1::Span;
use scripted::{Answer, Backend};

fn header(arrival: &scripted::Arrival, name: &str) -> Option<String> {
    Some(arrival.headers.get(name)?.to_str().ok()?.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporters_send_their_authenticators_header() {
    let grpc = Backend::new([], Answer::Ok);
    let (grpc_addr, _g) = grpc.serve_grpc().await;
    let http = Backend::new([], Answer::Ok);
    let (http_addr, _h) = http.serve_http().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "token-1\n").unwrap();
    let yaml = format!(
        r#"
extensions:
  bearertokenauth/file:
    filename: {token}
  basicauth/client:
    client_auth:
      username: alice
      password: s3cret
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
exporters:
  otlp:
    endpoint: {grpc_addr}
    compression: none
    tls:
      insecure: true
    auth:
      authenticator: bearertokenauth/file
  otlphttp:
    endpoint: http://{http_addr}
    auth:
      authenticator: basicauth/client
service:
  extensions: [bearertokenauth/file, basicauth/client]
  telemetry:
    logs:
      level: warn
    metrics:
      address: 127.0.0.1:0
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp, otlphttp]
"#,
        token = token.display()
    );
    let collector = Collector::start(&yaml).await;
    let mut client = TraceServiceClient::connect(format!("http://{}", collector.grpc.unwrap()))
        .await
        .unwrap();
    let span = || Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: "s".into(),
        ..Default::default()
    };
    let send = |client: &mut TraceServiceClient<tonic::transport::Channel>| {
        let mut client = client.clone();
        async move { client.export(trace_request(vec![span()])).await.unwrap() }
    };

    send(&mut client).await;
    let wait = |backend: &Backend, n: usize| {
        let backend = backend.clone();
        async move {
            kotel_testkit::wait_for("the backend's requests", kotel_testkit::LIVENESS, || {
                let arrivals = backend.arrivals();
                async move { (arrivals.len() >= n).then_some(arrivals) }
            })
            .await
        }
    };
    let first = wait(&grpc, 1).await;
    assert_eq!(
        header(&first[0], "authorization").as_deref(),
        Some("Bearer token-1")
    );
    let basic = wait(&http, 1).await;
    assert_eq!(
        header(&basic[0], "authorization").as_deref(),
        Some("Basic YWxpY2U6czNjcmV0")
    );

    // The token is rotated (a new file renamed into place): the next request carries it.
    let next = dir.path().join("token.new");
    std::fs::write(&next, "token-2\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&next)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    std::fs::rename(&next, &token).unwrap();
    send(&mut client).await;
    let second = wait(&grpc, 2).await;
    assert_eq!(
        header(&second[1], "authorization").as_deref(),
        Some("Bearer token-2")
    );
    collector.stop().await;
}
