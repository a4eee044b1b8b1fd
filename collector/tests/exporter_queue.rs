//! sending_queue of the exporters against a backend that stalls: a full queue refuses with a
//! retryable error and counts it (or waits, with block_on_overflow), the size gauges follow,
//! shutdown sends what is queued, and past the abort what is left is dropped and counted.

mod scripted;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kotel_config::exporters::otlp::OtlpExporterConfig;
use kotel_config::exporters::{QueueConfig, TlsClientConfig};
use kotel_pipeline::{ConsumeError, Consumer, Envelope, Shutdown};
use kotelcol::exporters::otlp_grpc::OtlpGrpcSender;
use kotelcol::exporters::{SendPolicy, Sender};
use scripted::{Answer, Backend, Harness, Logs, arrivals, queue, retry, spans};

const SENT: &str = "otelcol_exporter_sent_spans_total";
const FAILED: &str = "otelcol_exporter_send_failed_spans_total";
const ENQUEUE_FAILED: &str = "otelcol_exporter_enqueue_failed_spans_total";
const SIZE: &str = "otelcol_exporter_queue_size";
const CAPACITY: &str = "otelcol_exporter_queue_capacity";
const HELD: &str = "kotelcol_held_bytes";

fn sender(addr: SocketAddr) -> Arc<dyn Sender> {
    let cfg = OtlpExporterConfig {
        endpoint: addr.to_string(),
        tls: TlsClientConfig {
            insecure: true,
            ..Default::default()
        },
        ..Default::default()
    };
    Arc::new(OtlpGrpcSender::new(&cfg).unwrap())
}

fn policy(timeout: Duration) -> SendPolicy {
    SendPolicy {
        timeout,
        retry: retry(Duration::from_millis(10), Duration::ZERO),
    }
}

/// A backend that holds every request until released, and an exporter in front of it whose
/// single consumer is already stuck on a first request of one span.
async fn stalled(q: QueueConfig) -> (Backend, Harness, Shutdown) {
    let backend = Backend::new([], Answer::Hold);
    let (addr, stop) = backend.serve_grpc().await;
    let h = Harness::new(sender(addr), policy(Duration::from_secs(120)), &q);
    h.exporter.consume(Envelope::new(spans(1))).await.unwrap();
    arrivals(&backend, 1).await;
    (backend, h, stop)
}

#[tokio::test]
async fn full_queue_refuses_retryably_and_counts() {
    let (backend, h, _stop) = stalled(queue(2, false, false)).await;
    assert_eq!(h.metric(CAPACITY), 2.0);
    for n in [2, 3] {
        h.exporter.consume(Envelope::new(spans(n))).await.unwrap();
    }
    assert_eq!(h.metric(SIZE), 2.0);
    let refusal = h.exporter.offer(Envelope::new(spans(4))).await.unwrap_err();
    assert!(
        matches!(
            refusal.error,
            ConsumeError::Refused {
                retry_after: Some(_),
                ..
            }
        ),
        "{:?}",
        refusal.error
    );
    assert_eq!(refusal.data.payload.item_count(), 4, "data handed back");
    assert_eq!(h.metric(ENQUEUE_FAILED), 4.0);
    assert_eq!(h.metric(SIZE), 2.0);

    backend.release();
    h.wait_for("6 spans sent", |h| h.metric(SENT) == 6.0).await;
    assert_eq!(backend.accepted_spans(), 6);
    assert_eq!(h.metric(SIZE), 0.0);
    assert_eq!(h.metric(HELD), 0.0);
}

#[tokio::test]
async fn items_sizer_counts_spans() {
    let (backend, h, _stop) = stalled(queue(10, true, false)).await;
    assert_eq!(h.metric(CAPACITY), 10.0);
    h.exporter.consume(Envelope::new(spans(6))).await.unwrap();
    assert_eq!(h.metric(SIZE), 6.0);
    let err = h.exporter.consume(Envelope::new(spans(5))).await;
    assert!(matches!(err, Err(ConsumeError::Refused { .. })), "{err:?}");
    assert_eq!(h.metric(ENQUEUE_FAILED), 5.0);
    h.exporter.consume(Envelope::new(spans(4))).await.unwrap();
    assert_eq!(h.metric(SIZE), 10.0);

    backend.release();
    h.wait_for("11 spans sent", |h| h.metric(SENT) == 11.0)
        .await;
    assert_eq!(h.metric(SIZE), 0.0);
}

#[tokio::test]
async fn block_on_overflow_waits_for_room() {
    let (backend, h, _stop) = stalled(queue(1, false, true)).await;
    h.exporter.consume(Envelope::new(spans(2))).await.unwrap();
    let exporter = h.exporter.clone();
    let blocked = tokio::spawn(async move { exporter.consume(Envelope::new(spans(3))).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!blocked.is_finished(), "a full queue did not block");
    assert_eq!(h.metric(ENQUEUE_FAILED), 0.0);

    backend.release();
    blocked.await.unwrap().unwrap();
    h.wait_for("6 spans sent", |h| h.metric(SENT) == 6.0).await;
    assert_eq!(backend.accepted_spans(), 6);
}

#[tokio::test]
async fn drain_sends_what_is_queued() {
    let (backend, h, _stop) = stalled(queue(10, false, false)).await;
    for n in [2, 3, 4] {
        h.exporter.consume(Envelope::new(spans(n))).await.unwrap();
    }
    h.stages.drain.cancel();
    let late = h.exporter.consume(Envelope::new(spans(1))).await;
    assert_eq!(late, Err(ConsumeError::ShuttingDown));

    backend.release();
    let workers = &h.workers;
    kotel_testkit::wait_until(
        "workers finish once the queue is drained",
        Duration::from_secs(60),
        || workers.is_finished(),
    )
    .await;
    assert_eq!(backend.accepted_spans(), 10);
    assert_eq!(h.metric(SENT), 10.0);
    assert_eq!(h.metric(FAILED), 0.0);
    assert_eq!(h.metric(SIZE), 0.0);
    assert_eq!(h.metric(HELD), 0.0);
}

#[tokio::test]
async fn past_the_abort_what_is_left_is_dropped_and_counted() {
    let logs = Logs::global();
    // The backend never answers; the attempt timeout is far beyond the test.
    let (backend, h, _stop) = stalled(queue(10, false, false)).await;
    for n in [2, 3, 4] {
        h.exporter.consume(Envelope::new(spans(n))).await.unwrap();
    }
    h.stages.drain.cancel();
    h.stages.abort.cancel();
    // Liveness only: the staged shutdown gives workers one second after the abort.
    let workers = &h.workers;
    kotel_testkit::wait_until(
        "workers stop after the abort instead of waiting for the attempt timeout",
        Duration::from_secs(30),
        || workers.is_finished(),
    )
    .await;
    assert_eq!(h.metric(FAILED), 10.0);
    assert_eq!(h.metric(SENT), 0.0);
    assert_eq!(
        backend.arrivals().len(),
        1,
        "no new attempt after the abort"
    );
    assert_eq!(h.metric(SIZE), 0.0);
    assert_eq!(h.metric(HELD), 0.0);
    let text = logs.text();
    assert!(
        text.contains("dropping data: shutdown deadline reached"),
        "{text}"
    );
}

/// The backend is down when shutdown starts: each queued request gets one more attempt, then is
/// dropped and counted at once, instead of being retried until the deadline (as upstream).
#[tokio::test]
async fn while_draining_a_failed_send_is_not_retried() {
    let logs = Logs::global();
    let backend = Backend::new([], Answer::Grpc(tonic::Code::Unavailable, None));
    let (addr, _stop) = backend.serve_grpc().await;
    let slow_retry = SendPolicy {
        timeout: Duration::from_secs(5),
        retry: retry(Duration::from_secs(30), Duration::ZERO),
    };
    let h = Harness::new(sender(addr), slow_retry, &queue(10, false, false));
    for n in [1, 2, 3] {
        h.exporter.consume(Envelope::new(spans(n))).await.unwrap();
    }
    // The first request failed and waits out its 30 s backoff.
    arrivals(&backend, 1).await;
    h.stages.drain.cancel();
    let workers = &h.workers;
    kotel_testkit::wait_until(
        "a drain does not wait out the backoff",
        Duration::from_secs(20),
        || workers.is_finished(),
    )
    .await;
    assert_eq!(h.metric(FAILED), 6.0);
    assert_eq!(h.metric(SENT), 0.0);
    assert_eq!(
        backend.arrivals().len(),
        4,
        "one more attempt for the first request, one for each queued one"
    );
    assert_eq!(h.metric(SIZE), 0.0);
    assert!(
        logs.text().contains("the collector is shutting down"),
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn num_consumers_send_concurrently() {
    let backend = Backend::new([], Answer::Hold);
    let (addr, _stop) = backend.serve_grpc().await;
    let q = QueueConfig {
        num_consumers: 3,
        ..queue(10, false, false)
    };
    let h = Harness::new(sender(addr), policy(Duration::from_secs(120)), &q);
    for n in 1..=5 {
        h.exporter.consume(Envelope::new(spans(n))).await.unwrap();
    }
    // Three requests in flight at once (all held), the other two wait in the queue.
    arrivals(&backend, 3).await;
    h.wait_for("2 queued", |h| h.metric(SIZE) == 2.0).await;
    assert_eq!(backend.arrivals().len(), 3);

    backend.release();
    h.wait_for("15 spans sent", |h| h.metric(SENT) == 15.0)
        .await;
}
