//! `kubeletstats` (new name `kubelet_stats`) receiver: node, pod, container and volume metrics from
//! the kubelet's `/stats/summary`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::duration;
use crate::error::ConfigError;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubeletStatsConfig {
    /// Kubelet address; default `https://${env:K8S_NODE_NAME}:10250`. Without a scheme: https,
    /// or http for `auth_type: none`.
    pub endpoint: Option<String>,
    /// `tls` (upstream default), `serviceAccount`, `none` or `kubeConfig`.
    pub auth_type: AuthType,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub insecure_skip_verify: bool,
    /// Default 10s.
    #[serde(deserialize_with = "duration::de")]
    pub collection_interval: Duration,
    /// Default 1s.
    #[serde(deserialize_with = "duration::de")]
    pub initial_delay: Duration,
    /// Per-scrape timeout; default: the collection interval.
    #[serde(deserialize_with = "duration::de_opt")]
    pub timeout: Option<Duration>,
    /// Default `[container, pod, node]`; `volume` is optional.
    pub metric_groups: Vec<MetricGroup>,
    /// `container.id` and/or `k8s.volume.type`; these make the receiver call the kubelet's `/pods`.
    pub extra_metadata_labels: Vec<String>,
    pub collect_all_network_interfaces: NetworkInterfaces,
    /// Node name, for node-capacity based utilization metrics.
    pub node: Option<String>,
    pub k8s_api_config: Option<K8sApiConfig>,
    /// `metrics.<name>.enabled` switches.
    pub metrics: BTreeMap<String, Toggle>,
    /// `resource_attributes.<name>.enabled` switches.
    pub resource_attributes: BTreeMap<String, Toggle>,
}

impl Default for KubeletStatsConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            auth_type: AuthType::Tls,
            ca_file: None,
            cert_file: None,
            key_file: None,
            insecure_skip_verify: false,
            collection_interval: Duration::from_secs(10),
            initial_delay: Duration::from_secs(1),
            timeout: None,
            metric_groups: vec![MetricGroup::Container, MetricGroup::Pod, MetricGroup::Node],
            extra_metadata_labels: Vec::new(),
            collect_all_network_interfaces: NetworkInterfaces::default(),
            node: None,
            k8s_api_config: None,
            metrics: BTreeMap::new(),
            resource_attributes: BTreeMap::new(),
        }
    }
}

impl KubeletStatsConfig {
    /// Whether a scrape needs the kubelet's `/pods` as well as `/stats/summary`: for extra metadata
    /// labels, or for the limit/request utilization metrics, which need the pods' resource specs.
    pub fn needs_pods_endpoint(&self) -> bool {
        !self.extra_metadata_labels.is_empty()
            || POD_SPEC_METRICS.iter().any(|m| self.metric_enabled(m))
    }

    /// Whether metric `name` is emitted: its `metrics.<name>.enabled` switch, else the upstream
    /// default. Unknown names are off.
    pub fn metric_enabled(&self, name: &str) -> bool {
        match self.metrics.get(name) {
            Some(t) => t.enabled,
            None => METRICS.iter().any(|(n, default)| *n == name && *default),
        }
    }

    /// Whether resource attribute `name` is set: its `resource_attributes.<name>.enabled` switch,
    /// else the upstream default.
    pub fn resource_attribute_enabled(&self, name: &str) -> bool {
        match self.resource_attributes.get(name) {
            Some(t) => t.enabled,
            None => RESOURCE_ATTRIBUTES
                .iter()
                .any(|(n, default)| *n == name && *default),
        }
    }

    /// Whether metrics of `group` are collected.
    pub fn group_enabled(&self, group: MetricGroup) -> bool {
        self.metric_groups.contains(&group)
    }

    pub(crate) fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if let Some(name) = self
            .metrics
            .keys()
            .find(|k| !METRICS.iter().any(|(n, _)| n == k))
        {
            return Err(ConfigError::new(
                format!("{path}.metrics.{name}"),
                "unknown metric of the kubeletstats receiver",
            ));
        }
        if let Some(name) = self
            .resource_attributes
            .keys()
            .find(|k| !RESOURCE_ATTRIBUTES.iter().any(|(n, _)| n == k))
        {
            return Err(ConfigError::new(
                format!("{path}.resource_attributes.{name}"),
                "unknown resource attribute of the kubeletstats receiver",
            ));
        }
        if let Some((i, label)) = self
            .extra_metadata_labels
            .iter()
            .enumerate()
            .find(|(_, l)| !EXTRA_METADATA_LABELS.contains(&l.as_str()))
        {
            return Err(ConfigError::unsupported(
                format!("{path}.extra_metadata_labels[{i}]"),
                format!(
                    "label {label:?} is not supported; use one of {}",
                    EXTRA_METADATA_LABELS.join(", ")
                ),
            ));
        }
        if self.collection_interval.is_zero() {
            return Err(ConfigError::new(
                format!("{path}.collection_interval"),
                "must be greater than zero",
            ));
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return Err(ConfigError::new(
                format!("{path}.timeout"),
                "must be greater than zero",
            ));
        }
        Ok(())
    }
}

/// Labels `extra_metadata_labels` accepts.
pub const EXTRA_METADATA_LABELS: &[&str] = &["container.id", "k8s.volume.type"];

/// Metrics whose value needs the pods' resource specs from the kubelet's `/pods`.
pub const POD_SPEC_METRICS: &[&str] = &[
    "k8s.container.cpu_limit_utilization",
    "k8s.container.cpu_request_utilization",
    "k8s.container.memory_limit_utilization",
    "k8s.container.memory_request_utilization",
    "k8s.pod.cpu_limit_utilization",
    "k8s.pod.cpu_request_utilization",
    "k8s.pod.memory_limit_utilization",
    "k8s.pod.memory_request_utilization",
];

/// Every metric of the upstream receiver, with whether it is enabled by default.
pub const METRICS: &[(&str, bool)] = &[
    ("container.cpu.time", true),
    ("container.cpu.usage", true),
    ("container.filesystem.available", true),
    ("container.filesystem.capacity", true),
    ("container.filesystem.usage", true),
    ("container.memory.available", true),
    ("container.memory.major_page_faults", true),
    ("container.memory.page_faults", true),
    ("container.memory.rss", true),
    ("container.memory.usage", true),
    ("container.memory.working_set", true),
    ("container.uptime", false),
    ("k8s.container.cpu.node.utilization", false),
    ("k8s.container.cpu_limit_utilization", false),
    ("k8s.container.cpu_request_utilization", false),
    ("k8s.container.memory.node.utilization", false),
    ("k8s.container.memory_limit_utilization", false),
    ("k8s.container.memory_request_utilization", false),
    ("k8s.container.ephemeral_storage.usage", false),
    ("k8s.node.cpu.time", true),
    ("k8s.node.cpu.usage", true),
    ("k8s.node.filesystem.available", true),
    ("k8s.node.filesystem.capacity", true),
    ("k8s.node.filesystem.usage", true),
    ("k8s.node.filesystem.inode.count", false),
    ("k8s.node.filesystem.inode.free", false),
    ("k8s.node.memory.available", true),
    ("k8s.node.memory.major_page_faults", true),
    ("k8s.node.memory.page_faults", true),
    ("k8s.node.memory.rss", true),
    ("k8s.node.memory.usage", true),
    ("k8s.node.memory.working_set", true),
    ("k8s.node.network.errors", true),
    ("k8s.node.network.io", true),
    ("k8s.node.pid.limit", false),
    ("k8s.node.pid.usage", false),
    ("k8s.node.system_container.cpu.time", false),
    ("k8s.node.system_container.cpu.usage", false),
    ("k8s.node.system_container.memory.usage", false),
    ("k8s.node.system_container.memory.working_set", false),
    ("k8s.node.uptime", false),
    ("k8s.pod.cpu.node.utilization", false),
    ("k8s.pod.cpu.time", true),
    ("k8s.pod.cpu.usage", true),
    ("k8s.pod.cpu_limit_utilization", false),
    ("k8s.pod.cpu_request_utilization", false),
    ("k8s.pod.filesystem.available", true),
    ("k8s.pod.filesystem.capacity", true),
    ("k8s.pod.filesystem.usage", true),
    ("k8s.pod.memory.available", true),
    ("k8s.pod.memory.major_page_faults", true),
    ("k8s.pod.memory.node.utilization", false),
    ("k8s.pod.memory.page_faults", true),
    ("k8s.pod.memory.rss", true),
    ("k8s.pod.memory.usage", true),
    ("k8s.pod.memory.working_set", true),
    ("k8s.pod.memory_limit_utilization", false),
    ("k8s.pod.memory_request_utilization", false),
    ("k8s.pod.network.errors", true),
    ("k8s.pod.network.io", true),
    ("k8s.pod.uptime", false),
    ("k8s.pod.volume.usage", false),
    ("k8s.volume.available", true),
    ("k8s.volume.capacity", true),
    ("k8s.volume.inodes", true),
    ("k8s.volume.inodes.free", true),
    ("k8s.volume.inodes.used", true),
];

/// Every resource attribute of the upstream receiver, with whether it is enabled by default.
pub const RESOURCE_ATTRIBUTES: &[(&str, bool)] = &[
    ("aws.volume.id", false),
    ("container.id", true),
    ("fs.type", false),
    ("gce.pd.name", false),
    ("glusterfs.endpoints.name", false),
    ("glusterfs.path", false),
    ("k8s.container.name", true),
    ("k8s.namespace.name", true),
    ("k8s.node.name", true),
    ("k8s.node.system_container.name", true),
    ("k8s.persistentvolumeclaim.name", true),
    ("k8s.pod.name", true),
    ("k8s.pod.uid", true),
    ("k8s.volume.name", true),
    ("k8s.volume.type", true),
    ("partition", false),
];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum AuthType {
    #[default]
    #[serde(rename = "tls")]
    Tls,
    #[serde(rename = "serviceAccount")]
    ServiceAccount,
    #[serde(rename = "none")]
    None,
    #[serde(rename = "kubeConfig")]
    KubeConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricGroup {
    Container,
    Pod,
    Node,
    Volume,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkInterfaces {
    pub pod: bool,
    pub node: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sApiConfig {
    pub auth_type: String,
    pub context: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toggle {
    pub enabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> KubeletStatsConfig {
        let v: serde_json::Value = serde_yaml_ng::from_str(yaml).unwrap();
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn defaults_follow_upstream() {
        let c = parse("{}");
        assert_eq!(c.auth_type, AuthType::Tls);
        assert_eq!(c.collection_interval, Duration::from_secs(10));
        assert!(c.group_enabled(MetricGroup::Node) && !c.group_enabled(MetricGroup::Volume));
        assert!(c.metric_enabled("k8s.pod.cpu.usage"));
        assert!(!c.metric_enabled("k8s.pod.uptime"));
        assert!(c.resource_attribute_enabled("container.id"));
        assert!(!c.resource_attribute_enabled("fs.type"));
        assert!(!c.needs_pods_endpoint());
        c.validate("receivers.kubeletstats").unwrap();
    }

    #[test]
    fn switches_and_pods_endpoint() {
        let c = parse(
            "metrics: {k8s.pod.uptime: {enabled: true}, k8s.pod.cpu.time: {enabled: false}}\n\
             resource_attributes: {k8s.pod.uid: {enabled: false}}",
        );
        assert!(c.metric_enabled("k8s.pod.uptime"));
        assert!(!c.metric_enabled("k8s.pod.cpu.time"));
        assert!(!c.resource_attribute_enabled("k8s.pod.uid"));
        assert!(!c.needs_pods_endpoint());
        let c = parse("metrics: {k8s.pod.cpu_limit_utilization: {enabled: true}}");
        assert!(c.needs_pods_endpoint());
        let c = parse("extra_metadata_labels: [container.id]");
        assert!(c.needs_pods_endpoint());
    }

    #[test]
    fn unknown_names_are_rejected_with_their_path() {
        let e = parse("metrics: {k8s.pod.cpu.utilization: {enabled: true}}")
            .validate("receivers.kubeletstats")
            .unwrap_err();
        assert_eq!(
            e.path,
            "receivers.kubeletstats.metrics.k8s.pod.cpu.utilization"
        );
        let e = parse("extra_metadata_labels: [container.id, k8s.pod.ip]")
            .validate("r")
            .unwrap_err();
        assert_eq!(e.path, "r.extra_metadata_labels[1]");
        let e = parse("resource_attributes: {nope: {enabled: true}}")
            .validate("r")
            .unwrap_err();
        assert_eq!(e.path, "r.resource_attributes.nope");
        assert!(parse("collection_interval: \"0\"").validate("r").is_err());
    }
}
