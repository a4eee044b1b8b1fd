//! Processor configs.

pub mod batch;
pub mod k8sattributes;
pub mod memory_limiter;
