//! Manifests written for the upstream operator apply unchanged (issue 13): a node agent that
//! declares its own host log volumes, as upstream's docs and charts do, gets one mount per path.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PodSpec;
use kotel_operator::build;
use kotel_operator::crd::OpenTelemetryCollector;
use kotel_operator::rbac::KubeletPodsResource;
use kotel_operator::validate::{OperatorDefaults, validate};

fn defaults() -> OperatorDefaults {
    OperatorDefaults {
        image: "ghcr.io/kotel-dev/kotelcol:0.0.0-test".to_string(),
        version: "0.0.0-test".to_string(),
        kubelet_pods: KubeletPodsResource::NodesPods,
        ..OperatorDefaults::default()
    }
}

/// An upstream-style node agent: filelog over /var/log/pods with checkpoints in file_storage,
/// and the resource's own `volumes` / `volumeMounts` (`extra` is added to both lists).
fn agent(extra_volumes: &str, extra_mounts: &str) -> OpenTelemetryCollector {
    let text = format!(
        r#"
apiVersion: opentelemetry.io/v1beta1
kind: OpenTelemetryCollector
metadata: {{name: agent, namespace: observability, uid: 00000000-0000-0000-0000-000000000002}}
spec:
  mode: daemonset
  volumes:
    - name: varlogpods
      hostPath: {{path: /var/log/pods}}
    - name: otelcol-state
      hostPath: {{path: /var/lib/otelcol, type: DirectoryOrCreate}}
{extra_volumes}
  volumeMounts:
    - name: varlogpods
      mountPath: /var/log/pods
      readOnly: true
    - name: otelcol-state
      mountPath: /var/lib/otelcol/
{extra_mounts}
  config:
    receivers:
      filelog:
        include: [/var/log/pods/*/*/*.log]
        storage: file_storage
        operators: [{{type: container}}]
    exporters:
      debug: {{}}
    extensions:
      file_storage: {{directory: /var/lib/otelcol}}
    service:
      extensions: [file_storage]
      pipelines:
        logs: {{receivers: [filelog], exporters: [debug]}}
"#
    );
    serde_yaml_ng::from_str(&text).expect("a valid manifest")
}

fn pod(cr: &OpenTelemetryCollector) -> PodSpec {
    let v = validate(cr, &defaults()).expect("an upstream manifest validates");
    let ds = build::children(&v).daemon_set;
    ds.spec.unwrap().template.spec.unwrap()
}

/// (volume name, path) pairs.
type Named = Vec<(String, String)>;

/// (volume name, host path) of every hostPath volume, and (name, mountPath) of every mount.
fn layout(p: &PodSpec) -> (Named, Named) {
    let volumes = p
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| Some((v.name.clone(), v.host_path.as_ref()?.path.clone())))
        .collect();
    let mounts = p.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| {
            (
                m.name.clone(),
                m.mount_path.trim_end_matches('/').to_string(),
            )
        })
        .collect();
    (volumes, mounts)
}

fn assert_unique(p: &PodSpec) {
    let (_, mounts) = layout(p);
    let paths: BTreeSet<_> = mounts.iter().map(|(_, p)| p).collect();
    assert_eq!(paths.len(), mounts.len(), "a mountPath twice: {mounts:?}");
    let names: Vec<_> = p.volumes.iter().flatten().map(|v| &v.name).collect();
    let unique: BTreeSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "a volume name twice: {names:?}");
    for (name, _) in &mounts {
        assert!(names.contains(&name), "mount {name} has no volume");
    }
}

#[test]
fn the_users_own_host_volumes_are_adopted_not_doubled() {
    let p = pod(&agent("", ""));
    assert_unique(&p);
    let (volumes, mounts) = layout(&p);
    // The user's volumes serve /var/log/pods and the checkpoint directory...
    assert!(
        mounts.contains(&("varlogpods".into(), "/var/log/pods".into())),
        "{mounts:?}"
    );
    assert!(
        mounts.contains(&("otelcol-state".into(), "/var/lib/otelcol".into())),
        "{mounts:?}"
    );
    assert!(
        !volumes.iter().any(|(n, _)| n.starts_with("checkpoints-")),
        "{volumes:?}"
    );
    // ...and the operator adds only what they leave out: docker's directory.
    assert!(
        mounts.contains(&(
            "varlibdockercontainers".into(),
            "/var/lib/docker/containers".into()
        )),
        "{mounts:?}"
    );
}

#[test]
fn a_parent_directory_mount_covers_the_log_directories() {
    let p = pod(&agent(
        "    - name: varlog\n      hostPath: {path: /var/log}\n    - name: docker\n      hostPath: {path: /var/lib/docker}",
        "    - name: varlog\n      mountPath: /var/log\n      readOnly: true\n    - name: docker\n      mountPath: /var/lib/docker\n      readOnly: true",
    ));
    assert_unique(&p);
    let (_, mounts) = layout(&p);
    let under_var_log: Vec<_> = mounts
        .iter()
        .filter(|(_, path)| path.starts_with("/var/log") || path.starts_with("/var/lib/docker"))
        .collect();
    assert_eq!(under_var_log.len(), 3, "{mounts:?}");
}

#[test]
fn a_volume_name_the_user_took_for_something_else_is_not_reused() {
    let p = pod(&agent(
        "    - name: varlibdockercontainers\n      emptyDir: {}",
        "    - name: varlibdockercontainers\n      mountPath: /scratch",
    ));
    assert_unique(&p);
    let (volumes, mounts) = layout(&p);
    assert!(mounts.contains(&("varlibdockercontainers".into(), "/scratch".into())));
    assert!(
        volumes.contains(&(
            "kotel-varlibdockercontainers".into(),
            "/var/lib/docker/containers".into()
        )),
        "{volumes:?}"
    );
}

#[test]
fn pod_fields_upstream_applies_reach_the_pod() {
    let mut cr = agent("", "");
    let extra: serde_json::Value = serde_json::json!({
        "initContainers": [{"name": "init", "image": "busybox", "command": ["true"]}],
        "additionalContainers": [{"name": "sidecar", "image": "busybox"}],
        "configmaps": [{"name": "extra-rules", "mountpath": "/rules/"}],
        "command": ["/kotelcol"],
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                        "whenUnsatisfiable": "ScheduleAnyway"}],
        "startupProbe": {"failureThreshold": 30},
        "hostUsers": false,
    });
    let mut spec = serde_json::to_value(&cr.spec).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    cr.spec = serde_json::from_value(spec).unwrap();
    let p = pod(&cr);
    assert_unique(&p);
    assert_eq!(p.init_containers.as_ref().unwrap()[0].name, "init");
    let names: Vec<_> = p.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["otc-container", "sidecar"]);
    let c = &p.containers[0];
    assert_eq!(c.command.as_deref(), Some(&["/kotelcol".to_string()][..]));
    let (_, mounts) = layout(&p);
    assert!(
        mounts.contains(&(
            "configmap-extra-rules".into(),
            "/var/conf/rules/configmap-extra-rules".into()
        )),
        "{mounts:?}"
    );
    assert_eq!(
        p.topology_spread_constraints.as_ref().unwrap()[0].topology_key,
        "zone"
    );
    assert_eq!(p.host_users, Some(false));
    // The config has no health_check extension: no probe to tune.
    assert!(c.startup_probe.is_none());
}
