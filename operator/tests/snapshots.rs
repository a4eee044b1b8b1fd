//! Snapshot tests: every child object built for every example in manifests/examples.
//! Review changes with `cargo insta review` (or `INSTA_UPDATE=always cargo test -p kotel-operator`).

use std::path::{Path, PathBuf};

use kotel_operator::build;
use kotel_operator::crd::OpenTelemetryCollector;
use kotel_operator::rbac::KubeletPodsResource;
use kotel_operator::validate::{OperatorDefaults, validate};

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("manifests/examples exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "expected the four examples, got {files:?}"
    );
    files
}

fn defaults() -> OperatorDefaults {
    OperatorDefaults {
        image: "ghcr.io/kotel-dev/kotelcol:0.0.0-test".to_string(),
        version: "0.0.0-test".to_string(),
        kubelet_pods: KubeletPodsResource::NodesPods,
        ..OperatorDefaults::default()
    }
}

fn load(path: &Path) -> OpenTelemetryCollector {
    let text = std::fs::read_to_string(path).expect("readable example");
    let mut cr: OpenTelemetryCollector =
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    cr.metadata.namespace = Some("observability".to_string());
    cr.metadata.uid = Some("00000000-0000-0000-0000-000000000001".to_string());
    cr
}

#[test]
fn every_example_builds_the_same_children() {
    for path in examples() {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let cr = load(&path);
        let v = validate(&cr, &defaults())
            .unwrap_or_else(|e| panic!("{}: example must be valid: {e}", path.display()));
        let c = build::children(&v);
        insta::assert_yaml_snapshot!(format!("{stem}-serviceaccount"), c.service_account);
        insta::assert_yaml_snapshot!(format!("{stem}-configmap"), c.config_map);
        // The same config as the collector reads it, for humans reviewing a change.
        insta::assert_snapshot!(format!("{stem}-collector.yaml"), v.config_yaml);
        insta::assert_yaml_snapshot!(format!("{stem}-clusterrole"), c.cluster_role);
        insta::assert_yaml_snapshot!(format!("{stem}-clusterrolebinding"), c.cluster_role_binding);
        insta::assert_yaml_snapshot!(format!("{stem}-daemonset"), c.daemon_set);
        insta::assert_yaml_snapshot!(format!("{stem}-service"), c.service);
        insta::assert_yaml_snapshot!(format!("{stem}-headless-service"), c.headless_service);
        insta::assert_yaml_snapshot!(format!("{stem}-monitoring-service"), c.monitoring_service);
    }
}

#[test]
fn building_twice_gives_identical_objects() {
    for path in examples() {
        let v = validate(&load(&path), &defaults()).expect("valid example");
        assert_eq!(build::children(&v), build::children(&v));
        let again = validate(&load(&path), &defaults()).expect("valid example");
        assert_eq!(v.config_hash, again.config_hash);
    }
}

#[test]
fn resource_labels_reach_every_child_without_overriding_the_operators() {
    let path = &examples()[0];
    let mut cr = load(path);
    cr.metadata.labels = Some(
        [("team", "blue"), ("app.kubernetes.io/instance", "argo-app")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let v = validate(&cr, &defaults()).expect("valid example");
    let c = build::children(&v);
    let ds = &c.daemon_set;
    let pod_labels = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap();
    let mut all = vec![
        ("configmap", c.config_map.metadata.labels.clone()),
        ("daemonset", ds.metadata.labels.clone()),
        ("pod template", Some(pod_labels)),
    ];
    if let Some(sa) = &c.service_account {
        all.push(("serviceaccount", sa.metadata.labels.clone()));
    }
    if let Some(svc) = &c.service {
        all.push(("service", svc.metadata.labels.clone()));
    }
    for (what, labels) in all {
        let labels = labels.unwrap_or_default();
        assert_eq!(
            labels.get("team").map(String::as_str),
            Some("blue"),
            "{what}"
        );
        assert_eq!(
            labels.get("app.kubernetes.io/instance").map(String::as_str),
            Some(v.names.instance_label().as_str()),
            "{what}: the selector label stays the operator's"
        );
    }
    // The selector itself never takes the resource's labels: it is immutable on a DaemonSet.
    let selector = ds
        .spec
        .as_ref()
        .unwrap()
        .selector
        .match_labels
        .clone()
        .unwrap();
    assert!(!selector.contains_key("team"));
}
