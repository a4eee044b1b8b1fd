//! `memory_limiter` processor for a process without a garbage collector.
//!
//! Semantics: the limit applies to the bytes of telemetry the collector holds — the [`Ledger`]
//! of encoded bytes in batch buffers and exporter queues — not to a heap a collector could shrink.
//! A request is refused (retryable: gRPC UNAVAILABLE, HTTP 503 with Retry-After) when the bytes
//! held plus the request's own size would pass the soft limit, `limit - spike`. The spike margin
//! covers what the ledger does not see: requests being decoded, copies in flight, allocator
//! slack. Memory is released as exporters deliver, so refusals end by themselves; nothing is
//! forced. `limit_percentage` is taken of the cgroup memory limit (v2 `memory.max`, v1
//! `memory.limit_in_bytes`), else of the machine's memory. `check_interval` and the GC
//! intervals are accepted for compatibility: the ledger is exact at every request, so there is
//! nothing to poll.

use std::sync::Arc;
use std::time::Duration;

use kotel_config::ComponentId;
use kotel_config::processors::memory_limiter::MemoryLimiterConfig;
use kotel_pipeline::{
    BoxConsumer, BuildContext, Built, ConsumeError, Consumer, Envelope, Ledger, PerSignal, Refusal,
};
use prometheus_client::metrics::counter::Counter;

const MIB: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum MemoryLimiterError {
    #[error(
        "processors.{id}: limit_percentage needs the memory size, but neither a cgroup limit nor /proc/meminfo could be read; set limit_mib"
    )]
    NoTotal { id: ComponentId },
}

/// The component contract's build.
pub fn build(
    cx: BuildContext<'_>,
    cfg: &MemoryLimiterConfig,
    next: BoxConsumer,
) -> Result<Built, MemoryLimiterError> {
    let refused = cx.telemetry.processor_refused(&cx.name());
    let limiter = MemoryLimiter::build(cx.id, cfg, next, cx.ledger.clone(), refused)?;
    Ok(Built::consumer(Arc::new(limiter)))
}

pub struct MemoryLimiter {
    next: BoxConsumer,
    ledger: Ledger,
    soft_limit: u64,
    refused: PerSignal<Counter>,
}

/// Hard and soft limits in bytes.
pub fn limits(cfg: &MemoryLimiterConfig, total: Option<u64>) -> Option<(u64, u64)> {
    let (hard, spike) = if cfg.limit_mib > 0 {
        let hard = cfg.limit_mib * MIB;
        let spike = if cfg.spike_limit_mib > 0 {
            cfg.spike_limit_mib * MIB
        } else {
            hard / 5
        };
        (hard, spike)
    } else {
        let total = total?;
        let hard = total / 100 * cfg.limit_percentage as u64;
        (hard, total / 100 * cfg.spike_limit_percentage as u64)
    };
    Some((hard, hard.saturating_sub(spike)))
}

/// The memory available to this process: its cgroup limit, else the machine's memory.
pub fn total_memory() -> Option<u64> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    if let Some(v) = read("/sys/fs/cgroup/memory.max").and_then(|s| s.trim().parse().ok()) {
        return Some(v);
    }
    if let Some(v) = read("/sys/fs/cgroup/memory/memory.limit_in_bytes")
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|v| *v < (1 << 60))
    {
        return Some(v);
    }
    read("/proc/meminfo")?
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

impl MemoryLimiter {
    pub fn build(
        id: &ComponentId,
        cfg: &MemoryLimiterConfig,
        next: BoxConsumer,
        ledger: Ledger,
        refused: PerSignal<Counter>,
    ) -> Result<Self, MemoryLimiterError> {
        let total = if cfg.limit_mib > 0 {
            None
        } else {
            total_memory()
        };
        let (hard, soft) =
            limits(cfg, total).ok_or_else(|| MemoryLimiterError::NoTotal { id: id.clone() })?;
        tracing::info!(processor = %id, hard_limit_bytes = hard, soft_limit_bytes = soft, "memory limiter");
        Ok(Self {
            next,
            ledger,
            soft_limit: soft,
            refused,
        })
    }

    fn check(&self, data: &Envelope) -> Result<(), ConsumeError> {
        let held = self.ledger.held();
        if held + data.payload.encoded_len() as u64 > self.soft_limit {
            self.refused[data.payload.signal()].inc_by(data.payload.item_count() as u64);
            return Err(ConsumeError::Refused {
                reason: format!(
                    "data refused due to high memory usage ({held} bytes held, limit {})",
                    self.soft_limit
                ),
                retry_after: Some(Duration::from_secs(1)),
            });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Consumer for MemoryLimiter {
    async fn offer(&self, data: Envelope) -> Result<(), Refusal> {
        if let Err(error) = self.check(&data) {
            return Err(Refusal { error, data });
        }
        self.next.offer(data).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spike_defaults_to_a_fifth() {
        let cfg = MemoryLimiterConfig {
            limit_mib: 100,
            ..Default::default()
        };
        assert_eq!(limits(&cfg, None), Some((100 * MIB, 80 * MIB)));
        let pct = MemoryLimiterConfig {
            limit_percentage: 80,
            spike_limit_percentage: 20,
            ..Default::default()
        };
        assert_eq!(limits(&pct, Some(1000 * MIB)), Some((800 * MIB, 600 * MIB)));
    }
}
