//! kotel-pipeline: the contract every kotelcol component is written against.
//!
//! Telemetry moves as OTLP protobuf messages ([`Payload`]) with the [`RequestContext`] of the
//! connection it came from, so OTLP in and OTLP out cost no conversion and a processor such as
//! k8sattributes can match data to the peer that sent it.
//!
//! A component hands data to the next stage through a [`Consumer`]. `consume` resolves once the
//! next stage has *accepted* the data (queued it, or passed it on); an error says why not and
//! whether the sender may retry. Back-pressure is structural: every queue is bounded, and a full
//! queue either waits or refuses with [`ConsumeError::Refused`] — never grows.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

mod ack;
mod backoff;
mod component;
mod errors;
mod health;
mod ledger;
pub mod obsreport;
pub mod payload;
pub mod wire;

pub use ack::{AckWait, Acks};
pub use backoff::Backoff;
pub use component::{
    Authenticators, BuildContext, BuildError, Built, ClientAuth, ExporterStages, ReceiverOutputs,
    Stages, StorageDirs, TaskError, TaskFuture,
};
pub use errors::{error_chain, with_sources};
pub use health::{Failure, Health, HealthReporter};
pub use kotel_config::{PerSignal, Signal};
pub use ledger::Ledger;
pub use opentelemetry_proto::tonic as proto;
pub use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
pub use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
pub use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

/// One unit of telemetry: an OTLP export request of one signal.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Traces(ExportTraceServiceRequest),
    Metrics(ExportMetricsServiceRequest),
    Logs(ExportLogsServiceRequest),
}

impl Payload {
    pub fn signal(&self) -> Signal {
        match self {
            Self::Traces(_) => Signal::Traces,
            Self::Metrics(_) => Signal::Metrics,
            Self::Logs(_) => Signal::Logs,
        }
    }

    /// Spans, data points or log records: what upstream counts as items.
    pub fn item_count(&self) -> usize {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        match self {
            Self::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len())
                .sum(),
            Self::Logs(r) => r
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .map(|sl| sl.log_records.len())
                .sum(),
            Self::Metrics(r) => r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
                .map(|m| match &m.data {
                    Some(Data::Gauge(g)) => g.data_points.len(),
                    Some(Data::Sum(s)) => s.data_points.len(),
                    Some(Data::Histogram(h)) => h.data_points.len(),
                    Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
                    Some(Data::Summary(s)) => s.data_points.len(),
                    None => 0,
                })
                .sum(),
        }
    }

    /// Encoded protobuf size: what the memory limiter and byte counters account.
    pub fn encoded_len(&self) -> usize {
        use prost::Message;
        match self {
            Self::Traces(r) => r.encoded_len(),
            Self::Metrics(r) => r.encoded_len(),
            Self::Logs(r) => r.encoded_len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Self::Traces(r) => r.resource_spans.is_empty(),
            Self::Metrics(r) => r.resource_metrics.is_empty(),
            Self::Logs(r) => r.resource_logs.is_empty(),
        }
    }
}

/// Where a request came from. Cheap to clone; shared by every payload of one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestContext {
    /// The client's address, when the data arrived over a connection.
    pub peer: Option<SocketAddr>,
    /// Request headers / gRPC metadata, when the receiver has `include_metadata` (lower-case keys).
    pub metadata: Option<Arc<BTreeMap<String, Vec<String>>>>,
}

/// Telemetry with its request context.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub payload: Payload,
    pub context: RequestContext,
    /// Who waits to hear that this data left the collector (see [`Acks`]).
    pub acks: Acks,
}

impl Envelope {
    pub fn new(payload: Payload) -> Self {
        Self::with_context(payload, RequestContext::default())
    }

    pub fn with_context(payload: Payload, context: RequestContext) -> Self {
        Self {
            payload,
            context,
            acks: Acks::default(),
        }
    }

    /// The same envelope, acknowledged through `acks`.
    pub fn with_acks(mut self, acks: Acks) -> Self {
        self.acks = acks;
        self
    }
}

/// Why the next stage did not accept data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsumeError {
    /// Temporarily refused (full queue, memory limit): the sender should retry later.
    /// OTLP receivers answer gRPC UNAVAILABLE / RESOURCE_EXHAUSTED, HTTP 503 / 429.
    #[error("data refused, retry later: {reason}")]
    Refused {
        reason: String,
        /// Suggested wait before retrying, sent as Retry-After / RetryInfo.
        retry_after: Option<std::time::Duration>,
    },
    /// The data can never be accepted (malformed for this stage).
    #[error("data rejected permanently: {0}")]
    Permanent(String),
    /// The pipeline is shutting down.
    #[error("pipeline is shutting down")]
    ShuttingDown,
}

impl ConsumeError {
    pub fn refused(reason: impl Into<String>) -> Self {
        Self::Refused {
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// Whether the sender may send the same data again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Refused { .. } | Self::ShuttingDown)
    }
}

/// The next stage of a pipeline.
///
/// A stage implements [`offer`](Consumer::offer) only: data it does not accept goes back to the
/// caller with the reason, so a caller that retries (batch, filelog) keeps no copy and no stage
/// clones a batch to be able to report an error.
#[async_trait::async_trait]
pub trait Consumer: Send + Sync + 'static {
    /// Hands `data` to this stage. Resolves when it is accepted (queued or passed on); what is
    /// not accepted comes back in the [`Refusal`].
    async fn offer(&self, data: Envelope) -> Result<(), Refusal>;

    /// [`offer`](Consumer::offer) for a caller that does not need refused data back.
    async fn consume(&self, data: Envelope) -> Result<(), ConsumeError> {
        self.offer(data).await.map_err(|r| r.error)
    }

    /// Whether this stage would refuse any request now, asked by a receiver before it spends
    /// memory decoding one (the memory limiter's refusals would otherwise cost the decoded form
    /// of every refused request). Only a refusal that holds whatever the request's size belongs
    /// here; a stage that passes data straight on answers for its next stage.
    fn admit(&self) -> Result<(), ConsumeError> {
        Ok(())
    }
}

/// Data a stage did not accept, handed back with the reason.
#[derive(Debug)]
pub struct Refusal {
    pub error: ConsumeError,
    pub data: Envelope,
}

impl Refusal {
    pub fn new(error: ConsumeError, data: Envelope) -> Self {
        Self { error, data }
    }
}

/// A shared consumer handle.
pub type BoxConsumer = Arc<dyn Consumer>;

/// Sends every envelope to several consumers (a receiver feeding several pipelines, or a
/// pipeline feeding several exporters). Accepted only when every consumer accepted it; the first
/// error is returned.
pub struct FanOut {
    consumers: Vec<BoxConsumer>,
}

impl FanOut {
    pub fn new(consumers: Vec<BoxConsumer>) -> Self {
        Self { consumers }
    }

    /// One consumer passes through without a wrapper.
    pub fn boxed(mut consumers: Vec<BoxConsumer>) -> BoxConsumer {
        if consumers.len() == 1 {
            consumers.pop().expect("one consumer")
        } else {
            Arc::new(Self::new(consumers))
        }
    }
}

#[async_trait::async_trait]
impl Consumer for FanOut {
    /// Each consumer but the last gets a copy (the one copy fan-out needs); a refusal hands back
    /// the first refused copy.
    async fn offer(&self, data: Envelope) -> Result<(), Refusal> {
        let Some((last, rest)) = self.consumers.split_last() else {
            return Ok(());
        };
        let mut first = None;
        for c in rest {
            if let Err(r) = c.offer(data.clone()).await {
                first.get_or_insert(r);
            }
        }
        if let Err(r) = last.offer(data).await {
            first.get_or_insert(r);
        }
        first.map_or(Ok(()), Err)
    }

    /// Refused when any consumer refuses: the request would be refused as a whole.
    fn admit(&self) -> Result<(), ConsumeError> {
        self.consumers.iter().try_for_each(|c| c.admit())
    }
}

/// A consumer that keeps everything it is given, for tests of components.
#[derive(Default)]
pub struct CaptureSink {
    items: tokio::sync::Mutex<Vec<Envelope>>,
}

impl CaptureSink {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Everything received so far.
    pub async fn take(&self) -> Vec<Envelope> {
        std::mem::take(&mut *self.items.lock().await)
    }

    pub async fn len(&self) -> usize {
        self.items.lock().await.len()
    }

    pub async fn is_empty(&self) -> bool {
        self.items.lock().await.is_empty()
    }
}

#[async_trait::async_trait]
impl Consumer for CaptureSink {
    async fn offer(&self, data: Envelope) -> Result<(), Refusal> {
        self.items.lock().await.push(data);
        Ok(())
    }
}

/// Cancellation shared by a component's tasks: receivers stop on it, then the topology drains.
pub use tokio_util::sync::CancellationToken as Shutdown;

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

    fn logs(n: usize) -> Payload {
        Payload::Logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord::default(); n],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    #[tokio::test]
    async fn fan_out_delivers_to_every_consumer() {
        let a = CaptureSink::new();
        let b = CaptureSink::new();
        let fan = FanOut::boxed(vec![a.clone(), b.clone()]);
        fan.consume(Envelope::new(logs(3))).await.unwrap();
        assert_eq!(a.take().await[0].payload.item_count(), 3);
        assert_eq!(b.take().await[0].payload.item_count(), 3);
    }

    struct Refuse;
    #[async_trait::async_trait]
    impl Consumer for Refuse {
        async fn offer(&self, data: Envelope) -> Result<(), Refusal> {
            Err(Refusal::new(ConsumeError::refused("full"), data))
        }
    }

    #[tokio::test]
    async fn fan_out_reports_a_refusal() {
        let a = CaptureSink::new();
        let fan = FanOut::boxed(vec![a.clone(), Arc::new(Refuse)]);
        let err = fan.consume(Envelope::new(logs(1))).await.unwrap_err();
        assert!(err.is_retryable());
        // The refused data comes back whole, for the caller to retry.
        let back = fan.offer(Envelope::new(logs(2))).await.unwrap_err();
        assert_eq!(back.data.payload.item_count(), 2);
    }
}
