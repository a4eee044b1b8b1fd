//! The mission as one path, on the real node (`make node-up`, started by `make cluster-up`): the
//! operator installed in the cluster from `manifests/base`, its collector pods run by a real
//! kubelet and containerd, a workload writing numbered log lines and sending numbered OTLP, and
//! everything arriving at the suite's backend exactly once with its Kubernetes attributes.
//!
//! The node's address is the host side of the pod bridge, so pods reach the kubelet
//! (`${env:K8S_NODE_IP}:10250`) and the suite's backend (which listens there) as on a real
//! cluster. The node agent uses the host network, so that apps reach its OTLP port on their
//! node's address, as the upstream chart's agent with host ports does.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kotel_e2e::backend::{Backend, Row};
use kotel_e2e::kotel::{self, TestNs, apply, observe, wait_ready};
use kotel_e2e::{Timings, admin_client, kubectl, kubectl_raw, repo_root, run, wait_for};
use kube::api::{Api, DeleteParams, ListParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

const NODE_LABEL: &str = "kotel.dev/real-node";
const READY_TIMEOUT: Duration = Duration::from_secs(180);
const DATA_TIMEOUT: Duration = Duration::from_secs(180);
const WORKLOAD_IMAGE: &str = concat!("kotel.local/e2e-workload:", env!("CARGO_PKG_VERSION"));

struct Env {
    client: Client,
    /// The real node's name, which is its address.
    node: String,
}

/// The real node, and the operator running on it from the manifests users apply.
async fn env() -> Result<Env> {
    let client = admin_client().await?;
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default().labels(&format!("{NODE_LABEL}=true")))
        .await?;
    let Some(node) = nodes.items.first() else {
        bail!(
            "no node labelled {NODE_LABEL}=true: start the real node with `make node-up` \
             (make cluster-up starts it where containerd, runc and the kubelet are installed)"
        );
    };
    let node = node.name_any();
    install_operator()?;
    Ok(Env { client, node })
}

/// `kubectl apply --server-side -k e2e/overlays/real-node` (manifests/base placed on the real
/// node), then waits for the operator's Deployment to be available.
fn install_operator() -> Result<()> {
    let overlay = repo_root().join("e2e/overlays/real-node");
    kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=kotel-e2e",
        "-k",
        overlay.to_str().expect("utf-8 path"),
    ])?;
    wait_operator_available()
}

/// Waits for the operator's Deployment to finish its rollout.
fn wait_operator_available() -> Result<()> {
    let out = kubectl_raw(
        &[
            "-n",
            "kotel-system",
            "rollout",
            "status",
            "deployment/kotel-operator",
            "--timeout=180s",
        ],
        None,
    )?;
    if !out.status.success() {
        let pods = kubectl_raw(&["-n", "kotel-system", "get", "pods", "-o", "wide"], None)?;
        let logs = kubectl_raw(
            &[
                "-n",
                "kotel-system",
                "logs",
                "deployment/kotel-operator",
                "--tail=30",
            ],
            None,
        )?;
        bail!(
            "the operator did not become available: {}{}\n{}\n{}{}",
            out.stdout,
            out.stderr,
            pods.stdout,
            logs.stdout,
            logs.stderr
        );
    }
    Ok(())
}

/// What places a pod on the real node (it is tainted so the kwok suites never use it).
fn on_real_node() -> Value {
    json!({
        "nodeSelector": {NODE_LABEL: "true"},
        "tolerations": [{"key": NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
    })
}

fn merge(into: &mut Value, from: &Value) {
    if let (Some(a), Some(b)) = (into.as_object_mut(), from.as_object()) {
        for (k, v) in b {
            a.insert(k.clone(), v.clone());
        }
    }
}

/// Waits for the collector's pods to be gone (host ports free for the next collector).
async fn wait_no_pods(client: &Client, ns: &str, prefix: &str) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    wait_for(
        &format!("pods {prefix}* in {ns} gone"),
        Duration::from_secs(120),
        || {
            let pods = pods.clone();
            async move {
                let left = pods
                    .list(&ListParams::default())
                    .await?
                    .items
                    .into_iter()
                    .filter(|p| p.name_any().starts_with(prefix))
                    .count();
                Ok((left == 0).then_some(()))
            }
        },
    )
    .await
}

/// Deletes the namespace and waits until it is gone (its pods stopped and their ports free).
async fn cleanup(client: &Client, ns: TestNs) -> Result<()> {
    let name = ns.name.clone();
    ns.cleanup().await?;
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    wait_for(
        &format!("namespace {name} gone"),
        Duration::from_secs(180),
        || {
            let api = api.clone();
            let name = name.clone();
            async move { Ok(api.get_opt(&name).await?.is_none().then_some(())) }
        },
    )
    .await
}

/// An HTTP status from the kubelet's /stats/summary with a bearer token.
fn kubelet_status_with(node_ip: &str, token: &str) -> Result<String> {
    let out = run(
        std::process::Command::new("curl")
            .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
            .arg(format!("Authorization: Bearer {token}"))
            .arg(format!("https://{node_ip}:10250/stats/summary")),
        None,
    )?;
    Ok(out.stdout.trim().to_string())
}

fn token_for(ns: &str, sa: &str) -> Result<String> {
    Ok(
        kubectl(&["-n", ns, "create", "token", sa, "--duration=10m"])?
            .trim()
            .to_string(),
    )
}

fn pod_service_account(ds: &DaemonSet) -> String {
    ds.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_default()
}

/// 1. The examples, as a user applies them (the image is the one the operator defaults to, which
///    the node has from a local archive; only the placement and the backend differ): each becomes a Ready pod on the real node, with the collector's
///    health check as readiness, and status Ready 1/1. The kubelet answers the kubelet-metrics
///    collector's token and refuses (403) the token of a collector without kubeletstats.
#[tokio::test]
async fn examples_become_ready_on_the_real_node() -> Result<()> {
    let env = env().await?;
    let backend = Backend::start(&format!("{}:0", env.node)).await?;
    let ns = TestNs::create(&env.client, "real-examples").await?;
    // Cleaned up whatever happens, so a failure leaves nothing on the node.
    let result: Result<()> = async {
        let mut timings = Timings::default();
        let dir = repo_root().join("manifests/examples");
        let mut files: Vec<_> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        let mut statuses = BTreeMap::new();
        for f in files {
            let file = f.file_name().unwrap().to_string_lossy().into_owned();
            for mut doc in kotel::yaml_docs(&std::fs::read_to_string(&f)?)? {
                if doc["kind"] != "OpenTelemetryCollector" {
                    continue;
                }
                let name = doc["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                doc["metadata"]["namespace"] = json!(ns.name);
                // No cluster DNS here: the backend is the suite's, on the node's address.
                if doc["spec"]["config"]["exporters"]["otlp"].is_object() {
                    doc["spec"]["config"]["exporters"]["otlp"]["endpoint"] =
                        json!(backend.addr().to_string());
                }
                let mut placement = on_real_node();
                if doc["spec"]["tolerations"].is_array() {
                    placement.as_object_mut().unwrap().remove("tolerations");
                }
                merge(&mut doc["spec"], &placement);

                let start = Instant::now();
                apply(&doc).with_context(|| format!("applying {file}"))?;
                let o = wait_ready(&env.client, &ns.name, &name, 1, READY_TIMEOUT)
                    .await
                    .with_context(|| {
                        format!("{file} on the real node: {}", describe_pods(&ns.name))
                    })?;
                timings.record(
                    &format!("real node: {file} applied -> Ready 1/1"),
                    start.elapsed(),
                );
                let pod = &o.pods[0];
                ensure!(
                    pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
                        == Some(env.node.as_str()),
                    "{file}: pod not on the real node"
                );
                let ds = o.ds.clone().expect("Ready has a DaemonSet");
                let sa = pod_service_account(&ds);
                statuses.insert(
                    name.clone(),
                    kubelet_status_with(&env.node, &token_for(&ns.name, &sa)?)?,
                );
                if name == "kubelet-metrics" {
                    // Real values from the real kubelet reach the backend.
                    wait_for("kubelet metrics at the backend", DATA_TIMEOUT, || async {
                        let pts = backend.points();
                        let node_cpu = pts
                            .iter()
                            .any(|p| p.text == "k8s.node.cpu.time" && p.value > 0.0);
                        let pod_mem = pts.iter().any(|p| {
                            p.text == "k8s.pod.memory.working_set"
                                && p.value > 0.0
                                && p.attr("k8s.pod.name").is_some()
                        });
                        Ok((node_cpu && pod_mem).then_some(()))
                    })
                    .await?;
                }
                kubectl(&["-n", &ns.name, "delete", "otelcol", &name, "--wait=true"])?;
                wait_no_pods(&env.client, &ns.name, &format!("{name}-collector")).await?;
            }
        }
        println!("kubelet /stats/summary with each collector's token: {statuses:?}");
        ensure!(
            statuses.get("kubelet-metrics").map(String::as_str) == Some("200"),
            "the kubelet-metrics collector's token must read /stats/summary: {statuses:?}"
        );
        for (name, code) in &statuses {
            if name != "kubelet-metrics" {
                ensure!(
                    code == "403",
                    "{name} has no kubeletstats, so the kubelet must refuse its token: {code}"
                );
            }
        }
        Ok(())
    }
    .await;
    let cleaned = cleanup(&env.client, ns).await;
    result.and(cleaned)
}

/// Pods of a namespace with their phase and container states, for error messages.
fn describe_pods(ns: &str) -> String {
    kubectl_raw(
        &[
            "-n",
            ns,
            "get",
            "pods",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.status.containerStatuses[*].state}{\"\\n\"}{end}",
        ],
        None,
    )
    .map(|o| o.stdout + &o.stderr)
    .unwrap_or_default()
}

/// A node agent as the upstream chart's presets make it together: container logs (filelog,
/// checkpoints on the node), kubelet metrics, OTLP from apps, all enriched by k8sattributes.
fn node_agent_config(ns: &str, backend: &str, batch_timeout: &str) -> Value {
    json!({
        "receivers": {
            "filelog": {
                "include": [format!("/var/log/pods/{ns}_*/*/*.log")],
                "start_at": "beginning",
                "include_file_path": true,
                "storage": "file_storage",
                "operators": [{"type": "container", "id": "container-parser"}],
            },
            "kubeletstats": {
                "collection_interval": "5s",
                "auth_type": "serviceAccount",
                "endpoint": "https://${env:K8S_NODE_IP}:10250",
                "insecure_skip_verify": true,
                "metric_groups": ["node", "pod", "container"],
            },
            "otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"}}},
        },
        "processors": {
            "k8s_attributes": {
                "filter": {"node_from_env_var": "K8S_NODE_NAME"},
                // A restarted collector resumes from its checkpoint at once: without this, the
                // first records would pass before the pod cache is filled (as upstream).
                "wait_for_metadata": true,
                "pod_association": [
                    {"sources": [{"from": "resource_attribute", "name": "k8s.pod.uid"}]},
                ],
                "extract": {
                    "metadata": ["k8s.namespace.name", "k8s.pod.name", "k8s.pod.uid",
                                 "k8s.node.name", "k8s.deployment.name", "k8s.container.name"],
                    "labels": [{"tag_name": "team", "key": "team", "from": "pod"}],
                },
            },
            "batch": {"timeout": batch_timeout},
        },
        "exporters": {"otlp": {"endpoint": backend, "tls": {"insecure": true}}},
        "extensions": {
            "health_check": {"endpoint": "0.0.0.0:13133"},
            "file_storage": {"directory": format!("/var/lib/otelcol/{ns}"), "create_directory": true},
        },
        "service": {
            "extensions": ["health_check", "file_storage"],
            "pipelines": {
                "logs": {"receivers": ["filelog", "otlp"], "processors": ["k8s_attributes", "batch"], "exporters": ["otlp"]},
                "metrics": {"receivers": ["kubeletstats", "otlp"], "processors": ["k8s_attributes", "batch"], "exporters": ["otlp"]},
                "traces": {"receivers": ["otlp"], "processors": ["k8s_attributes", "batch"], "exporters": ["otlp"]},
            },
        },
    })
}

/// The workload Deployment: numbered lines and OTLP items, on the real node.
fn workload(ns: &str, run: &str, lines: u64, rate: u64, otlp_items: u64) -> Value {
    let mut spec = json!({
        "hostNetwork": true,
        "terminationGracePeriodSeconds": 2,
        "containers": [{
            "name": "app",
            "image": WORKLOAD_IMAGE,
            "imagePullPolicy": "Never",
            "env": [
                {"name": "NODE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                {"name": "WORKLOAD_RUN", "value": run},
                {"name": "WORKLOAD_LINES", "value": lines.to_string()},
                {"name": "WORKLOAD_RATE", "value": rate.to_string()},
                {"name": "WORKLOAD_OTLP_ITEMS", "value": otlp_items.to_string()},
                {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://$(NODE_IP):4317"},
            ],
        }],
    });
    merge(&mut spec, &on_real_node());
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "workload", "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "kotel-e2e-workload"}},
            "template": {
                "metadata": {"labels": {"app": "kotel-e2e-workload", "team": "e2e-team"}},
                "spec": spec,
            },
        },
    })
}

/// The workload's numbered lines as they arrived: seq → how many times, per stream, checking
/// each record's body and attributes on the way.
struct LineReport {
    counts: BTreeMap<u64, usize>,
    bad: Vec<String>,
    sample: Option<Row>,
}

fn line_report(rows: &[Row], ns: &str, run: &str) -> LineReport {
    let prefix = format!("kotel-e2e run={run} stream=");
    let mut counts = BTreeMap::new();
    let mut bad = Vec::new();
    let mut sample = None;
    for r in rows
        .iter()
        .filter(|r| r.attr("k8s.namespace.name") == Some(ns) && r.text.starts_with(&prefix))
    {
        let rest = &r.text[prefix.len()..];
        let mut it = rest.splitn(3, ' ');
        let stream = it.next().unwrap_or_default();
        let seq: Option<u64> = it
            .next()
            .and_then(|s| s.strip_prefix("seq="))
            .and_then(|s| s.parse().ok());
        let Some(seq) = seq else {
            if rest.contains(" done ") || rest.starts_with("stdout done") {
                continue;
            }
            bad.push(format!(
                "unparsed body {:?}",
                &r.text[..r.text.len().min(120)]
            ));
            continue;
        };
        *counts.entry(seq).or_insert(0) += 1;
        let want_len = if seq % 10 == 9 { 20 * 1024 } else { 40 };
        let pad = it.next().unwrap_or_default();
        if pad.len() != want_len || pad.bytes().any(|b| b != b'x') {
            bad.push(format!(
                "seq {seq}: body padding {} bytes, want {want_len}",
                pad.len()
            ));
        }
        let want_stream = if seq % 2 == 0 { "stdout" } else { "stderr" };
        if stream != want_stream || r.attr("log.iostream") != Some(want_stream) {
            bad.push(format!(
                "seq {seq}: stream {stream:?}, log.iostream {:?}",
                r.attr("log.iostream")
            ));
        }
        for key in ["k8s.pod.name", "k8s.pod.uid", "k8s.container.name"] {
            if r.attr(key).is_none_or(str::is_empty) {
                bad.push(format!("seq {seq}: no {key}"));
            }
        }
        if r.attr("k8s.container.name") != Some("app")
            || r.attr("k8s.deployment.name") != Some("workload")
            || r.attr("team") != Some("e2e-team")
        {
            bad.push(format!(
                "seq {seq}: container {:?}, deployment {:?}, team label {:?}",
                r.attr("k8s.container.name"),
                r.attr("k8s.deployment.name"),
                r.attr("team")
            ));
        }
        if sample.is_none() {
            sample = Some(r.clone());
        }
    }
    // Lines of this run that arrived without the namespace k8sattributes adds are not counted
    // above: named here, so a "missing" line that did arrive unenriched is told apart.
    for r in rows
        .iter()
        .filter(|r| r.attr("k8s.namespace.name") != Some(ns) && r.text.starts_with(&prefix))
    {
        bad.push(format!(
            "without k8s.namespace.name {ns}: {:?}",
            &r.text[..r.text.len().min(80)]
        ));
    }
    bad.truncate(10);
    LineReport {
        counts,
        bad,
        sample,
    }
}

impl LineReport {
    fn missing(&self, lines: u64) -> Vec<u64> {
        (0..lines)
            .filter(|s| !self.counts.contains_key(s))
            .collect()
    }
    fn duplicated(&self) -> Vec<(u64, usize)> {
        self.counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(s, n)| (*s, *n))
            .collect()
    }

    /// Every one of `lines` arrived exactly once, with the right content and attributes;
    /// `across` says what they went through, for the message.
    fn each_once(&self, lines: u64, across: &str) -> Result<()> {
        let missing = self.missing(lines);
        ensure!(
            missing.is_empty(),
            "{} of {lines} lines lost across {across} (first: {:?})",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        let dups = self.duplicated();
        ensure!(
            dups.is_empty(),
            "lines arrived twice: {:?}",
            &dups[..dups.len().min(10)]
        );
        ensure!(
            self.bad.is_empty(),
            "records with wrong content or attributes: {:#?}",
            self.bad
        );
        Ok(())
    }
}

/// Waits until every numbered line arrived (or the deadline), then reports.
async fn wait_lines(backend: &Backend, ns: &str, run: &str, lines: u64) -> LineReport {
    let _ = wait_for(
        "every numbered line at the backend",
        DATA_TIMEOUT,
        || async {
            let r = line_report(&backend.logs(), ns, run);
            Ok(r.missing(lines).is_empty().then_some(()))
        },
    )
    .await;
    // A little longer, so late duplicates are seen too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    line_report(&backend.logs(), ns, run)
}

/// The OTLP items of the workload that arrived, by kind, checking enrichment.
fn otlp_report(
    backend: &Backend,
    ns: &str,
    run: &str,
) -> (BTreeMap<&'static str, BTreeMap<String, usize>>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut bad = Vec::new();
    for (kind, rows) in [
        ("spans", backend.spans()),
        ("points", backend.points()),
        ("logs", backend.logs()),
    ] {
        let mut m = BTreeMap::new();
        for r in rows
            .iter()
            .filter(|r| r.resource.get("kotel.e2e.run").map(String::as_str) == Some(run))
        {
            let seq = r
                .attributes
                .get("kotel.e2e.seq")
                .cloned()
                .unwrap_or_default();
            *m.entry(seq.clone()).or_insert(0) += 1;
            if r.resource.get("k8s.namespace.name").map(String::as_str) != Some(ns)
                || r.resource.get("k8s.deployment.name").map(String::as_str) != Some("workload")
                || r.resource
                    .get("k8s.pod.name")
                    .is_none_or(|n| !n.starts_with("workload-"))
                || r.resource.get("team").map(String::as_str) != Some("e2e-team")
            {
                bad.push(format!("{kind} seq {seq}: resource {:?}", r.resource));
            }
        }
        out.insert(kind, m);
    }
    bad.truncate(5);
    (out, bad)
}

async fn collector_pod(client: &Client, ns: &str, name: &str) -> Result<Pod> {
    let o = observe(client, ns, name).await?;
    o.pods
        .into_iter()
        .find(|p| p.metadata.deletion_timestamp.is_none())
        .context("no collector pod")
}

/// 2–4, 5, 6, 8. Container logs, kubelet metrics and OTLP of a workload on the real node reach
/// the backend: every numbered line exactly once, with its pod's attributes and, through
/// k8sattributes, its Deployment and a pod label, across log rotation by the kubelet and a
/// config change that rolls the collector. Then deleting the resource removes what it made.
#[tokio::test]
async fn workload_telemetry_arrives_once_across_rotation_and_a_rollout() -> Result<()> {
    let env = env().await?;
    let backend = Backend::start(&format!("{}:0", env.node)).await?;
    let ns = TestNs::create(&env.client, "real-agent").await?;
    // Cleaned up whatever happens, so a failure leaves nothing on the node.
    let result: Result<()> = async {
        let name = "agent";
        let mut timings = Timings::default();
        let mut spec = on_real_node();
        merge(&mut spec, &json!({"hostNetwork": true}));
        let cr = kotel::collector(
            name,
            &ns.name,
            node_agent_config(&ns.name, &backend.addr().to_string(), "1s"),
            spec.clone(),
        );
        let start = Instant::now();
        apply(&cr)?;
        let o = wait_ready(&env.client, &ns.name, name, 1, READY_TIMEOUT)
            .await
            .with_context(|| describe_pods(&ns.name))?;
        timings.record("real node: node agent applied -> Ready 1/1", start.elapsed());
        let first_pod = o.pods[0].name_any();

        // ~3000 lines at 60 a second, a tenth of them 20 KiB (split by the runtime into partial
        // chunks): ~6 MiB, so the kubelet (containerLogMaxSize 1Mi) rotates the file several times.
        let (lines, rate, items) = (3000, 60, 200);
        let run = format!("{:x}", std::process::id());
        let load_start = Instant::now();
        apply(&workload(&ns.name, &run, lines, rate, items))?;

        // Halfway through, a config change rolls the collector. The kubelet may rotate the file
        // while no collector runs (it checks sizes every 10 s); the new collector then reads the
        // unread tail from the rotated file, found by its checkpointed fingerprint.
        tokio::time::sleep(Duration::from_secs(lines / rate / 2)).await;
        let mut new_spec = spec.clone();
        merge(
            &mut new_spec,
            &json!({"config": node_agent_config(&ns.name, &backend.addr().to_string(), "2s")}),
        );
        let roll = Instant::now();
        kotel::patch_spec(&env.client, &ns.name, name, new_spec).await?;
        let o = wait_for("the collector rolled to the new config", READY_TIMEOUT, || async {
            let o = wait_ready(&env.client, &ns.name, name, 1, Duration::from_secs(5)).await.ok();
            Ok(o.filter(|o| o.pods.iter().all(|p| p.name_any() != first_pod)))
        })
        .await?;
        timings.record("real node: config change -> new pod Ready", roll.elapsed());

        let report = wait_lines(&backend, &ns.name, &run, lines).await;
        let load_secs = load_start.elapsed().as_secs_f64();
        let (otlp, otlp_bad) = otlp_report(&backend, &ns.name, &run);

        // The kubelet rotated the workload's log file during the load.
        let rotated: Vec<String> = glob_files(&format!("/var/log/pods/{}_workload-", ns.name), "app")
            .into_iter()
            .filter(|f| f.contains(".log."))
            .collect();

        let pts = backend.points();
        let pod_metric = |metric: &str, pod_prefix: &str| {
            pts.iter()
                .filter(|p| p.text == metric && p.attr("k8s.pod.name").is_some_and(|n| n.starts_with(pod_prefix)))
                .map(|p| p.value)
                .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
        };
        let collector_prefix = format!("{name}-collector-");
        let collector_rss = pod_metric("k8s.pod.memory.rss", &collector_prefix);
        let collector_cpu = pod_metric("k8s.pod.cpu.time", &collector_prefix);
        let workload_mem = pod_metric("k8s.pod.memory.working_set", "workload-");
        let container_mem = pts.iter().any(|p| {
            p.text == "container.memory.working_set"
                && p.attr("k8s.container.name") == Some("app")
                && p.value > 0.0
        });
        if let Some(s) = &report.sample {
            println!("sample log record: resource {:?} attributes {:?}", s.resource, s.attributes);
        }
        println!(
            "TIMING real node: {} log records over {load_secs:.0}s ({:.0}/s at the backend); collector pod RSS {:?} MiB, CPU {:?} s",
            report.counts.values().sum::<usize>(),
            report.counts.values().sum::<usize>() as f64 / load_secs,
            collector_rss.map(|b| (b / 1048576.0 * 10.0).round() / 10.0),
            collector_cpu
        );

        let missing = report.missing(lines);
        ensure!(
            missing.is_empty(),
            "{} of {lines} lines never arrived (first: {:?}); pods: {}",
            missing.len(),
            &missing[..missing.len().min(10)],
            describe_pods(&ns.name)
        );
        ensure!(report.duplicated().is_empty(), "lines arrived twice: {:?}", &report.duplicated()[..report.duplicated().len().min(10)]);
        ensure!(report.bad.is_empty(), "records with wrong content or attributes: {:#?}", report.bad);
        ensure!(!rotated.is_empty(), "the kubelet never rotated the workload's log file; the test did not test rotation");
        for kind in ["spans", "points", "logs"] {
            let m = &otlp[kind];
            ensure!(
                m.len() == items as usize && m.values().all(|n| *n == 1),
                "OTLP {kind}: {} distinct of {items}, duplicates {:?}",
                m.len(),
                m.iter().filter(|(_, n)| **n > 1).take(5).collect::<Vec<_>>()
            );
        }
        ensure!(otlp_bad.is_empty(), "OTLP items without their pod's metadata: {otlp_bad:#?}");
        ensure!(
            workload_mem.is_some_and(|v| v > 0.0) && container_mem,
            "kubeletstats: no memory of the workload pod ({workload_mem:?}) or its container ({container_mem})"
        );
        drop(o);

        // 8. Deleting the resource removes the pods and everything the operator made.
        let ds_name = format!("{name}-collector");
        otelcols_delete(&env.client, &ns.name, name).await?;
        wait_for("every child of the resource gone", Duration::from_secs(120), || async {
            let ds = Api::<DaemonSet>::namespaced(env.client.clone(), &ns.name)
                .get_opt(&ds_name)
                .await?;
            // DaemonSet, ServiceAccount, ConfigMaps, Services, ClusterRole and binding.
            let children = kotel::children_versions(&ns.name, name)?;
            let pods = Api::<Pod>::namespaced(env.client.clone(), &ns.name)
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .filter(|p| p.name_any().starts_with(&collector_prefix))
                .count();
            Ok((ds.is_none() && children.is_empty() && pods == 0).then_some(()))
        })
        .await?;
        Ok(())
    }
    .await;
    let cleaned = cleanup(&env.client, ns).await;
    result.and(cleaned)
}

async fn otelcols_delete(client: &Client, ns: &str, name: &str) -> Result<()> {
    kotel::otelcols(client, ns)
        .delete(name, &DeleteParams::default())
        .await?;
    Ok(())
}

/// Files under `/var/log/pods/<dir_prefix>*/<container>/`.
fn glob_files(dir_prefix: &str, container: &str) -> Vec<String> {
    let (parent, prefix) = dir_prefix.rsplit_once('/').expect("absolute path");
    let mut out = Vec::new();
    for d in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        if !d.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        for f in std::fs::read_dir(d.path().join(container))
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(f.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

/// 7. The collector container killed with SIGKILL: the kubelet restarts it and the logs resume
/// from the checkpoint on the node without losing a line (at-least-once: duplicates reported).
#[tokio::test]
async fn collector_sigkill_is_restarted_and_loses_no_line() -> Result<()> {
    let env = env().await?;
    let sock = std::env::var("E2E_CONTAINERD_SOCK")
        .unwrap_or_else(|_| "/run/kotel-e2e-node/containerd/containerd.sock".into());
    let backend = Backend::start(&format!("{}:0", env.node)).await?;
    let ns = TestNs::create(&env.client, "real-kill").await?;
    // Cleaned up whatever happens, so a failure leaves nothing on the node.
    let result: Result<()> = async {
        let name = "agent";
        let mut spec = on_real_node();
        merge(&mut spec, &json!({"hostNetwork": true}));
        apply(&kotel::collector(
            name,
            &ns.name,
            node_agent_config(&ns.name, &backend.addr().to_string(), "1s"),
            spec,
        ))?;
        wait_ready(&env.client, &ns.name, name, 1, READY_TIMEOUT)
            .await
            .with_context(|| describe_pods(&ns.name))?;
        let (lines, rate) = (1500, 60);
        let run_id = format!("k{:x}", std::process::id());
        apply(&workload(&ns.name, &run_id, lines, rate, 0))?;
        tokio::time::sleep(Duration::from_secs(lines / rate / 2)).await;

        let pod = collector_pod(&env.client, &ns.name, name).await?;
        let id = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .and_then(|c| c.container_id.clone())
            .context("collector container id")?;
        let id = id.trim_start_matches("containerd://");
        let out = run(
            std::process::Command::new("ctr")
                .args(["--address", &sock, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id]),
            None,
        )?;
        ensure!(out.status.success(), "ctr tasks kill: {}", out.stderr);
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns.name);
        let pod_name = pod.name_any();
        wait_for("the kubelet restarted the collector", READY_TIMEOUT, || async {
            let p = pods.get(&pod_name).await?;
            let restarted = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c.first())
                .is_some_and(|c| c.restart_count >= 1 && c.ready);
            Ok(restarted.then_some(()))
        })
        .await?;

        let report = wait_lines(&backend, &ns.name, &run_id, lines).await;
        let missing = report.missing(lines);
        let dups = report.duplicated();
        println!(
            "TIMING real node: after SIGKILL {} duplicated lines of {lines} (at-least-once), {} missing",
            dups.len(),
            missing.len()
        );
        ensure!(
            missing.is_empty(),
            "{} lines lost across the SIGKILL (first: {:?}); other findings: {:?}",
            missing.len(),
            &missing[..missing.len().min(10)],
            report.bad
        );
        ensure!(report.bad.is_empty(), "records with wrong content or attributes: {:#?}", report.bad);
        // The checkpoint is flushed as batches are read, so a kill re-reads at most what was read
        // since the last one: far from the whole file.
        ensure!(
            dups.len() < lines as usize / 2,
            "{} of {lines} lines arrived twice: the checkpoint did not survive the kill",
            dups.len()
        );
        Ok(())
    }
    .await;
    let cleaned = cleanup(&env.client, ns).await;
    result.and(cleaned)
}

/// A config change while the backend is down (what the issue saw by hand lose lines): the old
/// collector cannot deliver what it read, so its checkpoint stays behind it; the new one reads
/// those lines again and delivers them once the backend is back. No line is lost or doubled.
/// Prints how long the node was without a ready collector.
#[tokio::test]
async fn a_rollout_during_a_backend_outage_loses_no_line() -> Result<()> {
    let env = env().await?;
    let backend = Backend::start(&format!("{}:0", env.node)).await?;
    let ns = TestNs::create(&env.client, "real-outage").await?;
    let result: Result<()> = async {
        let name = "agent";
        let mut spec = on_real_node();
        merge(&mut spec, &json!({"hostNetwork": true}));
        apply(&kotel::collector(
            name,
            &ns.name,
            node_agent_config(&ns.name, &backend.addr().to_string(), "1s"),
            spec.clone(),
        ))?;
        let o = wait_ready(&env.client, &ns.name, name, 1, READY_TIMEOUT)
            .await
            .with_context(|| describe_pods(&ns.name))?;
        let first_pod = o.pods[0].name_any();

        backend.set_down(true);
        let (lines, rate) = (900, 60);
        let run_id = format!("o{:x}", std::process::id());
        apply(&workload(&ns.name, &run_id, lines, rate, 0))?;
        tokio::time::sleep(Duration::from_secs(lines / rate / 2)).await;

        let mut new_spec = spec.clone();
        merge(
            &mut new_spec,
            &json!({"config": node_agent_config(&ns.name, &backend.addr().to_string(), "2s")}),
        );
        let roll = Instant::now();
        kotel::patch_spec(&env.client, &ns.name, name, new_spec).await?;
        wait_for(
            "the collector rolled during the outage",
            READY_TIMEOUT,
            || async {
                let o = wait_ready(&env.client, &ns.name, name, 1, Duration::from_secs(5))
                    .await
                    .ok();
                Ok(o.filter(|o| o.pods.iter().all(|p| p.name_any() != first_pod)))
            },
        )
        .await?;
        println!(
            "TIMING real node: config change with the backend down -> new pod Ready: {:.1}s",
            roll.elapsed().as_secs_f64()
        );
        ensure!(
            line_report(&backend.logs(), &ns.name, &run_id)
                .counts
                .is_empty(),
            "the backend was down, yet it kept workload lines"
        );
        backend.set_down(false);

        wait_lines(&backend, &ns.name, &run_id, lines)
            .await
            .each_once(lines, "a rollout during an outage")
    }
    .await;
    let cleaned = cleanup(&env.client, ns).await;
    result.and(cleaned)
}

/// The status a collector's resource shows now: (Ready reason, Ready message, Stalled status).
async fn ready_condition(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<(String, String, String)> {
    let o = observe(client, ns, name).await?;
    let field = |t: &str, f: &str| {
        o.condition(t)
            .and_then(|c| c[f].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    Ok((
        field("Ready", "reason"),
        field("Ready", "message"),
        field("Stalled", "status"),
    ))
}

/// Collectors that cannot work on the node are named, not hidden. One whose kubeletstats is
/// pointed at a port nothing listens on stays alive (no restart: liveness asks only whether it
/// runs) but turns unready; its health endpoint names the component and the address, and the
/// resource's status names the pod and what the kubelet says, then calls it stuck. One that
/// cannot bind its OTLP port (the kubelet holds it) crash-loops, and status carries its last
/// log lines with the address.
#[tokio::test]
async fn collectors_that_cannot_work_are_named_in_status() -> Result<()> {
    let env = env().await?;
    let ns = TestNs::create(&env.client, "real-broken").await?;
    let result: Result<()> = async {
        let mut spec = on_real_node();
        merge(&mut spec, &json!({"hostNetwork": true}));
        let blind = json!({
            "receivers": {"kubeletstats": {
                "collection_interval": "5s",
                "auth_type": "serviceAccount",
                "endpoint": "https://${env:K8S_NODE_IP}:1",
                "insecure_skip_verify": true,
            }},
            "exporters": {"debug": {}},
            "extensions": {"health_check": {"endpoint": "0.0.0.0:13133"}},
            "service": {
                "extensions": ["health_check"],
                "pipelines": {"metrics": {"receivers": ["kubeletstats"], "exporters": ["debug"]}},
            },
        });
        apply(&kotel::collector("blind", &ns.name, blind, spec.clone()))?;
        let health: std::net::SocketAddr = format!("{}:13133", env.node).parse()?;
        let body = wait_for(
            "the health endpoint to name kubeletstats",
            READY_TIMEOUT,
            || async {
                let (code, body) = kotel::http_get(health, "/")?;
                Ok((code == 503 && body.contains("kubeletstats")).then_some(body))
            },
        )
        .await
        .with_context(|| describe_pods(&ns.name))?;
        println!("health of a collector that cannot scrape: {body}");
        ensure!(
            body.contains(":1/stats/summary"),
            "the address is named: {body}"
        );
        let (code, _) = kotel::http_get(health, "/?probe=liveness")?;
        ensure!(code == 200, "liveness must not ask for a restart: {code}");

        let pod = collector_pod(&env.client, &ns.name, "blind").await?;
        let pod_name = pod.name_any();
        let (_, message, _) = wait_for("status to name the unready pod", READY_TIMEOUT, || async {
            let c = ready_condition(&env.client, &ns.name, "blind").await?;
            Ok((c.1.contains(&pod_name) && c.1.contains("Unhealthy")).then_some(c))
        })
        .await?;
        println!("status while unready: {message}");
        ensure!(message.contains("statuscode: 503"), "{message}");
        let stalled = wait_for("status to call it stuck", READY_TIMEOUT, || async {
            let c = ready_condition(&env.client, &ns.name, "blind").await?;
            Ok((c.2 == "True").then_some(c))
        })
        .await?;
        ensure!(stalled.0 == "PodsFailing", "{stalled:?}");
        let pod = collector_pod(&env.client, &ns.name, "blind").await?;
        let restarts = pod
            .status
            .and_then(|s| s.container_statuses)
            .and_then(|c| c.first().map(|c| c.restart_count))
            .unwrap_or(-1);
        ensure!(
            restarts == 0,
            "an unready collector is not restarted: {restarts} restarts"
        );
        otelcols_delete(&env.client, &ns.name, "blind").await?;
        wait_no_pods(&env.client, &ns.name, "blind-collector").await?;

        // The kubelet listens on 10250 of the node; a hostNetwork collector cannot bind it.
        let mut clash = kotel::otlp_config("1s");
        clash["receivers"]["otlp"]["protocols"] = json!({"grpc": {"endpoint": "0.0.0.0:10250"}});
        apply(&kotel::collector("clash", &ns.name, clash, spec.clone()))?;
        let (reason, message, _) =
            wait_for("status to name the crash loop", READY_TIMEOUT, || async {
                let c = ready_condition(&env.client, &ns.name, "clash").await?;
                Ok((c.2 == "True" && c.1.contains("CrashLoopBackOff")).then_some(c))
            })
            .await
            .with_context(|| describe_pods(&ns.name))?;
        println!("status of a crash loop: {message}");
        ensure!(reason == "PodsFailing", "{reason}");
        ensure!(
            message.contains("10250"),
            "the last log lines name the address: {message}"
        );
        otelcols_delete(&env.client, &ns.name, "clash").await?;
        wait_no_pods(&env.client, &ns.name, "clash-collector").await?;

        // Two hostNetwork collectors with their own OTLP ports still share the default 8888.
        let twin = |port: u16| {
            let mut c = kotel::otlp_config("1s");
            c["receivers"]["otlp"]["protocols"] =
                json!({"grpc": {"endpoint": format!("0.0.0.0:{port}")}});
            c
        };
        apply(&kotel::collector(
            "twin-a",
            &ns.name,
            twin(14317),
            spec.clone(),
        ))?;
        wait_ready(&env.client, &ns.name, "twin-a", 1, READY_TIMEOUT).await?;
        apply(&kotel::collector("twin-b", &ns.name, twin(24317), spec))?;
        let (reason, message, _) =
            wait_for("status to name the port clash", READY_TIMEOUT, || async {
                let c = ready_condition(&env.client, &ns.name, "twin-b").await?;
                Ok((c.2 == "True").then_some(c))
            })
            .await?;
        println!("status of a port clash: {message}");
        ensure!(
            reason == "PodsFailing" && message.contains("free ports"),
            "{reason}: {message}"
        );
        Ok(())
    }
    .await;
    let cleaned = cleanup(&env.client, ns).await;
    result.and(cleaned)
}

/// Another operator version as an upgrade makes it: the Deployment of the real-node overlay with
/// the operator image `operator_image` and the default collector image `collector_image`, applied
/// under the same field manager as the install (so re-installing restores the original).
fn install_operator_version(operator_image: &str, collector_image: &str) -> Result<()> {
    let overlay = repo_root().join("e2e/overlays/real-node");
    let rendered = kubectl(&["kustomize", overlay.to_str().expect("utf-8 path")])?;
    let mut deployment = kotel::yaml_docs(&rendered)?
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .context("no Deployment in the overlay")?;
    let container = &mut deployment["spec"]["template"]["spec"]["containers"][0];
    container["image"] = json!(operator_image);
    container["env"]
        .as_array_mut()
        .context("the operator container has no env")?
        .push(json!({"name": "COLLECTOR_IMAGE", "value": collector_image}));
    apply(&deployment)?;
    wait_operator_available()
}

/// Gives an image in the node's containerd a second name (the same content, another version).
fn tag_image(from: &str, to: &str) -> Result<()> {
    let sock = std::env::var("E2E_CONTAINERD_SOCK").context("E2E_CONTAINERD_SOCK is not set")?;
    let out = run(
        std::process::Command::new("ctr").args([
            "--address",
            &sock,
            "-n",
            "k8s.io",
            "images",
            "tag",
            "--force",
            from,
            to,
        ]),
        None,
    )?;
    ensure!(
        out.status.success(),
        "ctr images tag {from} {to}: {}",
        out.stderr
    );
    Ok(())
}

/// The collector container's image and the pod uids of a collector's DaemonSet.
async fn image_and_pods(client: &Client, ns: &str, name: &str) -> Result<(String, Vec<String>)> {
    let o = observe(client, ns, name).await?;
    let image =
        o.ds.as_ref()
            .and_then(kotel::collector_image)
            .context("no collector container")?;
    Ok((image, o.pods.iter().filter_map(|p| p.uid()).collect()))
}

/// Issue 14: an operator upgrade on the real node. Version N is the install from the manifests;
/// N+1 is the same Deployment with another operator image whose default collector image is
/// another version (both tagged in the node's containerd from the local archives: the same
/// binaries under the next version's names). The unpinned node agent rolls to N+1 while a
/// workload writes, and no line is lost or duplicated; a collector pinning its image stays as
/// it was. A broken N+2 (a collector image that cannot be pulled) ends Stalled naming the pod,
/// and rolling the operator back to N+1 recovers.
#[tokio::test]
async fn operator_upgrade_rolls_unpinned_collectors_and_loses_no_line() -> Result<()> {
    let env = env().await?;
    let version = env!("CARGO_PKG_VERSION");
    let collector_n = format!("ghcr.io/kotel-dev/kotelcol:{version}");
    let collector_next = format!("ghcr.io/kotel-dev/kotelcol:{version}-next");
    let operator_next = format!("ghcr.io/kotel-dev/kotel-operator:{version}-next");
    tag_image(&collector_n, &collector_next)?;
    tag_image(
        &format!("ghcr.io/kotel-dev/kotel-operator:{version}"),
        &operator_next,
    )?;
    let backend = Backend::start(&format!("{}:0", env.node)).await?;
    let ns = TestNs::create(&env.client, "real-upgrade").await?;
    let result: Result<()> = async {
        let mut agent_spec = on_real_node();
        merge(&mut agent_spec, &json!({"hostNetwork": true}));
        apply(&kotel::collector(
            "agent",
            &ns.name,
            node_agent_config(&ns.name, &backend.addr().to_string(), "1s"),
            agent_spec,
        ))?;
        let mut pinned_spec = on_real_node();
        merge(&mut pinned_spec, &json!({"image": collector_n}));
        apply(&kotel::collector(
            "pinned",
            &ns.name,
            kotel::otlp_config("1s"),
            pinned_spec,
        ))?;
        for name in ["agent", "pinned"] {
            let o = wait_ready(&env.client, &ns.name, name, 1, READY_TIMEOUT)
                .await
                .with_context(|| describe_pods(&ns.name))?;
            ensure!(
                o.cr.data["status"]["version"] == version,
                "{name}: {}",
                o.cr.data["status"]
            );
        }
        let (_, pinned_pods) = image_and_pods(&env.client, &ns.name, "pinned").await?;

        let (lines, rate) = (1200, 40);
        let run_id = format!("u{:x}", std::process::id());
        apply(&workload(&ns.name, &run_id, lines, rate, 0))?;
        tokio::time::sleep(Duration::from_secs(8)).await;

        let upgrade = Instant::now();
        install_operator_version(&operator_next, &collector_next)?;
        wait_for(
            "the agent rolled to the next version",
            READY_TIMEOUT,
            || async {
                let o = wait_ready(&env.client, &ns.name, "agent", 1, Duration::ZERO).await?;
                let (image, _) = image_and_pods(&env.client, &ns.name, "agent").await?;
                let next = format!("{version}-next");
                Ok(
                    (image == collector_next && o.cr.data["status"]["version"] == next.as_str())
                        .then_some(()),
                )
            },
        )
        .await
        .with_context(|| describe_pods(&ns.name))?;
        println!(
            "TIMING real node: operator upgrade applied -> agent on the next version Ready: {:.1}s",
            upgrade.elapsed().as_secs_f64()
        );
        let (image, pods) = image_and_pods(&env.client, &ns.name, "pinned").await?;
        ensure!(
            image == collector_n,
            "the pinned collector was moved to {image}"
        );
        ensure!(
            pods == pinned_pods,
            "the pinned collector's pod was replaced"
        );

        wait_lines(&backend, &ns.name, &run_id, lines)
            .await
            .each_once(lines, "the operator upgrade")?;

        // A broken next version: its collector image cannot be pulled (a registry on loopback
        // where nothing listens, so no traffic leaves the machine).
        install_operator_version(&operator_next, "127.0.0.1:1/kotel-dev/kotelcol:broken")?;
        let (reason, message, _) = wait_for(
            "the agent Stalled on the broken image",
            READY_TIMEOUT,
            || async {
                let (reason, message, stalled) =
                    ready_condition(&env.client, &ns.name, "agent").await?;
                Ok((stalled == "True").then_some((reason, message, stalled)))
            },
        )
        .await
        .with_context(|| describe_pods(&ns.name))?;
        ensure!(reason == "PodsFailing", "{reason}: {message}");
        ensure!(
            message.contains("agent-collector-")
                && (message.contains("ImagePull") || message.contains("ErrImage")),
            "the message names neither the pod nor the pull failure: {message}"
        );
        // Rolling the operator back recovers.
        install_operator_version(&operator_next, &collector_next)?;
        wait_for(
            "the agent recovered after the rollback",
            READY_TIMEOUT,
            || async {
                let o = wait_ready(&env.client, &ns.name, "agent", 1, Duration::ZERO).await?;
                let (image, _) = image_and_pods(&env.client, &ns.name, "agent").await?;
                Ok((image == collector_next
                    && o.condition("Stalled")
                        .is_some_and(|c| c["status"] == "False"))
                .then_some(()))
            },
        )
        .await
        .with_context(|| describe_pods(&ns.name))?;
        Ok(())
    }
    .await;
    // Back to version N for the other tests, whatever happened.
    let restored = install_operator();
    let cleaned = cleanup(&env.client, ns).await;
    result.and(restored).and(cleaned)
}
