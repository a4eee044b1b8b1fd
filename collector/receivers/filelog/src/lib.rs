//! kotel-filelog: the `filelog` (`file_log`) receiver. It tails files — usually container logs
//! under /var/log/pods — through a chain of stanza-style operators into OTLP log records,
//! identifying files by content fingerprint so rotation neither loses nor repeats a line, and
//! checkpointing offsets only for data the pipeline accepted.
//!
//! Modules: [`discovery`] (globs), [`fingerprint`] (identity), [`reader`] (line splitting),
//! [`checkpoint`] (offsets on disk), [`parsers::container`] and [`operators`] (the chain),
//! `poller` (the poll loop, batching, back-pressure).
//!
//! Documented limits, as upstream: a line longer than `max_log_size` is split into pieces of
//! that size (each its own record); with more matching files than `max_concurrent_files`, files
//! are read in batches and a file rotated out of the pattern between two reads may lose its
//! unread tail; a file moved out of the pattern is drained through the handle still open, but a
//! restart while it is being drained loses its tail (it is no longer found).

pub mod checkpoint;
pub mod discovery;
pub mod entry;
pub mod fingerprint;
pub mod metrics;
pub mod operators;
pub mod parsers;
mod poller;
pub mod reader;
pub mod timefmt;

use std::path::PathBuf;

use kotel_config::receivers::filelog::FilelogConfig;
use kotel_config::{ComponentId, ComponentKind};
use kotel_pipeline::{BoxConsumer, BuildContext, Built, ReceiverOutputs, Shutdown, Signal};
use prometheus_client::registry::Registry;

pub use poller::Settings;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("receiver {id}: {source}")]
    Glob {
        id: String,
        source: discovery::GlobError,
    },
    #[error("receiver {id}: {source}")]
    Operator {
        id: String,
        source: operators::BuildError,
    },
    #[error("receiver {id}: {reason}")]
    Config { id: String, reason: String },
    #[error("receiver {id}: {source}")]
    Checkpoint {
        id: String,
        source: checkpoint::CheckpointError,
    },
}

/// The component contract's build: checkpoints in the `storage` extension's directory for this
/// receiver, records to the logs pipelines.
pub fn build(
    cx: BuildContext<'_>,
    config: &FilelogConfig,
    out: ReceiverOutputs,
) -> Result<Built, Error> {
    let storage_dir = match &config.storage {
        None => None,
        Some(ext) => Some(
            cx.storage
                .component_dir(ext, ComponentKind::Receiver, cx.id)
                .ok_or_else(|| Error::Config {
                    id: cx.name(),
                    reason: format!("storage: {ext:?} is not an enabled file_storage extension"),
                })?,
        ),
    };
    let next = out.only(Signal::Logs, "");
    let receiver = FilelogReceiver::build(cx.id, config, storage_dir, next, cx.registry)?;
    Ok(Built::task(receiver.run(cx.stages.receivers.clone())))
}

/// A built receiver: call [`FilelogReceiver::run`] to start reading.
pub struct FilelogReceiver {
    poller: poller::Poller,
}

impl FilelogReceiver {
    /// Checks the config, compiles globs and operators, and opens the checkpoint directory
    /// (`storage_dir`, created when missing) when `storage` is configured.
    pub fn build(
        id: &ComponentId,
        config: &FilelogConfig,
        storage_dir: Option<PathBuf>,
        next: BoxConsumer,
        registry: &mut Registry,
    ) -> Result<Self, Error> {
        let id_s = id.to_string();
        let config_err = |reason: String| Error::Config {
            id: id_s.clone(),
            reason,
        };
        // kotel-config has refused what the text asks and kotel cannot do (compression,
        // multiline, …); what is left depends on the machine.
        if config.storage.is_some() && storage_dir.is_none() {
            return Err(config_err(format!(
                "storage {:?} is configured but no storage directory was given",
                config.storage.as_deref().unwrap_or_default()
            )));
        }
        let discovery =
            discovery::Discovery::new(&config.include, &config.exclude, config.exclude_older_than)
                .map_err(|source| Error::Glob {
                    id: id_s.clone(),
                    source,
                })?;
        let chain = operators::Chain::build(config).map_err(|source| Error::Operator {
            id: id_s.clone(),
            source,
        })?;
        let store = storage_dir
            .map(|d| checkpoint::Store::open(&d))
            .transpose()
            .map_err(|source| Error::Checkpoint {
                id: id_s.clone(),
                source,
            })?;
        let metrics = metrics::Metrics::register(&id_s, registry);
        let settings = Settings::from_config(config);
        Ok(Self {
            poller: poller::Poller::new(id_s, settings, discovery, chain, store, next, metrics),
        })
    }

    /// Reads until `shutdown`, then saves checkpoints and returns.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), Error> {
        self.poller.run(shutdown).await;
        Ok(())
    }
}
