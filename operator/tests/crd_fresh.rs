//! The committed CRD YAML must be what the Rust types generate: run `make crds` after changing
//! them.

use std::path::Path;

#[test]
fn committed_crds_are_up_to_date() {
    let generated = kotel_operator::crd::crd_yaml();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for path in [
        "crds/opentelemetry.io_opentelemetrycollectors.yaml",
        "manifests/base/crd.yaml",
        "manifests/helm/kotel-operator/crds/opentelemetry.io_opentelemetrycollectors.yaml",
    ] {
        let committed = std::fs::read_to_string(root.join(path))
            .unwrap_or_else(|e| panic!("{path}: {e}; run `make crds`"));
        assert!(
            committed == generated,
            "{path} is stale: run `make crds` and commit the result"
        );
    }
}

#[test]
fn crd_has_the_upstream_shape() {
    let crd = kotel_operator::crd::crd();
    assert_eq!(crd.spec.group, "opentelemetry.io");
    assert_eq!(crd.spec.names.kind, "OpenTelemetryCollector");
    assert_eq!(
        crd.spec.names.short_names.as_deref(),
        Some(&["otelcol".to_string(), "otelcols".to_string()][..])
    );
    let v = &crd.spec.versions[0];
    assert_eq!(v.name, "v1beta1");
    assert!(v.served && v.storage);
    let columns: Vec<_> = v
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        columns,
        ["Mode", "Version", "Ready", "Age", "Image", "Management"]
    );
    let scale = v
        .subresources
        .as_ref()
        .and_then(|s| s.scale.as_ref())
        .expect("scale subresource");
    assert_eq!(scale.status_replicas_path, ".status.scale.replicas");
    assert_eq!(
        scale.label_selector_path.as_deref(),
        Some(".status.scale.selector")
    );
}

/// Every field of upstream's v1beta1 `spec` (the common fields shared with its other CRDs, and
/// the collector's own), as its CRD names them: a manifest written for upstream never fails
/// kubectl's or the API server's strict field validation for a field kotel's schema lacks.
const UPSTREAM_V1BETA1_SPEC: &[&str] = &[
    // Common.
    "managementState",
    "args",
    "replicas",
    "serviceAccount",
    "ports",
    "volumes",
    "volumeMounts",
    "ipFamilyPolicy",
    "sessionAffinity",
    "sessionAffinityConfig",
    "resources",
    "nodeSelector",
    "podDisruptionBudget",
    "securityContext",
    "podSecurityContext",
    "podAnnotations",
    "image",
    "imagePullPolicy",
    "env",
    "envFrom",
    "tolerations",
    "affinity",
    "lifecycle",
    "terminationGracePeriodSeconds",
    "topologySpreadConstraints",
    "hostNetwork",
    "dnsPolicy",
    "hostPID",
    "shareProcessNamespace",
    "priorityClassName",
    "initContainers",
    "additionalContainers",
    "podDnsConfig",
    "ipFamilies",
    "trafficDistribution",
    "hostUsers",
    "hostAliases",
    // StatefulSet mode.
    "volumeClaimTemplates",
    "persistentVolumeClaimRetentionPolicy",
    "serviceName",
    "podManagementPolicy",
    // The collector's own.
    "mode",
    "upgradeStrategy",
    "config",
    "configVersions",
    "daemonSetUpdateStrategy",
    "deploymentUpdateStrategy",
    "autoscaler",
    "targetAllocator",
    "ingress",
    "httpRoute",
    "networkPolicy",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "observability",
    "configmaps",
    "command",
];

#[test]
fn every_upstream_v1beta1_spec_field_is_in_the_schema() {
    let crd = kotel_operator::crd::crd();
    let spec = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| s.properties.as_ref())
        .and_then(|p| p.get("spec"))
        .and_then(|s| s.properties.as_ref())
        .expect("spec properties");
    let missing: Vec<_> = UPSTREAM_V1BETA1_SPEC
        .iter()
        .filter(|f| !spec.contains_key(**f))
        .collect();
    assert!(
        missing.is_empty(),
        "upstream spec fields missing from the CRD: {missing:?}"
    );
}
