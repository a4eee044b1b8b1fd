//! The counters upstream keeps for every component (`otelcol_receiver_accepted_spans`,
//! `otelcol_exporter_sent_log_records`, …), with upstream's names and labels.
//!
//! Families are registered once; a component resolves its counters at build time (through
//! [`crate::BuildContext::telemetry`]), so the data path touches atomics only. Receivers do not
//! count what they accept: [`crate::ReceiverOutputs`] hands them consumers that count.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::{BoxConsumer, ConsumeError, Consumer, Envelope, PerSignal, Refusal, Signal};

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

type Families<L> = PerSignal<Family<L, Counter>>;

fn per_signal<L>(registry: &mut Registry, pattern: &str, help: &str) -> Families<L>
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
{
    PerSignal::from_fn(|s| {
        let f = Family::<L, Counter>::default();
        registry.register(
            pattern.replace("{items}", s.item_word()),
            help.replace("{items}", s.item_word()),
            f.clone(),
        );
        f
    })
}

fn counters<L>(families: &Families<L>, labels: &L) -> PerSignal<Counter>
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
{
    families.map(|_, f| f.get_or_create(labels).clone())
}

/// Every metric family the collector core exports.
#[derive(Clone)]
pub struct SelfMetrics {
    receiver_accepted: Families<ReceiverLabels>,
    receiver_refused: Families<ReceiverLabels>,
    receiver_failed_requests: Family<FailedRequestLabels, Counter>,
    exporter_sent: Families<ExporterLabels>,
    exporter_send_failed: Families<ExporterLabels>,
    exporter_enqueue_failed: Families<ExporterLabels>,
    exporter_queue_size: Family<ExporterLabels, Gauge>,
    exporter_queue_capacity: Family<ExporterLabels, Gauge>,
    processor_refused: Families<ProcessorLabels>,
    /// Bytes of telemetry held in batch buffers and exporter queues (see [`crate::Ledger`]).
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
            accepted: counters(&self.receiver_accepted, &l),
            refused: counters(&self.receiver_refused, &l),
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
            sent: counters(&self.exporter_sent, &l),
            send_failed: counters(&self.exporter_send_failed, &l),
            enqueue_failed: counters(&self.exporter_enqueue_failed, &l),
            queue_size: self.exporter_queue_size.get_or_create(&l).clone(),
            queue_capacity: self.exporter_queue_capacity.get_or_create(&l).clone(),
        }
    }

    pub fn processor_refused(&self, processor: &str) -> PerSignal<Counter> {
        let l = ProcessorLabels {
            processor: processor.to_string(),
        };
        counters(&self.processor_refused, &l)
    }
}

/// A receiver's counters for one transport.
#[derive(Clone)]
pub struct ReceiverCounters {
    pub accepted: PerSignal<Counter>,
    pub refused: PerSignal<Counter>,
    failed: Arc<dyn Fn(&'static str) + Send + Sync>,
}

impl ReceiverCounters {
    /// Counts a request that could not be read, by fixed category.
    pub fn failed_request(&self, reason: &'static str) {
        (self.failed)(reason);
    }

    /// `next`, counting the items it accepts and refuses.
    pub fn observe(&self, next: BoxConsumer) -> BoxConsumer {
        Arc::new(Observed {
            inner: next,
            accepted: self.accepted.clone(),
            refused: self.refused.clone(),
        })
    }
}

/// An exporter's counters.
#[derive(Clone)]
pub struct ExporterCounters {
    pub sent: PerSignal<Counter>,
    pub send_failed: PerSignal<Counter>,
    pub enqueue_failed: PerSignal<Counter>,
    pub queue_size: Gauge,
    pub queue_capacity: Gauge,
}

/// Counts what a receiver pushed into its pipelines.
struct Observed {
    inner: BoxConsumer,
    accepted: PerSignal<Counter>,
    refused: PerSignal<Counter>,
}

impl Observed {
    fn count(&self, signal: Signal, items: usize, accepted: bool) {
        let c = if accepted {
            &self.accepted
        } else {
            &self.refused
        };
        c[signal].inc_by(items as u64);
    }
}

#[async_trait::async_trait]
impl Consumer for Observed {
    async fn offer(&self, data: Envelope) -> Result<(), Refusal> {
        let (signal, n) = (data.payload.signal(), data.payload.item_count());
        let r = self.inner.offer(data).await;
        self.count(signal, n, r.is_ok());
        r
    }

    fn admit(&self) -> Result<(), ConsumeError> {
        self.inner.admit()
    }
}
