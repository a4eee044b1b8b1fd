//! The byte ledger: how many encoded bytes of telemetry the collector holds right now.
//!
//! kotelcol has no garbage collector to ask, so the memory limiter works on what the collector
//! itself keeps: every batch buffer and every exporter queue adds the encoded size of what it
//! takes in and subtracts it when the data leaves (sent, handed on, or dropped). Merging OTLP
//! requests concatenates their resource lists, so sizes add up exactly; splitting a batch repeats
//! resource headers, so the ledger may overcount by those few bytes until the pieces are sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use prometheus_client::metrics::gauge::Gauge;

#[derive(Clone, Default)]
pub struct Ledger {
    held: Arc<AtomicI64>,
    gauge: Gauge,
}

impl Ledger {
    pub fn new(gauge: Gauge) -> Self {
        Self {
            held: Arc::default(),
            gauge,
        }
    }

    pub fn add(&self, bytes: usize) {
        let now = self.held.fetch_add(bytes as i64, Ordering::Relaxed) + bytes as i64;
        self.gauge.set(now);
    }

    pub fn sub(&self, bytes: usize) {
        let now = self.held.fetch_sub(bytes as i64, Ordering::Relaxed) - bytes as i64;
        self.gauge.set(now);
    }

    /// Bytes held now (never negative).
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed).max(0) as u64
    }
}
