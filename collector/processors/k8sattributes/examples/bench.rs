//! k8sattributes benchmark: enrichment CPU cost per span relative to pass-through, and memory
//! per cached pod with 110 pods on the node and 10,000 in the cluster.
//!
//! `cargo run --release -p kotel-k8sattributes --example bench` (run by `make bench`).
//! Figures are printed, never asserted. The config is the Helm chart's kubernetesAttributes
//! preset (three association rules, 23 metadata keys, otel annotations): a heavy, common case.

use std::alloc::System;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kotel_config::processors::k8sattributes::K8sAttributesConfig;
use kotel_k8sattributes::association::resource;
use kotel_k8sattributes::index::{DEFAULT_DELETE_GRACE, PodIndex};
use kotel_k8sattributes::metrics::Metrics;
use kotel_k8sattributes::model::ReplicaSetMeta;
use kotel_k8sattributes::watch::pod_meta;
use kotel_k8sattributes::{Enricher, K8sAttributesProcessor, Settings};
use kotel_pipeline::proto::resource::v1::Resource;
use kotel_pipeline::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use kotel_pipeline::{
    BoxConsumer, Consumer, Envelope, ExportTraceServiceRequest, Payload, Refusal, RequestContext,
};
use serde_json::json;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const NODE_PODS: usize = 110;
const CLUSTER_PODS: usize = 10_000;
const NODES: usize = CLUSTER_PODS / NODE_PODS + 1;

fn preset() -> K8sAttributesConfig {
    serde_json::from_value(json!({
        "filter": {"node": "node-0"},
        "pod_association": [
            {"sources": [{"from": "resource_attribute", "name": "k8s.pod.ip"}]},
            {"sources": [{"from": "resource_attribute", "name": "k8s.pod.uid"}]},
            {"sources": [{"from": "connection"}]}
        ],
        "extract": {
            "otel_annotations": true,
            "metadata": ["k8s.namespace.name", "k8s.pod.name", "k8s.pod.uid", "k8s.node.name",
                "k8s.pod.start_time", "k8s.deployment.name", "k8s.replicaset.name",
                "k8s.replicaset.uid", "k8s.daemonset.name", "k8s.daemonset.uid", "k8s.job.name",
                "k8s.job.uid", "k8s.container.name", "k8s.cronjob.name", "k8s.statefulset.name",
                "k8s.statefulset.uid", "container.image.tag", "container.image.name",
                "k8s.cluster.uid", "service.namespace", "service.name", "service.version",
                "service.instance.id"]
        }
    }))
    .expect("preset config")
}

fn ip_of(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        (i / 65536) as u8,
        (i / 256 % 256) as u8,
        (i % 256) as u8,
    ))
}

/// A pod as the API server sends it: managed fields, last-applied annotation, two containers
/// with env, statuses and conditions.
fn api_pod(i: usize) -> Pod {
    let node = format!("node-{}", i / NODE_PODS);
    let deploy = format!("svc-{}", i / 3);
    let rs = format!("{deploy}-5d8f7c9b4f");
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("{rs}-{i:05}"), "namespace": format!("team-{}", i % 40),
            "uid": format!("6f1c2a4e-0000-4000-8000-{i:012}"),
            "resourceVersion": "123456", "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"app.kubernetes.io/name": deploy, "app.kubernetes.io/version": "1.4.2",
                       "pod-template-hash": "5d8f7c9b4f", "team": "payments", "tier": "backend"},
            "annotations": {
                "kubectl.kubernetes.io/restartedAt": "2024-05-01T09:59:00Z",
                "prometheus.io/scrape": "true",
                "resource.opentelemetry.io/deployment.environment": "prod"
            },
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                "uid": format!("rs-{}", i / 3), "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                "apiVersion": "v1", "time": "2024-05-01T10:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {"f:app.kubernetes.io/name": {},
                    "f:pod-template-hash": {}, "f:team": {}, "f:tier": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {"f:image": {},
                    "f:env": {}, "f:resources": {}}}}}}]
        },
        "spec": {
            "nodeName": node, "serviceAccountName": "default", "restartPolicy": "Always",
            "containers": [
                {"name": "app", "image": format!("ghcr.io/acme/{deploy}:1.4.2"),
                 "env": [{"name": "OTEL_SERVICE_NAME", "value": deploy},
                         {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://$(K8S_NODE_IP):4317"}],
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                               "limits": {"memory": "256Mi"}},
                 "ports": [{"containerPort": 8080, "protocol": "TCP"}]},
                {"name": "proxy", "image": "envoyproxy/envoy:v1.30.1",
                 "args": ["--config-path", "/etc/envoy/envoy.yaml"]}
            ],
            "volumes": [{"name": "kube-api-access", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}],
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300}]
        },
        "status": {
            "phase": "Running", "podIP": ip_of(i).to_string(), "hostIP": "192.168.0.1",
            "startTime": "2024-05-01T10:00:02Z",
            "conditions": [{"type": "Ready", "status": "True"},
                           {"type": "ContainersReady", "status": "True"},
                           {"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 0,
                 "image": format!("ghcr.io/acme/{deploy}:1.4.2"),
                 "imageID": format!("ghcr.io/acme/{deploy}@sha256:{:064}", i),
                 "containerID": format!("containerd://{:064x}", i),
                 "state": {"running": {"startedAt": "2024-05-01T10:00:03Z"}}},
                {"name": "proxy", "ready": true, "restartCount": 0,
                 "image": "envoyproxy/envoy:v1.30.1",
                 "imageID": "docker.io/envoyproxy/envoy@sha256:ab",
                 "containerID": format!("containerd://{:064x}", i + 1_000_000),
                 "state": {"running": {"startedAt": "2024-05-01T10:00:03Z"}}}
            ]
        }
    }))
    .expect("pod json")
}

fn live_bytes(region: &Region<'_, System>) -> i64 {
    let c = region.change();
    c.bytes_allocated as i64 - c.bytes_deallocated as i64 + c.bytes_reallocated as i64
}

fn rss_kib() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}

/// CPU time of this thread (the benchmark runs on one thread).
fn cpu_time() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns: u64 = s
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

fn build_index(settings: &Settings, pods: &[Pod], node: Option<&str>) -> PodIndex {
    let index = PodIndex::new(DEFAULT_DELETE_GRACE, settings.exclude.clone());
    for p in pods {
        let on_node = p.spec.as_ref().and_then(|s| s.node_name.as_deref());
        if (node.is_none() || on_node == node)
            && let Some(meta) = pod_meta(p, settings)
        {
            index.apply_pod(meta);
        }
    }
    for (_, _, uid) in index.missing_replicasets() {
        let n = uid.trim_start_matches("rs-");
        index.insert_replicaset(ReplicaSetMeta {
            uid: uid.as_str().into(),
            deployment: Some((format!("svc-{n}").into(), format!("dep-{n}").into())),
        });
    }
    index
}

fn memory(settings: &Settings) {
    let pods: Vec<Pod> = (0..CLUSTER_PODS).map(api_pod).collect();
    let node_pods: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("node-0"))
        .collect();
    assert_eq!(node_pods.len(), NODE_PODS);

    let region = Region::new(GLOBAL);
    let full: Vec<Pod> = node_pods.iter().map(|p| (*p).clone()).collect();
    let full_bytes = live_bytes(&region);
    drop(black_box(full));

    let region = Region::new(GLOBAL);
    let node_index = build_index(settings, &pods, Some("node-0"));
    let node_bytes = live_bytes(&region);

    let rss0 = rss_kib();
    let region = Region::new(GLOBAL);
    let cluster_index = build_index(settings, &pods, None);
    let cluster_bytes = live_bytes(&region);
    let rss_delta = rss_kib() - rss0;

    println!(
        "memory ({NODES} nodes, {CLUSTER_PODS} pods in the cluster, {NODE_PODS} on this node)"
    );
    println!(
        "  full Pod objects of the node (what a plain reflector keeps): {:>9} B  = {:>6} B/pod",
        full_bytes,
        full_bytes / NODE_PODS as i64
    );
    println!(
        "  node-scoped cache (spec.nodeName filter): {:>4} pods, {:>3} ReplicaSets, {:>9} B heap = {:>6} B/pod",
        node_index.len(),
        node_index.replicaset_count(),
        node_bytes,
        node_bytes / node_index.len() as i64
    );
    println!(
        "  same cache without the node filter (gateway): {:>5} pods, {:>4} ReplicaSets, {:>9} B heap = {:>6} B/pod, RSS +{} KiB",
        cluster_index.len(),
        cluster_index.replicaset_count(),
        cluster_bytes,
        cluster_bytes / cluster_index.len() as i64,
        rss_delta
    );
    println!(
        "  the node's cache does not grow with the cluster: it holds {} of {} pods ({:.1}% of the cluster-wide cache's heap)",
        node_index.len(),
        cluster_index.len(),
        100.0 * node_bytes as f64 / cluster_bytes as f64
    );
}

struct Discard;

#[async_trait::async_trait]
impl Consumer for Discard {
    async fn offer(&self, data: Envelope) -> Result<(), Refusal> {
        black_box(data);
        Ok(())
    }
}

fn traces(resources: usize, spans: usize) -> Payload {
    let resource_spans = (0..resources)
        .map(|_| ResourceSpans {
            resource: Some(Resource {
                attributes: resource(&[
                    ("service.name", "checkout"),
                    ("service.version", "1.4.2"),
                    ("telemetry.sdk.name", "opentelemetry"),
                    ("telemetry.sdk.language", "go"),
                    ("telemetry.sdk.version", "1.28.0"),
                    ("host.name", "checkout-5d8f7c9b4f-00042"),
                    ("process.runtime.name", "go"),
                    ("os.type", "linux"),
                ]),
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: (0..spans)
                    .map(|i| Span {
                        trace_id: vec![7; 16],
                        span_id: (i as u64).to_be_bytes().to_vec(),
                        name: "GET /cart".into(),
                        start_time_unix_nano: 1,
                        end_time_unix_nano: 2,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    Payload::Traces(ExportTraceServiceRequest { resource_spans })
}

/// CPU time of sending `payload` through `stage` `n` times (clone included).
fn run(stage: &BoxConsumer, payload: &Payload, peer: IpAddr, n: usize) -> Duration {
    let context = RequestContext {
        peer: Some(SocketAddr::new(peer, 51234)),
        metadata: None,
    };
    let start = cpu_time();
    for _ in 0..n {
        let env = Envelope::with_context(payload.clone(), context.clone());
        futures::executor::block_on(stage.consume(env)).expect("discard accepts");
    }
    cpu_time() - start
}

fn cpu(settings: Settings) {
    let pods: Vec<Pod> = (0..NODE_PODS).map(api_pod).collect();
    let index = Arc::new(build_index(&settings, &pods, Some("node-0")));
    let enricher = Arc::new(Enricher::new(Arc::new(settings), index, Metrics::default()));
    let next: BoxConsumer = Arc::new(Discard);
    let processor: BoxConsumer = Arc::new(K8sAttributesProcessor::new(enricher, next.clone()));
    let peer = ip_of(42);

    println!(
        "cpu (one thread; each request cloned from a template, then sent to a discarding next stage)"
    );
    for (resources, spans) in [(1, 1), (1, 100), (10, 100)] {
        let payload = traces(resources, spans);
        let per_request_spans = resources * spans;
        let n = (400_000 / per_request_spans).max(2_000);
        run(&processor, &payload, peer, n / 10);
        let pass = run(&next, &payload, peer, n);
        let enriched = run(&processor, &payload, peer, n);
        let spans_total = (n * per_request_spans) as f64;
        let pass_ns = pass.as_nanos() as f64 / spans_total;
        let enr_ns = enriched.as_nanos() as f64 / spans_total;
        println!(
            "  {resources:>2} resource(s) x {spans:>3} spans: pass-through {pass_ns:>8.1} ns/span, \
             with k8sattributes {enr_ns:>8.1} ns/span, enrichment {:>7.1} ns/span \
             ({:>6.0} ns/resource), x{:.2} of pass-through",
            enr_ns - pass_ns,
            (enriched.as_nanos() as f64 - pass.as_nanos() as f64) / (n * resources) as f64,
            enr_ns / pass_ns
        );
    }
}

fn main() {
    let settings = Settings::resolve("k8sattributes", &preset(), |_| None).expect("settings");
    memory(&settings);
    cpu(settings);
}
