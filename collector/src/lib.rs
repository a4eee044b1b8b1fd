//! kotelcol: the collector that kotel's DaemonSet runs on every node.
//!
//! [`service::Service`] builds a [`topology`] from a validated [`kotel_config::Config`]: receivers
//! fan out to the pipelines that name them, processors run in order, exporters fan out. Every hop
//! is bounded; a full stage refuses with a retryable error that the OTLP receiver turns into
//! gRPC `UNAVAILABLE` / HTTP 503 with a retry hint, so a slow backend slows intake instead of
//! growing memory. Shutdown runs in stages: receivers stop, processors drain, exporters flush.

pub mod cli;
pub mod exporters;
pub mod extensions;
pub mod logging;
pub mod memory_pressure;
pub mod net;
pub mod processors;
pub mod receivers;
pub mod rpc_status;
pub mod service;
pub mod telemetry;
pub mod topology;

/// The config `kotelcol` runs without `--config`: OTLP on localhost → debug exporter.
pub const DEFAULT_CONFIG: &str = include_str!("default_config.yaml");
