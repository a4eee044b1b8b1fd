//! Builds the running graph from a validated config: a dispatch from the config's component
//! ids to their builds (the contract is [`kotel_pipeline::BuildContext`]).
//!
//! - One exporter instance per id, shared by every pipeline that names it.
//! - One processor chain per pipeline, built back to front so each wraps the next stage.
//! - One receiver instance per id, even when pipelines of several signals name it: its consumer
//!   for a signal fans out to the heads of every pipeline of that signal naming it.
//! - Receivers' consumers count what they accept ([`ReceiverOutputs`]), exporters count what they
//!   send, so no component counts upstream's standard metrics by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use kotel_config::{ComponentId, Config, ExtensionConfig};
use kotel_pipeline::obsreport::SelfMetrics;
use kotel_pipeline::{
    Authenticators, BoxConsumer, BuildContext, BuildError, Built, FanOut, Health, Ledger,
    PerSignal, ReceiverOutputs, Stages, StorageDirs, TaskFuture,
};
use prometheus_client::registry::Registry;

use crate::extensions::{self, file_storage};
use crate::{exporters, processors, receivers};

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error(transparent)]
    Component(#[from] BuildError),
    #[error(transparent)]
    FileStorage(#[from] file_storage::FileStorageError),
    #[error(transparent)]
    Auth(#[from] extensions::auth::AuthError),
}

/// A component's long-running task.
pub struct Task {
    pub component: String,
    pub future: TaskFuture,
}

/// The built graph: tasks per stage, and where the receivers listen.
#[derive(Default)]
pub struct Topology {
    pub receivers: Vec<Task>,
    pub processors: Vec<Task>,
    pub exporters: Vec<Task>,
    /// `(receiver id, protocol)` → bound address.
    pub addresses: BTreeMap<(String, String), SocketAddr>,
}

/// What every build shares.
pub struct Shared<'a> {
    pub telemetry: &'a SelfMetrics,
    pub health: &'a Health,
    pub ledger: &'a Ledger,
    pub stages: &'a Stages,
}

impl Shared<'_> {
    fn context<'a>(
        &'a self,
        id: &'a ComponentId,
        registry: &'a mut Registry,
        storage: &'a StorageDirs,
        auth: &'a Authenticators,
    ) -> BuildContext<'a> {
        BuildContext {
            id,
            registry,
            telemetry: self.telemetry,
            health: self.health,
            ledger: self.ledger,
            stages: self.stages,
            storage,
            auth,
        }
    }
}

/// Builds every component the pipelines use. Receivers bind their ports here.
pub async fn build(
    config: &Config,
    registry: &mut Registry,
    shared: Shared<'_>,
) -> Result<Topology, TopologyError> {
    let mut topo = Topology::default();
    let mut storage = StorageDirs::default();
    let mut auth = Authenticators::default();
    for (id, ext) in config.active_extensions() {
        if let ExtensionConfig::FileStorage(fs) = ext {
            storage.insert(id.clone(), file_storage::resolve(id, fs)?, fs.fsync);
        }
        if let Some(a) = extensions::auth::build(id, ext)? {
            auth.insert(id.clone(), a);
        }
    }

    let mut exporters: BTreeMap<&ComponentId, BoxConsumer> = BTreeMap::new();
    for (id, cfg) in config.active_exporters() {
        let built = exporters::build(shared.context(id, registry, &storage, &auth), cfg)?;
        if let Some(c) = topo.add(id, built, Stage::Exporters) {
            exporters.insert(id, c);
        }
    }

    // Pipelines, back to front. A processor named by several pipelines is built once per
    // pipeline (as upstream); only its first build registers its own metrics, so every family
    // name stays unique on /metrics.
    let mut spare = Registry::default();
    let mut registered = BTreeSet::new();
    let mut heads = Vec::new();
    for (pid, pipeline) in &config.service.pipelines {
        let mut next = FanOut::boxed(
            pipeline
                .exporters
                .iter()
                .filter_map(|e| exporters.get(e).cloned())
                .collect(),
        );
        for id in pipeline.processors.iter().rev() {
            let Some(cfg) = config.processors.get(id) else {
                continue;
            };
            let reg = if registered.insert(id) {
                &mut *registry
            } else {
                &mut spare
            };
            let built =
                processors::build(shared.context(id, reg, &storage, &auth), cfg, next.clone())
                    .await?;
            let task = format!("{pid}/{id}");
            next = topo.add(task, built, Stage::Processors).unwrap_or(next);
        }
        heads.push((pid.signal, &pipeline.receivers, next));
    }

    for (id, cfg) in config.active_receivers() {
        let fed = PerSignal::from_fn(|s| {
            let fed: Vec<BoxConsumer> = heads
                .iter()
                .filter(|(sig, receivers, _)| *sig == s && receivers.contains(id))
                .map(|(_, _, head)| head.clone())
                .collect();
            (!fed.is_empty()).then(|| FanOut::boxed(fed))
        });
        let out = ReceiverOutputs::new(id.to_string(), fed, shared.telemetry.clone());
        let built =
            receivers::build(shared.context(id, registry, &storage, &auth), cfg, out).await?;
        for (proto, addr) in &built.addresses {
            topo.addresses
                .insert((id.to_string(), proto.clone()), *addr);
        }
        topo.add(id, built, Stage::Receivers);
    }
    Ok(topo)
}

#[derive(Clone, Copy)]
enum Stage {
    Receivers,
    Processors,
    Exporters,
}

impl Topology {
    /// Files a build's task under its stage; its consumer, if any.
    fn add(&mut self, component: impl ToString, built: Built, stage: Stage) -> Option<BoxConsumer> {
        if let Some(future) = built.task {
            let tasks = match stage {
                Stage::Receivers => &mut self.receivers,
                Stage::Processors => &mut self.processors,
                Stage::Exporters => &mut self.exporters,
            };
            tasks.push(Task {
                component: component.to_string(),
                future,
            });
        }
        built.consumer
    }
}
