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

use kotel_config::ComponentId;
use kotel_config::receivers::filelog::FilelogConfig;
use kotel_pipeline::{BoxConsumer, Shutdown};
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
        if config.include.is_empty() {
            return Err(config_err("include: at least one glob is required".into()));
        }
        if !config.compression.is_empty() {
            return Err(config_err(format!(
                "compression {:?} is not supported by kotel (plain files only)",
                config.compression
            )));
        }
        if config.multiline.is_some() {
            return Err(config_err("multiline is not supported by kotel".into()));
        }
        if config.include_file_record_number {
            return Err(config_err(
                "include_file_record_number is not supported by kotel".into(),
            ));
        }
        if config.max_batches != 0 {
            return Err(config_err("max_batches is not supported by kotel".into()));
        }
        if config.delete_after_read {
            return Err(config_err(
                "delete_after_read is not supported by kotel".into(),
            ));
        }
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
