//! kotel-kubeletstats: the `kubeletstats` (new name `kubelet_stats`) receiver. Node, pod,
//! container and volume metrics from the kubelet's `/stats/summary`, with the upstream receiver's
//! metric names, units, types and resource attributes.
//!
//! Modules: [`config`] resolves the user's config and the environment; [`auth`] and [`client`]
//! talk to the kubelet; [`summary`] and [`pods`] model what it returns; [`metrics`] and
//! [`convert`] turn that into OTLP; [`cpu_usage`] remembers CPU time between scrapes;
//! [`scraper`] runs the loop; [`telemetry`] counts what happened.

pub mod auth;
pub mod client;
pub mod config;
pub mod convert;
pub mod cpu_usage;
pub mod metrics;
pub mod pods;
pub mod scraper;
pub mod summary;
pub mod telemetry;
pub mod time;

use kotel_config::ComponentId;
use kotel_config::receivers::kubeletstats::KubeletStatsConfig;
use kotel_pipeline::{
    BoxConsumer, BuildContext, Built, Health, HealthReporter, ReceiverOutputs, Shutdown, Signal,
};
use prometheus_client::registry::Registry;

pub use config::Environment;
pub use scraper::{ScrapeError, ScrapeOutcome};

/// Optional upstream metrics kotel does not emit yet (node-capacity ratios need the API server).
const UNSUPPORTED_METRICS: &[&str] = &[
    "k8s.container.ephemeral_storage.usage",
    "k8s.node.filesystem.inode.count",
    "k8s.node.filesystem.inode.free",
    "k8s.node.pid.limit",
    "k8s.node.pid.usage",
    "k8s.container.cpu.node.utilization",
    "k8s.container.memory.node.utilization",
    "k8s.pod.cpu.node.utilization",
    "k8s.pod.memory.node.utilization",
    "k8s.pod.volume.usage",
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("receiver {id}: {source}")]
    Config {
        id: String,
        source: config::ConfigError,
    },
    #[error("receiver {id}: {source}")]
    Client {
        id: String,
        source: client::ClientError,
    },
}

/// The component contract's build: scrapes to the metrics pipelines, failures to the health.
pub fn build(
    cx: BuildContext<'_>,
    config: &KubeletStatsConfig,
    out: ReceiverOutputs,
) -> Result<Built, Error> {
    let next = out.only(Signal::Metrics, "http");
    let receiver = KubeletStatsReceiver::build(cx.id, config, next, cx.registry)?
        .with_health(cx.health_reporter());
    Ok(Built::task(receiver.run(cx.stages.receivers.clone())))
}

/// A built receiver: call [`KubeletStatsReceiver::run`] to scrape until shutdown.
pub struct KubeletStatsReceiver {
    scraper: scraper::Scraper,
    initial_delay: std::time::Duration,
    interval: std::time::Duration,
}

impl KubeletStatsReceiver {
    /// Builds the receiver for the collector's own environment (`K8S_NODE_NAME`, the pod's
    /// service account mount).
    pub fn build(
        id: &ComponentId,
        config: &KubeletStatsConfig,
        next: BoxConsumer,
        registry: &mut Registry,
    ) -> Result<Self, Error> {
        Self::build_with_env(id, config, next, registry, &Environment::from_process())
    }

    /// Builds the receiver against an explicit environment (tests point it at their own files).
    pub fn build_with_env(
        id: &ComponentId,
        config: &KubeletStatsConfig,
        next: BoxConsumer,
        registry: &mut Registry,
        env: &Environment,
    ) -> Result<Self, Error> {
        let name = id.to_string();
        let resolved = config::resolve(config, env).map_err(|source| Error::Config {
            id: name.clone(),
            source,
        })?;
        let client = client::KubeletClient::new(&resolved).map_err(|source| Error::Client {
            id: name.clone(),
            source,
        })?;
        if resolved.endpoint.scheme == config::Scheme::Http
            && matches!(resolved.auth, config::Auth::ServiceAccount { .. })
        {
            tracing::warn!(receiver = %name, "the service account token is sent over plain http; use an https endpoint");
        }
        for m in UNSUPPORTED_METRICS {
            if config.metric_enabled(m) {
                tracing::warn!(receiver = %name, metric = m, "metric is not supported by kotel and will not be emitted");
            }
        }
        tracing::info!(
            receiver = %name,
            url = %resolved.endpoint.url(scraper::SUMMARY_PATH),
            interval = ?resolved.collection_interval,
            pods_endpoint = resolved.needs_pods,
            "kubeletstats receiver built"
        );
        let telemetry = telemetry::Telemetry::register(&name, registry);
        Ok(Self {
            scraper: scraper::Scraper {
                client,
                converter: convert::Converter::from_config(config),
                needs_pods: resolved.needs_pods,
                next,
                telemetry,
                health: Health::default().reporter(name.clone()),
                receiver: name,
            },
            initial_delay: resolved.initial_delay,
            interval: resolved.collection_interval,
        })
    }

    /// Reports to the collector's health: scrapes that keep failing make the collector unready.
    pub fn with_health(mut self, health: HealthReporter) -> Self {
        self.scraper.health = health;
        self
    }

    /// One scrape now, outside the schedule (tests, diagnostics). Counted like scheduled ones
    /// only through [`KubeletStatsReceiver::run`].
    pub async fn scrape_once(&mut self) -> Result<ScrapeOutcome, ScrapeError> {
        self.scraper.scrape().await
    }

    /// Waits `initial_delay`, then scrapes every `collection_interval` until `shutdown`.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), Error> {
        self.scraper
            .run(self.initial_delay, self.interval, shutdown)
            .await;
        Ok(())
    }
}
