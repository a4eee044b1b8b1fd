//! kotel-config: the upstream OpenTelemetry Collector's YAML config as typed Rust values.
//!
//! The collector parses with it and the operator validates with it, so the operator never rolls out
//! a config the collector would reject. It depends on serde only: no runtime, no I/O beyond strings.
//!
//! Flow: YAML text → [`merge`] several files → [`expand`] `${env:VAR}` references → [`Config::from_value`]
//! which types every component (unknown keys are errors with their path) and checks the service
//! pipelines. Every problem found is reported at once in [`ConfigErrors`].

mod component;
mod config;
mod deprecated;
pub mod duration;
mod error;
pub mod expand;
pub mod exporters;
pub mod extensions;
mod id;
pub mod merge;
pub mod processors;
pub mod receivers;
mod serde_util;
pub mod service;
mod signal;
pub mod size;

pub use component::{ExporterConfig, ExtensionConfig, ProcessorConfig, ReceiverConfig};
pub use config::{Config, ReceiverPort};
pub use error::{ConfigError, ConfigErrors, ErrorKind};
pub use id::{ComponentId, ComponentKind, PipelineId};
pub use service::{Pipeline, Service, Telemetry};
pub use signal::{PerSignal, Signal};

/// Every component type kotel implements, by kind, with canonical upstream names.
pub fn components() -> Vec<(ComponentKind, &'static str, &'static [Signal])> {
    component::catalogue()
}
