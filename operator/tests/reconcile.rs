//! Reconcile tests against an in-memory fake of the Kubernetes API: which calls the operator
//! makes, and that a steady state makes none that write.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use kotel_operator::controller::{Context, error_policy, reconcile};
use kotel_operator::crd::{FINALIZER, OpenTelemetryCollector};
use kotel_operator::metrics::Metrics;
use kotel_operator::rbac::KubeletPodsResource;
use kotel_operator::validate::OperatorDefaults;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};
use support::{Call, Fake};

const NS: &str = "observability";
const CR_PATH: &str =
    "/apis/opentelemetry.io/v1beta1/namespaces/observability/opentelemetrycollectors";

fn context(fake: &Arc<Fake>) -> Arc<Context> {
    let client = support::client(fake.clone(), NS);
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "kotel-operator".into(),
            instance: Some("test".into()),
        },
    );
    Arc::new(Context::new(
        client,
        OperatorDefaults {
            image: "ghcr.io/kotel-dev/kotelcol:0.0.0-test".into(),
            version: "0.0.0-test".into(),
            kubelet_pods: KubeletPodsResource::NodesPods,
            ..OperatorDefaults::default()
        },
        recorder,
        Arc::new(Metrics::default()),
    ))
}

/// Loads an example, stores it in the fake, returns its path.
fn seed(fake: &Fake, example: &str) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../manifests/examples")
            .join(example),
    )
    .unwrap();
    let mut cr: Value = serde_yaml_ng::from_str(&text).unwrap();
    seed_value(fake, &mut cr)
}

fn seed_value(fake: &Fake, cr: &mut Value) -> String {
    cr["metadata"]["namespace"] = json!(NS);
    cr["metadata"]["uid"] = json!("cr-uid");
    cr["metadata"]["generation"] = json!(1);
    cr["metadata"]["resourceVersion"] = json!("1");
    let path = format!("{CR_PATH}/{}", cr["metadata"]["name"].as_str().unwrap());
    fake.put(&path, cr.clone());
    path
}

fn load(fake: &Fake, path: &str) -> Arc<OpenTelemetryCollector> {
    Arc::new(serde_json::from_value(fake.get(path).expect("stored CR")).unwrap())
}

async fn reconcile_stored(fake: &Arc<Fake>, ctx: &Arc<Context>, path: &str) -> Action {
    reconcile(load(fake, path), ctx.clone())
        .await
        .expect("reconcile ok")
}

fn writes(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.writes())
        .map(|c| format!("{} {}", c.method, c.path))
        .collect()
}

/// What the DaemonSet controller would report once every pod runs the current template.
fn roll_out(fake: &Fake, ds_path: &str, nodes: i32) {
    let mut ds = fake.get(ds_path).expect("daemonset");
    let generation = ds["metadata"]["generation"].clone();
    ds["status"] = json!({
        "observedGeneration": generation,
        "currentNumberScheduled": nodes, "desiredNumberScheduled": nodes, "numberMisscheduled": 0,
        "numberReady": nodes, "updatedNumberScheduled": nodes, "numberAvailable": nodes,
    });
    fake.put(ds_path, ds);
}

fn ready_condition(fake: &Fake, path: &str) -> (String, String, String) {
    let cr = fake.get(path).unwrap();
    let c = cr["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    (
        c["status"].as_str().unwrap().into(),
        c["reason"].as_str().unwrap().into(),
        c["message"].as_str().unwrap().into(),
    )
}

const DS: &str = "/apis/apps/v1/namespaces/observability/daemonsets";

#[tokio::test]
async fn first_reconcile_creates_children_then_steady_state_writes_nothing() {
    let fake = Arc::new(Fake::default());
    let ctx = context(&fake);
    let path = seed(&fake, "k8s-attributes.yaml");

    reconcile_stored(&fake, &ctx, &path).await;
    let calls = fake.take_calls();
    let w = writes(&calls);
    let cm = w
        .iter()
        .find(|c| c.contains("/configmaps/k8s-attributes-collector-"))
        .expect("configmap applied")
        .clone();
    assert_eq!(
        w,
        vec![
            format!("PATCH {CR_PATH}/k8s-attributes"),
            "PATCH /api/v1/namespaces/observability/serviceaccounts/k8s-attributes-collector".to_string(),
            cm,
            "PATCH /apis/rbac.authorization.k8s.io/v1/clusterroles/k8s-attributes-observability-cluster-role".to_string(),
            "PATCH /apis/rbac.authorization.k8s.io/v1/clusterrolebindings/k8s-attributes-observability-collector".to_string(),
            "PATCH /api/v1/namespaces/observability/services/k8s-attributes-collector".to_string(),
            "PATCH /api/v1/namespaces/observability/services/k8s-attributes-collector-headless".to_string(),
            "PATCH /api/v1/namespaces/observability/services/k8s-attributes-collector-monitoring".to_string(),
            format!("PATCH {DS}/k8s-attributes-collector"),
            "POST /apis/events.k8s.io/v1/namespaces/observability/events".to_string(),
            format!("PATCH {CR_PATH}/k8s-attributes/status"),
            "POST /apis/events.k8s.io/v1/namespaces/observability/events".to_string(),
        ],
        "finalizer first, then children in dependency order, then status"
    );
    let cr = fake.get(&path).unwrap();
    assert_eq!(cr["metadata"]["finalizers"], json!([FINALIZER]));
    let (ready, reason, _) = ready_condition(&fake, &path);
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("False", "RolloutInProgress")
    );

    // The DaemonSet controller finishes the rollout: Ready turns True (one status write).
    roll_out(&fake, &format!("{DS}/k8s-attributes-collector"), 3);
    reconcile_stored(&fake, &ctx, &path).await;
    let w = writes(&fake.take_calls());
    assert_eq!(
        w,
        vec![
            format!("PATCH {CR_PATH}/k8s-attributes/status"),
            "POST /apis/events.k8s.io/v1/namespaces/observability/events".to_string(),
        ]
    );
    let (ready, reason, message) = ready_condition(&fake, &path);
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("True", "Reconciled"),
        "{message}"
    );
    let status = &fake.get(&path).unwrap()["status"];
    assert_eq!(status["scale"]["statusReplicas"], "3/3");
    assert_eq!(status["scale"]["replicas"], 3);
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(status["version"], "0.0.0-test");
    assert_eq!(status["image"], "ghcr.io/kotel-dev/kotelcol:0.0.0-test");

    // Steady state: reads only.
    for _ in 0..2 {
        let action = reconcile_stored(&fake, &ctx, &path).await;
        assert_eq!(action, Action::requeue(Duration::from_secs(300)));
        let calls = fake.take_calls();
        assert!(!calls.is_empty());
        assert_eq!(
            writes(&calls),
            Vec::<String>::new(),
            "steady state must not write"
        );
    }
}

#[tokio::test]
async fn invalid_config_reports_status_once_and_touches_no_child() {
    let fake = Arc::new(Fake::default());
    let ctx = context(&fake);
    let mut cr: Value = json!({
        "apiVersion": "opentelemetry.io/v1beta1", "kind": "OpenTelemetryCollector",
        "metadata": {"name": "broken"},
        "spec": {"mode": "daemonset", "config": {
            "receivers": {"otlp": {"protocols": {"grpc": {"endpointt": "0.0.0.0:4317"}}}},
            "exporters": {"debug": {}},
            "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["debug"]}}}
        }}
    });
    let path = seed_value(&fake, &mut cr);

    let action = reconcile_stored(&fake, &ctx, &path).await;
    assert_eq!(
        action,
        Action::await_change(),
        "bad input waits for an edit"
    );
    let calls = fake.take_calls();
    assert_eq!(
        writes(&calls),
        vec![
            format!("PATCH {CR_PATH}/broken/status"),
            "POST /apis/events.k8s.io/v1/namespaces/observability/events".to_string(),
        ]
    );
    // One read: whether a collector of an earlier spec runs (status must not claim one does).
    assert!(
        calls.iter().all(|c| c.path.starts_with(CR_PATH)
            || c.path.contains("/events")
            || (c.method == Method::GET && c.path.ends_with("/daemonsets/broken-collector"))),
        "no child was written, none but the DaemonSet read: {calls:?}"
    );
    let (ready, reason, message) = ready_condition(&fake, &path);
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("False", "InvalidConfig")
    );
    assert!(
        message.contains("receivers.otlp.protocols.grpc"),
        "{message}"
    );
    assert!(
        message.ends_with("nothing was rolled out"),
        "a new resource has no last good config: {message}"
    );
    let stalled = fake.get(&path).unwrap()["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Stalled")
        .unwrap()["status"]
        .clone();
    assert_eq!(stalled, "True");

    // Again: nothing new to say, nothing written.
    reconcile_stored(&fake, &ctx, &path).await;
    assert_eq!(writes(&fake.take_calls()), Vec::<String>::new());
}

#[tokio::test]
async fn bad_config_after_a_good_one_keeps_the_running_daemonset() {
    let fake = Arc::new(Fake::default());
    let ctx = context(&fake);
    let path = seed(&fake, "otlp.yaml");
    reconcile_stored(&fake, &ctx, &path).await;
    let ds_before = fake.get(&format!("{DS}/otlp-collector")).unwrap();
    fake.take_calls();

    let mut cr = fake.get(&path).unwrap();
    cr["spec"]["config"]["service"]["pipelines"]["traces"]["exporters"] = json!(["otlp/missing"]);
    cr["metadata"]["generation"] = json!(2);
    fake.put(&path, cr);
    reconcile_stored(&fake, &ctx, &path).await;
    let w = writes(&fake.take_calls());
    assert!(
        w.iter()
            .all(|c| c.contains("/status") || c.contains("/events")),
        "{w:?}"
    );
    assert_eq!(
        fake.get(&format!("{DS}/otlp-collector")).unwrap(),
        ds_before
    );
    let (_, reason, message) = ready_condition(&fake, &path);
    assert_eq!(reason, "UndefinedComponent");
    assert!(message.contains("otlp/missing"), "{message}");
}

#[tokio::test]
async fn unsupported_mode_is_reported() {
    let fake = Arc::new(Fake::default());
    let ctx = context(&fake);
    let mut cr: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples/otlp.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    cr["spec"]["mode"] = json!("deployment");
    let path = seed_value(&fake, &mut cr);
    assert_eq!(
        reconcile_stored(&fake, &ctx, &path).await,
        Action::await_change()
    );
    let (_, reason, _) = ready_condition(&fake, &path);
    assert_eq!(reason, "UnsupportedMode");
    assert!(fake.get(&format!("{DS}/otlp-collector")).is_none());
}

#[tokio::test]
async fn unmanaged_touches_nothing() {
    let fake = Arc::new(Fake::default());
    let ctx = context(&fake);
    let path = seed(&fake, "otlp.yaml");
    let mut cr = fake.get(&path).unwrap();
    cr["spec"]["managementState"] = json!("unmanaged");
    fake.put(&path, cr);
    assert_eq!(
        reconcile_stored(&fake, &ctx, &path).await,
        Action::await_change()
    );
    // Only status (so GitOps tools see the generation observed) and the Event saying so; no
    // child is read or written.
    let calls: Vec<String> = fake
        .take_calls()
        .iter()
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    assert_eq!(
        calls,
        vec![
            format!("PATCH {CR_PATH}/otlp/status"),
            "POST /apis/events.k8s.io/v1/namespaces/observability/events".to_string()
        ]
    );
    let (state, reason, _) = ready_condition(&fake, &path);
    assert_eq!((state.as_str(), reason.as_str()), ("Unknown", "Unmanaged"));
    // Steady: nothing at all.
    reconcile_stored(&fake, &ctx, &path).await;
    assert_eq!(fake.take_calls(), Vec::new());
}

#[tokio::test]
async fn deletion_removes_cluster_rbac_then_the_finalizer() {
    let fake = Arc::new(Fake::default());
    let ctx = context(&fake);
    let path = seed(&fake, "kubelet-metrics.yaml");
    reconcile_stored(&fake, &ctx, &path).await;
    let role = "/apis/rbac.authorization.k8s.io/v1/clusterroles/kubelet-metrics-observability-cluster-role";
    let role_json = fake.get(role).expect("cluster role");
    assert_eq!(
        role_json["rules"],
        json!([{"apiGroups": [""], "resources": ["nodes/stats"], "verbs": ["get"]}])
    );
    fake.take_calls();

    let mut cr = fake.get(&path).unwrap();
    cr["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    fake.put(&path, cr);
    assert_eq!(
        reconcile_stored(&fake, &ctx, &path).await,
        Action::await_change()
    );
    assert_eq!(
        writes(&fake.take_calls()),
        vec![
            "DELETE /apis/rbac.authorization.k8s.io/v1/clusterrolebindings/kubelet-metrics-observability-collector".to_string(),
            format!("DELETE {role}"),
            format!("PATCH {CR_PATH}/kubelet-metrics"),
        ]
    );
    assert_eq!(
        fake.get(&path).unwrap()["metadata"]["finalizers"],
        json!([])
    );
}

#[tokio::test]
async fn otlp_only_collector_gets_no_finalizer_and_no_cluster_role() {
    let fake = Arc::new(Fake::default());
    let ctx = context(&fake);
    let path = seed(&fake, "otlp.yaml");
    reconcile_stored(&fake, &ctx, &path).await;
    let w = writes(&fake.take_calls());
    assert!(!w.iter().any(|c| c.contains("clusterrole")), "{w:?}");
    assert!(!w.contains(&format!("PATCH {CR_PATH}/otlp")), "{w:?}");
    assert!(fake.get(&path).unwrap()["metadata"]["finalizers"].is_null());
}

#[tokio::test]
async fn config_change_rolls_a_new_configmap_and_prunes_beyond_config_versions() {
    let fake = Arc::new(Fake::default());
    let ctx = context(&fake);
    let path = seed(&fake, "otlp.yaml");
    let mut cr = fake.get(&path).unwrap();
    cr["spec"]["configVersions"] = json!(1);
    fake.put(&path, cr);

    let mut names = Vec::new();
    for batch in [100, 200, 300] {
        let mut cr = fake.get(&path).unwrap();
        cr["spec"]["config"]["processors"]["batch"] = json!({"send_batch_size": batch});
        fake.put(&path, cr);
        reconcile_stored(&fake, &ctx, &path).await;
        let ds = fake.get(&format!("{DS}/otlp-collector")).unwrap();
        let cm = ds["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        let hash = ds["spec"]["template"]["metadata"]["annotations"]["opentelemetry-operator-config/sha256"]
            .as_str()
            .unwrap();
        assert!(cm.ends_with(&hash[..8]), "{cm} vs {hash}");
        names.push(cm);
    }
    names.dedup();
    assert_eq!(names.len(), 3, "each config gets its own ConfigMap");
    let remaining: Vec<String> = fake
        .objects
        .lock()
        .unwrap()
        .keys()
        .filter(|k| k.contains("/configmaps/"))
        .map(|k| k.rsplit('/').next().unwrap().to_string())
        .collect();
    let mut expected = vec![names[1].clone(), names[2].clone()];
    expected.sort();
    assert_eq!(
        remaining, expected,
        "current + configVersions (1) older kept"
    );
}

#[tokio::test]
async fn api_failure_is_transient_and_backs_off() {
    let fake = Arc::new(Fake::default());
    let ctx = context(&fake);
    let path = seed(&fake, "otlp.yaml");
    *fake.fail.lock().unwrap() = Some((Method::PATCH, "/daemonsets/otlp-collector".to_string()));

    let cr = load(&fake, &path);
    let err = reconcile(cr.clone(), ctx.clone()).await.expect_err("fails");
    assert_eq!(err.category(), "kube_api");
    let (ready, reason, message) = ready_condition(&fake, &path);
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("False", "ReconcileError")
    );
    assert!(message.contains("DaemonSet otlp-collector"), "{message}");

    assert_eq!(
        error_policy(cr.clone(), &err, ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );
    assert_eq!(
        error_policy(cr.clone(), &err, ctx.clone()),
        Action::requeue(Duration::from_secs(10))
    );
    assert_eq!(
        error_policy(cr.clone(), &err, ctx.clone()),
        Action::requeue(Duration::from_secs(20))
    );

    // Recovery resets the backoff and reports Ready again.
    *fake.fail.lock().unwrap() = None;
    reconcile_stored(&fake, &ctx, &path).await;
    assert_eq!(
        error_policy(cr, &err, ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );
    let text = ctx.metrics.render();
    assert!(
        text.contains("kotel_operator_reconcile_errors_total{category=\"kube_api\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn values_the_api_server_normalises_need_no_write() {
    let fake = Arc::new(Fake::default());
    let ctx = context(&fake);
    let mut cr: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples/otlp.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    let spec = &mut cr["spec"];
    spec["resources"] = json!({"limits": {"cpu": "0.5", "memory": "1024Mi"},
                               "requests": {"cpu": "100.0m", "memory": "0.5Gi"}});
    spec["hostNetwork"] = json!(false);
    spec["env"] = json!([{"name": "EMPTY", "value": ""}]);
    spec["volumes"] =
        json!([{"name": "scratch", "emptyDir": {"medium": "", "sizeLimit": "0.5Gi"}}]);
    spec["volumeMounts"] = json!([{"name": "scratch", "mountPath": "/scratch", "readOnly": false}]);
    spec["tolerations"] = json!([{"operator": "Exists", "effect": ""}]);
    let path = seed_value(&fake, &mut cr);
    let ds_path = format!("{DS}/otlp-collector");
    reconcile_stored(&fake, &ctx, &path).await;
    roll_out(&fake, &ds_path, 3);
    reconcile_stored(&fake, &ctx, &path).await;
    fake.take_calls();

    // What a v1.33 API server stores for that apply: quantities canonical, the zero values of
    // non-pointer fields dropped, defaults added.
    let mut ds = fake.get(&ds_path).unwrap();
    let pod = &mut ds["spec"]["template"]["spec"];
    pod.as_object_mut().unwrap().remove("hostNetwork");
    pod["dnsPolicy"] = json!("ClusterFirst");
    pod["tolerations"] = json!([{"operator": "Exists"}]);
    pod["volumes"][1]["emptyDir"] = json!({"sizeLimit": "512Mi"});
    let c = &mut pod["containers"][0];
    c["resources"] = json!({"limits": {"cpu": "500m", "memory": "1Gi"},
                            "requests": {"cpu": "100m", "memory": "512Mi"}});
    c["terminationMessagePath"] = json!("/dev/termination-log");
    let empty = c["env"].as_array_mut().unwrap().last_mut().unwrap();
    assert_eq!(empty["name"], "EMPTY");
    empty.as_object_mut().unwrap().remove("value");
    let scratch = c["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .last_mut()
        .unwrap();
    assert_eq!(scratch["readOnly"], false);
    scratch.as_object_mut().unwrap().remove("readOnly");
    fake.put(&ds_path, ds);

    reconcile_stored(&fake, &ctx, &path).await;
    assert_eq!(writes(&fake.take_calls()), Vec::<String>::new());

    // A different amount is still a difference.
    let mut cr = fake.get(&path).unwrap();
    cr["spec"]["resources"]["limits"]["cpu"] = json!("501m");
    fake.put(&path, cr);
    reconcile_stored(&fake, &ctx, &path).await;
    let w = writes(&fake.take_calls());
    assert!(w.contains(&format!("PATCH {ds_path}")), "{w:?}");
}
