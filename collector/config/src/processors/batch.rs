//! `batch` processor.

use std::time::Duration;

use serde::Deserialize;

use crate::duration;
use crate::error::ConfigError;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Items that trigger a send (not a cap); default 8192.
    pub send_batch_size: usize,
    /// Largest batch sent; 0 (default) means batches are never split.
    pub send_batch_max_size: usize,
    /// Longest an item waits before its batch is sent; default 200ms.
    #[serde(deserialize_with = "duration::de")]
    pub timeout: Duration,
    pub metadata_keys: Vec<String>,
    pub metadata_cardinality_limit: u32,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            send_batch_size: 8192,
            send_batch_max_size: 0,
            timeout: Duration::from_millis(200),
            metadata_keys: Vec::new(),
            metadata_cardinality_limit: 1000,
        }
    }
}

impl BatchConfig {
    pub(crate) fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.send_batch_max_size != 0 && self.send_batch_max_size < self.send_batch_size {
            return Err(ConfigError::new(
                format!("{path}.send_batch_max_size"),
                "must be greater than or equal to send_batch_size",
            ));
        }
        if !self.metadata_keys.is_empty() {
            return Err(ConfigError::unsupported(
                format!("{path}.metadata_keys"),
                "batching by metadata is not supported by kotel; remove metadata_keys",
            ));
        }
        Ok(())
    }
}
