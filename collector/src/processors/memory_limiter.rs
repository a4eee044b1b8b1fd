//! `memory_limiter` processor for a process without a garbage collector.
//!
//! Semantics: a request is refused (retryable: gRPC UNAVAILABLE, HTTP 503 with Retry-After) when
//! the bytes of telemetry the collector holds — the [`Ledger`] of encoded bytes in batch buffers
//! and exporter queues — plus the request's own size would pass a budget. The budget is the soft
//! limit, `limit - spike`, less twice what the process's resident memory (read from /proc at
//! most every 25 ms) is past the soft limit: resident memory sees what the ledger does not
//! (decoded batches, requests being decoded, allocator slack), and shrinking the budget in
//! proportion settles the process under `limit` under overload while the queue still holds
//! enough to send full batches (refusing everything while anything is held would shrink batches
//! to single requests and collapse delivery; measured in BENCHMARKS.md). Memory is released as
//! exporters deliver, so refusals end by themselves; nothing is forced, and with nothing held
//! nothing is refused (refusing could not free memory then). While resident memory is past the
//! soft limit the allocator is told to return freed memory promptly ([`crate::memory_pressure`]),
//! as Go's limiter forces a garbage collection there: otherwise the memory of a burst stays
//! resident and keeps the budget small after the data is gone. Receivers ask
//! [`Consumer::admit`] before decoding, so while nothing more may be held, requests are refused
//! before their decoded form costs memory. `limit_percentage` is taken of the cgroup memory limit (v2 `memory.max`, v1
//! `memory.limit_in_bytes`), else of the machine's memory. `check_interval` and the GC
//! intervals are accepted for compatibility: the ledger is exact at every request, so there is
//! nothing to poll.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
    resident: Resident,
}

/// The process's resident memory, read again when the last reading is 25 ms old.
struct Resident {
    start: Instant,
    read_at_ms: AtomicU64,
    bytes: AtomicU64,
}

impl Resident {
    const EVERY_MS: u64 = 25;

    fn new() -> Self {
        Self {
            start: Instant::now(),
            read_at_ms: AtomicU64::new(0),
            bytes: AtomicU64::new(resident_bytes().unwrap_or(0)),
        }
    }

    /// The latest reading, and whether it was taken by this call.
    fn bytes(&self) -> (u64, bool) {
        let now = self.start.elapsed().as_millis() as u64;
        let last = self.read_at_ms.load(Ordering::Relaxed);
        // One request per interval reads /proc (a few microseconds); the rest use its figure.
        if now.saturating_sub(last) >= Self::EVERY_MS
            && self
                .read_at_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            && let Some(b) = resident_bytes()
        {
            self.bytes.store(b, Ordering::Relaxed);
            return (b, true);
        }
        (self.bytes.load(Ordering::Relaxed), false)
    }
}

/// VmRSS of this process (None where /proc is not Linux's).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    Some(
        kb.trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok()?
            * 1024,
    )
}

/// The wait a refused client is told: one to two seconds, spread so that clients refused
/// together do not all come back in the same instant (a burst of requests being decoded at
/// once is memory the limiter cannot see before it is spent).
fn retry_hint() -> Duration {
    use rand::Rng;
    Duration::from_millis(rand::rng().random_range(1000..2000))
}

/// Why a request of `request` bytes is refused, if it is.
fn refusal(held: u64, request: u64, resident: u64, soft_limit: u64) -> Option<String> {
    let excess = resident.saturating_sub(soft_limit);
    let budget = soft_limit.saturating_sub(excess.saturating_mul(2));
    if held + request > soft_limit {
        Some(format!(
            "data refused due to high memory usage ({held} bytes held, limit {soft_limit})"
        ))
    } else if held > 0 && held + request > budget {
        Some(format!(
            "data refused due to high memory usage (resident memory {resident} bytes, {held} bytes held, limit {soft_limit})"
        ))
    } else {
        None
    }
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
            resident: Resident::new(),
        })
    }

    /// Refuses `data` if the limits say so, counting its items (walked only when refused).
    fn check(&self, data: &Envelope) -> Result<(), ConsumeError> {
        match self.refusal_now(data.payload.encoded_len() as u64) {
            None => Ok(()),
            Some(error) => {
                self.refused[data.payload.signal()].inc_by(data.payload.item_count() as u64);
                Err(error)
            }
        }
    }

    /// The refusal a request of `request` bytes gets now, if any. A receiver that asks before
    /// decoding (`request` 0) counts what it refused itself.
    fn refusal_now(&self, request: u64) -> Option<ConsumeError> {
        let (resident, fresh) = self.resident.bytes();
        if fresh {
            crate::memory_pressure::report(resident > self.soft_limit);
        }
        let reason = refusal(self.ledger.held(), request, resident, self.soft_limit)?;
        Some(ConsumeError::Refused {
            reason,
            retry_after: Some(retry_hint()),
        })
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

    /// Refuses before decoding when no request, however small, would pass now.
    fn admit(&self) -> Result<(), ConsumeError> {
        self.refusal_now(0).map_or(Ok(()), Err)
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

    #[test]
    fn resident_memory_past_the_soft_limit_shrinks_what_may_be_held() {
        let soft = 100 * MIB;
        assert_eq!(refusal(10 * MIB, MIB, 50 * MIB, soft), None);
        let held = refusal(99 * MIB, 2 * MIB, 50 * MIB, soft).unwrap();
        assert!(held.contains("bytes held"), "{held}");
        // 10 MiB past the soft limit: 80 MiB may be held.
        assert_eq!(refusal(70 * MIB, MIB, 110 * MIB, soft), None);
        let resident = refusal(80 * MIB, MIB, 110 * MIB, soft).unwrap();
        assert!(resident.contains("resident memory"), "{resident}");
        // Far past it: nothing more while anything is held ...
        assert!(refusal(MIB, MIB, 200 * MIB, soft).is_some());
        // ... and nothing refused with nothing held: refusing could not bring memory down.
        assert_eq!(refusal(0, MIB, 200 * MIB, soft), None);
    }

    #[test]
    fn admits_before_decoding_unless_nothing_more_may_be_held() {
        let ledger = Ledger::default();
        let cfg = MemoryLimiterConfig {
            limit_mib: 1 << 20, // far above this process's resident memory
            spike_limit_mib: 1,
            ..Default::default()
        };
        let next: BoxConsumer = kotel_pipeline::CaptureSink::new();
        let limiter = MemoryLimiter::build(
            &"memory_limiter".parse().unwrap(),
            &cfg,
            next,
            ledger.clone(),
            PerSignal::default(),
        )
        .unwrap();
        assert!(limiter.admit().is_ok());
        ledger.add(limiter.soft_limit as usize + 1);
        let refused = limiter.admit().unwrap_err();
        assert!(refused.is_retryable(), "{refused}");
    }

    #[test]
    fn refused_clients_are_told_to_wait_one_to_two_seconds_spread() {
        let hints: std::collections::BTreeSet<Duration> = (0..50).map(|_| retry_hint()).collect();
        assert!(hints.len() > 10, "spread: {hints:?}");
        assert!(hints.iter().all(|h| (1000..2000).contains(&h.as_millis())));
    }

    #[test]
    fn reads_this_processs_resident_memory() {
        let r = Resident::new();
        assert!(r.bytes().0 > MIB, "{:?}", r.bytes());
    }
}
