//! The collector DaemonSet: one kotelcol pod per node with the config mounted, node facts from the
//! downward API, the host directories the config reads, and secure defaults.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, HostPathVolumeSource, KeyToPath, ObjectFieldSelector, PodSecurityContext,
    PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::namespaced_meta;
use super::service::service_ports;
use crate::crd::ProbeTuning;
use crate::facts::HostMount;
use crate::names::{CONFIG_DIR, CONFIG_HASH_ANNOTATION, CONFIG_KEY, CONFIG_VOLUME, CONTAINER};
use crate::validate::Validated;

/// UID/GID of the collector when it needs nothing from the node (the distroless `nonroot` user).
const NON_ROOT_ID: i64 = 65532;

pub fn daemon_set(v: &Validated) -> DaemonSet {
    let meta = namespaced_meta(v, v.names.collector());
    let pod_labels = meta.labels.clone();
    DaemonSet {
        metadata: meta,
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(v.names.selector_labels()),
                ..Default::default()
            },
            update_strategy: v.spec.daemon_set_update_strategy.clone(),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: pod_labels,
                    annotations: Some(pod_annotations(v)),
                    ..Default::default()
                }),
                spec: Some(pod_spec(v)),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod_annotations(v: &Validated) -> BTreeMap<String, String> {
    let mut out = v.spec.pod_annotations.clone().unwrap_or_default();
    let disabled = v
        .spec
        .observability
        .as_ref()
        .and_then(|o| o.metrics.as_ref())
        .and_then(|m| m.disable_prometheus_annotations)
        .unwrap_or(false);
    if let (false, Some(port)) = (disabled, v.facts.metrics_port) {
        out.insert("prometheus.io/scrape".into(), "true".into());
        out.insert("prometheus.io/port".into(), port.to_string());
        out.insert("prometheus.io/path".into(), "/metrics".into());
    }
    // The ConfigMap name already changes with the config; the hash says so at a glance and
    // rolls the pods even if a user pins the volume elsewhere.
    out.insert(CONFIG_HASH_ANNOTATION.into(), v.config_hash.clone());
    out
}

fn pod_spec(v: &Validated) -> PodSpec {
    let s = &v.spec;
    let host_network = s.host_network.unwrap_or(false);
    PodSpec {
        service_account_name: Some(v.service_account.clone()),
        init_containers: s.init_containers.clone(),
        containers: std::iter::once(container(v))
            .chain(s.additional_containers.iter().flatten().cloned())
            .collect(),
        topology_spread_constraints: s.topology_spread_constraints.clone(),
        volumes: Some(volumes(v)),
        security_context: Some(
            s.pod_security_context
                .clone()
                .unwrap_or_else(|| default_pod_security_context(v)),
        ),
        tolerations: s.tolerations.clone(),
        node_selector: s.node_selector.clone(),
        affinity: s.affinity.clone(),
        priority_class_name: s.priority_class_name.clone(),
        host_network: s.host_network,
        // Host-network pods keep cluster DNS only with this policy.
        dns_policy: s
            .dns_policy
            .clone()
            .or_else(|| host_network.then(|| "ClusterFirstWithHostNet".to_string())),
        dns_config: s.pod_dns_config.clone(),
        host_pid: s.host_pid,
        host_aliases: s.host_aliases.clone(),
        share_process_namespace: s.share_process_namespace,
        host_users: s.host_users,
        termination_grace_period_seconds: s.termination_grace_period_seconds,
        ..Default::default()
    }
}

/// Non-root unless the collector must write a checkpoint directory on the node or read the
/// node's log files (owned by root, mode 0640): then root, still without any capability.
fn default_pod_security_context(v: &Validated) -> PodSecurityContext {
    let needs_root = !v.facts.host_mounts.is_empty();
    let id = if needs_root { 0 } else { NON_ROOT_ID };
    PodSecurityContext {
        run_as_non_root: Some(!needs_root),
        run_as_user: Some(id),
        run_as_group: Some(id),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn default_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container(v: &Validated) -> Container {
    let s = &v.spec;
    Container {
        name: CONTAINER.to_string(),
        image: Some(v.image.clone()),
        image_pull_policy: s.image_pull_policy.clone(),
        command: s.command.clone(),
        args: Some(args(v)),
        env: Some(env(v)),
        env_from: s.env_from.clone(),
        ports: Some(container_ports(v)),
        volume_mounts: Some(volume_mounts(v)),
        resources: s.resources.clone(),
        security_context: Some(
            s.security_context
                .clone()
                .unwrap_or_else(default_security_context),
        ),
        lifecycle: s.lifecycle.clone(),
        liveness_probe: probe(v, s.liveness_probe.as_ref(), Some(LIVENESS_QUERY)),
        startup_probe: s
            .startup_probe
            .as_ref()
            .and_then(|t| probe(v, Some(t), Some(LIVENESS_QUERY))),
        readiness_probe: probe(v, s.readiness_probe.as_ref(), None),
        // A crash loop's last log lines land in the pod status, which ours names.
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    }
}

/// `--config` first, then `spec.args` as sorted `--key=value` (a user `config` key is ignored).
fn args(v: &Validated) -> Vec<String> {
    let mut out = vec![format!("--config={CONFIG_DIR}/{CONFIG_KEY}")];
    for (k, val) in v.spec.args.iter().flatten() {
        if k != "config" {
            out.push(format!("--{k}={val}"));
        }
    }
    out
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Node and pod facts the components reference as `${env:…}`; a user variable of the same name
/// replaces the operator's.
fn env(v: &Validated) -> Vec<EnvVar> {
    let user = v.spec.env.clone().unwrap_or_default();
    let mut out: Vec<EnvVar> = [
        ("K8S_NODE_NAME", "spec.nodeName"),
        ("K8S_NODE_IP", "status.hostIP"),
        ("K8S_POD_NAME", "metadata.name"),
        ("K8S_POD_UID", "metadata.uid"),
        ("K8S_NAMESPACE", "metadata.namespace"),
    ]
    .into_iter()
    .filter(|(name, _)| !user.iter().any(|e| e.name == *name))
    .map(|(name, path)| field_env(name, path))
    .collect();
    out.extend(user);
    out
}

fn container_ports(v: &Validated) -> Vec<ContainerPort> {
    let host_ports: BTreeMap<i32, i32> = v
        .spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| p.host_port.map(|h| (p.port, h)))
        .collect();
    let mut out: Vec<ContainerPort> = service_ports(v)
        .into_iter()
        .map(|p| {
            let container_port = match &p.target_port {
                Some(IntOrString::Int(n)) => *n,
                _ => p.port,
            };
            ContainerPort {
                name: p.name,
                container_port,
                protocol: p.protocol,
                host_port: host_ports.get(&p.port).copied(),
                ..Default::default()
            }
        })
        .collect();
    if let Some(metrics) = v.facts.metrics_port.map(i32::from)
        && !out.iter().any(|p| p.container_port == metrics)
    {
        out.push(ContainerPort {
            name: Some("metrics".to_string()),
            container_port: metrics,
            protocol: Some("TCP".to_string()),
            ..Default::default()
        });
    }
    out
}

/// The host directories the config needs that the resource does not mount itself. Manifests
/// written for the upstream operator declare their own (`varlogpods` at `/var/log/pods`, a
/// `/var/log` mount, a hostPath for file_storage): a user mount at the path, or at a directory
/// above it, is adopted as it is, never doubled (the API server refuses a duplicate mountPath).
/// An operator volume whose name the user took for something else gets a `kotel-` prefix.
fn host_mounts(v: &Validated) -> Vec<HostMount> {
    let user_mounts: Vec<&str> = v
        .spec
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.mount_path.trim_end_matches('/'))
        .collect();
    let covered = |path: &str| {
        let path = path.trim_end_matches('/');
        user_mounts.iter().any(|m| {
            path == *m || m.is_empty() || path.strip_prefix(*m).is_some_and(|r| r.starts_with('/'))
        })
    };
    let taken = |name: &str| v.spec.volumes.iter().flatten().any(|u| u.name == name);
    v.facts
        .host_mounts
        .iter()
        .filter(|m| !covered(&m.path))
        .map(|m| {
            let mut m = m.clone();
            if taken(&m.name) {
                m.name = format!("kotel-{}", m.name);
            }
            m
        })
        .collect()
}

fn volumes(v: &Validated) -> Vec<Volume> {
    let mut out = vec![Volume {
        name: CONFIG_VOLUME.to_string(),
        config_map: Some(ConfigMapVolumeSource {
            name: v.names.config_map(&v.config_hash),
            items: Some(vec![KeyToPath {
                key: CONFIG_KEY.to_string(),
                path: CONFIG_KEY.to_string(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }];
    for m in host_mounts(v) {
        out.push(Volume {
            name: m.name.clone(),
            host_path: Some(HostPathVolumeSource {
                path: m.path.clone(),
                type_: Some(m.host_path_type().to_string()),
            }),
            ..Default::default()
        });
    }
    for c in v.spec.configmaps.iter().flatten() {
        out.push(Volume {
            name: configmap_volume(&c.name),
            config_map: Some(ConfigMapVolumeSource {
                name: c.name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    out.extend(v.spec.volumes.iter().flatten().cloned());
    out
}

/// Upstream's volume name of a `configmaps[]` entry.
fn configmap_volume(name: &str) -> String {
    format!("configmap-{name}")
}

fn volume_mounts(v: &Validated) -> Vec<VolumeMount> {
    let mut out = vec![VolumeMount {
        name: CONFIG_VOLUME.to_string(),
        mount_path: CONFIG_DIR.to_string(),
        read_only: Some(true),
        ..Default::default()
    }];
    for m in host_mounts(v) {
        out.push(VolumeMount {
            name: m.name.clone(),
            mount_path: m.path.clone(),
            read_only: Some(m.read_only),
            ..Default::default()
        });
    }
    for c in v.spec.configmaps.iter().flatten() {
        out.push(VolumeMount {
            name: configmap_volume(&c.name),
            mount_path: [
                "/var/conf",
                c.mountpath.trim_matches('/'),
                &configmap_volume(&c.name),
            ]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("/"),
            ..Default::default()
        });
    }
    out.extend(v.spec.volume_mounts.iter().flatten().cloned());
    out
}

/// Asks kotelcol only whether it runs: a component that cannot work makes the collector unready,
/// which must not get it restarted (the upstream collector ignores the query).
const LIVENESS_QUERY: &str = "probe=liveness";

/// An HTTP probe on the health_check extension; none without one (nothing to ask).
fn probe(v: &Validated, tuning: Option<&ProbeTuning>, query: Option<&str>) -> Option<Probe> {
    let (port, path) = v.facts.health.as_ref()?;
    let t = tuning.cloned().unwrap_or_default();
    let path = match query {
        Some(q) => format!("{path}{}{q}", if path.contains('?') { '&' } else { '?' }),
        None => path.clone(),
    };
    Some(Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path),
            port: IntOrString::Int(i32::from(*port)),
            ..Default::default()
        }),
        initial_delay_seconds: t.initial_delay_seconds,
        timeout_seconds: t.timeout_seconds,
        period_seconds: t.period_seconds,
        success_threshold: t.success_threshold,
        failure_threshold: t.failure_threshold,
        termination_grace_period_seconds: t.termination_grace_period_seconds,
        ..Default::default()
    })
}
