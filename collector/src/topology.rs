//! Builds the running graph from a validated config.
//!
//! - One exporter instance per id, shared by every pipeline that names it.
//! - One processor chain per pipeline, built back to front so each wraps the next stage.
//! - One receiver instance per id, even when pipelines of several signals name it: its consumer
//!   for a signal fans out to the heads of every pipeline of that signal naming it.
//! - Every receiver's consumer is wrapped with accepted/refused counters (per transport), and
//!   every exporter counts what it sent, failed and could not queue, so components don't.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use kotel_config::{
    ComponentId, Config, ExporterConfig, ExtensionConfig, ProcessorConfig, ReceiverConfig,
    Signal as ConfigSignal,
};
use kotel_pipeline::{
    BoxConsumer, ConsumeError, Consumer, Envelope, FanOut, Health, Refusal, Shutdown, Signal,
};
use prometheus_client::metrics::counter::Counter;

use crate::exporters::{self, ExporterStages, QueuedExporter, SendPolicy, Sender};
use crate::extensions::file_storage;
use crate::ledger::Ledger;
use crate::processors::{batch, memory_limiter};
use crate::receivers::SignalConsumers;
use crate::receivers::otlp::{self, OtlpReceiver};
use crate::telemetry::{ReceiverCounters, SelfMetrics, idx};

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error(transparent)]
    Filelog(#[from] kotel_filelog::Error),
    #[error(transparent)]
    KubeletStats(#[from] kotel_kubeletstats::Error),
    #[error(transparent)]
    K8sAttributes(#[from] kotel_k8sattributes::Error),
    #[error("receivers.{id}.storage: {storage:?} is not an enabled file_storage extension")]
    Storage { id: ComponentId, storage: String },
    #[error(transparent)]
    Otlp(#[from] otlp::OtlpReceiverError),
    #[error(transparent)]
    MemoryLimiter(#[from] memory_limiter::MemoryLimiterError),
    #[error("exporters.{id}: {message}")]
    ExporterSetup { id: ComponentId, message: String },
    #[error(transparent)]
    FileStorage(#[from] file_storage::FileStorageError),
}

/// Shutdown tokens, one per stage.
#[derive(Clone, Default)]
pub struct Stages {
    pub receivers: Shutdown,
    pub processors: Shutdown,
    pub exporters: ExporterStages,
}

/// A component's long-running task.
pub struct Task {
    pub component: String,
    pub future: BoxFuture<'static, Result<(), String>>,
}

impl Task {
    fn new(
        component: impl ToString,
        future: impl Future<Output = Result<(), String>> + Send + 'static,
    ) -> Self {
        Self {
            component: component.to_string(),
            future: Box::pin(future),
        }
    }
}

/// The built graph: tasks per stage, and where the receivers listen.
pub struct Topology {
    pub receivers: Vec<Task>,
    pub processors: Vec<Task>,
    pub exporters: Vec<Task>,
    /// `(receiver id, protocol)` → bound address.
    pub addresses: BTreeMap<(String, String), SocketAddr>,
}

pub fn to_signal(s: ConfigSignal) -> Signal {
    match s {
        ConfigSignal::Traces => Signal::Traces,
        ConfigSignal::Metrics => Signal::Metrics,
        ConfigSignal::Logs => Signal::Logs,
    }
}

/// Counts what a receiver pushed into its pipelines.
struct ObservedReceiver {
    inner: BoxConsumer,
    accepted: [Counter; 3],
    refused: [Counter; 3],
}

#[async_trait::async_trait]
impl Consumer for ObservedReceiver {
    async fn consume(&self, data: Envelope) -> Result<(), ConsumeError> {
        let i = idx(data.payload.signal());
        let n = data.payload.item_count() as u64;
        let r = self.inner.consume(data).await;
        match &r {
            Ok(()) => self.accepted[i].inc_by(n),
            Err(_) => self.refused[i].inc_by(n),
        };
        r
    }

    async fn offer(&self, data: Envelope) -> Result<(), Refusal> {
        let i = idx(data.payload.signal());
        let n = data.payload.item_count() as u64;
        let r = self.inner.offer(data).await;
        match &r {
            Ok(()) => self.accepted[i].inc_by(n),
            Err(_) => self.refused[i].inc_by(n),
        };
        r
    }
}

fn observed(consumers: &SignalConsumers, counters: &ReceiverCounters) -> SignalConsumers {
    let mut out = SignalConsumers::default();
    for s in crate::telemetry::SIGNALS {
        if let Some(c) = consumers.get(s) {
            out.set(
                s,
                Arc::new(ObservedReceiver {
                    inner: c.clone(),
                    accepted: counters.accepted.clone(),
                    refused: counters.refused.clone(),
                }),
            );
        }
    }
    out
}

/// The observed consumer of a single-signal receiver (config validation guarantees the signal).
fn observed_one(
    consumers: &SignalConsumers,
    signal: Signal,
    counters: &ReceiverCounters,
) -> BoxConsumer {
    observed(consumers, counters)
        .get(signal)
        .cloned()
        .unwrap_or_else(|| Arc::new(FanOut::new(Vec::new())))
}

/// Builds every component the pipelines use. Receivers bind their ports here.
pub async fn build(
    config: &Config,
    metrics: &SelfMetrics,
    registry: &mut prometheus_client::registry::Registry,
    (ledger, health): (&Ledger, &Health),
    stages: &Stages,
) -> Result<Topology, TopologyError> {
    let mut topo = Topology {
        receivers: Vec::new(),
        processors: Vec::new(),
        exporters: Vec::new(),
        addresses: BTreeMap::new(),
    };

    // Extensions that components depend on.
    let mut storage: BTreeMap<ComponentId, PathBuf> = BTreeMap::new();
    for (id, ext) in config.active_extensions() {
        if let ExtensionConfig::FileStorage(fs) = ext {
            storage.insert(id.clone(), file_storage::resolve(id, fs)?);
        }
    }

    // Exporters.
    let mut exporters: BTreeMap<ComponentId, BoxConsumer> = BTreeMap::new();
    for (id, cfg) in config.active_exporters() {
        let setup = |message: String| TopologyError::ExporterSetup {
            id: id.clone(),
            message,
        };
        let (sender, policy, queue): (Arc<dyn Sender>, SendPolicy, _) = match cfg {
            ExporterConfig::Otlp(c) => (
                Arc::new(
                    exporters::otlp_grpc::OtlpGrpcSender::new(c)
                        .map_err(|e| setup(e.to_string()))?,
                ),
                SendPolicy {
                    timeout: c.timeout,
                    retry: c.retry_on_failure.clone(),
                },
                c.sending_queue.clone(),
            ),
            ExporterConfig::OtlpHttp(c) => (
                Arc::new(
                    exporters::otlp_http::OtlpHttpSender::new(c)
                        .map_err(|e| setup(e.to_string()))?,
                ),
                SendPolicy {
                    timeout: c.timeout,
                    retry: c.retry_on_failure.clone(),
                },
                c.sending_queue.clone(),
            ),
            ExporterConfig::Debug(c) => (
                Arc::new(exporters::debug::DebugSender::new(c)),
                SendPolicy {
                    timeout: std::time::Duration::from_secs(5),
                    retry: kotel_config::exporters::RetryConfig {
                        enabled: false,
                        ..Default::default()
                    },
                },
                kotel_config::exporters::QueueConfig {
                    enabled: false,
                    ..Default::default()
                },
            ),
        };
        let (exporter, task) = QueuedExporter::new(
            id.to_string(),
            sender,
            policy,
            &queue,
            metrics.exporter(&id.to_string()),
            ledger.clone(),
            stages.exporters.clone(),
        );
        topo.exporters.push(Task::new(id, async move {
            task.run().await;
            Ok(())
        }));
        exporters.insert(id.clone(), exporter);
    }

    // Pipelines, back to front.
    let mut k8s_registered = std::collections::BTreeSet::new();
    let mut heads: Vec<(Signal, &Vec<ComponentId>, BoxConsumer)> = Vec::new();
    for (pid, pipeline) in &config.service.pipelines {
        let mut next = FanOut::boxed(
            pipeline
                .exporters
                .iter()
                .filter_map(|e| exporters.get(e).cloned())
                .collect(),
        );
        for pr_id in pipeline.processors.iter().rev() {
            let Some(cfg) = config.processors.get(pr_id) else {
                continue;
            };
            let name = pr_id.to_string();
            next = match cfg {
                ProcessorConfig::Batch(c) => {
                    let (b, task) = batch::build(
                        pr_id,
                        c,
                        next,
                        ledger.clone(),
                        metrics.processor_refused(&name),
                    );
                    let drain = stages.processors.clone();
                    let abort = stages.exporters.abort.clone();
                    topo.processors
                        .push(Task::new(format!("{pid}/{pr_id}"), async move {
                            task.run(drain, abort).await;
                            Ok(())
                        }));
                    b
                }
                ProcessorConfig::MemoryLimiter(c) => {
                    Arc::new(memory_limiter::MemoryLimiter::build(
                        pr_id,
                        c,
                        next,
                        ledger.clone(),
                        metrics.processor_refused(&name),
                    )?)
                }
                ProcessorConfig::K8sAttributes(c) => {
                    // One instance per pipeline, as upstream; only the first registers its
                    // metrics, so every family name stays unique on /metrics.
                    let mut spare = prometheus_client::registry::Registry::default();
                    let reg = if k8s_registered.insert(pr_id.clone()) {
                        &mut *registry
                    } else {
                        &mut spare
                    };
                    let (consumer, task) = kotel_k8sattributes::K8sAttributesProcessor::build(
                        pr_id, c, next, reg, health,
                    )
                    .await?;
                    let shutdown = stages.processors.clone();
                    topo.processors
                        .push(Task::new(format!("{pid}/{pr_id}"), async move {
                            task.run(shutdown).await.map_err(|e| e.to_string())
                        }));
                    consumer
                }
            };
        }
        heads.push((to_signal(pid.signal), &pipeline.receivers, next));
    }

    // Receivers.
    for (id, cfg) in config.active_receivers() {
        let mut consumers = SignalConsumers::default();
        for s in crate::telemetry::SIGNALS {
            let fed: Vec<BoxConsumer> = heads
                .iter()
                .filter(|(sig, receivers, _)| *sig == s && receivers.contains(id))
                .map(|(_, _, head)| head.clone())
                .collect();
            if !fed.is_empty() {
                consumers.set(s, FanOut::boxed(fed));
            }
        }
        let name = id.to_string();
        match cfg {
            ReceiverConfig::Otlp(c) => {
                let grpc = metrics.receiver(&name, "grpc");
                let http = metrics.receiver(&name, "http");
                let wiring = otlp::Wiring {
                    grpc: (observed(&consumers, &grpc), grpc),
                    http: (observed(&consumers, &http), http),
                };
                let receiver = OtlpReceiver::build(id, c, wiring).await?;
                for (proto, addr) in receiver.local_addrs() {
                    topo.addresses
                        .insert((name.clone(), proto.to_string()), addr);
                }
                let shutdown = stages.receivers.clone();
                topo.receivers.push(Task::new(id, async move {
                    receiver.run(shutdown).await;
                    Ok(())
                }));
            }
            ReceiverConfig::Filelog(c) => {
                let storage_dir = match &c.storage {
                    None => None,
                    Some(ext) => {
                        let dir = ext
                            .parse::<ComponentId>()
                            .ok()
                            .and_then(|e| storage.get(&e))
                            .ok_or_else(|| TopologyError::Storage {
                                id: id.clone(),
                                storage: ext.clone(),
                            })?;
                        Some(file_storage::component_dir(dir, "receiver", id))
                    }
                };
                let next = observed_one(&consumers, Signal::Logs, &metrics.receiver(&name, ""));
                let receiver =
                    kotel_filelog::FilelogReceiver::build(id, c, storage_dir, next, registry)?;
                let shutdown = stages.receivers.clone();
                topo.receivers.push(Task::new(id, async move {
                    receiver.run(shutdown).await.map_err(|e| e.to_string())
                }));
            }
            ReceiverConfig::KubeletStats(c) => {
                let next = observed_one(
                    &consumers,
                    Signal::Metrics,
                    &metrics.receiver(&name, "http"),
                );
                let receiver =
                    kotel_kubeletstats::KubeletStatsReceiver::build(id, c, next, registry)?
                        .with_health(health.reporter(name.clone()));
                let shutdown = stages.receivers.clone();
                topo.receivers.push(Task::new(id, async move {
                    receiver.run(shutdown).await.map_err(|e| e.to_string())
                }));
            }
        }
    }
    Ok(topo)
}
