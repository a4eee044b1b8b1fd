//! The collector's own metrics, named after upstream's (`otelcol_receiver_accepted_spans`, …),
//! and the Prometheus endpoint that serves them.
//!
//! Counters are resolved per component once at build time ([`ReceiverCounters`],
//! [`ExporterCounters`]), so the data path touches atomics only.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use kotel_pipeline::Signal;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::net::{self, Listener};

pub const SIGNALS: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

/// Index of a signal in per-signal arrays.
pub fn idx(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceiverLabels {
    pub receiver: String,
    pub transport: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailedRequestLabels {
    pub receiver: String,
    pub transport: String,
    /// A short fixed category: `bad_payload`, `too_large`, `unsupported_media_type`, …
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExporterLabels {
    pub exporter: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProcessorLabels {
    pub processor: String,
}

type PerSignal<L> = [Family<L, Counter>; 3];

fn per_signal<L>(registry: &mut Registry, pattern: &str, help: &str) -> PerSignal<L>
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
{
    SIGNALS.map(|s| {
        let f = Family::<L, Counter>::default();
        registry.register(
            pattern.replace("{items}", s.item_word()),
            help.replace("{items}", s.item_word()),
            f.clone(),
        );
        f
    })
}

/// Every metric family the collector core exports.
#[derive(Clone)]
pub struct SelfMetrics {
    receiver_accepted: PerSignal<ReceiverLabels>,
    receiver_refused: PerSignal<ReceiverLabels>,
    receiver_failed_requests: Family<FailedRequestLabels, Counter>,
    exporter_sent: PerSignal<ExporterLabels>,
    exporter_send_failed: PerSignal<ExporterLabels>,
    exporter_enqueue_failed: PerSignal<ExporterLabels>,
    exporter_queue_size: Family<ExporterLabels, Gauge>,
    exporter_queue_capacity: Family<ExporterLabels, Gauge>,
    processor_refused: PerSignal<ProcessorLabels>,
    /// Bytes of telemetry held in batch buffers and exporter queues (see [`crate::ledger`]).
    pub held_bytes: Gauge,
}

impl SelfMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let receiver_failed_requests = Family::default();
        registry.register(
            "otelcol_receiver_failed_requests",
            "Requests a receiver could not read (bad payload, size, type, encoding, path, method)",
            receiver_failed_requests.clone(),
        );
        let exporter_queue_size = Family::default();
        registry.register(
            "otelcol_exporter_queue_size",
            "Current size of the exporter's sending queue",
            exporter_queue_size.clone(),
        );
        let exporter_queue_capacity = Family::default();
        registry.register(
            "otelcol_exporter_queue_capacity",
            "Capacity of the exporter's sending queue",
            exporter_queue_capacity.clone(),
        );
        let held_bytes = Gauge::default();
        registry.register(
            "kotelcol_held_bytes",
            "Encoded bytes of telemetry held in batch buffers and exporter queues",
            held_bytes.clone(),
        );
        Self {
            receiver_accepted: per_signal(
                registry,
                "otelcol_receiver_accepted_{items}",
                "Number of {items} successfully pushed into the pipeline",
            ),
            receiver_refused: per_signal(
                registry,
                "otelcol_receiver_refused_{items}",
                "Number of {items} that could not be pushed into the pipeline",
            ),
            receiver_failed_requests,
            exporter_sent: per_signal(
                registry,
                "otelcol_exporter_sent_{items}",
                "Number of {items} successfully sent to destination",
            ),
            exporter_send_failed: per_signal(
                registry,
                "otelcol_exporter_send_failed_{items}",
                "Number of {items} in failed attempts to send to destination",
            ),
            exporter_enqueue_failed: per_signal(
                registry,
                "otelcol_exporter_enqueue_failed_{items}",
                "Number of {items} failed to be added to the sending queue",
            ),
            exporter_queue_size,
            exporter_queue_capacity,
            processor_refused: per_signal(
                registry,
                "otelcol_processor_refused_{items}",
                "Number of {items} refused by a processor",
            ),
            held_bytes,
        }
    }

    pub fn receiver(&self, receiver: &str, transport: &str) -> ReceiverCounters {
        let l = ReceiverLabels {
            receiver: receiver.to_string(),
            transport: transport.to_string(),
        };
        let failed = self.receiver_failed_requests.clone();
        ReceiverCounters {
            accepted: self
                .receiver_accepted
                .each_ref()
                .map(|f| f.get_or_create(&l).clone()),
            refused: self
                .receiver_refused
                .each_ref()
                .map(|f| f.get_or_create(&l).clone()),
            failed: Arc::new(move |reason: &'static str| {
                failed
                    .get_or_create(&FailedRequestLabels {
                        receiver: l.receiver.clone(),
                        transport: l.transport.clone(),
                        reason: reason.to_string(),
                    })
                    .inc();
            }),
        }
    }

    pub fn exporter(&self, exporter: &str) -> ExporterCounters {
        let l = ExporterLabels {
            exporter: exporter.to_string(),
        };
        ExporterCounters {
            sent: self
                .exporter_sent
                .each_ref()
                .map(|f| f.get_or_create(&l).clone()),
            send_failed: self
                .exporter_send_failed
                .each_ref()
                .map(|f| f.get_or_create(&l).clone()),
            enqueue_failed: self
                .exporter_enqueue_failed
                .each_ref()
                .map(|f| f.get_or_create(&l).clone()),
            queue_size: self.exporter_queue_size.get_or_create(&l).clone(),
            queue_capacity: self.exporter_queue_capacity.get_or_create(&l).clone(),
        }
    }

    pub fn processor_refused(&self, processor: &str) -> [Counter; 3] {
        let l = ProcessorLabels {
            processor: processor.to_string(),
        };
        self.processor_refused
            .each_ref()
            .map(|f| f.get_or_create(&l).clone())
    }
}

/// A receiver's counters for one transport.
#[derive(Clone)]
pub struct ReceiverCounters {
    pub accepted: [Counter; 3],
    pub refused: [Counter; 3],
    failed: Arc<dyn Fn(&'static str) + Send + Sync>,
}

impl ReceiverCounters {
    /// Counts a request that could not be read, by fixed category.
    pub fn failed_request(&self, reason: &'static str) {
        (self.failed)(reason);
    }
}

/// An exporter's counters.
#[derive(Clone)]
pub struct ExporterCounters {
    pub sent: [Counter; 3],
    pub send_failed: [Counter; 3],
    pub enqueue_failed: [Counter; 3],
    pub queue_size: Gauge,
    pub queue_capacity: Gauge,
}

/// Serves `GET /metrics` (any path, in fact) in the Prometheus text format.
pub async fn serve_metrics(
    listener: Listener,
    registry: Arc<Registry>,
    shutdown: kotel_pipeline::Shutdown,
) {
    let handler = move |_req: http::Request<hyper::body::Incoming>, _peer| {
        let registry = registry.clone();
        async move {
            let mut text = String::new();
            let resp = match prometheus_client::encoding::text::encode(&mut text, &registry) {
                Ok(()) => Response::builder()
                    .header(
                        http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )
                    .body(Full::new(Bytes::from(text))),
                Err(_) => Response::builder()
                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                    .body(Full::new(Bytes::from_static(b"failed to encode metrics"))),
            };
            Ok::<_, std::convert::Infallible>(resp.expect("static response parts are valid"))
        }
    };
    net::serve_fn(listener, handler, shutdown).await;
}
