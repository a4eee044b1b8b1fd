//! The operator can only grant what it holds (the API server's RBAC escalation check): its
//! ClusterRole in manifests/base and in the Helm chart must cover every rule `rbac` can produce.

use std::collections::BTreeSet;
use std::path::Path;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kotel_config::Config;
use kotel_operator::rbac::{KubeletPodsResource, rules_for};

/// A config that makes every rule appear.
const EVERYTHING: &str = r#"
receivers:
  kubeletstats:
    auth_type: serviceAccount
    extra_metadata_labels: [container.id]
    k8s_api_config: {auth_type: serviceAccount}
processors:
  k8sattributes:
    extract:
      metadata: [k8s.pod.name, k8s.deployment.uid, k8s.cronjob.name, k8s.node.uid]
      labels: [{key: team, from: node}]
exporters: {debug: {}}
service:
  pipelines:
    metrics: {receivers: [kubeletstats], processors: [k8sattributes], exporters: [debug]}
"#;

type Grant = (String, String, String);

fn grants(rules: &[PolicyRule]) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for r in rules {
        for g in r.api_groups.iter().flatten() {
            for res in r.resources.iter().flatten() {
                for v in &r.verbs {
                    out.insert((g.clone(), res.clone(), v.clone()));
                }
            }
        }
    }
    out
}

fn held(path: &str) -> BTreeSet<Grant> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    // The chart's metadata is templated; its rules are plain YAML.
    let plain: String = text
        .lines()
        .filter(|l| !l.contains("{{"))
        .map(|l| format!("{l}\n"))
        .collect();
    let role: ClusterRole =
        serde_yaml_ng::from_str(&plain).unwrap_or_else(|e| panic!("{path}: {e}"));
    grants(role.rules.as_deref().unwrap_or_default())
}

#[test]
fn operator_holds_every_rule_it_can_grant() {
    let config = Config::from_yaml(EVERYTHING).expect("valid config");
    let mut wanted = BTreeSet::new();
    for pods in [
        KubeletPodsResource::NodesPods,
        KubeletPodsResource::NodesProxy,
    ] {
        wanted.extend(grants(&rules_for(&config, pods)));
    }
    assert!(
        wanted.len() >= 12,
        "the config should exercise every rule: {wanted:?}"
    );
    for path in [
        "manifests/base/clusterrole.yaml",
        "manifests/helm/kotel-operator/templates/clusterrole.yaml",
    ] {
        let held = held(path);
        let missing: Vec<_> = wanted.difference(&held).collect();
        assert!(missing.is_empty(), "{path} lacks {missing:?}");
    }
}

#[test]
fn base_and_chart_grant_the_same() {
    assert_eq!(
        held("manifests/base/clusterrole.yaml"),
        held("manifests/helm/kotel-operator/templates/clusterrole.yaml")
    );
}
