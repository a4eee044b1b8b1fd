//! `file_storage` extension: a directory where components keep state (filelog checkpoints).

use std::time::Duration;

use serde::Deserialize;

use crate::duration;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileStorageConfig {
    /// Default `/var/lib/otelcol/file_storage`.
    pub directory: String,
    /// Create the directory when missing.
    pub create_directory: bool,
    #[serde(deserialize_with = "duration::de")]
    pub timeout: Duration,
    /// Flush each write to disk (slower, survives power loss).
    pub fsync: bool,
    pub compaction: Option<serde_json::Value>,
}

impl Default for FileStorageConfig {
    fn default() -> Self {
        Self {
            directory: "/var/lib/otelcol/file_storage".into(),
            create_directory: false,
            timeout: Duration::from_secs(1),
            fsync: false,
            compaction: None,
        }
    }
}
