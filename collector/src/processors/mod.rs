//! Processors built into kotelcol: batch and memory_limiter, plus the OTLP merge/split helpers.

pub mod batch;
pub mod memory_limiter;
pub mod payload;
