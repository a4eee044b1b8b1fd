//! kotelcol with the k8sattributes processor against a real API server (`make cluster-up`, or any
//! cluster named by KUBECONFIG with two nodes): OTLP gRPC requests carrying a pod's uid leave the
//! collector with that pod's metadata. The connection rule is covered through the processor in
//! kotel-k8sattributes' api_server test, since kwok pods' IPs are not routable here; this one
//! only checks that the receiver's peer address reaches the processor.
//!
//! `KUBECONFIG=$PWD/.e2e/kubeconfig cargo test -p kotelcol --features e2e --test k8s_e2e -- --test-threads=1`
#![cfg(feature = "e2e")]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Collector, Sink};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kotel_pipeline::Payload;
use kotel_pipeline::proto::collector::logs::v1::logs_service_client::LogsServiceClient;
use kotel_pipeline::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use kotel_pipeline::proto::common::v1::any_value::Value;
use kotel_pipeline::proto::common::v1::{AnyValue, KeyValue};
use kotel_pipeline::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use kotel_pipeline::proto::resource::v1::Resource;
use kotel_pipeline::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use kotel_pipeline::{ExportLogsServiceRequest, ExportTraceServiceRequest};
use kotel_testkit::wait_for;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

/// A liveness bound for the cluster to act, never a timing assertion.
const WAIT: Duration = Duration::from_secs(90);

fn pod(name: &str, node: &str, host_network: bool) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"team": "blue"}},
        "spec": {
            "nodeName": node,
            "hostNetwork": host_network,
            "containers": [{"name": "app", "image": "registry.example/app:1.0"}],
            "tolerations": [{"operator": "Exists"}]
        }
    }))
    .unwrap()
}

fn resource(attrs: &[(&str, &str)]) -> Option<Resource> {
    Some(Resource {
        attributes: attrs
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.to_string(),
                value: Some(AnyValue {
                    value: Some(Value::StringValue(v.to_string())),
                }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

fn traces(attrs: &[(&str, &str)]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(attrs),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![7; 16],
                    span_id: vec![7; 8],
                    name: "checkout".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn logs(attrs: &[(&str, &str)]) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(attrs),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: Some(AnyValue {
                        value: Some(Value::StringValue("order placed".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The string attributes of every resource the sink received, in arrival order.
async fn received(sink: &Sink) -> Vec<BTreeMap<String, String>> {
    let strings = |r: &Option<Resource>| -> BTreeMap<String, String> {
        r.iter()
            .flat_map(|r| &r.attributes)
            .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => Some((kv.key.clone(), s.clone())),
                _ => None,
            })
            .collect()
    };
    let got = sink.received.lock().await;
    got.iter()
        .flat_map(|p| -> Vec<BTreeMap<String, String>> {
            match p {
                Payload::Traces(t) => t
                    .resource_spans
                    .iter()
                    .map(|r| strings(&r.resource))
                    .collect(),
                Payload::Logs(l) => l
                    .resource_logs
                    .iter()
                    .map(|r| strings(&r.resource))
                    .collect(),
                Payload::Metrics(m) => m
                    .resource_metrics
                    .iter()
                    .map(|r| strings(&r.resource))
                    .collect(),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_data_with_a_pod_uid_leaves_kotelcol_with_the_pods_metadata() {
    // This test's own kube client needs rustls' process-wide provider too, before the collector's
    // processor would choose it (k8sattributes_startup.rs covers the collector alone).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_default()
        .await
        .expect("KUBECONFIG names a reachable cluster");
    let nodes: Vec<String> = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        // Not the e2e real node: these tests place fake pods, which only kwok's nodes accept.
        .filter(|n| !n.labels().contains_key("kotel.dev/real-node"))
        .map(|n| n.name_any())
        .collect();
    assert!(nodes.len() >= 2, "needs two nodes, found {nodes:?}");
    let (mine, other) = (nodes[0].clone(), nodes[1].clone());

    let ns_name = format!("kotelcol-k8s-e2e-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": ns_name, "labels": {"env": "staging"}}
    }))
    .unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns_name);
    let pp = PostParams::default();
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "checkout"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {
                "metadata": {"labels": {"app": "checkout", "team": "red"}},
                "spec": {
                    "nodeName": mine,
                    "containers": [{"name": "app", "image": "registry.example/checkout:3.1"}],
                    "tolerations": [{"operator": "Exists"}]
                }
            }
        }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), &ns_name)
        .create(&pp, &deployment)
        .await
        .unwrap();
    let elsewhere_uid = pods
        .create(&pp, &pod("elsewhere", &other, false))
        .await
        .unwrap()
        .uid()
        .unwrap();
    pods.create(&pp, &pod("hostnet", &mine, true))
        .await
        .unwrap();
    // The Deployment's pod, made by its ReplicaSet: wait_for_metadata below needs it to exist
    // before the collector starts, so the first request must already be enriched.
    let (pod_name, pod_uid) = wait_for("the Deployment's pod", WAIT, || async {
        let list = pods
            .list(&ListParams::default().labels("app=checkout"))
            .await
            .ok()?;
        let p = list.items.first()?;
        Some((p.name_any(), p.uid()?))
    })
    .await;

    let (sink, sink_addr, _sink_stop) = Sink::start().await;
    let pipeline = "{receivers: [otlp], processors: [k8sattributes], exporters: [otlp]}";
    let yaml = format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:0"}}
processors:
  k8sattributes:
    auth_type: kubeConfig
    filter: {{node: {mine}}}
    wait_for_metadata: true
    pod_association:
      - sources: [{{from: resource_attribute, name: k8s.pod.uid}}]
      - sources: [{{from: connection}}]
    extract:
      metadata: [k8s.namespace.name, k8s.pod.name, k8s.pod.uid, k8s.node.name,
                 k8s.deployment.name, k8s.replicaset.name]
      labels:
        - {{tag_name: team, key: team, from: pod}}
        - {{key: env, from: namespace}}
exporters:
  otlp:
    endpoint: {sink_addr}
    tls: {{insecure: true}}
service:
  telemetry:
    logs: {{level: warn}}
    metrics: {{address: "127.0.0.1:0"}}
  pipelines:
    traces: {pipeline}
    logs: {pipeline}
"#
    );
    let collector = Collector::start(&yaml).await;
    let endpoint = format!("http://{}", collector.grpc.unwrap());
    let mut trace_client = TraceServiceClient::connect(endpoint.clone()).await.unwrap();
    let mut logs_client = LogsServiceClient::connect(endpoint).await.unwrap();

    trace_client
        .export(traces(&[
            ("k8s.pod.uid", &pod_uid),
            ("service.name", "checkout"),
        ]))
        .await
        .unwrap();
    logs_client
        .export(logs(&[("k8s.pod.uid", &pod_uid)]))
        .await
        .unwrap();
    // Another node's pod is never cached; data without a uid falls to the connection rule.
    trace_client
        .export(traces(&[("k8s.pod.uid", &elsewhere_uid)]))
        .await
        .unwrap();
    trace_client.export(traces(&[])).await.unwrap();
    sink.wait_for("four resources", |got| got.len() >= 4).await;

    let got = received(&sink).await;
    let of = |uid: &str| -> Vec<&BTreeMap<String, String>> {
        got.iter()
            .filter(|r| r.get("k8s.pod.uid").map(String::as_str) == Some(uid))
            .collect()
    };
    let enriched = of(&pod_uid);
    assert_eq!(enriched.len(), 2, "a span and a log record: {got:?}");
    for r in enriched {
        assert_eq!(r["k8s.pod.name"], pod_name, "{r:?}");
        assert_eq!(r["k8s.namespace.name"], ns_name);
        assert_eq!(r["k8s.node.name"], mine);
        assert_eq!(r["k8s.deployment.name"], "checkout");
        assert!(r["k8s.replicaset.name"].starts_with("checkout-"), "{r:?}");
        assert_eq!(r["team"], "red", "pod label under its tag_name");
        assert_eq!(r["k8s.namespace.labels.env"], "staging");
    }
    assert_eq!(
        of(&pod_uid)
            .iter()
            .filter(|r| r.get("service.name").map(String::as_str) == Some("checkout"))
            .count(),
        1,
        "the sender's own attributes stay"
    );
    let elsewhere = of(&elsewhere_uid);
    assert_eq!(elsewhere.len(), 1);
    assert!(
        !elsewhere[0].contains_key("k8s.pod.name"),
        "a pod on another node: {:?}",
        elsewhere[0]
    );
    // The test's own address is the peer; kwok gives hostNetwork pods the node IP 127.0.0.1, and
    // such pods are never matched by IP.
    let anonymous: Vec<_> = got
        .iter()
        .filter(|r| !r.contains_key("k8s.pod.uid"))
        .collect();
    assert_eq!(anonymous.len(), 1, "{got:?}");
    assert_eq!(anonymous[0]["k8s.pod.ip"], "127.0.0.1");
    assert!(
        !anonymous[0].contains_key("k8s.pod.name"),
        "{:?}",
        anonymous[0]
    );

    assert!(
        collector
            .metric(
                "otelcol_otelsvc_k8s_pod_table_size",
                &[("processor", "k8sattributes")]
            )
            .await
            >= 2.0,
        "the Deployment's pod and the hostNetwork pod on this node"
    );
    collector.stop().await;
    namespaces
        .delete(&ns_name, &DeleteParams::default())
        .await
        .unwrap();
}
