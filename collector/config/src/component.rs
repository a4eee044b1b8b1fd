//! The component catalogue: which types kotel implements, under which upstream names, for which
//! signals, and the typed config of each.

use serde_json::Value;

use crate::error::{ConfigError, ErrorKind, typed};
use crate::id::ComponentKind;
use crate::signal::Signal;
use crate::{exporters, extensions, processors, receivers};

const ALL: &[Signal] = &Signal::ALL;
const METRICS: &[Signal] = &[Signal::Metrics];
const LOGS: &[Signal] = &[Signal::Logs];

// Built once at start-up; boxing variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ReceiverConfig {
    Otlp(receivers::otlp::OtlpReceiverConfig),
    Filelog(receivers::filelog::FilelogConfig),
    KubeletStats(receivers::kubeletstats::KubeletStatsConfig),
}

// Built once at start-up; boxing variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessorConfig {
    Batch(processors::batch::BatchConfig),
    MemoryLimiter(processors::memory_limiter::MemoryLimiterConfig),
    K8sAttributes(processors::k8sattributes::K8sAttributesConfig),
}

// Built once at start-up; boxing variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ExporterConfig {
    Otlp(exporters::otlp::OtlpExporterConfig),
    OtlpHttp(exporters::otlphttp::OtlpHttpExporterConfig),
    Debug(exporters::debug::DebugExporterConfig),
}

// Built once at start-up; boxing variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ExtensionConfig {
    HealthCheck(extensions::health_check::HealthCheckConfig),
    FileStorage(extensions::file_storage::FileStorageConfig),
    BearerTokenAuth(extensions::auth::BearerTokenAuthConfig),
    BasicAuth(extensions::auth::BasicAuthConfig),
}

/// (kind, canonical type, other accepted spellings, signals).
const CATALOGUE: &[(ComponentKind, &str, &[&str], &[Signal])] = &[
    (ComponentKind::Receiver, "otlp", &[], ALL),
    (ComponentKind::Receiver, "filelog", &["file_log"], LOGS),
    (
        ComponentKind::Receiver,
        "kubeletstats",
        &["kubelet_stats"],
        METRICS,
    ),
    (ComponentKind::Processor, "batch", &[], ALL),
    (
        ComponentKind::Processor,
        "memory_limiter",
        &["memorylimiter"],
        ALL,
    ),
    (
        ComponentKind::Processor,
        "k8sattributes",
        // `k8s_tagger`: the name before contrib v0.37.0 (see `deprecated`).
        &["k8s_attributes", "k8s_tagger"],
        ALL,
    ),
    (ComponentKind::Exporter, "otlp", &["otlp_grpc"], ALL),
    (ComponentKind::Exporter, "otlphttp", &["otlp_http"], ALL),
    // `logging`: the name before upstream v0.86.0 (see `deprecated`).
    (ComponentKind::Exporter, "debug", &["logging"], ALL),
    (
        ComponentKind::Extension,
        "health_check",
        &["healthcheck"],
        &[],
    ),
    (
        ComponentKind::Extension,
        "file_storage",
        &["filestorage"],
        &[],
    ),
    (ComponentKind::Extension, "bearertokenauth", &[], &[]),
    (ComponentKind::Extension, "basicauth", &[], &[]),
];

pub(crate) fn catalogue() -> Vec<(ComponentKind, &'static str, &'static [Signal])> {
    CATALOGUE.iter().map(|(k, t, _, s)| (*k, *t, *s)).collect()
}

/// The canonical type for a spelling, if kotel implements it.
pub(crate) fn canonical(kind: ComponentKind, ty: &str) -> Option<&'static str> {
    CATALOGUE
        .iter()
        .find(|(k, t, aliases, _)| *k == kind && (*t == ty || aliases.contains(&ty)))
        .map(|(_, t, _, _)| *t)
}

/// Signals a canonical type supports.
pub(crate) fn signals(kind: ComponentKind, canonical_ty: &str) -> &'static [Signal] {
    CATALOGUE
        .iter()
        .find(|(k, t, _, _)| *k == kind && *t == canonical_ty)
        .map(|(_, _, _, s)| *s)
        .unwrap_or(&[])
}

fn unknown(kind: ComponentKind, path: &str, ty: &str) -> ConfigError {
    let known: Vec<&str> = CATALOGUE
        .iter()
        .filter(|(k, ..)| *k == kind)
        .map(|(_, t, ..)| *t)
        .collect();
    ConfigError::of(
        ErrorKind::UnknownType,
        path,
        format!(
            "unknown type {ty:?}: kotel implements {} {}",
            kind.section(),
            known.join(", ")
        ),
    )
}

impl ReceiverConfig {
    pub(crate) fn parse(path: &str, ty: &str, v: Value) -> Result<Self, ConfigError> {
        match canonical(ComponentKind::Receiver, ty) {
            Some("otlp") => {
                let c: receivers::otlp::OtlpReceiverConfig = typed(path, v)?;
                c.validate(path)?;
                Ok(Self::Otlp(c))
            }
            Some("filelog") => {
                let c: receivers::filelog::FilelogConfig = typed(path, v)?;
                c.validate(path)?;
                Ok(Self::Filelog(c))
            }
            Some("kubeletstats") => {
                let c: receivers::kubeletstats::KubeletStatsConfig = typed(path, v)?;
                c.validate(path)?;
                Ok(Self::KubeletStats(c))
            }
            _ => Err(unknown(ComponentKind::Receiver, path, ty)),
        }
    }

    /// The canonical upstream type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Otlp(_) => "otlp",
            Self::Filelog(_) => "filelog",
            Self::KubeletStats(_) => "kubeletstats",
        }
    }
}

impl ProcessorConfig {
    pub(crate) fn parse(path: &str, ty: &str, v: Value) -> Result<Self, ConfigError> {
        match canonical(ComponentKind::Processor, ty) {
            Some("batch") => {
                let c: processors::batch::BatchConfig = typed(path, v)?;
                c.validate(path)?;
                Ok(Self::Batch(c))
            }
            Some("memory_limiter") => {
                let c: processors::memory_limiter::MemoryLimiterConfig = typed(path, v)?;
                c.validate(path)?;
                Ok(Self::MemoryLimiter(c))
            }
            Some("k8sattributes") => {
                let c: processors::k8sattributes::K8sAttributesConfig = typed(path, v)?;
                c.validate(path)?;
                Ok(Self::K8sAttributes(c))
            }
            _ => Err(unknown(ComponentKind::Processor, path, ty)),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Batch(_) => "batch",
            Self::MemoryLimiter(_) => "memory_limiter",
            Self::K8sAttributes(_) => "k8sattributes",
        }
    }
}

impl ExporterConfig {
    pub(crate) fn parse(path: &str, ty: &str, v: Value) -> Result<Self, ConfigError> {
        match canonical(ComponentKind::Exporter, ty) {
            Some("otlp") => {
                let c: exporters::otlp::OtlpExporterConfig = typed(path, v)?;
                c.validate(path)?;
                Ok(Self::Otlp(c))
            }
            Some("otlphttp") => {
                let c: exporters::otlphttp::OtlpHttpExporterConfig = typed(path, v)?;
                c.validate(path)?;
                Ok(Self::OtlpHttp(c))
            }
            Some("debug") => Ok(Self::Debug(typed(path, v)?)),
            _ => Err(unknown(ComponentKind::Exporter, path, ty)),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Otlp(_) => "otlp",
            Self::OtlpHttp(_) => "otlphttp",
            Self::Debug(_) => "debug",
        }
    }
}

impl ExtensionConfig {
    pub(crate) fn parse(path: &str, ty: &str, v: Value) -> Result<Self, ConfigError> {
        match canonical(ComponentKind::Extension, ty) {
            Some("health_check") => Ok(Self::HealthCheck(typed(path, v)?)),
            Some("file_storage") => Ok(Self::FileStorage(typed(path, v)?)),
            Some("bearertokenauth") => {
                let c: extensions::auth::BearerTokenAuthConfig = typed(path, v)?;
                c.validate(path)?;
                Ok(Self::BearerTokenAuth(c))
            }
            Some("basicauth") => Ok(Self::BasicAuth(typed(path, v)?)),
            _ => Err(unknown(ComponentKind::Extension, path, ty)),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Self::HealthCheck(_) => "health_check",
            Self::FileStorage(_) => "file_storage",
            Self::BearerTokenAuth(_) => "bearertokenauth",
            Self::BasicAuth(_) => "basicauth",
        }
    }
}
