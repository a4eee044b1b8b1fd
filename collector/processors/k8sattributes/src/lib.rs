//! kotel-k8sattributes: the `k8sattributes` processor. It adds Kubernetes metadata to every
//! resource of traces, metrics and logs by finding the pod the data came from.
//!
//! In a DaemonSet it watches only its node's pods (`spec.nodeName` field selector) and keeps a
//! slim record of each, and reads ReplicaSets only for the pods it caches, so its memory follows
//! the node, not the cluster.
//!
//! Modules: [`settings`] resolves the config; [`model`] holds the slim records; [`index`] is the
//! cache; [`association`] finds the pod of a resource; [`extract`] says what a pod adds;
//! [`watch`] feeds the cache from the API server; [`processor`] is the pipeline stage.
//! Everything but `watch` and `processor::build` is free of the kube client.

pub mod association;
pub mod attrs;
mod error;
pub mod extract;
pub mod index;
pub mod metrics;
pub mod model;
pub mod processor;
pub mod settings;
pub mod watch;

pub use error::Error;
pub use index::PodIndex;
pub use processor::{BackgroundTask, Enricher, K8sAttributesProcessor};
pub use settings::Settings;

use kotel_config::processors::k8sattributes::K8sAttributesConfig;
use kotel_pipeline::{BoxConsumer, BuildContext, Built};

/// The component contract's build: the enriching stage, and the watches feeding its cache as the
/// task (reporting to the collector's health until they first sync).
pub async fn build(
    cx: BuildContext<'_>,
    config: &K8sAttributesConfig,
    next: BoxConsumer,
) -> Result<Built, Error> {
    let (consumer, task) =
        K8sAttributesProcessor::build(cx.id, config, next, cx.registry, cx.health).await?;
    let shutdown = cx.stages.processors.clone();
    Ok(Built::consumer(consumer).with_task(task.run(shutdown)))
}
