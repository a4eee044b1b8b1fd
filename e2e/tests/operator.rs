//! kotel-operator against a real API server (issue 4). Run with `make e2e`, or against any
//! cluster: `KUBECONFIG=... cargo test -p kotel-e2e --features e2e -- --test-threads=1`.
//!
//! Each test installs the CRD and the operator's RBAC (idempotent), runs its own operator
//! process with the operator ServiceAccount's token (never as admin, so a missing permission
//! fails the test), works in its own namespace and cleans up after itself. Lines starting with
//! `TIMING` are benchmark figures, not assertions.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::{Node, Pod, Service, ServiceAccount};
use kotel_e2e::kotel::{
    self, AuditCursor, Install, Operator, OperatorOptions, TestNs, apply, collector, observe,
    otlp_config, wait_ready,
};
use kotel_e2e::{Timings, admin_client, audit_log_path, kubectl, repo_root, wait_for};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

const READY_TIMEOUT: Duration = Duration::from_secs(120);

struct Env {
    client: Client,
    install: Install,
    nodes: usize,
}

static STALE_CHECKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

async fn env() -> Result<Env> {
    let client = admin_client().await?;
    let install = kotel::install(&client).await?;
    if !STALE_CHECKED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        // Namespaces an earlier, failed run left behind hold collectors that the operator under
        // test would otherwise reconcile too.
        kotel::delete_stale_namespaces(&client, &install).await?;
    }
    let nodes = kotel::schedulable_nodes(&client).await?.len();
    ensure!(nodes > 0, "the cluster has no schedulable Ready node");
    Ok(Env {
        client,
        install,
        nodes,
    })
}

async fn operator(env: &Env) -> Result<Operator> {
    Operator::start(&env.install, OperatorOptions::default()).await
}

/// A config using k8sattributes and kubeletstats, so the collector needs cluster RBAC.
fn k8s_config() -> Value {
    json!({
        "receivers": {
            "otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"}}},
            "kubeletstats": {
                "auth_type": "serviceAccount",
                "endpoint": "https://${env:K8S_NODE_NAME}:10250",
                "insecure_skip_verify": true,
                "collection_interval": "20s",
            },
        },
        "processors": {"k8sattributes": {}, "batch": {}},
        "exporters": {"debug": {}},
        "service": {"pipelines": {
            "traces": {"receivers": ["otlp"], "processors": ["k8sattributes", "batch"], "exporters": ["debug"]},
            "metrics": {"receivers": ["kubeletstats"], "processors": ["k8sattributes", "batch"], "exporters": ["debug"]},
        }},
    })
}

/// The OpenTelemetryCollector documents of manifests/examples/*.yaml, in daemonset mode.
fn example_collectors() -> Result<Vec<(String, Value)>> {
    let dir = repo_root().join("manifests/examples");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        for doc in kotel::yaml_docs(&text)? {
            if doc["kind"] == "OpenTelemetryCollector" && doc["spec"]["mode"] == "daemonset" {
                out.push((f.file_name().unwrap().to_string_lossy().into_owned(), doc));
            }
        }
    }
    Ok(out)
}

/// 1. Every example: DaemonSet, one Running pod per node, Ready with "n/n", printer columns.
#[tokio::test]
async fn examples_run_one_pod_per_node_and_report_ready() -> Result<()> {
    let env = env().await?;
    let examples = example_collectors()?;
    ensure!(
        !examples.is_empty(),
        "manifests/examples has no daemonset-mode OpenTelemetryCollector"
    );
    let mut op = operator(&env).await?;
    let ns = TestNs::create(&env.client, "examples").await?;
    let mut timings = Timings::default();
    for (file, mut doc) in examples {
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        doc["metadata"]["namespace"] = json!(ns.name);
        // An example that tolerates every taint would also land on the real node (tier 4), which
        // has none of these pods' images and is not counted here.
        if doc["spec"]["affinity"].is_null() {
            doc["spec"]["affinity"] = kotel::not_on_real_node();
        }
        let start = Instant::now();
        apply(&doc).with_context(|| format!("applying {file}"))?;
        let o = wait_ready(&env.client, &ns.name, &name, env.nodes, READY_TIMEOUT)
            .await
            .with_context(|| format!("example {file} ({name})"))?;
        timings.record(
            &format!("{file}: applied -> all pods Running and Ready"),
            start.elapsed(),
        );
        let ds = o.ds.expect("wait_ready saw the DaemonSet");
        let st = ds.status.clone().unwrap_or_default();
        ensure!(
            st.desired_number_scheduled as usize == env.nodes
                && st.number_ready as usize == env.nodes,
            "DaemonSet status {st:?}, want {} desired and ready",
            env.nodes
        );
        // `kubectl get otelcol` shows the printer columns with the ready count.
        let table = kubectl(&["get", "otelcol", "-n", &ns.name, &name])?;
        let header = table.lines().next().unwrap_or_default();
        for col in [
            "NAME",
            "MODE",
            "VERSION",
            "READY",
            "AGE",
            "IMAGE",
            "MANAGEMENT",
        ] {
            ensure!(header.contains(col), "column {col} missing from:\n{table}");
        }
        let want = format!("{n}/{n}", n = env.nodes);
        ensure!(
            table
                .lines()
                .nth(1)
                .is_some_and(|row| row.contains("daemonset") && row.contains(&want)),
            "row does not show daemonset and {want}:\n{table}"
        );
        println!("{table}");
    }
    op.check_running()?;
    ns.cleanup().await?;
    Ok(())
}

/// 2. A config change makes a new hashed ConfigMap and rolls every pod; old ConfigMaps are
/// pruned to spec.configVersions.
#[tokio::test]
async fn config_change_rolls_every_pod_and_prunes_old_config_maps() -> Result<()> {
    let env = env().await?;
    let mut op = operator(&env).await?;
    let ns = TestNs::create(&env.client, "rollout").await?;
    let name = "rollout";
    // Like upstream, the operator keeps the current ConfigMap plus `configVersions` older ones
    // (upstream keeps max(configVersions, 1) + 1).
    let versions = 1;
    apply(&collector(
        name,
        &ns.name,
        otlp_config("1s"),
        json!({"configVersions": versions}),
    ))?;
    let mut o = wait_ready(&env.client, &ns.name, name, env.nodes, READY_TIMEOUT).await?;
    let first_cm = o.pod_config_maps(name)[0].clone().expect("mounted config");
    let mut timings = Timings::default();
    for (i, timeout) in ["2s", "3s", "4s"].into_iter().enumerate() {
        let old_cm = o.pod_config_maps(name)[0].clone().expect("mounted config");
        let old_pods: Vec<String> = o.pods.iter().filter_map(|p| p.uid()).collect();
        let start = Instant::now();
        kotel::patch_spec(
            &env.client,
            &ns.name,
            name,
            json!({"config": {"processors": {"batch": {"timeout": timeout}}}}),
        )
        .await?;
        o = wait_for(
            &format!("rollout {} to a new config", i + 1),
            READY_TIMEOUT,
            || async {
                let o = wait_ready(&env.client, &ns.name, name, env.nodes, Duration::ZERO).await?;
                let cm = o.pod_config_maps(name)[0].clone();
                let replaced = o
                    .pods
                    .iter()
                    .all(|p| !old_pods.contains(&p.uid().unwrap_or_default()));
                Ok((cm.as_ref() != Some(&old_cm) && replaced).then_some(o))
            },
        )
        .await?;
        timings.record(
            &format!("config change {} -> rollout complete", i + 1),
            start.elapsed(),
        );
        let new_cm = o.pod_config_maps(name)[0].clone().unwrap();
        let data = kubectl(&["-n", &ns.name, "get", "configmap", &new_cm, "-o", "json"])?;
        ensure!(
            data.contains(timeout),
            "ConfigMap {new_cm} does not carry the new batch timeout {timeout}"
        );
    }
    // Pruning may trail the rollout by a reconcile.
    let cms = wait_for("old ConfigMaps pruned", Duration::from_secs(30), || async {
        let cms = kotel::config_maps(&env.client, &ns.name, name).await?;
        if cms.len() <= versions + 1 && !cms.contains(&first_cm) {
            Ok(Some(cms))
        } else {
            bail!(
                "{} ConfigMaps, want at most {}: {cms:?} (first: {first_cm})",
                cms.len(),
                versions + 1
            )
        }
    })
    .await?;
    println!("ConfigMaps after 3 changes with configVersions={versions}: {cms:?}");
    let current = o.pod_config_maps(name)[0].clone().unwrap();
    ensure!(
        cms.contains(&current),
        "the mounted ConfigMap {current} was pruned: {cms:?}"
    );
    op.check_running()?;
    ns.cleanup().await?;
    Ok(())
}

/// 3. A new node gets its pod and the status follows (kwok clusters only).
#[tokio::test]
async fn new_node_gets_a_pod_and_status_follows() -> Result<()> {
    let env = env().await?;
    if !kotel::kwok_nodes(&env.client).await? {
        println!("SKIP: the cluster's nodes are not kwok's; cannot add a node");
        return Ok(());
    }
    let mut op = operator(&env).await?;
    let ns = TestNs::create(&env.client, "nodes").await?;
    let name = "nodes";
    apply(&collector(name, &ns.name, otlp_config("1s"), json!({})))?;
    wait_ready(&env.client, &ns.name, name, env.nodes, READY_TIMEOUT).await?;
    let node = format!("{}-extra", ns.name);
    let start = Instant::now();
    apply(&kotel::kwok_node(&node))?;
    let result = async {
        let o = wait_ready(&env.client, &ns.name, name, env.nodes + 1, READY_TIMEOUT).await?;
        Timings::default().record(
            "new node -> its pod Running, status updated",
            start.elapsed(),
        );
        ensure!(
            o.pods
                .iter()
                .any(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&node)),
            "no pod on the new node {node}"
        );
        // And back: the node goes away, the pod with it, the status follows again.
        Api::<Node>::all(env.client.clone())
            .delete(&node, &DeleteParams::default())
            .await?;
        wait_ready(&env.client, &ns.name, name, env.nodes, READY_TIMEOUT).await?;
        Ok(())
    }
    .await;
    let _ = Api::<Node>::all(env.client.clone())
        .delete(&node, &DeleteParams::default())
        .await;
    result?;
    op.check_running()?;
    ns.cleanup().await?;
    Ok(())
}

/// 4. An invalid config leaves Ready False with a reason and an Event, and the DaemonSet as it
/// was; a resource invalid from the start gets no DaemonSet at all.
#[tokio::test]
async fn invalid_config_is_reported_and_changes_nothing() -> Result<()> {
    let env = env().await?;
    let mut op = operator(&env).await?;
    let ns = TestNs::create(&env.client, "invalid").await?;
    let name = "invalid";
    apply(&collector(name, &ns.name, otlp_config("1s"), json!({})))?;
    let before = wait_ready(&env.client, &ns.name, name, env.nodes, READY_TIMEOUT).await?;
    let ds_before = before.ds.clone().unwrap();

    // A pipeline naming a receiver that is not configured.
    let mut bad = otlp_config("1s");
    bad["service"]["pipelines"]["traces"]["receivers"] = json!(["otlp", "nosuchreceiver"]);
    kotel::patch_spec(&env.client, &ns.name, name, json!({"config": bad})).await?;
    let o = wait_for(
        "Ready=False for the invalid config",
        Duration::from_secs(60),
        || async {
            let o = observe(&env.client, &ns.name, name).await?;
            Ok((o.observed_current_generation() && o.ready() == Some("False")).then_some(o))
        },
    )
    .await?;
    let cond = o.condition("Ready").cloned().unwrap();
    let reason = cond["reason"].as_str().unwrap_or_default().to_owned();
    let message = cond["message"].as_str().unwrap_or_default();
    println!("Ready=False reason={reason} message={message}");
    ensure!(
        !reason.is_empty() && reason != "RolloutInProgress",
        "want a reason naming the problem, got {cond}"
    );
    ensure!(
        message.contains("nosuchreceiver"),
        "the message should name the undefined receiver: {cond}"
    );
    let event = wait_for(
        "a Warning Event with the reason",
        Duration::from_secs(30),
        || async {
            let events = kotel::events_for(&env.client, &ns.name, name).await?;
            Ok(events.into_iter().find(|e| {
                e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some(&reason)
            }))
        },
    )
    .await?;
    println!("Event: {:?} {:?}", event.reason, event.message);
    // Give a (wrong) operator time to touch the DaemonSet, then check it did not.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = observe(&env.client, &ns.name, name).await?;
    let ds_after = after.ds.clone().context("the DaemonSet was deleted")?;
    ensure!(
        ds_after.metadata.generation == ds_before.metadata.generation
            && ds_after.spec == ds_before.spec,
        "the DaemonSet changed after an invalid config (generation {:?} -> {:?})",
        ds_before.metadata.generation,
        ds_after.metadata.generation
    );
    ensure!(after.running_pods() == env.nodes, "pods were disturbed");

    // Configs that kotel-config once passed and only the collector's build refused (their pods
    // would crash-loop): each is InvalidConfig, named by path, and the DaemonSet stays as it was.
    let build_only: Vec<(&str, Value)> = vec![
        (
            "sending_queue.sizer",
            json!({"exporters": {"debug": {}, "otlp": {"endpoint": "b:4317", "sending_queue": {"sizer": "bytes"}}}}),
        ),
        (
            "metadata_keys",
            json!({"processors": {"batch": {"metadata_keys": ["tenant"]}}}),
        ),
        (
            "transport",
            json!({"receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "/run/otlp.sock", "transport": "unix"}}}}}),
        ),
        (
            "exclude.pods[0].name",
            json!({"processors": {"batch": {}, "k8s_attributes": {"exclude": {"pods": [{"name": "(unclosed"}]}}}}),
        ),
    ];
    for (path, patch) in build_only {
        let mut config = otlp_config("1s");
        kotel::deep_merge(&mut config, patch);
        if config["processors"]["k8s_attributes"].is_object() {
            config["service"]["pipelines"]["traces"]["processors"] =
                json!(["k8s_attributes", "batch"]);
        }
        replace_config(&env.client, &ns.name, name, config).await?;
        let cond = wait_for(
            &format!("InvalidConfig naming {path}"),
            Duration::from_secs(60),
            || async {
                let o = observe(&env.client, &ns.name, name).await?;
                let c = o.condition("Ready").cloned().unwrap_or_default();
                let ok = o.observed_current_generation()
                    && c["reason"] == "InvalidConfig"
                    && c["message"].as_str().is_some_and(|m| m.contains(path));
                Ok(ok.then_some(c))
            },
        )
        .await?;
        println!("{path}: {}", cond["message"]);
        let now = observe(&env.client, &ns.name, name).await?;
        let ds_now = now.ds.clone().context("the DaemonSet was deleted")?;
        ensure!(
            ds_now.spec == ds_before.spec,
            "{path}: the DaemonSet changed after a config its collector cannot run"
        );
    }

    // Invalid from the start: status says why, nothing is created.
    let fresh = "invalid-from-start";
    apply(&collector(fresh, &ns.name, bad.clone(), json!({})))?;
    wait_for(
        "Ready=False on the fresh invalid resource",
        Duration::from_secs(60),
        || async {
            let o = observe(&env.client, &ns.name, fresh).await?;
            Ok((o.ready() == Some("False")).then_some(()))
        },
    )
    .await?;
    ensure!(
        kotel::daemon_set(&env.client, &ns.name, fresh)
            .await?
            .is_none(),
        "an invalid resource got a DaemonSet"
    );
    // Fixing the config recovers.
    replace_config(&env.client, &ns.name, name, otlp_config("1s")).await?;
    wait_ready(&env.client, &ns.name, name, env.nodes, READY_TIMEOUT).await?;
    op.check_running()?;
    ns.cleanup().await?;
    Ok(())
}

/// An upstream-style node agent (its own `varlogpods` hostPath, Service fields upstream passes
/// through) applies unchanged and becomes Ready; a child the API server refuses for its content
/// (a mount path twice) is `Stalled/RejectedByAPIServer` with the server's message, the running
/// DaemonSet untouched, and an edit recovers.
#[tokio::test]
async fn upstream_manifest_applies_and_refused_children_stall() -> Result<()> {
    let env = env().await?;
    let mut op = operator(&env).await?;
    let ns = TestNs::create(&env.client, "upstream").await?;
    let name = "agent";
    let mut config = otlp_config("1s");
    kotel::deep_merge(
        &mut config,
        json!({"receivers": {"filelog": {"include": ["/var/log/pods/*/*/*.log"],
                                          "operators": [{"type": "container"}]}},
               "service": {"pipelines": {"logs": {"receivers": ["filelog"], "exporters": ["debug"]}}}}),
    );
    let spec = json!({
        "volumes": [{"name": "varlogpods", "hostPath": {"path": "/var/log/pods"}}],
        "volumeMounts": [{"name": "varlogpods", "mountPath": "/var/log/pods", "readOnly": true}],
        "ipFamilyPolicy": "SingleStack",
        "sessionAffinity": "ClientIP",
    });
    apply(&collector(name, &ns.name, config.clone(), spec.clone()))?;
    let o = wait_ready(&env.client, &ns.name, name, env.nodes, READY_TIMEOUT).await?;
    let ds = o.ds.clone().context("no DaemonSet")?;
    let pod = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .context("no pod spec")?;
    let mounts: Vec<(String, String)> = pod.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.clone(), m.mount_path.clone()))
        .collect();
    println!("mounts: {mounts:?}");
    ensure!(
        mounts.iter().filter(|(_, p)| p == "/var/log/pods").count() == 1
            && mounts.contains(&("varlogpods".into(), "/var/log/pods".into())),
        "the user's /var/log/pods mount should be the only one there: {mounts:?}"
    );
    let svc: Service = Api::namespaced(env.client.clone(), &ns.name)
        .get(&format!("{name}-collector"))
        .await?;
    let svc_spec = svc.spec.context("Service without spec")?;
    ensure!(
        svc_spec.session_affinity.as_deref() == Some("ClientIP")
            && svc_spec.ip_family_policy.as_deref() == Some("SingleStack"),
        "Service fields not passed through: {svc_spec:?}"
    );

    // A second mount at the same path: the API server refuses the DaemonSet.
    let mut twice = spec.clone();
    twice["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "scratch", "emptyDir": {}}));
    twice["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "scratch", "mountPath": "/var/log/pods"}));
    kotel::patch_spec(&env.client, &ns.name, name, twice).await?;
    let cond = wait_for(
        "Stalled with RejectedByAPIServer",
        Duration::from_secs(60),
        || async {
            let o = observe(&env.client, &ns.name, name).await?;
            let ready = o.condition("Ready").cloned().unwrap_or_default();
            let stalled = o.condition("Stalled").cloned().unwrap_or_default();
            let ok = o.observed_current_generation()
                && ready["reason"] == "RejectedByAPIServer"
                && stalled["status"] == "True";
            Ok(ok.then_some(ready))
        },
    )
    .await?;
    let message = cond["message"].as_str().unwrap_or_default();
    println!("refused: {message}");
    ensure!(
        message.contains("/var/log/pods") && message.contains("keeps its last good config"),
        "the message should carry the API server's words and say the collector still runs: {message}"
    );
    let now = observe(&env.client, &ns.name, name).await?;
    ensure!(
        now.ds.as_ref().and_then(|d| d.spec.as_ref()) == ds.spec.as_ref(),
        "the DaemonSet changed after a refused spec"
    );
    ensure!(now.running_pods() == env.nodes, "pods were disturbed");

    // The edit back recovers.
    kotel::patch_spec(&env.client, &ns.name, name, spec).await?;
    wait_ready(&env.client, &ns.name, name, env.nodes, READY_TIMEOUT).await?;
    op.check_running()?;
    ns.cleanup().await?;
    Ok(())
}

/// Sets `spec.config` whole (a merge patch would keep keys of the config before).
async fn replace_config(client: &Client, ns: &str, name: &str, config: Value) -> Result<()> {
    let api = kotel::otelcols(client, ns);
    let mut obj = api.get(name).await?;
    obj.data["spec"]["config"] = config;
    api.replace(name, &kube::api::PostParams::default(), &obj)
        .await?;
    Ok(())
}

/// 5. The collector's ServiceAccount may do what its components need and nothing more.
#[tokio::test]
async fn collector_service_account_has_exactly_what_it_needs() -> Result<()> {
    let env = env().await?;
    let mut op = operator(&env).await?;
    let ns = TestNs::create(&env.client, "rbac").await?;
    let c = &env.client;
    let (full, plain) = ("k8s", "plain");
    apply(&collector(full, &ns.name, k8s_config(), json!({})))?;
    apply(&collector(plain, &ns.name, otlp_config("1s"), json!({})))?;
    wait_ready(c, &ns.name, full, env.nodes, READY_TIMEOUT).await?;
    wait_ready(c, &ns.name, plain, env.nodes, READY_TIMEOUT).await?;
    let sa = format!("{full}-collector");
    let n = ns.name.as_str();
    let mut failures = Vec::new();
    // (verb, group, resource, namespace, allowed?)
    let checks: &[(&str, &str, &str, Option<&str>, bool)] = &[
        // k8sattributes: pod and namespace metadata, deployments through replicasets.
        ("list", "", "pods", None, true),
        ("watch", "", "pods", None, true),
        ("get", "", "namespaces", None, true),
        ("watch", "", "namespaces", None, true),
        ("list", "apps", "replicasets", None, true),
        // kubeletstats with a service-account token.
        ("get", "", "nodes/stats", None, true),
        // Nothing more.
        ("create", "", "pods", Some(n), false),
        ("delete", "", "pods", Some(n), false),
        ("patch", "", "pods", None, false),
        ("get", "", "secrets", Some(n), false),
        ("list", "", "secrets", None, false),
        ("list", "", "configmaps", None, false),
        ("get", "", "nodes/proxy", None, false),
        ("create", "", "pods/exec", Some(n), false),
        ("update", "", "nodes", None, false),
        ("list", "apps", "deployments", None, false),
        (
            "create",
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            None,
            false,
        ),
        (
            "escalate",
            "rbac.authorization.k8s.io",
            "clusterroles",
            None,
            false,
        ),
        ("impersonate", "", "serviceaccounts", None, false),
        ("create", "", "serviceaccounts/token", Some(n), false),
    ];
    for &(verb, group, resource, namespace, want) in checks {
        let got = kotel::can(c, n, &sa, verb, group, resource, namespace).await?;
        let line =
            format!("{sa} {verb} {group}/{resource} in {namespace:?}: allowed={got} want={want}");
        println!("{line}");
        if got != want {
            failures.push(line);
        }
    }
    // A config that needs no API access gets no cluster permissions at all.
    let plain_sa = format!("{plain}-collector");
    for (verb, resource) in [
        ("list", "pods"),
        ("get", "nodes/stats"),
        ("list", "namespaces"),
    ] {
        if kotel::can(c, n, &plain_sa, verb, "", resource, None).await? {
            failures.push(format!(
                "{plain_sa} may {verb} {resource} but its config needs nothing"
            ));
        }
    }
    let plain_roles = kotel::cluster_children(n, plain)?;
    if !plain_roles.is_empty() {
        failures.push(format!(
            "{plain} has cluster RBAC it does not need: {plain_roles:?}"
        ));
    }
    ensure!(
        failures.is_empty(),
        "RBAC mismatches:\n{}",
        failures.join("\n")
    );
    op.check_running()?;
    ns.cleanup().await?;
    Ok(())
}

/// Issue 16: `--collector-rbac-allow` limits what auto-RBAC grants: the collector's
/// ServiceAccount gets the listed part of what its config needs, and the resource names the rest.
#[tokio::test]
async fn an_rbac_allow_list_limits_what_collectors_get_and_names_the_rest() -> Result<()> {
    let env = env().await?;
    let opts = OperatorOptions {
        rbac_allow: Some("pods,namespaces,nodes/stats".into()),
        ..Default::default()
    };
    let mut op = Operator::start(&env.install, opts).await?;
    let ns = TestNs::create(&env.client, "rbac-allow").await?;
    let (c, n, name) = (&env.client, ns.name.as_str(), "limited");
    apply(&collector(name, n, k8s_config(), json!({})))?;
    let o = wait_ready(c, n, name, env.nodes, READY_TIMEOUT).await?;
    let sa = format!("{name}-collector");
    for (verb, group, resource, want) in [
        ("watch", "", "pods", true),
        ("list", "", "namespaces", true),
        ("get", "", "nodes/stats", true),
        // k8sattributes would read ReplicaSets for k8s.deployment.name: withheld.
        ("list", "apps", "replicasets", false),
    ] {
        let got = kotel::can(c, n, &sa, verb, group, resource, None).await?;
        ensure!(
            got == want,
            "{sa} {verb} {group}/{resource}: allowed={got}, want {want}"
        );
    }
    let withheld = o
        .condition("CollectorRBACWithheld")
        .context("no CollectorRBACWithheld condition")?;
    let message = withheld["message"].as_str().unwrap_or_default();
    ensure!(
        withheld["status"] == "True"
            && message.contains("get,list,watch replicasets.apps")
            && message.contains(&sa),
        "CollectorRBACWithheld: {withheld}"
    );
    op.check_running()?;
    ns.cleanup().await?;
    Ok(())
}

/// 6. Deleting the resource removes every child, cluster-scoped RBAC included; deleting a
/// namespace holding a collector does not hang.
#[tokio::test]
async fn deletion_removes_every_child_and_namespaces_do_not_hang() -> Result<()> {
    let env = env().await?;
    let mut op = operator(&env).await?;
    let c = &env.client;
    let ns = TestNs::create(c, "delete").await?;
    let name = "gone";
    apply(&collector(name, &ns.name, k8s_config(), json!({})))?;
    wait_ready(c, &ns.name, name, env.nodes, READY_TIMEOUT).await?;
    let children = kotel::children_versions(&ns.name, name)?;
    println!("children: {:?}", children.keys().collect::<Vec<_>>());
    for kind in [
        "DaemonSet/",
        "ServiceAccount/",
        "ConfigMap/",
        "ClusterRole/",
        "ClusterRoleBinding/",
    ] {
        ensure!(
            children.keys().any(|k| k.starts_with(kind)),
            "no {kind} child found by label app.kubernetes.io/instance={}.{name}: {children:?}",
            ns.name
        );
    }
    let sa_name = format!("{name}-collector");
    let start = Instant::now();
    kubectl(&[
        "-n",
        &ns.name,
        "delete",
        "otelcol",
        name,
        "--wait=true",
        "--timeout=60s",
    ])?;
    let gone = wait_for("every child gone", Duration::from_secs(60), || async {
        let left = kotel::children_versions(&ns.name, name)?;
        let pods = Api::<Pod>::namespaced(c.clone(), &ns.name)
            .list(&ListParams::default())
            .await?
            .items
            .len();
        let sa = Api::<ServiceAccount>::namespaced(c.clone(), &ns.name)
            .get_opt(&sa_name)
            .await?;
        if left.is_empty() && pods == 0 && sa.is_none() {
            Ok(Some(()))
        } else {
            bail!(
                "left: {left:?}, pods: {pods}, service account present: {}",
                sa.is_some()
            )
        }
    })
    .await;
    gone?;
    Timings::default().record("delete -> every child gone", start.elapsed());
    ns.cleanup().await?;

    // Deleting the namespace with a live collector (and its finalizer) must finish.
    let ns2 = TestNs::create(c, "nsdelete").await?;
    apply(&collector(name, &ns2.name, k8s_config(), json!({})))?;
    wait_ready(c, &ns2.name, name, env.nodes, READY_TIMEOUT).await?;
    ensure!(
        !kotel::cluster_children(&ns2.name, name)?.is_empty(),
        "no cluster RBAC to clean up"
    );
    let start = Instant::now();
    kubectl(&[
        "delete",
        "namespace",
        &ns2.name,
        "--wait=true",
        "--timeout=120s",
    ])
    .context("namespace deletion hung")?;
    Timings::default().record("namespace delete -> gone", start.elapsed());
    let left = kotel::cluster_children(&ns2.name, name)?;
    ensure!(
        left.is_empty(),
        "cluster RBAC left after namespace deletion: {left:?}"
    );
    op.check_running()?;
    Ok(())
}

/// 7a. SIGKILL mid-reconcile, restart: converges, nothing duplicated.
#[tokio::test]
async fn sigkill_mid_reconcile_then_restart_converges_without_duplicates() -> Result<()> {
    let env = env().await?;
    let c = &env.client;
    let ns = TestNs::create(c, "sigkill").await?;
    let name = "crashy";
    let mut op = operator(&env).await?;
    apply(&collector(
        name,
        &ns.name,
        k8s_config(),
        json!({"configVersions": 2}),
    ))?;
    // Kill as soon as the operator has started writing children.
    wait_for(
        "the operator to start writing",
        Duration::from_secs(60),
        || async { Ok(kotel::daemon_set(c, &ns.name, name).await?.map(|_| ())) },
    )
    .await?;
    op.kill()?;
    // Change the config while it is down.
    let mut cfg = k8s_config();
    cfg["processors"]["batch"] = json!({"timeout": "7s"});
    kotel::patch_spec(c, &ns.name, name, json!({"config": cfg})).await?;
    let start = Instant::now();
    let mut op = operator(&env).await?;
    let o = wait_for("convergence on the new config", READY_TIMEOUT, || async {
        let o = wait_ready(c, &ns.name, name, env.nodes, Duration::ZERO).await?;
        let cm = o.pod_config_maps(name)[0].clone().unwrap_or_default();
        let data = kubectl(&["-n", &ns.name, "get", "configmap", &cm, "-o", "json"])?;
        Ok(data.contains("7s").then_some(o))
    })
    .await?;
    Timings::default().record("restart after SIGKILL -> converged", start.elapsed());
    // Exactly one of everything.
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for p in &o.pods {
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        *per_node.entry(node).or_default() += 1;
    }
    ensure!(
        per_node.values().all(|&n| n == 1),
        "pods per node: {per_node:?}"
    );
    let children = kotel::children_versions(&ns.name, name)?;
    let count = |prefix: &str| children.keys().filter(|k| k.starts_with(prefix)).count();
    ensure!(count("DaemonSet/") == 1, "DaemonSets: {children:?}");
    ensure!(
        count("ServiceAccount/") == 1,
        "ServiceAccounts: {children:?}"
    );
    ensure!(count("ClusterRole/") == 1, "ClusterRoles: {children:?}");
    ensure!(
        count("ClusterRoleBinding/") == 1,
        "ClusterRoleBindings: {children:?}"
    );
    let cms = wait_for(
        "ConfigMaps pruned to 2",
        Duration::from_secs(30),
        || async {
            let cms = kotel::config_maps(c, &ns.name, name).await?;
            Ok((cms.len() <= 2).then_some(cms))
        },
    )
    .await?;
    println!("ConfigMaps: {cms:?}");
    let finalizers = o.cr.finalizers().to_vec();
    let mut dedup = finalizers.clone();
    dedup.sort();
    dedup.dedup();
    ensure!(
        dedup.len() == finalizers.len(),
        "duplicate finalizers: {finalizers:?}"
    );
    op.check_running()?;
    ns.cleanup().await?;
    Ok(())
}

/// 7b. Two replicas under leader election: only the leader reconciles; the other takes over
/// when the leader dies.
#[tokio::test]
async fn with_two_replicas_only_the_leader_writes() -> Result<()> {
    let env = env().await?;
    let c = &env.client;
    let ns = TestNs::create(c, "leader").await?;
    let lease = format!("{}-lease", ns.name);
    let opts = |id: &str| OperatorOptions {
        lease: Some(lease.clone()),
        identity: Some(format!("{}-{id}", ns.name)),
        ..OperatorOptions::default()
    };
    let a = Operator::start(&env.install, opts("a")).await?;
    let b = Operator::start(&env.install, opts("b")).await?;
    let mut ops = [a, b];
    let leader = wait_for("exactly one leader", Duration::from_secs(60), || async {
        let l: Vec<f64> = ops
            .iter()
            .map(|o| o.metric_sum("kotel_operator_leader", ""))
            .collect::<Result<_>>()?;
        Ok(match l.as_slice() {
            [a, b] if *a == 1.0 && *b == 0.0 => Some(0),
            [a, b] if *a == 0.0 && *b == 1.0 => Some(1),
            _ => None,
        })
    })
    .await?;
    let follower = 1 - leader;
    println!(
        "leader: {}, follower: {}",
        ops[leader].name, ops[follower].name
    );
    let name = "elected";
    apply(&collector(name, &ns.name, otlp_config("1s"), json!({})))?;
    wait_ready(c, &ns.name, name, env.nodes, READY_TIMEOUT).await?;
    let followed = ops[follower].metric_sum("kotel_operator_reconciles_total", "")?;
    ensure!(followed == 0.0, "the follower reconciled {followed} times");
    ensure!(
        ops[leader].metric_sum("kotel_operator_reconciles_total", "")? > 0.0,
        "the leader never reconciled"
    );
    // The leader dies without releasing the lease; the follower takes over.
    ops[leader].kill()?;
    let start = Instant::now();
    kotel::patch_spec(
        c,
        &ns.name,
        name,
        json!({"config": {"processors": {"batch": {"timeout": "9s"}}}}),
    )
    .await?;
    wait_for(
        "the follower to take over and roll out",
        Duration::from_secs(120),
        || async {
            let o = wait_ready(c, &ns.name, name, env.nodes, Duration::ZERO).await?;
            let cm = o.pod_config_maps(name)[0].clone().unwrap_or_default();
            let data = kubectl(&["-n", &ns.name, "get", "configmap", &cm, "-o", "json"])?;
            Ok(data.contains("9s").then_some(()))
        },
    )
    .await?;
    Timings::default().record(
        "leader SIGKILL -> follower rolled out a change",
        start.elapsed(),
    );
    ensure!(ops[follower].metric_sum("kotel_operator_leader", "")? == 1.0);
    ops[follower].check_running()?;
    ns.cleanup().await?;
    Ok(())
}

/// 8. Steady state: a restart (a full resync) and an irrelevant edit cause no writes.
#[tokio::test]
async fn steady_state_makes_no_writes() -> Result<()> {
    let env = env().await?;
    let c = &env.client;
    let ns = TestNs::create(c, "steady").await?;
    let name = "steady";
    let mut op = operator(&env).await?;
    let setup = audit_log_path().map(|p| AuditCursor::now(&p)).transpose()?;
    apply(&collector(name, &ns.name, k8s_config(), json!({})))?;
    wait_ready(c, &ns.name, name, env.nodes, READY_TIMEOUT).await?;
    // Let the last status write and events land.
    tokio::time::sleep(Duration::from_secs(3)).await;
    if let Some(setup) = &setup {
        // The audit log does see this operator's writes (else "no writes" below proves nothing).
        let n = setup.writes_by(&env.install.username())?.len();
        ensure!(
            n > 0,
            "no audit entries for {} while it created a collector",
            env.install.username()
        );
        println!("audit log: {n} writes by the operator to create the collector");
    }
    let versions = kotel::children_versions(&ns.name, name)?;
    let audit = audit_log_path().map(|p| AuditCursor::now(&p)).transpose()?;

    // A fresh operator reconciles everything from scratch: the same as a resync.
    op.kill()?;
    let mut op = operator(&env).await?;
    wait_for(
        "the new operator to reconcile",
        Duration::from_secs(60),
        || async {
            Ok((op.metric_sum("kotel_operator_reconciles_total", "")? >= 1.0).then_some(()))
        },
    )
    .await?;
    // An edit that changes nothing the operator renders.
    let before = op.metric_sum("kotel_operator_reconciles_total", "")?;
    kotel::otelcols(c, &ns.name)
        .patch(
            name,
            &PatchParams::default(),
            // Argo CD's own annotations describe the resource, not its children.
            &Patch::Merge(
                json!({"metadata": {"annotations": {"argocd.argoproj.io/sync-wave": "5"}}}),
            ),
        )
        .await?;
    wait_for(
        "a reconcile of the edit",
        Duration::from_secs(30),
        || async {
            Ok((op.metric_sum("kotel_operator_reconciles_total", "")? > before).then_some(()))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let after = kotel::children_versions(&ns.name, name)?;
    ensure!(
        after == versions,
        "children were rewritten:\nbefore {versions:?}\nafter  {after:?}"
    );
    match audit {
        Some(cursor) => {
            // Only this collector's objects: its namespace, and cluster-scoped names carrying it.
            let writes: Vec<_> = cursor
                .writes_by(&env.install.username())?
                .into_iter()
                .filter(|w| w.namespace == ns.name || w.name.contains(&ns.name))
                .collect();
            for w in &writes {
                println!(
                    "write: {} {} {}/{} -> {}",
                    w.verb, w.resource, w.namespace, w.name, w.code
                );
            }
            ensure!(
                writes.is_empty(),
                "{} API writes in steady state",
                writes.len()
            );
            println!(
                "audit log: 0 writes by {} across restart + edit",
                env.install.username()
            );
        }
        None => println!("NOTE: no audit log for this cluster; checked resourceVersions only"),
    }
    op.check_running()?;
    ns.cleanup().await?;
    Ok(())
}

/// 9. The Helm chart lints; `helm template` and the kustomize base pass a server-side dry run.
#[tokio::test]
async fn helm_chart_and_kustomize_base_pass_server_side_dry_run() -> Result<()> {
    let env = env().await?;
    let chart = repo_root().join("manifests/helm/kotel-operator");
    let chart = chart.to_str().unwrap();
    let helm = kotel_e2e::helm_bin();
    let run = |args: &[&str]| -> Result<String> {
        let out = kotel_e2e::run(std::process::Command::new(&helm).args(args), None)?;
        ensure!(
            out.status.success(),
            "helm {} failed:\n{}{}",
            args.join(" "),
            out.stdout,
            out.stderr
        );
        Ok(out.stdout)
    };
    println!("{}", run(&["lint", chart])?);
    let rendered = run(&[
        "template",
        "kotel",
        chart,
        "--namespace",
        &env.install.namespace,
        "--include-crds",
    ])?;
    ensure!(
        rendered.contains("kind: Deployment"),
        "helm template renders no Deployment"
    );
    let dry = |args: &[&str], stdin: Option<&str>| {
        let mut a = vec![
            "apply",
            "--server-side",
            "--dry-run=server",
            "--force-conflicts",
            "--field-manager=kotel-e2e-dry-run",
        ];
        a.extend_from_slice(args);
        kotel_e2e::kubectl_stdin(&a, stdin)
    };
    println!(
        "{}",
        dry(&["-f", "-"], Some(&rendered)).context("helm template: server-side dry run")?
    );
    let base = repo_root().join("manifests/base");
    println!(
        "{}",
        dry(&["-k", base.to_str().unwrap()], None)
            .context("kustomize base: server-side dry run")?
    );
    // Both install the same CRD as crds/ (which `make crds` generates).
    let crd = std::fs::read_to_string(
        repo_root().join("crds/opentelemetry.io_opentelemetrycollectors.yaml"),
    )?;
    let in_chart =
        std::fs::read_to_string(repo_root().join(
            "manifests/helm/kotel-operator/crds/opentelemetry.io_opentelemetrycollectors.yaml",
        ))?;
    ensure!(
        crd == in_chart,
        "the chart's CRD differs from crds/ (run make crds)"
    );
    Ok(())
}

/// The image of the collector container of a collector's DaemonSet.
async fn collector_image(client: &Client, ns: &str, name: &str) -> Result<String> {
    let ds = kotel::daemon_set(client, ns, name)
        .await?
        .context("no DaemonSet")?;
    kotel::collector_image(&ds).context("no collector container")
}

/// Issue 14: an operator upgrade (a new version whose default collector image is new) rolls
/// every collector that does not pin `spec.image`; a pinned one stays, and so does one with
/// `upgradeStrategy: none`, whose status says what it holds back. Events name the image change,
/// not a config change. Config with deprecated names is accepted and reported in a condition.
#[tokio::test]
async fn operator_upgrade_rolls_unpinned_collectors_only() -> Result<()> {
    let env = env().await?;
    let (old, new, pinned) = (
        "ghcr.io/kotel-dev/kotelcol:1.0.0-e2e",
        "ghcr.io/kotel-dev/kotelcol:1.1.0-e2e",
        "registry.example/own/kotelcol:0.9.0",
    );
    let start = |image: &str| {
        Operator::start(
            &env.install,
            OperatorOptions {
                collector_image: Some(image.to_string()),
                ..OperatorOptions::default()
            },
        )
    };
    let mut op = start(old).await?;
    let ns = TestNs::create(&env.client, "upgrade").await?;
    // An old upstream config: the logging exporter with its loglevel.
    let mut deprecated = otlp_config("1s");
    deprecated["exporters"] = json!({"logging": {"loglevel": "info"}});
    deprecated["service"]["pipelines"]["traces"]["exporters"] = json!(["logging"]);
    let resources = [
        ("follows", json!({})),
        ("pinned", json!({"image": pinned})),
        ("held", json!({"upgradeStrategy": "none"})),
        ("legacy", json!({})),
    ];
    for (name, extra) in &resources {
        let config = if *name == "legacy" {
            deprecated.clone()
        } else {
            otlp_config("1s")
        };
        apply(&collector(name, &ns.name, config, extra.clone()))?;
    }
    for (name, _) in &resources {
        let o = wait_ready(&env.client, &ns.name, name, env.nodes, READY_TIMEOUT).await?;
        let want = if *name == "pinned" {
            "0.9.0"
        } else {
            "1.0.0-e2e"
        };
        ensure!(
            o.cr.data["status"]["version"] == want,
            "{name}: status.version {} (want {want})",
            o.cr.data["status"]["version"]
        );
    }
    let legacy = observe(&env.client, &ns.name, "legacy").await?;
    let note = legacy
        .condition("ConfigDeprecated")
        .context("no ConfigDeprecated condition on a config with the logging exporter")?;
    ensure!(
        note["status"] == "True"
            && note["message"]
                .as_str()
                .is_some_and(|m| m.contains("exporters.logging")),
        "{note}"
    );
    ensure!(
        observe(&env.client, &ns.name, "follows")
            .await?
            .condition("ConfigDeprecated")
            .is_none(),
        "a current config is reported deprecated"
    );
    let pinned_generation = kotel::daemon_set(&env.client, &ns.name, "pinned")
        .await?
        .and_then(|d| d.metadata.generation);

    // The upgrade: the old operator stops, the new one starts.
    op.kill()?;
    let mut op = start(new).await?;
    for name in ["follows", "legacy"] {
        wait_for(
            &format!("{name} rolled to {new}"),
            READY_TIMEOUT,
            || async {
                let o = wait_ready(&env.client, &ns.name, name, env.nodes, Duration::ZERO).await?;
                let image = collector_image(&env.client, &ns.name, name).await?;
                Ok((image == new && o.cr.data["status"]["version"] == "1.1.0-e2e").then_some(()))
            },
        )
        .await?;
        let events = kotel::events_for(&env.client, &ns.name, name).await?;
        let count = |reason: &str| {
            events
                .iter()
                .filter(|e| e.reason.as_deref() == Some(reason))
                .count()
        };
        ensure!(
            count("ImageChanged") == 1 && count("ConfigApplied") == 1,
            "{name}: want one ConfigApplied (the first rollout) and one ImageChanged, got {:?}",
            events.iter().map(|e| e.reason.clone()).collect::<Vec<_>>()
        );
    }
    let held = wait_for(
        "held reports the upgrade it holds back",
        Duration::from_secs(30),
        || async {
            let o = observe(&env.client, &ns.name, "held").await?;
            Ok(o.condition("UpgradeHeld").is_some().then_some(o))
        },
    )
    .await?;
    let c = held.condition("UpgradeHeld").expect("present");
    ensure!(
        c["status"] == "True"
            && c["message"]
                .as_str()
                .is_some_and(|m| m.contains(new) && m.contains(old)),
        "{c}"
    );
    ensure!(
        held.ready() == Some("True"),
        "held is not Ready: {:?}",
        held.condition("Ready")
    );
    ensure!(
        collector_image(&env.client, &ns.name, "held").await? == old,
        "held was rolled"
    );
    ensure!(held.cr.data["status"]["version"] == "1.0.0-e2e");
    ensure!(collector_image(&env.client, &ns.name, "pinned").await? == pinned);
    let now = kotel::daemon_set(&env.client, &ns.name, "pinned")
        .await?
        .and_then(|d| d.metadata.generation);
    ensure!(
        now == pinned_generation,
        "the pinned DaemonSet was written: {pinned_generation:?} → {now:?}"
    );

    // `automatic` lets the held one roll.
    kotel::patch_spec(
        &env.client,
        &ns.name,
        "held",
        json!({"upgradeStrategy": "automatic"}),
    )
    .await?;
    wait_for("held rolls once automatic", READY_TIMEOUT, || async {
        let o = wait_ready(&env.client, &ns.name, "held", env.nodes, Duration::ZERO).await?;
        let image = collector_image(&env.client, &ns.name, "held").await?;
        Ok((image == new && o.condition("UpgradeHeld").is_none()).then_some(()))
    })
    .await?;
    op.check_running()?;
    ns.cleanup().await?;
    Ok(())
}

/// Issue 14: a rollout that cannot finish (pods that no node can take) is Stalled with
/// ProgressDeadlineExceeded once the deadline passes, naming the pods; the earlier config's
/// ConfigMap is still there, and reverting the change recovers.
#[tokio::test]
async fn a_rollout_past_its_deadline_stalls_and_reverting_recovers() -> Result<()> {
    let env = env().await?;
    let mut op = Operator::start(
        &env.install,
        OperatorOptions {
            progress_deadline_secs: Some(15),
            ..OperatorOptions::default()
        },
    )
    .await?;
    let ns = TestNs::create(&env.client, "deadline").await?;
    let name = "deadline";
    apply(&collector(name, &ns.name, otlp_config("1s"), json!({})))?;
    let o = wait_ready(&env.client, &ns.name, name, env.nodes, READY_TIMEOUT).await?;
    let good_cm = o.pod_config_maps(name)[0].clone().expect("mounted config");
    // No node has a thousand CPUs: the new pods stay Pending.
    kotel::patch_spec(
        &env.client,
        &ns.name,
        name,
        json!({"resources": {"requests": {"cpu": "1000"}},
               "config": {"processors": {"batch": {"timeout": "2s"}}}}),
    )
    .await?;
    let stalled = wait_for(
        "Stalled after the deadline",
        Duration::from_secs(90),
        || async {
            let o = observe(&env.client, &ns.name, name).await?;
            let stalled = o.condition("Stalled").cloned().unwrap_or_default();
            Ok((stalled["status"] == "True" && o.observed_current_generation()).then_some(stalled))
        },
    )
    .await?;
    ensure!(stalled["reason"] == "ProgressDeadlineExceeded", "{stalled}");
    let message = stalled["message"].as_str().unwrap_or_default();
    ensure!(message.contains("within 15s"), "{message}");
    let cms = kotel::config_maps(&env.client, &ns.name, name).await?;
    ensure!(
        cms.contains(&good_cm),
        "the last good ConfigMap {good_cm} is gone: {cms:?}"
    );
    let reconciling = observe(&env.client, &ns.name, name).await?;
    ensure!(
        reconciling
            .condition("Reconciling")
            .is_some_and(|c| c["status"] == "False"),
        "kstatus would say InProgress, not Failed"
    );

    // The revert: the earlier spec, the earlier ConfigMap.
    kotel::patch_spec(
        &env.client,
        &ns.name,
        name,
        json!({"resources": null, "config": {"processors": {"batch": {"timeout": "1s"}}}}),
    )
    .await?;
    let o = wait_ready(&env.client, &ns.name, name, env.nodes, READY_TIMEOUT).await?;
    ensure!(o.pod_config_maps(name)[0].as_deref() == Some(good_cm.as_str()));
    ensure!(
        o.condition("Stalled")
            .is_some_and(|c| c["status"] == "False")
    );
    op.check_running()?;
    ns.cleanup().await?;
    Ok(())
}

/// Issue 14: field ownership as GitOps tools see it. Every write of the operator is under its
/// own field manager (the finalizer too: a plain merge patch would record it as `unknown`), and
/// a second manager applying the same manifest takes it without a conflict; applying it again
/// changes nothing.
#[tokio::test]
async fn every_write_is_under_the_operators_field_manager() -> Result<()> {
    let env = env().await?;
    let mut op = operator(&env).await?;
    let ns = TestNs::create(&env.client, "owners").await?;
    let name = "owners";
    // Cluster RBAC, so the operator adds its finalizer.
    let manifest = collector(name, &ns.name, k8s_config(), json!({}));
    apply(&manifest)?;
    let o = wait_ready(&env.client, &ns.name, name, env.nodes, READY_TIMEOUT).await?;
    ensure!(
        !o.cr.finalizers().is_empty(),
        "no finalizer on a collector with cluster RBAC"
    );
    let managers: Vec<(String, String, String)> =
        o.cr.metadata
            .managed_fields
            .iter()
            .flatten()
            .map(|m| {
                (
                    m.manager.clone().unwrap_or_default(),
                    m.subresource.clone().unwrap_or_default(),
                    serde_json::to_string(&m.fields_v1).unwrap_or_default(),
                )
            })
            .collect();
    ensure!(
        managers
            .iter()
            .all(|(m, ..)| m != "unknown" && !m.is_empty()),
        "a write without a field manager: {managers:?}"
    );
    let owns = |sub: &str, field: &str| {
        managers
            .iter()
            .any(|(m, s, f)| m == "kotel-operator" && s == sub && f.contains(field))
    };
    ensure!(
        owns("", "f:finalizers"),
        "the finalizer is not the operator's: {managers:?}"
    );
    ensure!(
        owns("status", "f:conditions"),
        "status is not the operator's: {managers:?}"
    );

    // A GitOps controller applies the same manifest under its own name: no conflict, and the
    // second time no change at all.
    let as_manager = |manager: &str| {
        kotel_e2e::kubectl_stdin(
            &[
                "apply",
                "--server-side",
                &format!("--field-manager={manager}"),
                "-f",
                "-",
                "-o",
                "jsonpath={.metadata.resourceVersion}",
            ],
            Some(&manifest.to_string()),
        )
    };
    as_manager("argocd-controller").context("a second field manager conflicted")?;
    let first = as_manager("argocd-controller")?;
    let again = as_manager("argocd-controller")?;
    let e2e = as_manager("kotel-e2e")?;
    ensure!(
        first == again && again == e2e,
        "re-applying the same manifest changed the object: {first} → {again} → {e2e}"
    );
    op.check_running()?;
    ns.cleanup().await?;
    Ok(())
}

/// Issue 13: a collector the upstream operator made is taken over in place. Its DaemonSet has
/// upstream's selector (`app.kubernetes.io/managed-by: opentelemetry-operator`), which cannot
/// change, and kotel's is the same, so the apply succeeds instead of being refused. The
/// children carry upstream's labels and the resource's annotations; the headless Service is
/// there for load-balancing exporters.
#[tokio::test]
async fn an_upstream_made_collector_is_taken_over_in_place() -> Result<()> {
    let env = env().await?;
    let mut op = operator(&env).await?;
    let ns = TestNs::create(&env.client, "takeover").await?;
    let name = "takeover";
    let selector = json!({
        "app.kubernetes.io/component": "opentelemetry-collector",
        "app.kubernetes.io/instance": format!("{}.{name}", ns.name),
        "app.kubernetes.io/managed-by": "opentelemetry-operator",
        "app.kubernetes.io/part-of": "opentelemetry",
    });
    // What the upstream operator left: its DaemonSet (labels and selector as upstream sets them).
    kotel_e2e::kubectl_stdin(
        &["apply", "--server-side", "--field-manager=manager", "-f", "-"],
        Some(&json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": format!("{name}-collector"), "namespace": ns.name, "labels": selector},
            "spec": {"selector": {"matchLabels": selector}, "template": {
                "metadata": {"labels": selector},
                "spec": {"containers": [{"name": "otc-container", "image": "otel/opentelemetry-collector-k8s:0.149.0"}]}}}
        }).to_string()),
    )?;
    let mut resource = collector(name, &ns.name, otlp_config("1s"), json!({}));
    resource["metadata"]["annotations"] = json!({"team.example/owner": "observability"});
    apply(&resource)?;
    wait_ready(&env.client, &ns.name, name, env.nodes, READY_TIMEOUT).await?;
    let ds = kotel::daemon_set(&env.client, &ns.name, name)
        .await?
        .context("no DaemonSet")?;
    ensure!(
        ds.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kotel.dev/managed-by"))
            .map(String::as_str)
            == Some("kotel-operator"),
        "the DaemonSet was not taken over: {:?}",
        ds.metadata.labels
    );
    let services: Api<Service> = Api::namespaced(env.client.clone(), &ns.name);
    let headless = services.get(&format!("{name}-collector-headless")).await?;
    let spec = headless.spec.clone().unwrap_or_default();
    ensure!(spec.cluster_ip.as_deref() == Some("None"), "{spec:?}");
    let labels = headless.metadata.labels.clone().unwrap_or_default();
    ensure!(
        labels
            .get("operator.opentelemetry.io/collector-service-type")
            .map(String::as_str)
            == Some("headless")
            && labels
                .get("app.kubernetes.io/managed-by")
                .map(String::as_str)
                == Some("opentelemetry-operator"),
        "{labels:?}"
    );
    let base = services.get(&format!("{name}-collector")).await?;
    ensure!(
        base.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("team.example/owner"))
            .map(String::as_str)
            == Some("observability"),
        "the resource's annotation did not reach its Service: {:?}",
        base.metadata.annotations
    );
    op.check_running()?;
    ns.cleanup().await?;
    Ok(())
}

/// Issue 16: the collector pods meet Pod Security Admission's `restricted` level when the config
/// needs nothing from the node (non-root, no privilege escalation, every capability dropped,
/// seccomp RuntimeDefault); one that reads node log files is refused there, and status names
/// the policy instead of waiting for the deadline.
#[tokio::test]
async fn pod_security_restricted_admits_otlp_and_names_the_policy_for_host_access() -> Result<()> {
    let env = env().await?;
    let mut op = operator(&env).await?;
    let ns = TestNs::create(&env.client, "psa").await?;
    kubectl(&[
        "label",
        "namespace",
        &ns.name,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    ])?;
    apply(&collector(
        "gateway",
        &ns.name,
        otlp_config("1s"),
        json!({}),
    ))?;
    wait_ready(&env.client, &ns.name, "gateway", env.nodes, READY_TIMEOUT)
        .await
        .context("an OTLP-only collector must run under the restricted level")?;

    let logs = json!({
        "receivers": {"filelog": {
            "include": ["/var/log/pods/*/*/*.log"],
            "operators": [{"type": "container"}],
        }},
        "exporters": {"debug": {}},
        "service": {"pipelines": {"logs": {"receivers": ["filelog"], "exporters": ["debug"]}}},
    });
    apply(&collector("logs", &ns.name, logs, json!({})))?;
    let stalled = wait_for(
        "the refused collector Stalled",
        Duration::from_secs(90),
        || async {
            let o = observe(&env.client, &ns.name, "logs").await?;
            let s = o.condition("Stalled").cloned().unwrap_or_default();
            Ok((s["status"] == "True").then_some(s))
        },
    )
    .await?;
    let message = stalled["message"].as_str().unwrap_or_default();
    ensure!(stalled["reason"] == "PodsFailing", "{stalled}");
    ensure!(
        message.contains("FailedCreate")
            && message.contains("PodSecurity")
            && message.contains("restricted"),
        "the policy is not named: {message}"
    );
    op.check_running()?;
    ns.cleanup().await?;
    Ok(())
}

/// Issue 16.4: the API server unreachable for the operator (E2E_API_OUTAGE_SECONDS, 20 by
/// default; BENCHMARKS.md has a run of minutes). The operator reaches it through a proxy the test
/// cuts: it keeps running (without leader election; a leader that cannot renew exits, as
/// upstream's, and its Deployment restarts it), the collector it made keeps running, and once the
/// API server is back it rolls out the change a user made meanwhile.
// Two worker threads: the proxy forwards for the operator while this test waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_outage_pauses_the_operator_and_it_catches_up() -> Result<()> {
    let env = env().await?;
    let mut proxy = kotel_testkit::proxy::Proxy::start(kotel_e2e::api_server_addr().await?);
    let opts = OperatorOptions {
        api_proxy_port: Some(proxy.port),
        ..Default::default()
    };
    let mut op = Operator::start(&env.install, opts).await?;
    let ns = TestNs::create(&env.client, "api-outage").await?;
    let name = "outage";
    apply(&collector(name, &ns.name, otlp_config("1s"), json!({})))?;
    let o = wait_ready(&env.client, &ns.name, name, env.nodes, READY_TIMEOUT).await?;
    let old_cm = o.pod_config_maps(name)[0].clone().expect("mounted config");
    let pods: Vec<String> = o.pods.iter().filter_map(|p| p.uid()).collect();

    proxy.cut().await;
    println!("API outage begins at {}", kotel_e2e::utc_now());
    let outage = Duration::from_secs(
        std::env::var("E2E_API_OUTAGE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20),
    );
    // A user's change the operator cannot see yet (the test's own client is not behind the proxy).
    kotel::patch_spec(
        &env.client,
        &ns.name,
        name,
        json!({"config": {"processors": {"batch": {"timeout": "2s"}}}}),
    )
    .await?;
    tokio::time::sleep(outage).await;
    op.check_running()?;
    let during = observe(&env.client, &ns.name, name).await?;
    ensure!(
        during
            .pods
            .iter()
            .filter_map(|p| p.uid())
            .collect::<Vec<_>>()
            == pods,
        "the collector's pods changed while the operator could not reach the API server"
    );

    proxy.restore();
    let restored = Instant::now();
    println!("API outage ends at {}", kotel_e2e::utc_now());
    // A liveness bound: the watches retry with a backoff (up to a minute apart), and after a
    // short outage their reconnects have been seen to fail for 48–331 s (issue 16, open: the
    // proxy accepts each of them only when the client gives up on it).
    wait_for(
        "the change made during the outage to roll out",
        Duration::from_secs(600),
        || async {
            let o = wait_ready(&env.client, &ns.name, name, env.nodes, Duration::ZERO).await?;
            let cm = o.pod_config_maps(name)[0].clone();
            Ok((cm.as_ref() != Some(&old_cm)).then_some(()))
        },
    )
    .await?;
    // A slow catch-up has been seen only in the full suite: whether the operator's reconnects
    // reached the proxy at all tells a client-side wait from a forwarding one.
    let accepted = proxy.accepted_since(restored);
    println!(
        "the proxy accepted {} connection(s) after the restore, at {:?} (upstream connect failed: {})",
        accepted.len(),
        accepted
            .iter()
            .map(|(d, _)| format!("{:.1}s", d.as_secs_f64()))
            .collect::<Vec<_>>(),
        accepted.iter().filter(|(_, failed)| *failed).count()
    );
    println!(
        "TIMING operator catch-up after a {}s API outage (back to the rollout Ready): {:.2}s",
        outage.as_secs(),
        restored.elapsed().as_secs_f64()
    );
    op.check_running()?;
    ns.cleanup().await?;
    proxy.cut().await;
    Ok(())
}
