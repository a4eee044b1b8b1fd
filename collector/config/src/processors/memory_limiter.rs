//! `memory_limiter` processor.

use std::time::Duration;

use serde::Deserialize;

use crate::duration;
use crate::error::ConfigError;

/// kotel has no garbage collector: the limit is on the bytes of telemetry the collector holds
/// (queued and in flight), plus its resident memory when `limit_percentage` is used. See the
/// collector's memory_limiter module for the exact semantics.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryLimiterConfig {
    /// How often memory is measured; upstream default 0s, 1s recommended.
    #[serde(deserialize_with = "duration::de")]
    pub check_interval: Duration,
    /// Hard limit in MiB; wins over `limit_percentage`.
    pub limit_mib: u64,
    /// Margin below the hard limit where refusing starts; default 20% of the limit.
    pub spike_limit_mib: u64,
    /// Hard limit as a percentage of the container's memory limit (cgroup) or total memory.
    pub limit_percentage: u32,
    pub spike_limit_percentage: u32,
    #[serde(deserialize_with = "duration::de_opt")]
    pub min_gc_interval_when_soft_limited: Option<Duration>,
    #[serde(deserialize_with = "duration::de_opt")]
    pub max_gc_interval_when_soft_limited: Option<Duration>,
    #[serde(deserialize_with = "duration::de_opt")]
    pub max_gc_interval_when_hard_limited: Option<Duration>,
}

impl Default for MemoryLimiterConfig {
    fn default() -> Self {
        Self {
            check_interval: Duration::ZERO,
            limit_mib: 0,
            spike_limit_mib: 0,
            limit_percentage: 0,
            spike_limit_percentage: 0,
            min_gc_interval_when_soft_limited: None,
            max_gc_interval_when_soft_limited: None,
            max_gc_interval_when_hard_limited: None,
        }
    }
}

impl MemoryLimiterConfig {
    pub(crate) fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.limit_mib == 0 && self.limit_percentage == 0 {
            return Err(ConfigError::new(
                path,
                "one of limit_mib or limit_percentage must be set",
            ));
        }
        if self.limit_percentage > 100 || self.spike_limit_percentage > 100 {
            return Err(ConfigError::new(
                path,
                "percentages must be between 0 and 100",
            ));
        }
        if self.limit_mib != 0 && self.spike_limit_mib >= self.limit_mib {
            return Err(ConfigError::new(
                format!("{path}.spike_limit_mib"),
                "must be smaller than limit_mib",
            ));
        }
        if self.limit_mib == 0 && self.spike_limit_percentage >= self.limit_percentage {
            return Err(ConfigError::new(
                format!("{path}.spike_limit_percentage"),
                "must be smaller than limit_percentage",
            ));
        }
        Ok(())
    }
}
