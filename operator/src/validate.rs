//! Validate: the raw custom resource → a [`Validated`] collector, or the precise reason it cannot
//! be rolled out. Pure: no client, no clock.
//!
//! The config is checked with kotel-config, the same code the collector parses with, so the
//! operator never rolls out a config the collector would reject.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::ResourceExt;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::crd::{Mode, OpenTelemetryCollector, OpenTelemetryCollectorSpec, UpgradeStrategy};
use crate::facts::{ConfigFacts, facts};
use crate::names::{CONFIG_DIR, CONFIG_VOLUME, Names};
use crate::rbac::{KubeletPodsResource, RbacAllow, rules_within};

/// What the operator brings to every collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorDefaults {
    /// Collector image when `spec.image` is empty.
    pub image: String,
    /// The operator's version (its default image carries the same tag).
    pub version: String,
    pub kubelet_pods: KubeletPodsResource,
    /// How long a rollout may take before it is reported as Stalled.
    pub progress_deadline: std::time::Duration,
    /// Whether collectors get the cluster rights their config needs; off, they get none.
    pub collector_rbac: bool,
    /// Which of those rights may be granted (`--collector-rbac-allow`).
    pub rbac_allow: RbacAllow,
}

impl Default for OperatorDefaults {
    fn default() -> Self {
        let version = env!("CARGO_PKG_VERSION").to_string();
        Self {
            image: format!("ghcr.io/kotel-dev/kotelcol:{version}"),
            version,
            kubelet_pods: KubeletPodsResource::default(),
            progress_deadline: std::time::Duration::from_secs(600),
            collector_rbac: true,
            rbac_allow: RbacAllow::default(),
        }
    }
}

/// A collector that can be built: typed names, the rendered config and what it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    pub names: Names,
    pub uid: String,
    /// The resource's own labels, propagated to every child under the operator's labels (as the
    /// upstream operator does), so label-based tooling finds the children too.
    pub labels: BTreeMap<String, String>,
    /// The resource's annotations that children carry too (upstream propagates them), without
    /// the ones tools keep about the resource itself (see [`propagated_annotations`]).
    pub annotations: BTreeMap<String, String>,
    pub spec: OpenTelemetryCollectorSpec,
    pub image: String,
    pub version: String,
    /// The config the collector reads, as YAML with sorted keys.
    pub config_yaml: String,
    /// Hex sha256 of the canonical config JSON.
    pub config_hash: String,
    pub facts: ConfigFacts,
    pub rbac_rules: Vec<PolicyRule>,
    /// Rights the config needs that `--collector-rbac-allow` kept the operator from granting.
    pub rbac_withheld: Vec<String>,
    /// The ServiceAccount the pods run as.
    pub service_account: String,
    /// Whether the operator creates that ServiceAccount.
    pub owns_service_account: bool,
    /// ConfigMaps kept besides the current one.
    pub config_versions: usize,
    /// The operator's image, when `upgradeStrategy: none` keeps the collectors on another.
    pub held_upgrade: Option<String>,
    /// Deprecated config names in use, each with its replacement.
    pub deprecations: Vec<String>,
}

/// Why a resource cannot be rolled out; the reason is the status condition's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidReason {
    InvalidConfig,
    UnsupportedComponent,
    UndefinedComponent,
    UnsupportedMode,
    UnsupportedField,
    InvalidField,
    InvalidName,
    /// The API server refused a child object built from the resource (a duplicate mount path,
    /// a ConfigMap over its size limit, a value it does not accept).
    RejectedByAPIServer,
}

impl InvalidReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidConfig => "InvalidConfig",
            Self::UnsupportedComponent => "UnsupportedComponent",
            Self::UndefinedComponent => "UndefinedComponent",
            Self::UnsupportedMode => "UnsupportedMode",
            Self::UnsupportedField => "UnsupportedField",
            Self::InvalidField => "InvalidField",
            Self::InvalidName => "InvalidName",
            Self::RejectedByAPIServer => "RejectedByAPIServer",
        }
    }
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bad input: fixed by editing the resource, never by retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct InvalidSpec {
    pub reason: InvalidReason,
    pub message: String,
}

impl InvalidSpec {
    pub fn new(reason: InvalidReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// Validates a custom resource.
pub fn validate(
    cr: &OpenTelemetryCollector,
    defaults: &OperatorDefaults,
) -> Result<Validated, InvalidSpec> {
    let name = cr.name_any();
    let namespace = cr.namespace().ok_or_else(|| {
        InvalidSpec::new(InvalidReason::InvalidName, "the resource has no namespace")
    })?;
    let spec = &cr.spec;

    if spec.mode != Mode::Daemonset {
        return Err(InvalidSpec::new(
            InvalidReason::UnsupportedMode,
            format!(
                "mode {:?} is not implemented by kotel; set spec.mode: daemonset (mode is immutable, so recreate the resource)",
                spec.mode.as_str()
            ),
        ));
    }

    let unsupported = spec.unsupported.set_fields();
    if !unsupported.is_empty() {
        return Err(InvalidSpec::new(
            InvalidReason::UnsupportedField,
            format!(
                "spec fields not implemented by kotel: {}; remove them",
                unsupported.join(", ")
            ),
        ));
    }
    if spec
        .observability
        .as_ref()
        .and_then(|o| o.metrics.as_ref())
        .and_then(|m| m.enable_metrics)
        == Some(true)
    {
        return Err(InvalidSpec::new(
            InvalidReason::UnsupportedField,
            "spec.observability.metrics.enableMetrics (ServiceMonitor) is not implemented by kotel; scrape the <name>-collector-monitoring Service instead",
        ));
    }

    check_volumes(spec)?;

    let config = with_defaults(canonical(spec.config.clone()));
    let typed = parse(&config)?;

    let config_json = serde_json::to_vec(&config).expect("a JSON value always serializes");
    let config_hash = hex(&Sha256::digest(&config_json));
    let config_yaml = serde_yaml_ng::to_string(&config).expect("a JSON value always serializes");

    let names = Names::new(&name, &namespace);
    let (service_account, owns_service_account) = match spec.service_account.as_deref() {
        Some(sa) if !sa.is_empty() => (sa.to_string(), false),
        _ => (names.collector(), true),
    };

    let running = cr.status.as_ref().and_then(|s| s.image.as_deref());
    let (image, held_upgrade) = choose_image(spec, running, &defaults.image);
    let (rbac_rules, rbac_withheld) = if defaults.collector_rbac {
        rules_within(&typed, defaults.kubelet_pods, &defaults.rbac_allow)
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(Validated {
        uid: cr.uid().unwrap_or_default(),
        labels: cr.labels().clone(),
        annotations: propagated_annotations(cr.annotations()),
        version: image_version(&image),
        image,
        config_yaml,
        config_hash,
        facts: facts(&typed),
        rbac_rules,
        rbac_withheld,
        service_account,
        owns_service_account,
        config_versions: spec.config_versions.unwrap_or(3).max(1) as usize,
        held_upgrade,
        deprecations: typed.deprecations().to_vec(),
        spec: spec.clone(),
        names,
    })
}

/// Annotation prefixes that describe the resource to a tool, not its children: kubectl's
/// last-applied copy, Argo CD's tracking and sync options, Flux's reconcile requests. Copied
/// onto children they would be wrong (a tracking id naming the wrong object) or rewrite every
/// child on each sync.
const UNPROPAGATED_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/",
    "argocd.argoproj.io/",
    "reconcile.fluxcd.io/",
    "kustomize.toolkit.fluxcd.io/",
];

fn propagated_annotations(all: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    all.iter()
        .filter(|(k, _)| !UNPROPAGATED_ANNOTATIONS.iter().any(|p| k.starts_with(p)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The collector image, and the operator's own when it is held back. `spec.image` pins it;
/// otherwise the operator's image, so an operator upgrade rolls the collectors
/// (`upgradeStrategy: automatic`), unless `upgradeStrategy: none`, which keeps the image the
/// collectors already run (`running`, from status).
fn choose_image(
    spec: &OpenTelemetryCollectorSpec,
    running: Option<&str>,
    operators: &str,
) -> (String, Option<String>) {
    if let Some(pinned) = spec.image.as_deref().filter(|i| !i.is_empty()) {
        return (pinned.to_string(), None);
    }
    match (spec.upgrade_strategy, running) {
        (Some(UpgradeStrategy::None), Some(running))
            if !running.is_empty() && running != operators =>
        {
            (running.to_string(), Some(operators.to_string()))
        }
        _ => (operators.to_string(), None),
    }
}

/// The config volume and its mount path are the operator's. Host directories are not: a user's
/// own volume for them is adopted (see the DaemonSet build).
fn check_volumes(spec: &OpenTelemetryCollectorSpec) -> Result<(), InvalidSpec> {
    for v in spec.volumes.iter().flatten() {
        if v.name == CONFIG_VOLUME {
            return Err(InvalidSpec::new(
                InvalidReason::InvalidField,
                format!(
                    "spec.volumes: the name {:?} is used by the operator; choose another",
                    v.name
                ),
            ));
        }
    }
    for m in spec.volume_mounts.iter().flatten() {
        if m.mount_path.trim_end_matches('/') == CONFIG_DIR {
            return Err(InvalidSpec::new(
                InvalidReason::InvalidField,
                format!(
                    "spec.volumeMounts: {CONFIG_DIR} holds the collector config; mount elsewhere"
                ),
            ));
        }
    }
    Ok(())
}

/// The collector version an image runs, for `status.version`: its tag (`…/kotelcol:0.3.1` →
/// `0.3.1`), else its digest (`sha256:` and 12 hex digits), else `latest`, as a runtime reads an
/// untagged reference.
pub fn image_version(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match (last.split_once(':'), digest) {
        (Some((_, tag)), _) if !tag.is_empty() => tag.to_string(),
        (_, Some(d)) => d.chars().take("sha256:".len() + 12).collect(),
        _ => "latest".to_string(),
    }
}

/// kotel-config's verdict. References to unset `${env:…}` variables are kept as written: the
/// operator cannot see the pod's environment.
fn parse(config: &Value) -> Result<kotel_config::Config, InvalidSpec> {
    let never_set = |_: &str| -> Option<String> { None };
    let expanded = kotel_config::expand::expand(config.clone(), &never_set, true).map_err(|e| {
        InvalidSpec::new(
            InvalidReason::InvalidConfig,
            kotel_config::ConfigErrors(e).to_string(),
        )
    })?;
    kotel_config::Config::from_value(expanded).map_err(|errors| {
        let reason = reason_for(&errors);
        let mut message = errors.to_string();
        if reason == InvalidReason::UndefinedComponent {
            // The API server drops null values, so `batch:` with nothing after it vanishes from
            // the stored resource; say so, since the user's file does define it.
            message.push_str(
                " (a component written with no value, such as `batch:`, is dropped by the API server: write `batch: {}`)",
            );
        }
        InvalidSpec::new(reason, message)
    })
}

/// The status reason for kotel-config's errors, from their kinds: a component kotel does not
/// implement, a reference to one that is not defined, or (anything else) an invalid config.
fn reason_for(errors: &kotel_config::ConfigErrors) -> InvalidReason {
    use kotel_config::ErrorKind;
    let all = |f: &dyn Fn(ErrorKind) -> bool| errors.iter().all(|e| f(e.kind));
    if all(&|k| k == ErrorKind::UnknownType) {
        InvalidReason::UnsupportedComponent
    } else if all(&|k| matches!(k, ErrorKind::UnknownType | ErrorKind::Undefined)) {
        InvalidReason::UndefinedComponent
    } else {
        InvalidReason::InvalidConfig
    }
}

/// Rebuilds every object with sorted keys, so the rendered config and its hash do not depend on
/// the order the API server returned (or on serde_json's map features).
pub fn canonical(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// What the upstream operator's webhook fills in, applied to the rendered config (never to the
/// resource, so GitOps tools see no drift): servers without an endpoint listen on all addresses,
/// as they must to be reached through a Service.
fn with_defaults(mut config: Value) -> Value {
    for (section, ty, sub, port) in [
        ("receivers", "otlp", Some("grpc"), 4317),
        ("receivers", "otlp", Some("http"), 4318),
        ("extensions", "health_check", None, 13133),
        ("extensions", "healthcheck", None, 13133),
    ] {
        let Some(components) = config.get_mut(section).and_then(Value::as_object_mut) else {
            continue;
        };
        for (id, body) in components.iter_mut() {
            if id.split('/').next() != Some(ty) {
                continue;
            }
            let target = match sub {
                Some(protocol) => body.get_mut("protocols").and_then(|p| p.get_mut(protocol)),
                None => Some(body),
            };
            let Some(target) = target else { continue };
            if target.is_null() {
                *target = Value::Object(Map::new());
            }
            if let Some(obj) = target.as_object_mut()
                && !obj.contains_key("endpoint")
            {
                obj.insert(
                    "endpoint".to_string(),
                    Value::String(format!("0.0.0.0:{port}")),
                );
            }
        }
    }
    config
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cr(mode: &str, config: Value) -> OpenTelemetryCollector {
        serde_json::from_value(json!({
            "apiVersion": "opentelemetry.io/v1beta1",
            "kind": "OpenTelemetryCollector",
            "metadata": {"name": "agent", "namespace": "obs", "uid": "u1", "generation": 1},
            "spec": {"mode": mode, "config": config},
        }))
        .expect("a valid resource")
    }

    fn good_config() -> Value {
        json!({
            "receivers": {"otlp": {"protocols": {"grpc": {}, "http": null}}},
            "exporters": {"debug": {}},
            "extensions": {"health_check": {}},
            "service": {
                "extensions": ["health_check"],
                "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["debug"]}}
            }
        })
    }

    fn invalid(mode: &str, config: Value) -> InvalidSpec {
        validate(&cr(mode, config), &OperatorDefaults::default()).expect_err("invalid")
    }

    /// Issue 14: an unpinned resource follows the operator's image unless `upgradeStrategy:
    /// none`, which keeps what status says the collectors run and says what it holds back.
    #[test]
    fn upgrade_strategy_decides_whether_unpinned_collectors_follow_the_operator() {
        let defaults = OperatorDefaults {
            image: "kotelcol:2.0.0".into(),
            ..OperatorDefaults::default()
        };
        let with = |strategy: Option<&str>, image: Option<&str>, running: Option<&str>| {
            let mut r = cr("daemonset", good_config());
            r.spec.upgrade_strategy = strategy.map(|s| serde_json::from_value(json!(s)).unwrap());
            r.spec.image = image.map(str::to_string);
            r.status = running.map(|i| crate::crd::OpenTelemetryCollectorStatus {
                image: Some(i.to_string()),
                ..Default::default()
            });
            let v = validate(&r, &defaults).expect("valid");
            (v.image, v.version, v.held_upgrade)
        };
        let follows = ("kotelcol:2.0.0".to_string(), "2.0.0".to_string(), None);
        assert_eq!(with(None, None, Some("kotelcol:1.0.0")), follows);
        assert_eq!(
            with(Some("automatic"), None, Some("kotelcol:1.0.0")),
            follows
        );
        assert_eq!(
            with(Some("none"), None, Some("kotelcol:1.0.0")),
            (
                "kotelcol:1.0.0".to_string(),
                "1.0.0".to_string(),
                Some("kotelcol:2.0.0".to_string())
            )
        );
        // A new resource has nothing to keep; one already on the operator's image holds nothing.
        assert_eq!(with(Some("none"), None, None), follows);
        assert_eq!(with(Some("none"), None, Some("kotelcol:2.0.0")), follows);
        // A pinned image wins whatever the strategy.
        assert_eq!(
            with(Some("none"), Some("mine:3"), Some("kotelcol:1.0.0")),
            ("mine:3".to_string(), "3".to_string(), None)
        );
    }

    /// Issue 13: the resource's annotations reach its children as upstream propagates them,
    /// except what tools keep about the resource itself.
    #[test]
    fn annotations_propagate_except_tool_bookkeeping() {
        let mut r = cr("daemonset", good_config());
        r.metadata.annotations = Some(BTreeMap::from([
            ("team.example/owner".to_string(), "obs".to_string()),
            (
                "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                "{}".to_string(),
            ),
            (
                "argocd.argoproj.io/tracking-id".to_string(),
                "app:x/y".to_string(),
            ),
            (
                "reconcile.fluxcd.io/requestedAt".to_string(),
                "now".to_string(),
            ),
        ]));
        let v = validate(&r, &OperatorDefaults::default()).expect("valid");
        assert_eq!(
            v.annotations,
            BTreeMap::from([("team.example/owner".to_string(), "obs".to_string())])
        );
        let children = crate::build::children(&v);
        for meta in [
            &children.daemon_set.metadata,
            &children.config_map.metadata,
            &children.service.as_ref().expect("service").metadata,
        ] {
            let a = meta.annotations.as_ref().expect("annotations");
            assert_eq!(
                a.get("team.example/owner").map(String::as_str),
                Some("obs"),
                "{meta:?}"
            );
        }
    }

    /// Issue 16: with `--collector-rbac off` the operator grants a collector nothing (no
    /// ClusterRole, no binding); platform teams bind roles to its ServiceAccount.
    #[test]
    fn collector_rbac_off_grants_nothing() {
        let config = json!({
            "receivers": {"kubeletstats": {"auth_type": "serviceAccount", "endpoint": "https://x:10250", "insecure_skip_verify": true}},
            "processors": {"k8sattributes": {}},
            "exporters": {"debug": {}},
            "service": {"pipelines": {"metrics": {"receivers": ["kubeletstats"], "processors": ["k8sattributes"], "exporters": ["debug"]}}}
        });
        let auto = validate(
            &cr("daemonset", config.clone()),
            &OperatorDefaults::default(),
        )
        .expect("valid");
        assert!(!auto.rbac_rules.is_empty());
        assert!(crate::build::children(&auto).cluster_role.is_some());
        let off = OperatorDefaults {
            collector_rbac: false,
            ..OperatorDefaults::default()
        };
        let v = validate(&cr("daemonset", config), &off).expect("valid");
        assert!(v.rbac_rules.is_empty());
        let children = crate::build::children(&v);
        assert!(children.cluster_role.is_none() && children.cluster_role_binding.is_none());
        assert!(
            children.service_account.is_some(),
            "the ServiceAccount is still the operator's"
        );
    }

    /// Issue 16: `--collector-rbac-allow` limits what auto-RBAC grants; the rest is listed.
    #[test]
    fn an_rbac_allow_list_grants_its_part_and_lists_the_rest() {
        let config = json!({
            "receivers": {"otlp": {"protocols": {"grpc": {}}}},
            "processors": {"k8sattributes": {}},
            "exporters": {"debug": {}},
            "service": {"pipelines": {"traces": {"receivers": ["otlp"], "processors": ["k8sattributes"], "exporters": ["debug"]}}}
        });
        let limited = OperatorDefaults {
            rbac_allow: RbacAllow::parse("pods,namespaces"),
            ..OperatorDefaults::default()
        };
        let v = validate(&cr("daemonset", config), &limited).expect("valid");
        let resources: Vec<String> = v
            .rbac_rules
            .iter()
            .flat_map(|r| r.resources.clone().unwrap_or_default())
            .collect();
        assert_eq!(resources, vec!["namespaces", "pods"]);
        assert_eq!(v.rbac_withheld, vec!["get,list,watch replicasets.apps"]);
        let role = crate::build::children(&v)
            .cluster_role
            .expect("a ClusterRole");
        assert_eq!(role.rules, Some(v.rbac_rules.clone()));
    }

    #[test]
    fn deprecated_config_names_are_accepted_and_listed() {
        let config = json!({
            "receivers": {"otlp": {"protocols": {"grpc": {}}}},
            "exporters": {"logging": {"loglevel": "info"}},
            "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["logging"]}}}
        });
        let v = validate(&cr("daemonset", config), &OperatorDefaults::default()).expect("valid");
        assert_eq!(v.deprecations.len(), 2, "{:?}", v.deprecations);
        assert!(
            v.deprecations[0].starts_with("exporters.logging"),
            "{:?}",
            v.deprecations
        );
        // The spec is rendered as written: the collector reads the old names itself.
        assert!(
            v.config_yaml.contains("loglevel: info"),
            "{}",
            v.config_yaml
        );
        let current = validate(
            &cr("daemonset", good_config()),
            &OperatorDefaults::default(),
        )
        .expect("valid");
        assert!(
            current.deprecations.is_empty(),
            "{:?}",
            current.deprecations
        );
    }

    #[test]
    fn a_good_daemonset_validates_with_defaults_filled_in() {
        let v = validate(
            &cr("daemonset", good_config()),
            &OperatorDefaults::default(),
        )
        .expect("valid");
        assert!(
            v.config_yaml.contains("endpoint: 0.0.0.0:4317"),
            "{}",
            v.config_yaml
        );
        assert!(v.config_yaml.contains("endpoint: 0.0.0.0:4318"));
        assert!(v.config_yaml.contains("endpoint: 0.0.0.0:13133"));
        assert_eq!(v.facts.health, Some((13133, "/".to_string())));
        assert_eq!(v.service_account, "agent-collector");
        assert_eq!(v.config_versions, 3);
        assert!(v.image.starts_with("ghcr.io/kotel-dev/kotelcol:"));
    }

    #[test]
    fn hash_does_not_depend_on_key_order() {
        let a = json!({"receivers": {"otlp": {}}, "exporters": {"debug": {}}});
        let b = json!({"exporters": {"debug": {}}, "receivers": {"otlp": {}}});
        assert_eq!(
            serde_json::to_string(&canonical(a)).unwrap(),
            serde_json::to_string(&canonical(b)).unwrap()
        );
    }

    #[test]
    fn unsupported_mode() {
        let e = invalid("deployment", good_config());
        assert_eq!(e.reason, InvalidReason::UnsupportedMode);
        assert!(e.message.contains("daemonset"), "{}", e.message);
    }

    #[test]
    fn config_that_does_not_parse() {
        let mut c = good_config();
        c["receivers"]["otlp"]["protocols"]["grpc"] = json!({"endpointt": "0.0.0.0:4317"});
        let e = invalid("daemonset", c);
        assert_eq!(e.reason, InvalidReason::InvalidConfig);
        assert!(
            e.message.contains("receivers.otlp.protocols.grpc"),
            "{}",
            e.message
        );
    }

    #[test]
    fn component_kotel_does_not_implement() {
        let mut c = good_config();
        c["receivers"]["jaeger"] = json!({});
        c["service"]["pipelines"]["traces"]["receivers"] = json!(["otlp", "jaeger"]);
        let e = invalid("daemonset", c);
        assert_eq!(e.reason, InvalidReason::UnsupportedComponent, "{e}");
        assert!(e.message.contains("jaeger"), "{}", e.message);
    }

    #[test]
    fn connectors_are_unsupported() {
        let mut c = good_config();
        c["connectors"] = json!({"forward": {}});
        let e = invalid("daemonset", c);
        assert_eq!(e.reason, InvalidReason::UnsupportedComponent);
    }

    #[test]
    fn pipeline_naming_an_undefined_component() {
        let mut c = good_config();
        c["service"]["pipelines"]["traces"]["exporters"] = json!(["otlp/backend"]);
        let e = invalid("daemonset", c);
        assert_eq!(e.reason, InvalidReason::UndefinedComponent);
        assert!(
            e.message.starts_with(
                "service.pipelines.traces.exporters[0]: references exporter \"otlp/backend\" which is not configured"
            ) && e.message.contains("write `batch: {}`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn undefined_extension() {
        let mut c = good_config();
        c["service"]["extensions"] = json!(["file_storage"]);
        let e = invalid("daemonset", c);
        assert_eq!(e.reason, InvalidReason::UndefinedComponent);
    }

    #[test]
    fn unsupported_spec_field() {
        let mut r = cr("daemonset", good_config());
        r.spec.unsupported.ingress = Some(json!({"type": "ingress"}));
        let e = validate(&r, &OperatorDefaults::default()).expect_err("invalid");
        assert_eq!(e.reason, InvalidReason::UnsupportedField);
        assert!(e.message.contains("ingress"));
        // Upstream's defaulted shapes ask for nothing.
        r.spec.unsupported.ingress = Some(json!({"route": {}}));
        r.spec.unsupported.target_allocator = Some(json!({"enabled": false}));
        validate(&r, &OperatorDefaults::default()).expect("defaults are fine");
    }

    #[test]
    fn reserved_volume_names_and_the_config_dir() {
        let mut r = cr("daemonset", good_config());
        r.spec.volumes = Some(vec![k8s_openapi::api::core::v1::Volume {
            name: "varlogpods".into(),
            ..Default::default()
        }]);
        validate(&r, &OperatorDefaults::default()).expect("a host log volume of the user's own");
        r.spec.volumes = Some(vec![k8s_openapi::api::core::v1::Volume {
            name: crate::names::CONFIG_VOLUME.into(),
            ..Default::default()
        }]);
        let e = validate(&r, &OperatorDefaults::default()).expect_err("invalid");
        assert_eq!(e.reason, InvalidReason::InvalidField);
        r.spec.volumes = None;
        r.spec.volume_mounts = Some(vec![k8s_openapi::api::core::v1::VolumeMount {
            name: "x".into(),
            mount_path: "/conf/".into(),
            ..Default::default()
        }]);
        let e = validate(&r, &OperatorDefaults::default()).expect_err("invalid");
        assert_eq!(e.reason, InvalidReason::InvalidField);
    }

    #[test]
    fn status_version_is_the_collector_images() {
        assert_eq!(image_version("ghcr.io/kotel-dev/kotelcol:0.3.1"), "0.3.1");
        assert_eq!(image_version("registry:5000/kotelcol:edge"), "edge");
        assert_eq!(image_version("registry:5000/kotelcol"), "latest");
        assert_eq!(
            image_version("ghcr.io/x/kotelcol@sha256:0123456789abcdef0123"),
            "sha256:0123456789ab"
        );
        assert_eq!(
            image_version("ghcr.io/x/kotelcol:1.2@sha256:0123456789abcdef"),
            "1.2"
        );
        let mut r = cr("daemonset", good_config());
        r.spec.image = Some("example.com/kotelcol:9.9.9".into());
        assert_eq!(
            validate(&r, &OperatorDefaults::default()).unwrap().version,
            "9.9.9"
        );
        r.spec.image = None;
        let d = OperatorDefaults::default();
        assert_eq!(
            validate(&r, &d).unwrap().version,
            d.version,
            "the default image's tag"
        );
    }

    #[test]
    fn config_that_is_not_an_object() {
        let e = invalid("daemonset", json!("receivers: {}"));
        assert_eq!(e.reason, InvalidReason::InvalidConfig);
    }
}
