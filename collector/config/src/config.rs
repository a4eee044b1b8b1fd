//! The whole collector config: typed components plus a checked service section.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::component;
use crate::error::{ConfigError, ConfigErrors, ErrorKind, typed};
use crate::expand::{self, Lookup};
use crate::id::{ComponentId, ComponentKind, PipelineId};
use crate::receivers::otlp::port_of;
use crate::service::{Pipeline, RawService, Service};
use crate::signal::Signal;
use crate::{ExporterConfig, ExtensionConfig, ProcessorConfig, ReceiverConfig, merge};

/// A validated collector config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub receivers: BTreeMap<ComponentId, ReceiverConfig>,
    pub processors: BTreeMap<ComponentId, ProcessorConfig>,
    pub exporters: BTreeMap<ComponentId, ExporterConfig>,
    pub extensions: BTreeMap<ComponentId, ExtensionConfig>,
    pub service: Service,
    /// Names upstream deprecated or renamed that the config used, each read as its
    /// replacement: one message per use, with the replacement.
    pub deprecations: Vec<String>,
}

/// A port a receiver listens on, for container ports and Services.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReceiverPort {
    pub component: ComponentId,
    /// `grpc` or `http`.
    pub protocol: String,
    pub port: u16,
    /// Kubernetes `appProtocol`.
    pub app_protocol: Option<String>,
}

impl ReceiverPort {
    /// Upstream's port name: `<receiver>-<protocol>` with `/` and `_` as `-`, or `port-<n>` when
    /// that is longer than 15 characters.
    pub fn name(&self) -> String {
        let name = format!("{}-{}", self.component, self.protocol)
            .replace(['/', '_'], "-")
            .to_lowercase();
        let valid = name.len() <= 15
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && name.chars().any(|c| c.is_ascii_alphabetic())
            && !name.starts_with('-')
            && !name.ends_with('-');
        if valid {
            name
        } else {
            format!("port-{}", self.port)
        }
    }
}

const TOP_LEVEL: &[&str] = &[
    "receivers",
    "processors",
    "exporters",
    "extensions",
    "connectors",
    "service",
];

impl Config {
    /// See [`Config::deprecations`](Config#structfield.deprecations).
    pub fn deprecations(&self) -> &[String] {
        &self.deprecations
    }

    /// Parses one YAML document without expanding references.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigErrors> {
        Self::from_value(parse_yaml(text)?)
    }

    /// Parses several YAML documents (later ones win), expands `${env:…}` references through
    /// `env`, and validates. With `keep_unset`, unresolved references stay as written.
    pub fn load(texts: &[&str], env: &dyn Lookup, keep_unset: bool) -> Result<Self, ConfigErrors> {
        Self::from_value(Self::resolve(texts, env, keep_unset)?)
    }

    /// The config as the collector reads it before typing: the texts merged in order and
    /// `${…}` references expanded (what `print-config` shows).
    pub fn resolve(
        texts: &[&str],
        env: &dyn Lookup,
        keep_unset: bool,
    ) -> Result<Value, ConfigErrors> {
        let mut merged = Value::Object(Default::default());
        for t in texts {
            merge::merge(&mut merged, parse_yaml(t)?);
        }
        expand::expand(merged, env, keep_unset).map_err(ConfigErrors)
    }

    /// Types and validates a config given as a JSON value (the CRD's `spec.config`).
    pub fn from_value(value: Value) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let Value::Object(mut root) = value else {
            return Err(ConfigErrors::single("", "the config must be a map"));
        };
        let deprecations = crate::deprecated::migrate(&mut root);
        for key in root.keys() {
            if !TOP_LEVEL.contains(&key.as_str()) {
                errors.push(ConfigError::new(key.clone(), "unknown field"));
            }
        }
        let mut section = |name: &str| -> Vec<(String, Value)> {
            match root.remove(name) {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Object(m)) => m.into_iter().collect(),
                Some(_) => {
                    errors.push(ConfigError::new(
                        name,
                        "must be a map of component id to config",
                    ));
                    Vec::new()
                }
            }
        };
        let raw_receivers = section("receivers");
        let raw_processors = section("processors");
        let raw_exporters = section("exporters");
        let raw_extensions = section("extensions");
        let raw_connectors = section("connectors");
        let raw_service = root.remove("service");

        let receivers = typed_section(
            ComponentKind::Receiver,
            raw_receivers,
            &mut errors,
            ReceiverConfig::parse,
        );
        let processors = typed_section(
            ComponentKind::Processor,
            raw_processors,
            &mut errors,
            ProcessorConfig::parse,
        );
        let exporters = typed_section(
            ComponentKind::Exporter,
            raw_exporters,
            &mut errors,
            ExporterConfig::parse,
        );
        let extensions = typed_section(
            ComponentKind::Extension,
            raw_extensions,
            &mut errors,
            ExtensionConfig::parse,
        );
        for (id, _) in raw_connectors {
            errors.push(ConfigError::of(
                ErrorKind::UnknownType,
                format!("connectors.{id}"),
                "kotel implements no connectors yet",
            ));
        }

        let service = match raw_service {
            None | Some(Value::Null) => {
                errors.push(ConfigError::new("service", "required"));
                None
            }
            Some(v) => match typed::<RawService>("service", v) {
                Ok(raw) => Some(raw),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
        };
        let service = service.map(|raw| {
            check_service(
                raw,
                &receivers,
                &processors,
                &exporters,
                &extensions,
                &mut errors,
            )
        });

        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let config = Config {
            receivers: receivers
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect(),
            processors: processors
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect(),
            exporters: exporters
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect(),
            extensions: extensions
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect(),
            service: service.expect("service present when there are no errors"),
            deprecations,
        };
        config.check_extension_refs()?;
        Ok(config)
    }

    /// Receivers referenced by at least one pipeline.
    pub fn active_receivers(&self) -> impl Iterator<Item = (&ComponentId, &ReceiverConfig)> {
        let used: BTreeSet<&ComponentId> = self
            .service
            .pipelines
            .values()
            .flat_map(|p| &p.receivers)
            .collect();
        self.receivers
            .iter()
            .filter(move |(id, _)| used.contains(id))
    }

    /// Processors referenced by at least one pipeline.
    pub fn active_processors(&self) -> impl Iterator<Item = (&ComponentId, &ProcessorConfig)> {
        let used: BTreeSet<&ComponentId> = self
            .service
            .pipelines
            .values()
            .flat_map(|p| &p.processors)
            .collect();
        self.processors
            .iter()
            .filter(move |(id, _)| used.contains(id))
    }

    /// Exporters referenced by at least one pipeline.
    pub fn active_exporters(&self) -> impl Iterator<Item = (&ComponentId, &ExporterConfig)> {
        let used: BTreeSet<&ComponentId> = self
            .service
            .pipelines
            .values()
            .flat_map(|p| &p.exporters)
            .collect();
        self.exporters
            .iter()
            .filter(move |(id, _)| used.contains(id))
    }

    /// Extensions enabled in `service.extensions`.
    pub fn active_extensions(&self) -> impl Iterator<Item = (&ComponentId, &ExtensionConfig)> {
        self.service
            .extensions
            .iter()
            .filter_map(|id| self.extensions.get(id).map(|c| (id, c)))
    }

    /// Ports of the receivers in use, for container ports and Services.
    pub fn receiver_ports(&self) -> Vec<ReceiverPort> {
        let mut out = Vec::new();
        for (id, r) in self.active_receivers() {
            if let ReceiverConfig::Otlp(o) = r {
                if let Some(g) = &o.protocols.grpc
                    && let Ok(port) = port_of(&g.endpoint)
                {
                    out.push(ReceiverPort {
                        component: id.clone(),
                        protocol: "grpc".into(),
                        port,
                        app_protocol: Some("grpc".into()),
                    });
                }
                if let Some(h) = &o.protocols.http
                    && let Ok(port) = port_of(&h.endpoint)
                {
                    out.push(ReceiverPort {
                        component: id.clone(),
                        protocol: "http".into(),
                        port,
                        app_protocol: Some("http".into()),
                    });
                }
            }
        }
        out
    }

    /// Port and path of the enabled `health_check` extension.
    pub fn health_check(&self) -> Option<(u16, String)> {
        self.active_extensions().find_map(|(_, e)| match e {
            ExtensionConfig::HealthCheck(h) => {
                port_of(&h.endpoint).ok().map(|p| (p, h.path.clone()))
            }
            _ => None,
        })
    }

    /// Port of the collector's own Prometheus metrics, if enabled (default 8888).
    pub fn telemetry_metrics_port(&self) -> Option<u16> {
        self.service
            .telemetry
            .metrics
            .prometheus_address()
            .and_then(|a| port_of(&a).ok())
    }

    /// Extensions components name must exist and be enabled, of the kind the reference needs:
    /// a filelog or queue `storage` a `file_storage`, an exporter's `auth.authenticator` a
    /// client authenticator.
    fn check_extension_refs(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        let mut check = |path: String, name: &str, kind: &str, is: fn(&ExtensionConfig) -> bool| {
            let ok = name.parse::<ComponentId>().ok().is_some_and(|id| {
                self.service.extensions.contains(&id) && self.extensions.get(&id).is_some_and(is)
            });
            if !ok {
                errors.push(ConfigError::of(
                    ErrorKind::Undefined,
                    path,
                    format!("{name:?} must be a {kind} extension listed in service.extensions"),
                ));
            }
        };
        let file_storage = |e: &ExtensionConfig| matches!(e, ExtensionConfig::FileStorage(_));
        let authenticator = |e: &ExtensionConfig| {
            matches!(
                e,
                ExtensionConfig::BearerTokenAuth(_) | ExtensionConfig::BasicAuth(_)
            )
        };
        for (id, r) in &self.receivers {
            if let ReceiverConfig::Filelog(f) = r
                && let Some(s) = &f.storage
            {
                check(
                    format!("receivers.{id}.storage"),
                    s,
                    "file_storage",
                    file_storage,
                );
            }
        }
        for (id, e) in &self.exporters {
            let (queue, auth) = match e {
                ExporterConfig::Otlp(o) => (&o.sending_queue, &o.auth),
                ExporterConfig::OtlpHttp(o) => (&o.sending_queue, &o.auth),
                ExporterConfig::Debug(_) => continue,
            };
            if let Some(s) = &queue.storage {
                let path = format!("exporters.{id}.sending_queue.storage");
                check(path, s, "file_storage", file_storage);
            }
            if let Some(a) = auth {
                let path = format!("exporters.{id}.auth.authenticator");
                let kind = "bearertokenauth or basicauth";
                check(path, &a.authenticator, kind, authenticator);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

fn parse_yaml(text: &str) -> Result<Value, ConfigErrors> {
    let v: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| ConfigErrors::single("", format!("invalid YAML: {e}")))?;
    Ok(if v.is_null() {
        Value::Object(Default::default())
    } else {
        v
    })
}

/// Types each component of a section; a component that fails keeps its id (value `None`) so
/// pipeline references to it are not reported twice.
fn typed_section<T>(
    kind: ComponentKind,
    raw: Vec<(String, Value)>,
    errors: &mut Vec<ConfigError>,
    parse: fn(&str, &str, Value) -> Result<T, ConfigError>,
) -> BTreeMap<ComponentId, Option<T>> {
    let mut out = BTreeMap::new();
    for (key, value) in raw {
        let path = format!("{}.{key}", kind.section());
        let id = match key.parse::<ComponentId>() {
            Ok(id) => id,
            Err(m) => {
                errors.push(ConfigError::new(path, m));
                continue;
            }
        };
        match parse(&path, &id.ty, value) {
            Ok(c) => {
                out.insert(id, Some(c));
            }
            Err(e) => {
                errors.push(e);
                out.insert(id, None);
            }
        }
    }
    out
}

fn check_service<R, P, E, X>(
    raw: RawService,
    receivers: &BTreeMap<ComponentId, Option<R>>,
    processors: &BTreeMap<ComponentId, Option<P>>,
    exporters: &BTreeMap<ComponentId, Option<E>>,
    extensions: &BTreeMap<ComponentId, Option<X>>,
    errors: &mut Vec<ConfigError>,
) -> Service {
    let mut ext_ids = Vec::new();
    for (i, e) in raw.extensions.iter().enumerate() {
        let path = format!("service.extensions[{i}]");
        match e.parse::<ComponentId>() {
            Ok(id) if extensions.contains_key(&id) => ext_ids.push(id),
            Ok(_) => errors.push(ConfigError::of(
                ErrorKind::Undefined,
                path,
                format!("references extension {e:?} which is not configured"),
            )),
            Err(m) => errors.push(ConfigError::new(path, m)),
        }
    }
    if raw.pipelines.is_empty() {
        errors.push(ConfigError::new(
            "service.pipelines",
            "must have at least one pipeline",
        ));
    }
    let mut pipelines = BTreeMap::new();
    for (name, p) in raw.pipelines {
        let base = format!("service.pipelines.{name}");
        let pid = match name.parse::<PipelineId>() {
            Ok(pid) => pid,
            Err(m) => {
                errors.push(ConfigError::new(base, m));
                continue;
            }
        };
        let mut refs =
            |kind: ComponentKind, list: &[String], defined: &dyn Fn(&ComponentId) -> bool| {
                let field = kind.section();
                let mut ids: Vec<ComponentId> = Vec::new();
                for (i, r) in list.iter().enumerate() {
                    let path = format!("{base}.{field}[{i}]");
                    let id = match r.parse::<ComponentId>() {
                        Ok(id) => id,
                        Err(m) => {
                            errors.push(ConfigError::new(path, m));
                            continue;
                        }
                    };
                    let singular = field.trim_end_matches('s');
                    if !defined(&id) {
                        errors.push(ConfigError::of(
                            ErrorKind::Undefined,
                            path,
                            format!("references {singular} {r:?} which is not configured"),
                        ));
                        continue;
                    }
                    if ids.contains(&id) {
                        errors.push(ConfigError::new(
                            path,
                            format!("references {singular} {r:?} more than once"),
                        ));
                        continue;
                    }
                    if let Some(canon) = component::canonical(kind, &id.ty)
                        && !component::signals(kind, canon).contains(&pid.signal)
                    {
                        errors.push(ConfigError::new(
                            path,
                            format!(
                                "{singular} {r:?} does not support {} pipelines",
                                pid.signal.as_str()
                            ),
                        ));
                        continue;
                    }
                    ids.push(id);
                }
                ids
            };
        let pipeline = Pipeline {
            receivers: refs(ComponentKind::Receiver, &p.receivers, &|id| {
                receivers.contains_key(id)
            }),
            processors: refs(ComponentKind::Processor, &p.processors, &|id| {
                processors.contains_key(id)
            }),
            exporters: refs(ComponentKind::Exporter, &p.exporters, &|id| {
                exporters.contains_key(id)
            }),
        };
        if p.receivers.is_empty() {
            errors.push(ConfigError::new(
                format!("{base}.receivers"),
                "must have at least one receiver",
            ));
        }
        if p.exporters.is_empty() {
            errors.push(ConfigError::new(
                format!("{base}.exporters"),
                "must have at least one exporter",
            ));
        }
        pipelines.insert(pid, pipeline);
    }
    Service {
        extensions: ext_ids,
        pipelines,
        telemetry: raw.telemetry,
    }
}

impl Config {
    /// The signals a receiver feeds, from the pipelines that name it.
    pub fn receiver_signals(&self, id: &ComponentId) -> BTreeSet<Signal> {
        self.service
            .pipelines
            .iter()
            .filter(|(_, p)| p.receivers.contains(id))
            .map(|(pid, _)| pid.signal)
            .collect()
    }
}
