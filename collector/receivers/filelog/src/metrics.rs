//! The receiver's own telemetry, registered under `receiver="<id>"`. Accepted and refused
//! record counts (`otelcol_receiver_*_log_records`) are the collector core's, counted where it
//! wraps the receiver's consumer.

use std::sync::atomic::AtomicI64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub const OPEN_FILES: &str = "otelcol_fileconsumer_open_files";
pub const READING_FILES: &str = "otelcol_fileconsumer_reading_files";
pub const LINES_READ: &str = "otelcol_filelog_lines_read";
pub const PARSE_ERRORS: &str = "otelcol_filelog_parse_errors";
pub const DROPPED: &str = "otelcol_filelog_dropped_log_records";
pub const CHECKPOINT_ERRORS: &str = "otelcol_filelog_checkpoint_errors";
pub const CHECKPOINT_RESETS: &str = "otelcol_filelog_checkpoint_resets";
pub const UNDELIVERED_BATCHES: &str = "otelcol_filelog_undelivered_batches";

#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub open_files: Gauge<i64, AtomicI64>,
    pub reading_files: Gauge<i64, AtomicI64>,
    pub lines_read: Counter,
    pub parse_errors: Counter,
    pub dropped: Counter,
    pub checkpoint_errors: Counter,
    pub checkpoint_resets: Counter,
    pub undelivered_batches: Counter,
}

impl Metrics {
    pub fn register(id: &str, registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_label(("receiver".into(), id.to_string().into()));
        r.register(
            OPEN_FILES,
            "Files held open by the receiver",
            m.open_files.clone(),
        );
        r.register(
            READING_FILES,
            "Files read in the current poll",
            m.reading_files.clone(),
        );
        r.register(LINES_READ, "Lines read from files", m.lines_read.clone());
        r.register(
            PARSE_ERRORS,
            "Lines an operator could not parse (malformed), sent on or dropped per on_error",
            m.parse_errors.clone(),
        );
        r.register(
            DROPPED,
            "Records dropped: on_error drop, or rejected permanently downstream",
            m.dropped.clone(),
        );
        r.register(
            CHECKPOINT_ERRORS,
            "Checkpoint writes that failed",
            m.checkpoint_errors.clone(),
        );
        r.register(
            CHECKPOINT_RESETS,
            "Corrupt checkpoints set aside and reset",
            m.checkpoint_resets.clone(),
        );
        r.register(
            UNDELIVERED_BATCHES,
            "Batches an exporter gave up on after they were read (not read again)",
            m.undelivered_batches.clone(),
        );
        m
    }
}
