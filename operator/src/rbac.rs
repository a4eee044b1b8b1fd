//! Which cluster permissions a collector config needs: kotel-config says what each component is
//! configured to do, this module decides the RBAC rules for it.
//!
//! Only components that run count: receivers and processors referenced by a pipeline. The result
//! is merged and sorted so the ClusterRole is byte-for-byte stable.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::PolicyRule;
use kotel_config::processors::k8sattributes::{FieldFrom, K8sAttributesConfig};
use kotel_config::receivers::kubeletstats::{AuthType, KubeletStatsConfig};
use kotel_config::{Config, ProcessorConfig, ReceiverConfig};

/// The kubelet resource that authorizes its `/pods` endpoint: `nodes/pods` with fine-grained
/// kubelet authorization (Kubernetes 1.33+, on by default), `nodes/proxy` before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KubeletPodsResource {
    #[default]
    NodesPods,
    NodesProxy,
}

impl KubeletPodsResource {
    /// From the API server's minor version.
    pub fn for_minor_version(minor: u32) -> Self {
        if minor >= 33 {
            Self::NodesPods
        } else {
            Self::NodesProxy
        }
    }

    fn resource(self) -> &'static str {
        match self {
            Self::NodesPods => "nodes/pods",
            Self::NodesProxy => "nodes/proxy",
        }
    }
}

const READ: &[&str] = &["get", "list", "watch"];
const GET: &[&str] = &["get"];

/// (apiGroup, resource) → verbs.
#[derive(Default)]
struct RuleSet(BTreeMap<(String, String), BTreeSet<String>>);

impl RuleSet {
    fn grant(&mut self, group: &str, resource: &str, verbs: &[&str]) {
        self.0
            .entry((group.to_string(), resource.to_string()))
            .or_default()
            .extend(verbs.iter().map(|v| v.to_string()));
    }

    /// One rule per (apiGroup, verbs), resources sorted.
    fn into_rules(self) -> Vec<PolicyRule> {
        let mut grouped: BTreeMap<(String, Vec<String>), BTreeSet<String>> = BTreeMap::new();
        for ((group, resource), verbs) in self.0 {
            grouped
                .entry((group, verbs.into_iter().collect()))
                .or_default()
                .insert(resource);
        }
        grouped
            .into_iter()
            .map(|((group, verbs), resources)| PolicyRule {
                api_groups: Some(vec![group]),
                resources: Some(resources.into_iter().collect()),
                verbs,
                ..Default::default()
            })
            .collect()
    }
}

/// Which rights auto-RBAC may grant (`--collector-rbac-allow`), by resource as kubectl names
/// them: `pods`, `nodes/stats` (core group), `replicasets.apps`. Unlimited by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RbacAllow(Option<BTreeSet<String>>);

impl RbacAllow {
    /// From a comma-separated list; empty or `*` allows everything.
    pub fn parse(list: &str) -> Self {
        let names: BTreeSet<String> = list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        if names.is_empty() || names.contains("*") {
            Self(None)
        } else {
            Self(Some(names))
        }
    }

    fn allows(&self, name: &str) -> bool {
        self.0.as_ref().is_none_or(|names| names.contains(name))
    }
}

/// `resource` for the core group, `resource.group` otherwise.
fn kubectl_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// The rules the running components of `config` need; empty means no ClusterRole.
pub fn rules_for(config: &Config, pods_resource: KubeletPodsResource) -> Vec<PolicyRule> {
    needs(config, pods_resource).into_rules()
}

/// What of [`rules_for`] `allow` lets the operator grant, and what it withholds (each as
/// `verbs resource`, e.g. `get,list,watch replicasets.apps`).
pub fn rules_within(
    config: &Config,
    pods_resource: KubeletPodsResource,
    allow: &RbacAllow,
) -> (Vec<PolicyRule>, Vec<String>) {
    let (mut granted, mut withheld) = (RuleSet::default(), Vec::new());
    for ((group, resource), verbs) in needs(config, pods_resource).0 {
        let name = kubectl_name(&group, &resource);
        if allow.allows(&name) {
            granted.0.insert((group, resource), verbs);
        } else {
            let verbs: Vec<String> = verbs.into_iter().collect();
            withheld.push(format!("{} {name}", verbs.join(",")));
        }
    }
    (granted.into_rules(), withheld)
}

fn needs(config: &Config, pods_resource: KubeletPodsResource) -> RuleSet {
    let mut rules = RuleSet::default();
    for (_, receiver) in config.active_receivers() {
        if let ReceiverConfig::KubeletStats(c) = receiver {
            kubeletstats(c, pods_resource, &mut rules);
        }
    }
    for (_, processor) in config.active_processors() {
        if let ProcessorConfig::K8sAttributes(c) = processor {
            k8sattributes(c, &mut rules);
        }
    }
    rules
}

fn k8sattributes(c: &K8sAttributesConfig, rules: &mut RuleSet) {
    // Passthrough only tags the connection's IP: no API calls at all.
    if c.passthrough {
        return;
    }
    rules.grant("", "pods", READ);
    rules.grant("", "namespaces", READ);
    let metadata = &c.extract;
    // The deployment is found through the pod's ReplicaSet, unless its name is derived from the
    // ReplicaSet name (which the pod's owner reference already carries).
    let deployment_uid = metadata.wants("k8s.deployment.uid");
    let deployment_name = (metadata.wants("k8s.deployment.name") || metadata.wants("service.name"))
        && !metadata.deployment_name_from_replicaset;
    if deployment_uid || deployment_name {
        rules.grant("apps", "replicasets", READ);
    }
    // A CronJob is found through the pod's Job.
    if metadata.wants("k8s.cronjob.name") {
        rules.grant("batch", "jobs", READ);
    }
    // `k8s.node.name` comes from the pod spec; anything else about the node needs the Node.
    if metadata.wants("k8s.node.uid") || c.extracts_from(FieldFrom::Node) {
        rules.grant("", "nodes", READ);
    }
}

fn kubeletstats(c: &KubeletStatsConfig, pods: KubeletPodsResource, rules: &mut RuleSet) {
    // The kubelet authorizes a service-account token through RBAC; with client certificates (tls)
    // or kubeconfig it authorizes that identity instead, and no rule of the collector's matters.
    if c.auth_type == AuthType::ServiceAccount {
        rules.grant("", "nodes/stats", GET);
        // kotel-config knows what reads /pods (extra labels, limit/request utilization).
        if c.needs_pods_endpoint() {
            rules.grant("", pods.resource(), GET);
        }
    }
    // Node capacity for node utilization metrics comes from the API server.
    if c.k8s_api_config.is_some() {
        rules.grant("", "nodes", GET);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
        let config = Config::from_yaml(yaml).expect("valid config");
        rules_for(&config, KubeletPodsResource::NodesPods)
            .into_iter()
            .map(|r| {
                (
                    r.api_groups.unwrap_or_default().join(","),
                    r.resources.unwrap_or_default(),
                    r.verbs,
                )
            })
            .collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn otlp_and_filelog_need_nothing() {
        let got = rules(
            r#"
receivers:
  otlp: {protocols: {grpc: {}}}
  filelog: {include: [/var/log/pods/*/*/*.log]}
exporters: {debug: {}}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
    logs: {receivers: [filelog], exporters: [debug]}
"#,
        );
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn k8sattributes_defaults_read_pods_namespaces_and_replicasets() {
        let got = rules(
            r#"
receivers: {otlp: {protocols: {grpc: {}}}}
processors: {k8s_attributes: {}}
exporters: {debug: {}}
service:
  pipelines:
    traces: {receivers: [otlp], processors: [k8s_attributes], exporters: [debug]}
"#,
        );
        let read = s(&["get", "list", "watch"]);
        assert_eq!(
            got,
            vec![
                ("".into(), s(&["namespaces", "pods"]), read.clone()),
                ("apps".into(), s(&["replicasets"]), read),
            ]
        );
    }

    #[test]
    fn k8sattributes_node_metadata_reads_nodes_and_pod_only_needs_no_replicasets() {
        let got = rules(
            r#"
receivers: {otlp: {protocols: {grpc: {}}}}
processors:
  k8sattributes:
    extract:
      metadata: [k8s.pod.name, k8s.node.uid]
exporters: {debug: {}}
service:
  pipelines:
    traces: {receivers: [otlp], processors: [k8sattributes], exporters: [debug]}
"#,
        );
        let read = s(&["get", "list", "watch"]);
        assert_eq!(
            got,
            vec![("".into(), s(&["namespaces", "nodes", "pods"]), read)]
        );
    }

    #[test]
    fn unused_components_need_nothing() {
        let got = rules(
            r#"
receivers:
  otlp: {protocols: {grpc: {}}}
  kubeletstats: {auth_type: serviceAccount}
processors: {k8sattributes: {}}
exporters: {debug: {}}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
"#,
        );
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn an_allow_list_grants_only_what_it_names_and_reports_the_rest() {
        let config = Config::from_yaml(
            r#"
receivers:
  otlp: {protocols: {grpc: {}}}
  kubeletstats: {auth_type: serviceAccount, extra_metadata_labels: [container.id]}
processors: {k8sattributes: {}}
exporters: {debug: {}}
service:
  pipelines:
    traces: {receivers: [otlp], processors: [k8sattributes], exporters: [debug]}
    metrics: {receivers: [kubeletstats], exporters: [debug]}
"#,
        )
        .unwrap();
        let pods = KubeletPodsResource::NodesPods;
        let all = RbacAllow::parse("");
        assert_eq!(all, RbacAllow::parse(" * "));
        let (granted, withheld) = rules_within(&config, pods, &all);
        assert_eq!(granted, rules_for(&config, pods));
        assert!(withheld.is_empty());

        let allow = RbacAllow::parse("pods, namespaces,nodes/stats");
        let (granted, withheld) = rules_within(&config, pods, &allow);
        let granted: Vec<_> = granted
            .into_iter()
            .map(|r| (r.resources.unwrap_or_default(), r.verbs))
            .collect();
        assert_eq!(
            granted,
            vec![
                (s(&["nodes/stats"]), s(&["get"])),
                (s(&["namespaces", "pods"]), s(&["get", "list", "watch"])),
            ]
        );
        assert_eq!(
            withheld,
            vec!["get nodes/pods", "get,list,watch replicasets.apps"]
        );
    }

    #[test]
    fn kubeletstats_service_account_reads_stats_and_pods_only_when_needed() {
        let base = r#"
receivers:
  kubeletstats:
    auth_type: serviceAccount
EXTRA
exporters: {debug: {}}
service:
  pipelines:
    metrics: {receivers: [kubeletstats], exporters: [debug]}
"#;
        let plain = rules(&base.replace("EXTRA", ""));
        assert_eq!(plain, vec![("".into(), s(&["nodes/stats"]), s(&["get"]))]);

        let labels = rules(&base.replace("EXTRA", "    extra_metadata_labels: [container.id]"));
        assert_eq!(
            labels,
            vec![("".into(), s(&["nodes/pods", "nodes/stats"]), s(&["get"]))]
        );

        let tls = rules(
            &base
                .replace("EXTRA", "")
                .replace("auth_type: serviceAccount", "auth_type: tls"),
        );
        assert!(tls.is_empty(), "{tls:?}");
    }
}
