//! Names and labels of everything the operator creates, in one place.
//!
//! Names follow the upstream operator (`<cr>-collector`, `<cr>-<namespace>-cluster-role`, …),
//! truncated to what Kubernetes accepts. Labels are `app.kubernetes.io/*`; the selector labels
//! are immutable once a DaemonSet exists, so they never include anything that can change.

use std::collections::BTreeMap;

/// The field manager of every server-side apply, and the value of [`LABEL_KOTEL`].
pub const MANAGER: &str = "kotel-operator";
/// The `app.kubernetes.io/managed-by` value, upstream's: the selector labels are the upstream
/// operator's, so kotel takes over a DaemonSet the upstream operator made (a selector cannot
/// change) and whatever selects upstream's labels (NetworkPolicies, ServiceMonitors, dashboards)
/// keeps matching.
pub const UPSTREAM_MANAGER: &str = "opentelemetry-operator";
/// kotel's own marker beside upstream's labels: what the operator watches and may delete.
pub const LABEL_KOTEL: &str = "kotel.dev/managed-by";
/// Container name of the collector (upstream's name, so `kubectl logs -c` habits carry over).
pub const CONTAINER: &str = "otc-container";
/// Config volume name and mount point.
pub const CONFIG_VOLUME: &str = "otc-internal";
pub const CONFIG_DIR: &str = "/conf";
/// ConfigMap key holding the collector config.
pub const CONFIG_KEY: &str = "collector.yaml";
/// Pod-template annotation carrying the config hash, so a config change rolls the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "opentelemetry-operator-config/sha256";

/// On cluster-scoped children (which cannot carry an owner reference): the resource they belong
/// to, so a change to them wakes that resource's reconcile.
pub const OWNER_NAMESPACE_ANNOTATION: &str = "kotel.dev/owner-namespace";
pub const OWNER_NAME_ANNOTATION: &str = "kotel.dev/owner-name";

pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_VERSION: &str = "app.kubernetes.io/version";

/// Longest name most kinds accept (DNS label).
const MAX_NAME: usize = 63;

/// The names of one collector's children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub instance: String,
    pub namespace: String,
}

impl Names {
    pub fn new(instance: &str, namespace: &str) -> Self {
        Self {
            instance: instance.to_string(),
            namespace: namespace.to_string(),
        }
    }

    /// DaemonSet, ServiceAccount and receiver Service.
    pub fn collector(&self) -> String {
        dns_name(&format!("{}-collector", self.instance))
    }

    /// The receiver Service without a cluster IP: one DNS record per pod (load-balancing
    /// exporters resolve it).
    pub fn headless_service(&self) -> String {
        dns_name(&format!("{}-collector-headless", self.instance))
    }

    pub fn monitoring_service(&self) -> String {
        dns_name(&format!("{}-collector-monitoring", self.instance))
    }

    /// Content-addressed ConfigMap name: a new config gets a new name, which rolls the pods.
    pub fn config_map(&self, config_hash: &str) -> String {
        let suffix = &config_hash[..8.min(config_hash.len())];
        // Keep the hash intact when the instance name is long: truncate the prefix instead.
        let full = format!("{}-collector", self.instance);
        let prefix = truncate(&full, MAX_NAME - 9);
        format!("{}-{suffix}", prefix.trim_end_matches(['-', '.']))
    }

    /// Cluster-scoped names carry the namespace so two namespaces never collide.
    pub fn cluster_role(&self) -> String {
        dns_name(&format!(
            "{}-{}-cluster-role",
            self.instance, self.namespace
        ))
    }

    pub fn cluster_role_binding(&self) -> String {
        dns_name(&format!("{}-{}-collector", self.instance, self.namespace))
    }

    /// `app.kubernetes.io/instance` value: unique across namespaces.
    pub fn instance_label(&self) -> String {
        // Label values are limited to 63 characters as well.
        dns_name(&format!("{}.{}", self.namespace, self.instance))
    }

    /// Labels that select the collector pods; immutable on the DaemonSet.
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                LABEL_COMPONENT.to_string(),
                "opentelemetry-collector".to_string(),
            ),
            (LABEL_INSTANCE.to_string(), self.instance_label()),
            (LABEL_MANAGED_BY.to_string(), UPSTREAM_MANAGER.to_string()),
            (LABEL_PART_OF.to_string(), "opentelemetry".to_string()),
        ])
    }

    /// Selector labels as a label-selector string (for status.scale.selector and list calls).
    pub fn selector_string(&self) -> String {
        self.selector_labels()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Full labels of a child named `name`.
    pub fn labels(&self, name: &str, version: &str) -> BTreeMap<String, String> {
        let mut labels = self.selector_labels();
        labels.insert(LABEL_NAME.to_string(), truncate(name, MAX_NAME).to_string());
        labels.insert(LABEL_VERSION.to_string(), label_value(version));
        labels.insert(LABEL_KOTEL.to_string(), MANAGER.to_string());
        labels
    }
}

/// The (namespace, name) of the resource a cluster-scoped child belongs to.
pub fn owner_of(annotations: &BTreeMap<String, String>) -> Option<(String, String)> {
    Some((
        annotations.get(OWNER_NAMESPACE_ANNOTATION)?.clone(),
        annotations.get(OWNER_NAME_ANNOTATION)?.clone(),
    ))
}

/// Truncates to a DNS-1123 label: at most 63 characters, no trailing `-` or `.`.
pub fn dns_name(name: &str) -> String {
    truncate(name, MAX_NAME)
        .trim_end_matches(['-', '.'])
        .to_string()
}

fn truncate(s: &str, max: usize) -> &str {
    // Kubernetes names are ASCII, so byte slicing is safe; guard anyway.
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A label value from an image tag or version: allowed characters only, at most 63.
pub fn label_value(v: &str) -> String {
    let cleaned: String = v
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    truncate(&cleaned, MAX_NAME)
        .trim_matches(['-', '_', '.'])
        .to_string()
}

/// The tag of an image reference (`latest` when there is none; the digest when pinned by one).
pub fn image_tag(image: &str) -> String {
    if let Some((_, digest)) = image.split_once('@') {
        return label_value(digest.trim_start_matches("sha256:"));
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => label_value(tag),
        None => "latest".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_upstream() {
        let n = Names::new("agent", "observability");
        assert_eq!(n.collector(), "agent-collector");
        assert_eq!(n.monitoring_service(), "agent-collector-monitoring");
        assert_eq!(n.config_map("0123456789abcdef"), "agent-collector-01234567");
        assert_eq!(n.cluster_role(), "agent-observability-cluster-role");
        assert_eq!(n.cluster_role_binding(), "agent-observability-collector");
        assert_eq!(n.instance_label(), "observability.agent");
    }

    #[test]
    fn long_names_are_truncated_and_keep_the_hash() {
        let n = Names::new(&"a".repeat(70), "ns");
        assert_eq!(n.collector().len(), 63);
        let cm = n.config_map("deadbeefcafe");
        assert!(cm.len() <= 63, "{cm}");
        assert!(cm.ends_with("-deadbeef"));
    }

    #[test]
    fn owner_annotations_round_trip() {
        let a = BTreeMap::from([
            (OWNER_NAMESPACE_ANNOTATION.to_string(), "obs".to_string()),
            (OWNER_NAME_ANNOTATION.to_string(), "agent".to_string()),
        ]);
        assert_eq!(owner_of(&a), Some(("obs".into(), "agent".into())));
        assert_eq!(owner_of(&BTreeMap::new()), None);
    }

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("ghcr.io/kotel-dev/kotelcol:0.1.0"), "0.1.0");
        assert_eq!(image_tag("localhost:5000/kotelcol"), "latest");
        assert_eq!(image_tag("kotelcol@sha256:abc"), "abc");
    }
}
