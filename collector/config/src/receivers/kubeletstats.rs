//! `kubeletstats` (new name `kubelet_stats`) receiver: node, pod, container and volume metrics from
//! the kubelet's `/stats/summary`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::duration;

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
    /// Whether a scrape needs the kubelet's `/pods` as well as `/stats/summary`.
    pub fn needs_pods_endpoint(&self) -> bool {
        !self.extra_metadata_labels.is_empty()
    }
}

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
