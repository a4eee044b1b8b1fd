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
mod errors;
mod health;

pub use ack::{AckWait, Acks};
pub use errors::{error_chain, with_sources};
pub use health::{Failure, Health, HealthReporter};
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

/// The signal of a payload, for routing and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Traces => "traces",
            Self::Metrics => "metrics",
            Self::Logs => "logs",
        }
    }

    /// Upstream's metric-name word for an item of this signal.
    pub fn item_word(self) -> &'static str {
        match self {
            Self::Traces => "spans",
            Self::Metrics => "metric_points",
            Self::Logs => "log_records",
        }
    }
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
#[async_trait::async_trait]
pub trait Consumer: Send + Sync + 'static {
    /// Hands `data` to this stage. Resolves when it is accepted (queued or passed on).
    async fn consume(&self, data: Envelope) -> Result<(), ConsumeError>;

    /// Like [`consume`](Consumer::consume), but data that is not accepted comes back with the
    /// error, so a stage that retries (batch) needs no copy of what it hands on. Stages that can
    /// give the data back override this; the default keeps a copy for the error case.
    async fn offer(&self, data: Envelope) -> Result<(), Refusal> {
        match self.consume(data.clone()).await {
            Ok(()) => Ok(()),
            Err(error) => Err(Refusal { error, data }),
        }
    }
}

/// Data a stage did not accept, handed back with the reason.
#[derive(Debug)]
pub struct Refusal {
    pub error: ConsumeError,
    pub data: Envelope,
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
    async fn consume(&self, data: Envelope) -> Result<(), ConsumeError> {
        let Some((last, rest)) = self.consumers.split_last() else {
            return Ok(());
        };
        let mut first_err = None;
        for c in rest {
            if let Err(e) = c.consume(data.clone()).await {
                first_err.get_or_insert(e);
            }
        }
        if let Err(e) = last.consume(data).await {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(()), Err)
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
    async fn consume(&self, data: Envelope) -> Result<(), ConsumeError> {
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
        async fn consume(&self, _: Envelope) -> Result<(), ConsumeError> {
            Err(ConsumeError::refused("full"))
        }
    }

    #[tokio::test]
    async fn fan_out_reports_a_refusal() {
        let a = CaptureSink::new();
        let fan = FanOut::boxed(vec![a.clone(), Arc::new(Refuse)]);
        let err = fan.consume(Envelope::new(logs(1))).await.unwrap_err();
        assert!(err.is_retryable());
    }
}
