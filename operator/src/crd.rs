//! The `OpenTelemetryCollector` custom resource (`opentelemetry.io/v1beta1`): its Rust types, the
//! schema generated from them (field docs become `kubectl explain` text) and the CRD YAML.
//!
//! Field names and meanings follow the upstream OpenTelemetry Operator so that a manifest written
//! for it in daemonset mode applies unchanged. Upstream fields kotel does not implement are still
//! accepted by the schema (so `kubectl apply` does not reject them) and reported in status.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSetUpdateStrategy;
use k8s_openapi::api::core::v1::{
    Affinity, Container, EnvFromSource, EnvVar, HostAlias, Lifecycle, PodDNSConfig,
    PodSecurityContext, ResourceRequirements, SecurityContext, SessionAffinityConfig, Toleration,
    TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of the resource.
pub const GROUP: &str = "opentelemetry.io";
/// The finalizer that guards the cluster-scoped ClusterRole and ClusterRoleBinding.
pub const FINALIZER: &str = "opentelemetrycollector.opentelemetry.io/finalizer";

/// The desired collector: how it is deployed and its configuration.
// Several `printcolumn(type_ = "string")` look like duplicates to clippy; they are not.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "opentelemetry.io",
    version = "v1beta1",
    kind = "OpenTelemetryCollector",
    plural = "opentelemetrycollectors",
    singular = "opentelemetrycollector",
    shortname = "otelcol",
    shortname = "otelcols",
    namespaced,
    status = "OpenTelemetryCollectorStatus",
    derive = "PartialEq",
    doc = "OpenTelemetryCollector is a collector that the operator runs; kotel runs it as a kotelcol DaemonSet (mode daemonset).",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.scale.replicas",
        label_selector_path = ".status.scale.selector"
    ),
    printcolumn(
        name = "Mode",
        type_ = "string",
        json_path = ".spec.mode",
        description = "Deployment mode"
    ),
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".status.version",
        description = "Collector config schema version"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.scale.statusReplicas",
        description = "Ready pods / desired pods"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Image",
        type_ = "string",
        json_path = ".status.image",
        description = "Collector image"
    ),
    printcolumn(
        name = "Management",
        type_ = "string",
        json_path = ".spec.managementState",
        description = "Management state"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.daemonSetUpdateStrategy) || self.mode == 'daemonset'", "message": "daemonSetUpdateStrategy is only valid in mode daemonset"},
]))]
pub struct OpenTelemetryCollectorSpec {
    /// How the collector is deployed. kotel implements `daemonset` (one pod per node); other modes
    /// are accepted and reported as unsupported in status. Immutable once set.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "the OpenTelemetry Collector mode does not support modification"}]))]
    pub mode: Mode,

    /// The collector configuration, in the upstream collector's format: `receivers`, `processors`,
    /// `exporters`, `extensions`, `connectors` and `service` (with `pipelines`). Validated by the
    /// operator before anything is rolled out; problems are reported in status.
    #[schemars(schema_with = "config_schema")]
    pub config: serde_json::Value,

    /// Whether the operator manages the collector (`managed`) or leaves every object as it is
    /// (`unmanaged`).
    #[serde(default)]
    pub management_state: ManagementState,

    /// Collector image. Defaults to the kotelcol image of the operator's own version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,

    /// Image pull policy of the collector container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,

    /// Whether config migrations run automatically on operator upgrade (`automatic`) or not
    /// (`none`). kotel has no migrations yet; the field is accepted for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_strategy: Option<UpgradeStrategy>,

    /// Number of replicas; ignored in daemonset mode (one pod per eligible node), kept for the
    /// scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,

    /// Name of an existing ServiceAccount for the collector pods. When set, the operator creates no
    /// ServiceAccount and binds generated RBAC to this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,

    /// How many previous collector ConfigMaps to keep besides the current one (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub config_versions: Option<i32>,

    /// Extra collector arguments rendered as `--key=value`, sorted by key; `config` is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<BTreeMap<String, String>>,

    /// Compute resources of the collector container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Extra environment variables of the collector container; a name the operator also sets
    /// (such as `K8S_NODE_NAME`) takes the user's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,

    /// Environment variables from ConfigMaps or Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_from: Option<Vec<EnvFromSource>>,

    /// Extra pod volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub volumes: Option<Vec<Volume>>,

    /// Extra volume mounts of the collector container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub volume_mounts: Option<Vec<VolumeMount>>,

    /// Pod tolerations (for example to run on control-plane nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,

    /// Node labels a node must have to run a collector pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,

    /// Pod scheduling affinity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Priority class of the collector pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,

    /// Run the collector pods in the host network namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,

    /// Run the collector pods in the host PID namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "hostPID")]
    pub host_pid: Option<bool>,

    /// DNS policy of the collector pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_policy: Option<String>,

    /// DNS settings of the collector pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_dns_config: Option<PodDNSConfig>,

    /// Extra /etc/hosts entries of the collector pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_aliases: Option<Vec<HostAlias>>,

    /// Share one process namespace between the pod's containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_process_namespace: Option<bool>,

    /// Use the host's user namespace (false: a user namespace of the pod's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_users: Option<bool>,

    /// IP families of the collector's Services (`IPv4`, `IPv6`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_families: Option<Vec<String>>,

    /// IP family policy of the collector's Services (`SingleStack`, `PreferDualStack`,
    /// `RequireDualStack`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_family_policy: Option<String>,

    /// Session affinity of the collector's Services (`ClientIP`, `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity: Option<String>,

    /// Session affinity settings of the collector's Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity_config: Option<SessionAffinityConfig>,

    /// Traffic distribution preference of the collector's Services (`PreferClose`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_distribution: Option<String>,

    /// Containers run before the collector in each pod. Their schema is the API server's (it
    /// refuses a bad one when the DaemonSet is applied; status then says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_list")]
    pub init_containers: Option<Vec<Container>>,

    /// Containers run beside the collector in each pod (checked like `initContainers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_list")]
    pub additional_containers: Option<Vec<Container>>,

    /// ConfigMaps mounted into the collector at `/var/conf/<mountpath>/configmap-<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configmaps: Option<Vec<ConfigMapMount>>,

    /// Replaces the collector image's entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,

    /// How collector pods spread over topology domains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_list")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,

    /// Startup probe tuning; the probe asks the `health_check` extension, as the liveness probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<ProbeTuning>,

    /// StatefulSet mode only; ignored in daemonset mode, as upstream ignores it there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,

    /// StatefulSet mode only; ignored in daemonset mode, as upstream ignores it there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_management_policy: Option<String>,

    /// StatefulSet mode only; ignored in daemonset mode, as upstream ignores it there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_object")]
    pub persistent_volume_claim_retention_policy: Option<serde_json::Value>,

    /// Annotations added to the collector pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_annotations: Option<BTreeMap<String, String>>,

    /// Pod security context. Defaults to non-root with the RuntimeDefault seccomp profile; a
    /// filelog checkpoint directory on the host makes the default run as root instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security_context: Option<PodSecurityContext>,

    /// Collector container security context. Defaults to a read-only root filesystem, no privilege
    /// escalation and every capability dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,

    /// Extra ports exposed by the container and the collector Service; ports inferred from the
    /// receivers that clash with one of these by number are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<PortsSpec>>,

    /// DaemonSet update strategy (the pace of config and image rollouts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_set_update_strategy: Option<DaemonSetUpdateStrategy>,

    /// Seconds the collector gets to flush on shutdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,

    /// Lifecycle hooks of the collector container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,

    /// Liveness probe tuning; the handler comes from the `health_check` extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<ProbeTuning>,

    /// Readiness probe tuning; the handler comes from the `health_check` extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<ProbeTuning>,

    /// Observability of the collector itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<ObservabilitySpec>,

    /// Not used in daemonset mode (upstream ignores it there too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_object")]
    pub pod_disruption_budget: Option<serde_json::Value>,

    /// Upstream fields kotel does not implement. They are accepted so that upstream manifests
    /// apply, and reported in status (Ready False, reason `UnsupportedField`) when set.
    #[serde(flatten)]
    #[schemars(skip)]
    pub unsupported: UnsupportedFields,
}

/// A ConfigMap mounted into the collector container (upstream's `configmaps[]`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ConfigMapMount {
    /// The ConfigMap's name.
    pub name: String,
    /// The directory under `/var/conf` it is mounted in.
    pub mountpath: String,
}

/// Upstream spec fields that kotel accepts but does not implement.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UnsupportedFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_allocator: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_route: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_claim_templates: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_update_strategy: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<serde_json::Value>,
}

impl UnsupportedFields {
    /// The spec keys (as the user writes them) that are set to something kotel would ignore.
    pub fn set_fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut check = |name: &'static str, v: &Option<serde_json::Value>| {
            if v.as_ref().is_some_and(is_meaningful) {
                out.push(name);
            }
        };
        check("targetAllocator", &self.target_allocator);
        check("autoscaler", &self.autoscaler);
        check("ingress", &self.ingress);
        check("httpRoute", &self.http_route);
        check("volumeClaimTemplates", &self.volume_claim_templates);
        check("deploymentUpdateStrategy", &self.deployment_update_strategy);
        // Upstream turns the NetworkPolicy on by default; only an explicit `enabled: true` asks
        // for something kotel does not do.
        if self
            .network_policy
            .as_ref()
            .and_then(|v| v.get("enabled"))
            .and_then(serde_json::Value::as_bool)
            == Some(true)
        {
            out.push("networkPolicy");
        }
        // Upstream defaults `targetAllocator.enabled` to false and `ingress.type` to empty:
        // those shapes ask for nothing.
        out.retain(|f| match *f {
            "targetAllocator" => {
                self.target_allocator
                    .as_ref()
                    .and_then(|v| v.get("enabled"))
                    .and_then(serde_json::Value::as_bool)
                    == Some(true)
            }
            "ingress" => self
                .ingress
                .as_ref()
                .and_then(|v| v.get("type"))
                .and_then(serde_json::Value::as_str)
                .is_some_and(|t| !t.is_empty()),
            _ => true,
        });
        out
    }
}

/// Empty objects, empty lists and nulls ask for nothing.
fn is_meaningful(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => false,
        serde_json::Value::Array(a) => !a.is_empty(),
        serde_json::Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// Deployment mode of the collector.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One collector pod per node. The only mode kotel implements.
    Daemonset,
    /// Upstream default; not implemented by kotel.
    #[default]
    Deployment,
    /// Not implemented by kotel.
    Sidecar,
    /// Not implemented by kotel.
    Statefulset,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Daemonset => "daemonset",
            Mode::Deployment => "deployment",
            Mode::Sidecar => "sidecar",
            Mode::Statefulset => "statefulset",
        }
    }
}

/// Whether the operator manages the collector's objects.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ManagementState {
    /// The operator creates, updates and prunes the collector's objects.
    #[default]
    Managed,
    /// The operator changes no child object until set back to managed; status says so.
    Unmanaged,
}

/// Whether config migrations run on operator upgrade.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UpgradeStrategy {
    #[default]
    Automatic,
    None,
}

/// A Service port, plus an optional host port on the collector container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortsSpec {
    /// Port name (IANA service name, at most 15 characters).
    pub name: Option<String>,
    /// Service and container port.
    pub port: i32,
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Application protocol hint, such as `grpc` or `http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// Container port the Service forwards to (defaults to `port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
    /// Node port, for Services of type NodePort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port: Option<i32>,
    /// Port opened on the node's address for this container port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i32>,
}

/// Probe timings; the probe handler itself comes from the `health_check` extension.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeTuning {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
}

/// Observability of the collector itself.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservabilitySpec {
    /// Metrics of the collector itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsConfigSpec>,
}

/// Metrics of the collector itself.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsConfigSpec {
    /// Create a ServiceMonitor (not implemented by kotel; reported when true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_metrics: Option<bool>,
    /// Labels added to a ServiceMonitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_labels: Option<BTreeMap<String, String>>,
    /// Do not add `prometheus.io/*` scrape annotations to the collector pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_prometheus_annotations: Option<bool>,
}

/// Observed state, written by the operator only.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenTelemetryCollectorStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Config schema version the collector runs (the operator's version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Collector image of the DaemonSet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Scale subresource fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleStatus>,
    /// `Ready` (True when the rollout is complete), `Reconciling` and `Stalled` (for kstatus).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// Scale subresource status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleStatus {
    /// Label selector of the collector pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Desired number of pods (nodes the DaemonSet schedules to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Ready pods / desired pods, such as `3/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_replicas: Option<String>,
}

/// A list of Kubernetes objects whose schema the API server checks when the child is applied
/// (embedding the Container schema twice would triple the CRD's size).
fn preserve_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
    })
}

fn preserve_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

fn component_map(description: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "description": description,
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

fn config_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let string_list = serde_json::json!({"type": "array", "items": {"type": "string"}});
    let schema = serde_json::json!({
        "type": "object",
        "description": "The collector configuration in the upstream collector's format.",
        "required": ["receivers", "exporters", "service"],
        "properties": {
            "receivers": component_map("Receivers by id (`type` or `type/name`)."),
            "processors": component_map("Processors by id."),
            "exporters": component_map("Exporters by id."),
            "extensions": component_map("Extensions by id."),
            "connectors": component_map("Connectors by id (not implemented by kotel)."),
            "service": {
                "type": "object",
                "description": "Which components run, and how they are wired.",
                "required": ["pipelines"],
                "properties": {
                    "extensions": {
                        "description": "Extensions to start, by id.",
                        "type": "array", "items": {"type": "string"},
                    },
                    "pipelines": {
                        "type": "object",
                        "description": "Pipelines by id (`traces`, `metrics`, `logs`, optionally `/name`).",
                        "additionalProperties": {
                            "type": "object",
                            "required": ["receivers", "exporters"],
                            "properties": {
                                "receivers": string_list,
                                "processors": string_list,
                                "exporters": string_list,
                            },
                        },
                    },
                    "telemetry": component_map("The collector's own logs and metrics."),
                },
            },
        },
    });
    schemars::Schema::try_from(schema).expect("the config schema literal is an object")
}

/// The generated CustomResourceDefinition.
pub fn crd() -> CustomResourceDefinition {
    let mut crd = OpenTelemetryCollector::crd();
    // The flattened unsupported fields are skipped by schemars; declare them so upstream manifests
    // pass the API server's strict field validation.
    if let Some(schema) = crd
        .spec
        .versions
        .first_mut()
        .and_then(|v| v.schema.as_mut())
        .and_then(|s| s.open_api_v3_schema.as_mut())
        .and_then(|s| s.properties.as_mut())
        .and_then(|p| p.get_mut("spec"))
        .and_then(|s| s.properties.as_mut())
    {
        for field in UNSUPPORTED_FIELD_NAMES {
            let prop = serde_json::json!({
                "description": "Accepted for compatibility with the upstream operator; not implemented by kotel and reported in status when set.",
                "x-kubernetes-preserve-unknown-fields": true,
            });
            schema.insert(
                (*field).to_string(),
                serde_json::from_value(prop).expect("static schema"),
            );
        }
    }
    crd
}

/// JSON names of [`UnsupportedFields`], for the schema.
const UNSUPPORTED_FIELD_NAMES: &[&str] = &[
    "autoscaler",
    "deploymentUpdateStrategy",
    "httpRoute",
    "ingress",
    "networkPolicy",
    "targetAllocator",
    "volumeClaimTemplates",
];

/// The CRD as the YAML committed under `crds/`.
pub fn crd_yaml() -> String {
    let yaml = serde_yaml_ng::to_string(&crd()).expect("a CRD always serializes");
    format!("# Generated by `kotel-operator crd` (make crds). Do not edit.\n---\n{yaml}")
}
