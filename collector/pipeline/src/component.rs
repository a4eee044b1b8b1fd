//! The component contract: what the topology hands every component's build, and what a build
//! gives back.
//!
//! Each component exposes one `build` of its kind's shape, written against this module only:
//! - receiver: `build(cx, &config, outputs: ReceiverOutputs) -> Result<Built, E>`
//! - processor: `build(cx, &config, next: BoxConsumer) -> Result<Built, E>`
//! - exporter: `build(cx, &config) -> Result<Built, E>`
//!
//! `build` checks what depends on the environment (files, ports, the API server, variables;
//! kotel-config has checked the text) and returns its consumer and/or its task. The topology only
//! dispatches config ids to these builds and runs the tasks in shutdown order.

use std::collections::BTreeMap;
use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use kotel_config::{ComponentId, ComponentKind};
use prometheus_client::registry::Registry;

use crate::obsreport::SelfMetrics;
use crate::{BoxConsumer, FanOut, Health, HealthReporter, Ledger, PerSignal, Shutdown, Signal};

/// Shutdown tokens, one per stage, cancelled in this order.
#[derive(Clone, Default)]
pub struct Stages {
    /// Receivers stop taking data.
    pub receivers: Shutdown,
    /// Processors hand on what they hold, then return.
    pub processors: Shutdown,
    pub exporters: ExporterStages,
}

/// Tokens for the exporter stage of shutdown.
#[derive(Clone, Default)]
pub struct ExporterStages {
    /// Stop taking data; workers send what is queued, then exit.
    pub drain: Shutdown,
    /// The deadline passed: stop retrying, drop what is left (batch hand-offs too).
    pub abort: Shutdown,
}

/// What a client authenticator extension (`bearertokenauth`, `basicauth`) gives an exporter
/// that names it in `auth.authenticator`: one header for each request, asked for when the
/// request is sent (a token file may have been rotated since the last one).
pub trait ClientAuth: Send + Sync + 'static {
    fn header(&self) -> (http::HeaderName, http::HeaderValue);
}

/// The enabled client authenticator extensions, by id.
#[derive(Clone, Default)]
pub struct Authenticators(BTreeMap<ComponentId, Arc<dyn ClientAuth>>);

impl Authenticators {
    pub fn insert(&mut self, extension: ComponentId, auth: Arc<dyn ClientAuth>) {
        self.0.insert(extension, auth);
    }

    /// The authenticator an `auth.authenticator` names (kotel-config has checked it exists).
    pub fn get(&self, extension: &str) -> Option<Arc<dyn ClientAuth>> {
        self.0.get(&extension.parse::<ComponentId>().ok()?).cloned()
    }
}

/// The directories of the enabled `file_storage` extensions, and whether each asks for every
/// write to be flushed to disk (`fsync`).
#[derive(Debug, Clone, Default)]
pub struct StorageDirs(BTreeMap<ComponentId, (PathBuf, bool)>);

impl StorageDirs {
    pub fn insert(&mut self, extension: ComponentId, dir: PathBuf, fsync: bool) {
        self.0.insert(extension, (dir, fsync));
    }

    /// The extension's `fsync` setting (false for an unknown extension).
    pub fn fsync(&self, extension: &str) -> bool {
        extension
            .parse::<ComponentId>()
            .ok()
            .and_then(|id| self.0.get(&id))
            .is_some_and(|(_, fsync)| *fsync)
    }

    /// The state directory of `component` inside the extension named `extension`, as upstream
    /// names it (`receiver_filelog_pods` for `filelog/pods`); `None`: no such extension.
    pub fn component_dir(
        &self,
        extension: &str,
        kind: ComponentKind,
        component: &ComponentId,
    ) -> Option<PathBuf> {
        let (dir, _) = self.0.get(&extension.parse::<ComponentId>().ok()?)?;
        Some(dir.join(format!(
            "{}_{}_{}",
            kind.section().trim_end_matches('s'),
            component.ty,
            component.name.as_deref().unwrap_or("")
        )))
    }
}

/// What the topology hands a component's build.
pub struct BuildContext<'a> {
    pub id: &'a ComponentId,
    /// For the component's own metrics (label them with its id). A processor named by several
    /// pipelines is built once per pipeline; only the first build gets the collector's registry.
    pub registry: &'a mut Registry,
    /// The counters upstream keeps for every component.
    pub telemetry: &'a SelfMetrics,
    pub health: &'a Health,
    /// Bytes of telemetry held by stages, for the memory limiter.
    pub ledger: &'a Ledger,
    pub stages: &'a Stages,
    pub storage: &'a StorageDirs,
    pub auth: &'a Authenticators,
}

impl BuildContext<'_> {
    pub fn name(&self) -> String {
        self.id.to_string()
    }

    /// Where this component reports whether it can work (see [`Health`]).
    pub fn health_reporter(&self) -> HealthReporter {
        self.health.reporter(self.name())
    }
}

/// What a build gives back.
#[derive(Default)]
pub struct Built {
    /// The stage's input: processors and exporters.
    pub consumer: Option<BoxConsumer>,
    /// Runs until the component's stage is shut down.
    pub task: Option<TaskFuture>,
    /// Where a receiver listens, by protocol (`grpc`, `http`).
    pub addresses: Vec<(String, SocketAddr)>,
}

impl Built {
    pub fn consumer(consumer: BoxConsumer) -> Self {
        Self {
            consumer: Some(consumer),
            ..Self::default()
        }
    }

    pub fn task<E>(task: impl Future<Output = Result<(), E>> + Send + 'static) -> Self
    where
        E: Error + Send + Sync + 'static,
    {
        Self::default().with_task(task)
    }

    pub fn with_task<E>(
        mut self,
        task: impl Future<Output = Result<(), E>> + Send + 'static,
    ) -> Self
    where
        E: Error + Send + Sync + 'static,
    {
        self.task = Some(Box::pin(async move { task.await.map_err(TaskError::new) }));
        self
    }
}

/// A component's long-running task.
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<(), TaskError>> + Send>>;

/// Why a component's task stopped before its stage was shut down.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct TaskError(Box<dyn Error + Send + Sync>);

impl TaskError {
    pub fn new(e: impl Error + Send + Sync + 'static) -> Self {
        Self(Box::new(e))
    }
}

/// Why a component could not be built (its message names the component and the cause).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BuildError(Box<dyn Error + Send + Sync>);

impl BuildError {
    pub fn new(e: impl Error + Send + Sync + 'static) -> Self {
        Self(Box::new(e))
    }
}

/// The pipelines a receiver feeds: the head consumer per signal that has one, counted as
/// upstream counts receivers (accepted and refused items, per transport).
#[derive(Clone)]
pub struct ReceiverOutputs {
    receiver: String,
    heads: PerSignal<Option<BoxConsumer>>,
    telemetry: SelfMetrics,
}

impl ReceiverOutputs {
    pub fn new(
        receiver: String,
        heads: PerSignal<Option<BoxConsumer>>,
        telemetry: SelfMetrics,
    ) -> Self {
        Self {
            receiver,
            heads,
            telemetry,
        }
    }

    /// Every signal's consumer for data that came over `transport`, and that transport's
    /// counters (for requests that could not be read).
    pub fn transport(
        &self,
        transport: &str,
    ) -> (
        PerSignal<Option<BoxConsumer>>,
        crate::obsreport::ReceiverCounters,
    ) {
        let counters = self.telemetry.receiver(&self.receiver, transport);
        let heads = self
            .heads
            .map(|_, h| h.as_ref().map(|h| counters.observe(h.clone())));
        (heads, counters)
    }

    /// The consumer of a receiver of one signal (kotel-config checked that a pipeline of that
    /// signal names it; without one, data goes nowhere).
    pub fn only(&self, signal: Signal, transport: &str) -> BoxConsumer {
        self.transport(transport).0[signal]
            .clone()
            .unwrap_or_else(|| FanOut::boxed(Vec::new()))
    }
}
