//! The running collector: builds the topology, serves self-telemetry and extensions, and shuts
//! down in stages — receivers stop, processors drain, exporters flush — within a deadline.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kotel_config::{Config, ExtensionConfig};
use kotel_pipeline::obsreport::SelfMetrics;
use kotel_pipeline::{Ledger, Shutdown, Stages, TaskError};
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::extensions::health_check::{self, Readiness};
use crate::net::{self, Listener, NetError, Protocol};
use crate::telemetry;
use crate::topology::{self, Task, Topology, TopologyError};

/// How long the staged shutdown may take before what is left is dropped.
pub const DEFAULT_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error("service.telemetry.metrics: {0}")]
    Metrics(NetError),
    #[error("extensions.{id}: {source}")]
    Extension { id: String, source: NetError },
    #[error("{component} failed: {source}")]
    Component {
        component: String,
        source: TaskError,
    },
}

pub struct Service {
    topology: Topology,
    stages: Stages,
    side: Shutdown,
    side_tasks: Vec<Task>,
    ready: Readiness,
    metrics_addr: Option<SocketAddr>,
    health_addr: Option<SocketAddr>,
}

impl Service {
    /// Builds every component and binds every port; nothing runs until [`Service::run`].
    pub async fn build(config: &Config) -> Result<Self, ServiceError> {
        let mut registry = Registry::default();
        let metrics = SelfMetrics::register(&mut registry);
        let ledger = Ledger::new(metrics.held_bytes.clone());
        let stages = Stages::default();
        let ready = Readiness::default();
        let shared = topology::Shared {
            telemetry: &metrics,
            health: ready.health(),
            ledger: &ledger,
            stages: &stages,
        };
        let topology = topology::build(config, &mut registry, shared).await?;
        let side = Shutdown::new();
        let mut side_tasks = Vec::new();
        let mut metrics_addr = None;
        if let Some(addr) = config.service.telemetry.metrics.prometheus_address() {
            let listener: Listener = net::bind(&addr, None, Protocol::Auto)
                .await
                .map_err(ServiceError::Metrics)?;
            metrics_addr = Some(listener.local_addr());
            let registry = Arc::new(registry);
            let shutdown = side.clone();
            side_tasks.push(task("telemetry", async move {
                telemetry::serve_metrics(listener, registry, shutdown).await;
            }));
        }
        let mut health_addr = None;
        for (id, ext) in config.active_extensions() {
            if let ExtensionConfig::HealthCheck(h) = ext {
                let listener =
                    net::bind(&h.endpoint, None, Protocol::Auto)
                        .await
                        .map_err(|source| ServiceError::Extension {
                            id: id.to_string(),
                            source,
                        })?;
                health_addr = Some(listener.local_addr());
                let (path, ready, shutdown) = (h.path.clone(), ready.clone(), side.clone());
                let bodies = h
                    .response_body
                    .as_ref()
                    .map(|b| (b.healthy.clone(), b.unhealthy.clone()));
                side_tasks.push(task(id, async move {
                    health_check::serve(listener, path, bodies, ready, shutdown).await;
                }));
            }
        }
        Ok(Self {
            topology,
            stages,
            side,
            side_tasks,
            ready,
            metrics_addr,
            health_addr,
        })
    }

    /// Where a receiver listens: `("otlp", "grpc")` → address.
    pub fn receiver_addr(&self, receiver: &str, protocol: &str) -> Option<SocketAddr> {
        self.topology
            .addresses
            .get(&(receiver.to_string(), protocol.to_string()))
            .copied()
    }

    pub fn addresses(&self) -> &BTreeMap<(String, String), SocketAddr> {
        &self.topology.addresses
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_addr
    }

    /// Runs until `stop` resolves or a component fails, then shuts down in stages within
    /// `deadline`.
    pub async fn run(
        self,
        stop: impl Future<Output = ()>,
        deadline: Duration,
    ) -> Result<(), ServiceError> {
        let (fail_tx, mut fail_rx) = tokio::sync::mpsc::unbounded_channel();
        let spawn = |tasks: Vec<Task>| -> Vec<JoinHandle<()>> {
            tasks
                .into_iter()
                .map(|t| {
                    let fail = fail_tx.clone();
                    tokio::spawn(async move {
                        if let Err(source) = t.future.await {
                            let _ = fail.send(ServiceError::Component {
                                component: t.component,
                                source,
                            });
                        }
                    })
                })
                .collect()
        };
        let exporters = spawn(self.topology.exporters);
        let processors = spawn(self.topology.processors);
        let receivers = spawn(self.topology.receivers);
        let side = spawn(self.side_tasks);
        self.ready.set(true);
        tracing::info!("everything is ready; collecting");

        let failure = tokio::select! {
            _ = stop => None,
            f = fail_rx.recv() => f,
        };
        if let Some(f) = &failure {
            tracing::error!(error = %f, "a component failed; shutting down");
        }
        self.ready.set(false);
        let until = Instant::now() + deadline;
        let abort = self.stages.exporters.abort.clone();
        tracing::info!("stopping receivers");
        stage(&self.stages.receivers, receivers, until, &abort).await;
        tracing::info!("draining processors");
        stage(&self.stages.processors, processors, until, &abort).await;
        tracing::info!("flushing exporters");
        stage(&self.stages.exporters.drain, exporters, until, &abort).await;
        stage(&self.side, side, until + Duration::from_secs(1), &abort).await;
        tracing::info!("shutdown complete");
        failure.map_or(Ok(()), Err)
    }
}

fn task(name: impl ToString, f: impl Future<Output = ()> + Send + 'static) -> Task {
    Task {
        component: name.to_string(),
        future: Box::pin(async move {
            f.await;
            Ok::<(), TaskError>(())
        }),
    }
}

/// Cancels a stage and waits for its tasks; past the deadline, retries are aborted and the
/// tasks get one more second.
async fn stage(token: &Shutdown, tasks: Vec<JoinHandle<()>>, until: Instant, abort: &Shutdown) {
    token.cancel();
    let mut all = futures::future::join_all(tasks);
    if tokio::time::timeout_at(until, &mut all).await.is_err() {
        tracing::warn!("shutdown deadline reached; dropping what is left");
        abort.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), all).await;
    }
}
