//! retry_on_failure of the otlp and otlphttp exporters against scripted backends: what the OTLP
//! spec calls retryable is retried (waiting at least what the server asked for), the rest is
//! sent once and counted as send_failed, and retries stop at max_elapsed_time.
//!
//! Timing assertions are lower bounds only.

mod scripted;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kotel_config::exporters::TlsClientConfig;
use kotel_config::exporters::otlp::OtlpExporterConfig;
use kotel_config::exporters::otlphttp::OtlpHttpExporterConfig;
use kotel_pipeline::{ConsumeError, Consumer, Envelope};
use kotelcol::exporters::otlp_grpc::OtlpGrpcSender;
use kotelcol::exporters::otlp_http::OtlpHttpSender;
use kotelcol::exporters::{SendPolicy, Sender};
use scripted::{Answer, Backend, Harness, Logs, arrivals, no_queue, queue, retry, spans};
use tonic::Code;

const SENT: &str = "otelcol_exporter_sent_spans_total";
const FAILED: &str = "otelcol_exporter_send_failed_spans_total";

fn grpc_sender(addr: SocketAddr) -> Arc<dyn Sender> {
    let cfg = OtlpExporterConfig {
        endpoint: addr.to_string(),
        compression: "none".into(),
        tls: TlsClientConfig {
            insecure: true,
            ..Default::default()
        },
        ..Default::default()
    };
    Arc::new(OtlpGrpcSender::new(&cfg).unwrap())
}

fn http_sender(addr: SocketAddr) -> Arc<dyn Sender> {
    let cfg = OtlpHttpExporterConfig {
        endpoint: Some(format!("http://{addr}")),
        compression: "none".into(),
        ..Default::default()
    };
    Arc::new(OtlpHttpSender::new(&cfg).unwrap())
}

/// Retries after 10ms, 20ms, … without giving up.
fn quick() -> SendPolicy {
    SendPolicy {
        timeout: Duration::from_secs(10),
        retry: retry(Duration::from_millis(10), Duration::ZERO),
    }
}

#[tokio::test]
async fn grpc_unavailable_then_ok_arrives_once_and_is_counted() {
    let backend = Backend::new([Answer::Grpc(Code::Unavailable, None)], Answer::Ok);
    let (addr, _stop) = backend.serve_grpc().await;
    let h = Harness::new(grpc_sender(addr), quick(), &queue(10, false, false));
    h.exporter.consume(Envelope::new(spans(3))).await.unwrap();
    h.wait_for("3 spans sent", |h| h.metric(SENT) == 3.0).await;
    assert_eq!(backend.arrivals().len(), 2);
    assert_eq!(backend.accepted_spans(), 3);
    assert_eq!(h.metric(FAILED), 0.0);
}

#[tokio::test]
async fn grpc_retry_info_delay_is_waited_for() {
    let delay = Duration::from_millis(700);
    let backend = Backend::new(
        [
            Answer::Grpc(Code::Unavailable, Some(delay)),
            // RESOURCE_EXHAUSTED is retryable when the server says when.
            Answer::Grpc(Code::ResourceExhausted, Some(delay)),
        ],
        Answer::Ok,
    );
    let (addr, _stop) = backend.serve_grpc().await;
    let h = Harness::new(grpc_sender(addr), quick(), &no_queue());
    h.exporter.consume(Envelope::new(spans(2))).await.unwrap();
    let a = backend.arrivals();
    assert_eq!(a.len(), 3);
    for pair in a.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= delay, "retried after {gap:?}, asked for {delay:?}");
    }
    assert_eq!(h.metric(SENT), 2.0);
}

#[tokio::test]
async fn grpc_permanent_codes_are_sent_once_and_counted() {
    for code in [Code::ResourceExhausted, Code::InvalidArgument] {
        let backend = Backend::new([Answer::Grpc(code, None)], Answer::Ok);
        let (addr, _stop) = backend.serve_grpc().await;
        let h = Harness::new(grpc_sender(addr), quick(), &no_queue());
        let err = h.exporter.consume(Envelope::new(spans(4))).await;
        assert!(
            matches!(err, Err(ConsumeError::Permanent(_))),
            "{code:?}: {err:?}"
        );
        assert_eq!(backend.arrivals().len(), 1, "{code:?} was retried");
        assert_eq!(h.metric(FAILED), 4.0, "{code:?}");
        assert_eq!(h.metric(SENT), 0.0, "{code:?}");
    }
}

#[tokio::test]
async fn grpc_permanent_failure_through_the_queue_is_counted() {
    let backend = Backend::new([Answer::Grpc(Code::InvalidArgument, None)], Answer::Ok);
    let (addr, _stop) = backend.serve_grpc().await;
    let h = Harness::new(grpc_sender(addr), quick(), &queue(10, false, false));
    h.exporter.consume(Envelope::new(spans(2))).await.unwrap();
    h.wait_for("2 spans failed", |h| h.metric(FAILED) == 2.0)
        .await;
    assert_eq!(backend.arrivals().len(), 1);
    assert_eq!(h.metric(SENT), 0.0);
}

#[tokio::test]
async fn retries_stop_at_max_elapsed_time_and_the_drop_is_logged() {
    let logs = Logs::global();
    let backend = Backend::new([], Answer::Grpc(Code::Unavailable, None));
    let (addr, _stop) = backend.serve_grpc().await;
    let policy = SendPolicy {
        timeout: Duration::from_secs(10),
        retry: retry(Duration::from_millis(50), Duration::from_millis(400)),
    };
    let h = Harness::new(grpc_sender(addr), policy, &no_queue());
    let err = h.exporter.consume(Envelope::new(spans(5))).await;
    assert!(matches!(err, Err(ConsumeError::Refused { .. })), "{err:?}");
    assert!(backend.arrivals().len() >= 3, "gave up without retrying");
    assert_eq!(h.metric(FAILED), 5.0);
    assert_eq!(h.metric(SENT), 0.0);
    let text = logs.text();
    assert!(
        text.contains("dropping data: max_elapsed_time reached"),
        "{text}"
    );
}

#[tokio::test]
async fn http_503_retry_after_is_waited_for() {
    let backend = Backend::new([Answer::Http(503, Some("1"))], Answer::Ok);
    let (addr, _stop) = backend.serve_http().await;
    let h = Harness::new(http_sender(addr), quick(), &no_queue());
    h.exporter.consume(Envelope::new(spans(2))).await.unwrap();
    let a = backend.arrivals();
    assert_eq!(a.len(), 2);
    assert!(a[1].at - a[0].at >= Duration::from_secs(1));
    assert_eq!(backend.accepted_spans(), 2);
    assert_eq!(h.metric(SENT), 2.0);
}

#[tokio::test]
async fn http_retryable_statuses_are_retried() {
    let script = [429, 502, 503, 504].map(|s| Answer::Http(s, None));
    let backend = Backend::new(script, Answer::Ok);
    let (addr, _stop) = backend.serve_http().await;
    let h = Harness::new(http_sender(addr), quick(), &queue(10, false, false));
    h.exporter.consume(Envelope::new(spans(3))).await.unwrap();
    h.wait_for("3 spans sent", |h| h.metric(SENT) == 3.0).await;
    assert_eq!(arrivals(&backend, 5).await.len(), 5);
    assert_eq!(backend.accepted_spans(), 3);
    assert_eq!(h.metric(FAILED), 0.0);
}

#[tokio::test]
async fn http_other_statuses_are_sent_once_and_counted() {
    for status in [400, 401, 403, 404, 413, 500, 501] {
        let backend = Backend::new([Answer::Http(status, Some("0"))], Answer::Ok);
        let (addr, _stop) = backend.serve_http().await;
        let h = Harness::new(http_sender(addr), quick(), &no_queue());
        let err = h.exporter.consume(Envelope::new(spans(2))).await;
        assert!(
            matches!(err, Err(ConsumeError::Permanent(_))),
            "{status}: {err:?}"
        );
        assert_eq!(backend.arrivals().len(), 1, "{status} was retried");
        assert_eq!(h.metric(FAILED), 2.0, "{status}");
    }
}

#[tokio::test]
async fn with_retry_disabled_a_retryable_failure_is_sent_once() {
    let backend = Backend::new([Answer::Grpc(Code::Unavailable, None)], Answer::Ok);
    let (addr, _stop) = backend.serve_grpc().await;
    let mut policy = quick();
    policy.retry.enabled = false;
    let h = Harness::new(grpc_sender(addr), policy, &no_queue());
    let err = h.exporter.consume(Envelope::new(spans(2))).await;
    // Still retryable for the caller: the failure was transient.
    assert!(matches!(err, Err(ConsumeError::Refused { .. })), "{err:?}");
    assert_eq!(backend.arrivals().len(), 1);
    assert_eq!(h.metric(FAILED), 2.0);
}
