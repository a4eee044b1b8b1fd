//! The kotel-specific part of the harness: installing the CRD and the operator's RBAC from
//! `manifests/base`, running `kotel-operator run` as its own ServiceAccount, test namespaces,
//! the OpenTelemetryCollector resource, and the observations the tests assert on.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Node, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::{Process, kubectl, kubectl_stdin, repo_root, state_dir, wait_for};

/// The custom resource's API.
pub fn otelcol_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("opentelemetry.io", "v1beta1", "OpenTelemetryCollector"),
        "opentelemetrycollectors",
    )
}

pub fn otelcols(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &otelcol_resource())
}

/// Where the operator's own objects live, read from `manifests/base`.
#[derive(Debug, Clone)]
pub struct Install {
    pub namespace: String,
    pub service_account: String,
    /// The operator Deployment's name in the base (never applied by the suite).
    pub deployment: Option<String>,
}

impl Install {
    /// `system:serviceaccount:<ns>:<sa>`, as the API server's audit log names the operator.
    pub fn username(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace, self.service_account
        )
    }
}

/// Multi-document YAML → JSON values (empty documents dropped).
pub fn yaml_docs(text: &str) -> Result<Vec<Value>> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let v = Value::deserialize(doc)?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

fn to_yaml_stream(docs: &[Value]) -> Result<String> {
    let mut s = String::new();
    for d in docs {
        s.push_str("---\n");
        s.push_str(&serde_yaml_ng::to_string(d)?);
    }
    Ok(s)
}

/// Installs the CRD and everything in `manifests/base` except the operator Deployment (the
/// suite runs the operator binary itself), idempotently, with server-side apply. When a cluster
/// already runs the operator Deployment (the kind path), it is scaled to zero so only the
/// operator under test reconciles.
pub async fn install(client: &Client) -> Result<Install> {
    let base = std::env::var_os("E2E_MANIFESTS_BASE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("manifests/base"));
    let rendered = kubectl(&["kustomize", base.to_str().expect("utf-8 path")])
        .context("rendering manifests/base with kubectl kustomize")?;
    let docs = yaml_docs(&rendered)?;
    let mut install = Install {
        namespace: "kotel-system".into(),
        service_account: "kotel-operator".into(),
        deployment: None,
    };
    let mut keep = Vec::new();
    for d in docs {
        if d["kind"] == "Deployment" {
            install.deployment = d["metadata"]["name"].as_str().map(str::to_owned);
            if let Some(ns) = d["metadata"]["namespace"].as_str() {
                install.namespace = ns.to_owned();
            }
            if let Some(sa) = d["spec"]["template"]["spec"]["serviceAccountName"].as_str() {
                install.service_account = sa.to_owned();
            }
        } else {
            keep.push(d);
        }
    }
    if !keep.iter().any(|d| d["kind"] == "CustomResourceDefinition") {
        bail!("manifests/base renders no CustomResourceDefinition");
    }
    // Namespaces and CRDs first, so the rest can land in one go.
    keep.sort_by_key(|d| match d["kind"].as_str() {
        Some("Namespace") => 0,
        Some("CustomResourceDefinition") => 1,
        _ => 2,
    });
    kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=kotel-e2e",
            "-f",
            "-",
        ],
        Some(&to_yaml_stream(&keep)?),
    )?;
    kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/opentelemetrycollectors.opentelemetry.io",
    ])?;
    if let Some(dep) = &install.deployment {
        let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
            Api::namespaced(client.clone(), &install.namespace);
        if let Some(d) = deployments.get_opt(dep).await?
            && d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1) > 0
        {
            println!(
                "NOTE: scaling the in-cluster {}/{dep} to 0; the suite runs the operator itself",
                install.namespace
            );
            kubectl(&[
                "-n",
                &install.namespace,
                "scale",
                "deployment",
                dep,
                "--replicas=0",
            ])?;
        }
    }
    // Discovery must know the new kind before `kubectl get otelcol` works.
    wait_for(
        "the otelcol short name in discovery",
        Duration::from_secs(30),
        || async {
            Ok(crate::kubectl_raw(&["get", "otelcol", "-A"], None)?
                .status
                .success()
                .then_some(()))
        },
    )
    .await?;
    Ok(install)
}

static OPERATOR_SEQ: AtomicU32 = AtomicU32::new(0);

/// A free TCP port on 127.0.0.1 (racy by nature; fine for tests run one at a time).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `kotel-operator run` as a child process with its ServiceAccount's token.
pub struct Operator {
    pub process: Process,
    pub http: SocketAddr,
    pub name: String,
}

/// How to run one operator replica.
#[derive(Debug, Clone, Default)]
pub struct OperatorOptions {
    /// `Some(lease)` runs with leader election on that Lease; `None` disables it.
    pub lease: Option<String>,
    pub identity: Option<String>,
    /// The operator's default collector image (else `E2E_COLLECTOR_IMAGE`, else its own).
    pub collector_image: Option<String>,
    /// `--progress-deadline-seconds` (else the operator's default).
    pub progress_deadline_secs: Option<u64>,
    /// Reach the API server through 127.0.0.1:port (a [`kotel_testkit::proxy::Proxy`]).
    pub api_proxy_port: Option<u16>,
    /// `--collector-rbac-allow`.
    pub rbac_allow: Option<String>,
}

fn operator_bin() -> PathBuf {
    std::env::var_os("E2E_OPERATOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/debug/kotel-operator"))
}

impl Operator {
    /// Starts a replica and waits until its `/readyz` answers 200.
    pub async fn start(install: &Install, opts: OperatorOptions) -> Result<Self> {
        let bin = operator_bin();
        if !bin.exists() {
            bail!(
                "{} not found: build it with `cargo build -p kotel-operator` (run-e2e.sh does)",
                bin.display()
            );
        }
        let seq = OPERATOR_SEQ.fetch_add(1, Ordering::SeqCst);
        let name = opts
            .identity
            .clone()
            .unwrap_or_else(|| format!("operator-{}-{seq}", std::process::id()));
        let dir = state_dir().join("operator");
        std::fs::create_dir_all(&dir)?;
        let kubeconfig = dir.join(format!("{name}.kubeconfig"));
        crate::service_account_kubeconfig(
            &install.namespace,
            &install.service_account,
            "2h",
            &kubeconfig,
        )?;
        if let Some(port) = opts.api_proxy_port {
            crate::route_kubeconfig_through(&kubeconfig, port)?;
        }
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let http_s = http.to_string();
        let mut args = vec![
            "run",
            "--http-addr",
            &http_s,
            "--lease-namespace",
            &install.namespace,
            "--log-format",
            "text",
        ];
        match &opts.lease {
            Some(lease) => {
                args.extend(["--leader-election", "true", "--lease-name", lease.as_str()]);
                args.extend(["--identity", name.as_str()]);
            }
            None => args.extend(["--leader-election", "false"]),
        }
        let image = opts
            .collector_image
            .clone()
            .or_else(|| std::env::var("E2E_COLLECTOR_IMAGE").ok());
        if let Some(image) = &image {
            args.extend(["--collector-image", image.as_str()]);
        }
        let deadline = opts.progress_deadline_secs.map(|s| s.to_string());
        if let Some(deadline) = &deadline {
            args.extend(["--progress-deadline-seconds", deadline.as_str()]);
        }
        if let Some(allow) = &opts.rbac_allow {
            args.extend(["--collector-rbac-allow", allow.as_str()]);
        }
        let log = state_dir().join("logs").join(format!("{name}.log"));
        println!("starting {name} (log {})", log.display());
        let kc = kubeconfig.to_str().expect("utf-8 path").to_owned();
        let env = [
            ("KUBECONFIG", kc.as_str()),
            (
                "RUST_LOG",
                &*std::env::var("E2E_OPERATOR_LOG").unwrap_or_else(|_| "info".into()),
            ),
            ("POD_NAMESPACE", install.namespace.as_str()),
        ];
        let mut process = Process::spawn(&bin, &args, &env, log)?;
        let mut op = wait_for(&format!("{name} /readyz"), Duration::from_secs(60), || {
            let running = process.running();
            let tail = process.log_tail(30);
            async move {
                if !running {
                    bail!("the operator exited; log tail:\n{tail}");
                }
                Ok(http_get(http, "/readyz")
                    .ok()
                    .filter(|(code, _)| *code == 200)
                    .map(|_| ()))
            }
        })
        .await
        .map(|()| Operator {
            process,
            http,
            name: name.clone(),
        })?;
        op.check_running()?;
        Ok(op)
    }

    pub fn check_running(&mut self) -> Result<()> {
        if !self.process.running() {
            bail!(
                "operator {} exited; log tail:\n{}",
                self.name,
                self.process.log_tail(40)
            );
        }
        Ok(())
    }

    /// The Prometheus text of `/metrics`.
    pub fn metrics(&self) -> Result<String> {
        let (code, body) = http_get(self.http, "/metrics")?;
        if code != 200 {
            bail!("/metrics answered {code}");
        }
        Ok(body)
    }

    /// Sum of every sample of `metric` (any labels) whose label text contains `label_filter`.
    pub fn metric_sum(&self, metric: &str, label_filter: &str) -> Result<f64> {
        Ok(parse_metric_sum(&self.metrics()?, metric, label_filter))
    }

    /// SIGKILL, no goodbye.
    pub fn kill(&mut self) -> Result<()> {
        println!("SIGKILL {}", self.name);
        self.process.kill()
    }
}

pub fn parse_metric_sum(text: &str, metric: &str, label_filter: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let name = series.split('{').next()?;
            (name == metric && series.contains(label_filter))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// A plain HTTP/1.0 GET: (status code, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let code = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad HTTP response from {addr}{path}"))?;
    let body = buf.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Ok((code, body))
}

/// A namespace for one test; `cleanup` deletes its collectors (while an operator still runs,
/// so finalizers are released) and then the namespace.
pub struct TestNs {
    pub name: String,
    client: Client,
}

impl TestNs {
    pub async fn create(client: &Client, prefix: &str) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos();
        let name = format!("e2e-{prefix}-{:05x}", nanos & 0xfffff);
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"kotel-e2e": "true"}}
        }))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        // ServiceAccount admission needs the namespace's default SA.
        let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(client.clone(), &name);
        wait_for(
            "the default ServiceAccount",
            Duration::from_secs(30),
            || {
                let sas = sas.clone();
                async move { Ok(sas.get_opt("default").await?.map(|_| ())) }
            },
        )
        .await?;
        Ok(Self {
            name,
            client: client.clone(),
        })
    }

    pub async fn cleanup(self) -> Result<()> {
        let api = otelcols(&self.client, &self.name);
        for cr in api.list(&ListParams::default()).await? {
            let _ = api.delete(&cr.name_any(), &DeleteParams::default()).await;
        }
        wait_for("collectors deleted", Duration::from_secs(60), || {
            let api = api.clone();
            async move {
                Ok(api
                    .list(&ListParams::default())
                    .await?
                    .items
                    .is_empty()
                    .then_some(()))
            }
        })
        .await?;
        Api::<Namespace>::all(self.client.clone())
            .delete(&self.name, &DeleteParams::default())
            .await?;
        Ok(())
    }
}

/// Deletes namespaces labelled `kotel-e2e=true` (left by failed runs), with an operator
/// running so collector finalizers are released.
pub async fn delete_stale_namespaces(client: &Client, install: &Install) -> Result<()> {
    let api = Api::<Namespace>::all(client.clone());
    let stale = api
        .list(&ListParams::default().labels("kotel-e2e=true"))
        .await?;
    if stale.items.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = stale.items.iter().map(|n| n.name_any()).collect();
    println!("deleting namespaces of earlier runs: {names:?}");
    let _op = Operator::start(install, OperatorOptions::default()).await?;
    for n in &names {
        let _ = api.delete(n, &DeleteParams::default()).await;
    }
    wait_for(
        "stale namespaces gone",
        Duration::from_secs(120),
        || async {
            let left = api
                .list(&ListParams::default().labels("kotel-e2e=true"))
                .await?;
            Ok(left.items.is_empty().then_some(()))
        },
    )
    .await
}

/// A daemonset-mode collector resource with the given collector config.
pub fn collector(name: &str, ns: &str, config: Value, extra_spec: Value) -> Value {
    let mut spec = json!({"mode": "daemonset", "config": config});
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    json!({
        "apiVersion": "opentelemetry.io/v1beta1",
        "kind": "OpenTelemetryCollector",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
}

/// OTLP in, batch, debug out: needs no cluster permissions.
pub fn otlp_config(batch_timeout: &str) -> Value {
    json!({
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"}, "http": {"endpoint": "0.0.0.0:4318"}}}},
        "processors": {"batch": {"timeout": batch_timeout}},
        "exporters": {"debug": {}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["debug"]}}},
    })
}

/// `over` merged into `base`: maps key by key, recursively; anything else replaces.
pub fn deep_merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                deep_merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// Applies (server-side, as the admin) a resource given as JSON.
pub fn apply(obj: &Value) -> Result<()> {
    kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=kotel-e2e",
            "-f",
            "-",
        ],
        Some(&serde_json::to_string(obj)?),
    )?;
    Ok(())
}

/// Merge-patches a collector's spec.
pub async fn patch_spec(client: &Client, ns: &str, name: &str, spec: Value) -> Result<()> {
    otelcols(client, ns)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": spec})),
        )
        .await?;
    Ok(())
}

/// Nodes a DaemonSet without tolerations lands on: Ready, schedulable, untainted.
pub async fn schedulable_nodes(client: &Client) -> Result<Vec<String>> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    Ok(nodes
        .into_iter()
        .filter(|n| {
            let spec = n.spec.clone().unwrap_or_default();
            let ready = n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let tainted = spec
                .taints
                .unwrap_or_default()
                .iter()
                .any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute");
            ready && !tainted && !spec.unschedulable.unwrap_or(false)
        })
        .map(|n| n.name_any())
        .collect())
}

/// The label (and taint key) of the e2e real node (`make node-up`).
pub const REAL_NODE_LABEL: &str = "kotel.dev/real-node";

/// A pod affinity that keeps a pod off the real node, for the kwok suites.
pub fn not_on_real_node() -> Value {
    json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": REAL_NODE_LABEL, "operator": "DoesNotExist"}]}
    ]}}})
}

/// Whether the cluster's nodes are kwok's (new fake nodes can be added).
pub async fn kwok_nodes(client: &Client) -> Result<bool> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    Ok(nodes.iter().any(|n| {
        n.annotations()
            .get("kwok.x-k8s.io/node")
            .map(String::as_str)
            == Some("fake")
    }))
}

/// A fake node kwok manages (same shape as cluster-up.sh's).
pub fn kwok_node(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"},
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
        },
    })
}

/// The image of a collector DaemonSet's collector container.
pub fn collector_image(ds: &DaemonSet) -> Option<String> {
    ds.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == "otc-container")?
        .image
        .clone()
}

/// The collector DaemonSet `<name>-collector`.
pub async fn daemon_set(client: &Client, ns: &str, name: &str) -> Result<Option<DaemonSet>> {
    Ok(Api::<DaemonSet>::namespaced(client.clone(), ns)
        .get_opt(&format!("{name}-collector"))
        .await?)
}

/// Pods owned by a DaemonSet.
pub async fn pods_of(client: &Client, ds: &DaemonSet) -> Result<Vec<Pod>> {
    let ns = ds.namespace().unwrap_or_default();
    let uid = ds.uid().unwrap_or_default();
    let pods = Api::<Pod>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await?;
    Ok(pods
        .into_iter()
        .filter(|p| p.owner_references().iter().any(|o| o.uid == uid))
        .collect())
}

pub fn pod_running(p: &Pod) -> bool {
    let st = p.status.clone().unwrap_or_default();
    p.metadata.deletion_timestamp.is_none()
        && st.phase.as_deref() == Some("Running")
        && st
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The ConfigMap a pod mounts for its collector config (`<name>-collector-<hash>`).
pub fn pod_config_map(p: &Pod, name: &str) -> Option<String> {
    let prefix = format!("{name}-collector-");
    p.spec
        .as_ref()?
        .volumes
        .as_ref()?
        .iter()
        .filter_map(|v| v.config_map.as_ref().map(|c| c.name.clone()))
        .find(|n| n.starts_with(&prefix))
}

/// What a collector looks like right now, for waiting and asserting.
#[derive(Debug, Clone)]
pub struct Observed {
    pub cr: DynamicObject,
    pub ds: Option<DaemonSet>,
    pub pods: Vec<Pod>,
}

impl Observed {
    pub fn condition(&self, type_: &str) -> Option<&Value> {
        self.cr.data["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == type_)
    }

    pub fn ready(&self) -> Option<&str> {
        self.condition("Ready")?["status"].as_str()
    }

    pub fn status_replicas(&self) -> Option<&str> {
        self.cr.data["status"]["scale"]["statusReplicas"].as_str()
    }

    pub fn observed_current_generation(&self) -> bool {
        self.cr.data["status"]["observedGeneration"].as_i64() == self.cr.metadata.generation
    }

    pub fn running_pods(&self) -> usize {
        self.pods.iter().filter(|p| pod_running(p)).count()
    }

    /// Config maps mounted by non-terminating pods.
    pub fn pod_config_maps(&self, name: &str) -> Vec<Option<String>> {
        self.pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| pod_config_map(p, name))
            .collect()
    }
}

pub async fn observe(client: &Client, ns: &str, name: &str) -> Result<Observed> {
    let cr = otelcols(client, ns).get(name).await?;
    let ds = daemon_set(client, ns, name).await?;
    let pods = match &ds {
        Some(ds) => pods_of(client, ds).await?,
        None => Vec::new(),
    };
    Ok(Observed { cr, ds, pods })
}

/// Waits until the collector is Ready with `n` of `n` pods Running (each on its own node), every
/// pod mounting the same config, and status reporting "n/n" for the current generation.
pub async fn wait_ready(
    client: &Client,
    ns: &str,
    name: &str,
    n: usize,
    timeout: Duration,
) -> Result<Observed> {
    let want = format!("{n}/{n}");
    wait_for(
        &format!("{ns}/{name} Ready with {want} pods Running"),
        timeout,
        || async {
            let o = observe(client, ns, name).await?;
            let mut nodes: Vec<_> = o
                .pods
                .iter()
                .filter(|p| pod_running(p))
                .filter_map(|p| p.spec.as_ref()?.node_name.clone())
                .collect();
            nodes.sort();
            nodes.dedup();
            let cms = o.pod_config_maps(name);
            let one_config = cms.windows(2).all(|w| w[0] == w[1]) && cms.first().is_some_and(Option::is_some);
            let ok = o.ready() == Some("True")
                && o.observed_current_generation()
                && o.status_replicas() == Some(want.as_str())
                && o.pods.len() == n
                && o.running_pods() == n
                && nodes.len() == n
                && one_config;
            if ok {
                Ok(Some(o))
            } else {
                let why = o.condition("Ready").map_or(String::new(), |c| {
                    format!(" ({}: {})", c["reason"].as_str().unwrap_or(""), c["message"].as_str().unwrap_or(""))
                });
                Err(anyhow!(
                    "not yet: Ready={:?}{why} statusReplicas={:?} observedCurrentGeneration={} pods={} running={} distinct nodes={} configs={:?}",
                    o.ready(),
                    o.status_replicas(),
                    o.observed_current_generation(),
                    o.pods.len(),
                    o.running_pods(),
                    nodes.len(),
                    cms
                ))
            }
        },
    )
    .await
}

/// The collector's hashed ConfigMaps, by name.
pub async fn config_maps(client: &Client, ns: &str, name: &str) -> Result<Vec<String>> {
    let prefix = format!("{name}-collector-");
    let cms = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?;
    let mut names: Vec<String> = cms
        .into_iter()
        .map(|c| c.name_any())
        .filter(|n| {
            n.strip_prefix(&prefix)
                .is_some_and(|h| h.len() == 8 && h.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Events about a collector resource.
pub async fn events_for(client: &Client, ns: &str, name: &str) -> Result<Vec<Event>> {
    let lp = ListParams::default().fields(&format!("involvedObject.name={name}"));
    Ok(Api::<Event>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
        .items)
}

/// Asks the API server whether `user` (a ServiceAccount, with its groups) may do something.
pub async fn can(
    client: &Client,
    sa_ns: &str,
    sa: &str,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
) -> Result<bool> {
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r.to_owned(), Some(s.to_owned())),
        None => (resource.to_owned(), None),
    };
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{sa_ns}:{sa}")),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{sa_ns}"),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource),
                subresource,
                namespace: namespace.map(str::to_owned),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let out = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(out.status.is_some_and(|s| s.allowed))
}

/// Write requests in the API server's audit log (cluster-up.sh's policy logs only writes).
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub user: String,
    pub verb: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub code: i64,
}

/// A position in the audit log, to read what was written after it.
pub struct AuditCursor {
    path: PathBuf,
    offset: u64,
}

impl AuditCursor {
    pub fn now(path: &Path) -> Result<Self> {
        Ok(Self {
            path: path.to_owned(),
            offset: std::fs::metadata(path)?.len(),
        })
    }

    /// Write entries by `user` since the cursor (audit log rotation is not handled: the
    /// cluster-up policy keeps the file well below its size limit during a run).
    pub fn writes_by(&self, user: &str) -> Result<Vec<AuditEntry>> {
        let mut f = std::fs::File::open(&self.path)?;
        f.seek(SeekFrom::Start(self.offset))?;
        let mut text = String::new();
        f.read_to_string(&mut text)?;
        let mut out = Vec::new();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if v["user"]["username"] != user {
                continue;
            }
            let o = &v["objectRef"];
            let resource = match o["subresource"].as_str() {
                Some(s) => format!("{}/{s}", o["resource"].as_str().unwrap_or("")),
                None => o["resource"].as_str().unwrap_or("").to_owned(),
            };
            out.push(AuditEntry {
                user: user.to_owned(),
                verb: v["verb"].as_str().unwrap_or("").to_owned(),
                resource,
                namespace: o["namespace"].as_str().unwrap_or("").to_owned(),
                name: o["name"].as_str().unwrap_or("").to_owned(),
                code: v["responseStatus"]["code"].as_i64().unwrap_or(0),
            });
        }
        Ok(out)
    }
}

/// Resource versions of a collector's children (namespaced and cluster-scoped, found by the
/// instance label), to prove nothing was rewritten.
pub fn children_versions(ns: &str, name: &str) -> Result<BTreeMap<String, String>> {
    let selector = format!("app.kubernetes.io/instance={ns}.{name}");
    let mut out = BTreeMap::new();
    for (kinds, namespaced) in [
        ("daemonsets,serviceaccounts,configmaps,services", true),
        ("clusterroles,clusterrolebindings", false),
    ] {
        let mut args = vec!["get", kinds, "-l", &selector, "-o", "json"];
        if namespaced {
            args.extend(["-n", ns]);
        }
        let list: Value = serde_json::from_str(&kubectl(&args)?)?;
        for item in list["items"].as_array().cloned().unwrap_or_default() {
            out.insert(
                format!(
                    "{}/{}",
                    item["kind"].as_str().unwrap_or(""),
                    item["metadata"]["name"].as_str().unwrap_or("")
                ),
                item["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            );
        }
    }
    Ok(out)
}

/// Names of the cluster-scoped children (ClusterRoles and bindings) of a collector.
pub fn cluster_children(ns: &str, name: &str) -> Result<Vec<String>> {
    Ok(children_versions(ns, name)?
        .into_keys()
        .filter(|k| k.starts_with("ClusterRole"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sums_filter_by_name_and_labels() {
        let text = "# HELP x\nkotel_operator_reconciles_total{result=\"ok\"} 3\nkotel_operator_reconciles_total{result=\"error\"} 1\nkotel_operator_leader 1\n";
        assert_eq!(
            parse_metric_sum(text, "kotel_operator_reconciles_total", ""),
            4.0
        );
        assert_eq!(
            parse_metric_sum(text, "kotel_operator_reconciles_total", "result=\"ok\""),
            3.0
        );
        assert_eq!(parse_metric_sum(text, "kotel_operator_leader", ""), 1.0);
        assert_eq!(parse_metric_sum(text, "missing", ""), 0.0);
    }

    #[test]
    fn yaml_streams_split_into_documents() {
        let docs = yaml_docs("a: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(docs, vec![json!({"a": 1}), json!({"b": 2})]);
    }

    #[test]
    fn collector_merges_extra_spec() {
        let c = collector("x", "ns", json!({}), json!({"configVersions": 2}));
        assert_eq!(c["spec"]["mode"], "daemonset");
        assert_eq!(c["spec"]["configVersions"], 2);
        assert_eq!(c["metadata"]["namespace"], "ns");
    }
}
