//! The processor against a real API server (`make cluster-up`, or any cluster named by
//! KUBECONFIG with at least two nodes whose pods get IPs, such as kwok's fake nodes).
//!
//! `KUBECONFIG=$PWD/.e2e/kubeconfig cargo test -p kotel-k8sattributes --features e2e --test api_server`

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kotel_config::ComponentId;
use kotel_config::processors::k8sattributes::K8sAttributesConfig;
use kotel_k8sattributes::K8sAttributesProcessor;
use kotel_k8sattributes::attrs::kv;
use kotel_pipeline::proto::common::v1::any_value::Value;
use kotel_pipeline::proto::resource::v1::Resource;
use kotel_pipeline::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use kotel_pipeline::{
    BoxConsumer, CaptureSink, Envelope, ExportTraceServiceRequest, Payload, RequestContext,
    Shutdown,
};
use kotel_testkit::proxy::Proxy;
use kotel_testkit::wait_for;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(90);

fn pod(name: &str, node: &str, labels: serde_json::Value, host_network: bool) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "nodeName": node,
            "hostNetwork": host_network,
            "containers": [{"name": "app", "image": "registry.example/app:1.0"}],
            "tolerations": [{"operator": "Exists"}]
        }
    }))
    .unwrap()
}

/// Creates `pod`; returns its uid.
async fn create_pod(pods: &Api<Pod>, pod: Pod) -> String {
    pods.create(&PostParams::default(), &pod)
        .await
        .unwrap()
        .uid()
        .unwrap()
}

/// Sets pod `name`'s label team=`team`.
async fn set_team(pods: &Api<Pod>, name: &str, team: &str) {
    let labels = json!({"metadata": {"labels": {"team": team}}});
    pods.patch(name, &PatchParams::default(), &Patch::Merge(labels))
        .await
        .unwrap();
}

async fn pod_ip(pods: &Api<Pod>, name: &str) -> (String, IpAddr) {
    wait_for(&format!("pod {name} to get an IP"), WAIT, || async {
        let p = pods.get(name).await.ok()?;
        let ip = p.status.as_ref()?.pod_ip.as_deref()?.parse().ok()?;
        Some((p.uid()?, ip))
    })
    .await
}

fn traces(attrs: &[(&str, &str)]) -> Payload {
    Payload::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span::default()],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// Sends one trace through the processor; returns the resulting resource attributes.
async fn send(
    processor: &BoxConsumer,
    sink: &CaptureSink,
    peer: Option<IpAddr>,
    attrs: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let context = RequestContext {
        peer: peer.map(|ip| SocketAddr::new(ip, 40000)),
        metadata: None,
    };
    processor
        .consume(Envelope::with_context(traces(attrs), context))
        .await
        .unwrap();
    let mut got = sink.take().await;
    let Payload::Traces(t) = got.pop().unwrap().payload else {
        panic!("not traces")
    };
    t.resource_spans[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some((kv.key.clone(), s.clone())),
            _ => None,
        })
        .collect()
}

/// The string value of `key` in `got`, if any.
fn value<'a>(got: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    got.get(key).map(String::as_str)
}

/// The names of the cluster's nodes.
async fn node_names(client: &Client) -> Vec<String> {
    Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        // Not the e2e real node: these tests place fake pods, which only kwok's nodes accept.
        .filter(|n| !n.labels().contains_key("kotel.dev/real-node"))
        .map(|n| n.name_any())
        .collect()
}

/// KUBECONFIG's client, and a new namespace `{prefix}-{pid}` for the test to delete at its end.
async fn client_and_namespace(prefix: &str) -> (Client, String) {
    let client = Client::try_default()
        .await
        .expect("KUBECONFIG names a reachable cluster");
    let name = format!("{prefix}-{}", std::process::id());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    (client, name)
}

async fn delete_namespace(client: &Client, name: &str) {
    Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
}

/// A one-replica Deployment `name` on `node`; its pods are labelled app=`name`.
fn deployment(name: &str, node: &str, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeName": node,
                    "containers": [{"name": "app", "image": image}],
                    "tolerations": [{"operator": "Exists"}]
                }
            }
        }
    }))
    .unwrap()
}

/// Waits for the pod that Deployment `app`'s ReplicaSet makes.
async fn deployment_pod(pods: &Api<Pod>, app: &str) -> Pod {
    let selector = format!("app={app}");
    wait_for("the Deployment's pod", WAIT, || async {
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .ok()?;
        list.items.into_iter().next()
    })
    .await
}

/// A built processor, what it passes on, its metrics, and its background task.
struct Running {
    processor: BoxConsumer,
    sink: Arc<CaptureSink>,
    registry: prometheus_client::registry::Registry,
    shutdown: Shutdown,
    background: JoinHandle<Result<(), kotel_k8sattributes::Error>>,
}

impl Running {
    /// Builds the processor from `config` (over `client`, else its own) and runs its task.
    async fn start(config: serde_json::Value, client: Option<Client>, what: &str) -> Self {
        let config: K8sAttributesConfig = serde_json::from_value(config).unwrap();
        let id = ComponentId::new("k8sattributes", None);
        let sink = CaptureSink::new();
        let mut registry = prometheus_client::registry::Registry::default();
        let (processor, task) = match client {
            Some(client) => {
                K8sAttributesProcessor::build_with_client(
                    &id,
                    &config,
                    sink.clone(),
                    &mut registry,
                    client,
                )
                .await
            }
            None => {
                K8sAttributesProcessor::build(
                    &id,
                    &config,
                    sink.clone(),
                    &mut registry,
                    &kotel_pipeline::Health::default(),
                )
                .await
            }
        }
        .expect(what);
        let shutdown = Shutdown::new();
        let background = tokio::spawn(task.run(shutdown.clone()));
        Self {
            processor,
            sink,
            registry,
            shutdown,
            background,
        }
    }

    async fn send(&self, peer: Option<IpAddr>, attrs: &[(&str, &str)]) -> BTreeMap<String, String> {
        send(&self.processor, &self.sink, peer, attrs).await
    }

    /// Sends a trace carrying `uid`; consume() must return even without the API server.
    async fn send_uid_guarded(&self, uid: &str) -> BTreeMap<String, String> {
        tokio::time::timeout(HANG_GUARD, self.send(None, &[("k8s.pod.uid", uid)]))
            .await
            .expect("consume() returns while the API server is away")
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.background)
            .await
            .expect("background task stops on shutdown")
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn pods_of_this_node_enrich_data_by_peer_ip_and_uid() {
    let (client, ns_name) = client_and_namespace("k8sattr-e2e").await;
    let nodes = node_names(&client).await;
    assert!(nodes.len() >= 2, "needs two nodes, found {nodes:?}");
    let (mine, other) = (nodes[0].clone(), nodes[1].clone());

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns_name);
    create_pod(&pods, pod("web", &mine, json!({"team": "red"}), false)).await;
    create_pod(
        &pods,
        pod("elsewhere", &other, json!({"team": "red"}), false),
    )
    .await;
    create_pod(&pods, pod("hostnet", &mine, json!({}), true)).await;
    Api::<Deployment>::namespaced(client.clone(), &ns_name)
        .create(
            &PostParams::default(),
            &deployment("shop", &mine, "registry.example/shop:2.0"),
        )
        .await
        .unwrap();

    let (web_uid, web_ip) = pod_ip(&pods, "web").await;
    let (other_uid, other_ip) = pod_ip(&pods, "elsewhere").await;
    let (_, hostnet_ip) = pod_ip(&pods, "hostnet").await;
    let shop_pod = deployment_pod(&pods, "shop").await.name_any();
    let (_, shop_ip) = pod_ip(&pods, &shop_pod).await;

    let config = json!({
        "auth_type": "kubeConfig",
        "filter": {"node": mine},
        "wait_for_metadata": true,
        "pod_association": [
            {"sources": [{"from": "resource_attribute", "name": "k8s.pod.uid"}]},
            {"sources": [{"from": "connection"}]}
        ],
        "extract": {
            "metadata": ["k8s.namespace.name", "k8s.pod.name", "k8s.pod.uid", "k8s.pod.start_time",
                         "k8s.deployment.name", "k8s.node.name", "k8s.replicaset.name"],
            "labels": [{"key": "team"}]
        }
    });
    let running = Running::start(config, None, "processor builds and syncs").await;

    // By the peer address: the pod's metadata, and k8s.pod.ip from the connection.
    let got = running.send(Some(web_ip), &[]).await;
    assert_eq!(got["k8s.pod.name"], "web");
    assert_eq!(got["k8s.pod.uid"], web_uid);
    assert_eq!(got["k8s.namespace.name"], ns_name);
    assert_eq!(got["k8s.node.name"], mine);
    assert_eq!(got["k8s.pod.ip"], web_ip.to_string());
    assert_eq!(got["k8s.pod.labels.team"], "red");
    assert!(got["k8s.pod.start_time"].ends_with('Z'), "{got:?}");

    // By uid, from any peer; existing attributes stay.
    let got = running
        .send(
            None,
            &[("k8s.pod.uid", &web_uid), ("k8s.pod.name", "given")],
        )
        .await;
    assert_eq!(got["k8s.pod.name"], "given");
    assert_eq!(got["k8s.namespace.name"], ns_name);

    // A pod on another node is never cached: neither its uid nor its IP match.
    let got = running.send(None, &[("k8s.pod.uid", &other_uid)]).await;
    assert!(!got.contains_key("k8s.pod.name"), "{got:?}");
    if other_ip != web_ip && other_ip != shop_ip {
        let got = running.send(Some(other_ip), &[]).await;
        assert!(!got.contains_key("k8s.pod.name"), "{got:?}");
    }

    // A hostNetwork pod shares the node's IP: never matched by it.
    let got = running.send(Some(hostnet_ip), &[]).await;
    assert_ne!(value(&got, "k8s.pod.name"), Some("hostnet"), "{got:?}");

    // The deployment's name comes from its ReplicaSet's owner.
    let got = wait_for("k8s.deployment.name", WAIT, || async {
        let got = running.send(Some(shop_ip), &[]).await;
        got.contains_key("k8s.deployment.name").then_some(got)
    })
    .await;
    assert_eq!(got["k8s.deployment.name"], "shop");
    assert!(got["k8s.replicaset.name"].starts_with("shop-"), "{got:?}");

    // Relabelled: the new value arrives through the watch.
    set_team(&pods, "web", "blue").await;
    wait_for("the new label", WAIT, || async {
        let got = running.send(Some(web_ip), &[]).await;
        (value(&got, "k8s.pod.labels.team") == Some("blue")).then_some(())
    })
    .await;

    // Deleted: late data still matches during the grace period.
    pods.delete("web", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    wait_for("the pod to be gone", WAIT, || async {
        pods.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = running.send(None, &[("k8s.pod.uid", &web_uid)]).await;
    assert_eq!(value(&got, "k8s.pod.name"), Some("web"));

    let mut metrics = String::new();
    prometheus_client::encoding::text::encode(&mut metrics, &running.registry).unwrap();
    assert!(
        metrics.contains("otelcol_otelsvc_k8s_pod_added_total"),
        "{metrics}"
    );
    // At least: pods of other tests' namespaces on this node may be deleted meanwhile too.
    let deleted: f64 = metrics
        .lines()
        .find(|l| {
            l.starts_with("otelcol_otelsvc_k8s_pod_deleted_total{processor=\"k8sattributes\"}")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_default();
    assert!(deleted >= 1.0, "{metrics}");

    running.stop().await;
    delete_namespace(&client, &ns_name).await;
}

#[tokio::test]
async fn passthrough_only_tags_the_connection_ip() {
    let config: K8sAttributesConfig = serde_json::from_value(json!({"passthrough": true})).unwrap();
    let sink = CaptureSink::new();
    let mut registry = prometheus_client::registry::Registry::default();
    let (processor, _task) = K8sAttributesProcessor::build(
        &ComponentId::new("k8sattributes", Some("pt")),
        &config,
        sink.clone(),
        &mut registry,
        &kotel_pipeline::Health::default(),
    )
    .await
    .unwrap();
    let got = send(&processor, &sink, Some("10.9.8.7".parse().unwrap()), &[]).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got["k8s.pod.ip"], "10.9.8.7");
}

#[tokio::test]
async fn wait_for_metadata_fails_clearly_when_nothing_syncs() {
    // No API round trip fits in a nanosecond: build must fail, naming what did not sync.
    let config: K8sAttributesConfig = serde_json::from_value(json!({
        "auth_type": "kubeConfig",
        "filter": {"node": "no-such-node"},
        "wait_for_metadata": true,
        "wait_for_metadata_timeout": "1ns"
    }))
    .unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    let err = match K8sAttributesProcessor::build(
        &ComponentId::new("k8sattributes", None),
        &config,
        Arc::new(kotel_pipeline::FanOut::new(Vec::new())),
        &mut registry,
        &kotel_pipeline::Health::default(),
    )
    .await
    {
        Ok(_) => panic!("a 1ns timeout cannot be met"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("wait_for_metadata"), "{err}");
    assert!(err.contains("pods"), "{err}");
}

/// Only a guard against a hang, never a timing assertion: consume() must return at all.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// KUBECONFIG's client config, and the API server's socket address.
async fn api_server() -> (kube::Config, SocketAddr) {
    let config = kube::Config::infer()
        .await
        .expect("KUBECONFIG names a cluster");
    let url = &config.cluster_url;
    assert_eq!(url.scheme_str(), Some("https"), "a TLS API server: {url}");
    let host = url.host().unwrap().trim_matches(['[', ']']);
    let addr = tokio::net::lookup_host((host, url.port_u16().unwrap_or(443)))
        .await
        .unwrap()
        .next()
        .unwrap();
    (config, addr)
}

/// A client that connects through 127.0.0.1:`port`, still verifying the server's certificate
/// against the original host.
fn through_proxy(mut config: kube::Config, port: u16) -> Client {
    let url = config.cluster_url.clone();
    let host = url.host().unwrap().trim_matches(['[', ']']).to_string();
    config.tls_server_name.get_or_insert(host);
    config.cluster_url = format!("https://127.0.0.1:{port}{}", url.path())
        .parse()
        .unwrap();
    Client::try_from(config).unwrap()
}

fn watch_errors(registry: &prometheus_client::registry::Registry) -> f64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .filter(|l| l.starts_with("otelcol_k8sattributes_watch_errors") && l.contains("\"pods\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn an_api_server_outage_keeps_the_cache_and_never_blocks_data() {
    let (client, ns_name) = client_and_namespace("k8sattr-outage").await;
    let node = node_names(&client).await.remove(0);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns_name);
    let before_uid = create_pod(&pods, pod("before", &node, json!({"team": "red"}), false)).await;

    let (kube_config, upstream) = api_server().await;
    let mut proxy = Proxy::start(upstream);
    let config = json!({
        "filter": {"node": node},
        "wait_for_metadata": true,
        "pod_association": [{"sources": [{"from": "resource_attribute", "name": "k8s.pod.uid"}]}],
        "extract": {
            "metadata": ["k8s.namespace.name", "k8s.pod.name", "k8s.pod.uid",
                         "k8s.deployment.name"],
            "labels": [{"key": "team"}]
        }
    });
    let client_via_proxy = through_proxy(kube_config, proxy.port);
    let running = Running::start(
        config,
        Some(client_via_proxy),
        "processor syncs through the proxy",
    )
    .await;
    let got = running.send_uid_guarded(&before_uid).await;
    assert_eq!(got["k8s.pod.name"], "before");
    assert_eq!(got["k8s.pod.labels.team"], "red");

    // Outage: the watches lose their connections and cannot make new ones. It lasts at least
    // E2E_API_OUTAGE_SECONDS (default: as long as the checks below take; BENCHMARKS.md has a run
    // of minutes).
    proxy.cut().await;
    let cut_at = std::time::Instant::now();
    let outage = Duration::from_secs(
        std::env::var("E2E_API_OUTAGE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    );
    let errors_before = watch_errors(&running.registry);
    let during_uid = create_pod(&pods, pod("during", &node, json!({"team": "green"}), false)).await;
    set_team(&pods, "before", "blue").await;
    // Its pod's deployment name needs a ReplicaSet read, which only works after the outage.
    Api::<Deployment>::namespaced(client.clone(), &ns_name)
        .create(
            &PostParams::default(),
            &deployment("late", &node, "registry.example/late:1.0"),
        )
        .await
        .unwrap();
    // The processor notices (a failed reconnect is counted) ...
    wait_for(
        "the pod watch to fail against the cut proxy",
        WAIT,
        || async { (watch_errors(&running.registry) > errors_before).then_some(()) },
    )
    .await;
    // ... and meanwhile keeps enriching from the last known state, without blocking.
    for _ in 0..10 {
        let got = running.send_uid_guarded(&before_uid).await;
        assert_eq!(got["k8s.pod.name"], "before", "{got:?}");
        assert_eq!(got["k8s.namespace.name"], ns_name);
        assert_eq!(got["k8s.pod.labels.team"], "red", "the last known state");
        let got = running.send_uid_guarded(&during_uid).await;
        assert!(
            !got.contains_key("k8s.pod.name"),
            "a pod created during the outage cannot be known yet: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Through the rest of the outage, data keeps flowing with the last known metadata.
    let mut sent_during = 20;
    while cut_at.elapsed() < outage {
        let got = running.send_uid_guarded(&before_uid).await;
        assert_eq!(got["k8s.pod.labels.team"], "red", "{got:?}");
        sent_during += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "TIMING k8sattributes API outage of {:.0}s: {sent_during} requests enriched from the cache during it",
        cut_at.elapsed().as_secs_f64()
    );

    // The API server is back on the same address: the watch reconnects (with backoff) and
    // catches up with what happened meanwhile.
    proxy.restore();
    let restored = std::time::Instant::now();
    wait_for("the pod created during the outage", WAIT, || async {
        let got = running.send_uid_guarded(&during_uid).await;
        (value(&got, "k8s.pod.name") == Some("during")).then_some(())
    })
    .await;
    wait_for("the label changed during the outage", WAIT, || async {
        let got = running.send_uid_guarded(&before_uid).await;
        (value(&got, "k8s.pod.labels.team") == Some("blue")).then_some(())
    })
    .await;
    let late_uid = deployment_pod(&pods, "late").await.uid().unwrap();
    wait_for(
        "the deployment of a pod created during the outage",
        WAIT,
        || async {
            let got = running.send_uid_guarded(&late_uid).await;
            (value(&got, "k8s.deployment.name") == Some("late")).then_some(())
        },
    )
    .await;
    // A figure for run-e2e.sh's summary, not an assertion: kube's watch backoff sets it.
    println!(
        "TIMING k8sattributes catch-up after an API outage: {:.2}s ({} pod watch errors)",
        restored.elapsed().as_secs_f64(),
        watch_errors(&running.registry)
    );
    let got = running.send_uid_guarded(&during_uid).await;
    assert_eq!(got["k8s.pod.labels.team"], "green");
    assert_eq!(got["k8s.namespace.name"], ns_name);

    running.stop().await;
    proxy.cut().await;
    delete_namespace(&client, &ns_name).await;
}

#[tokio::test]
async fn without_wait_for_metadata_data_passes_until_the_api_server_is_reachable() {
    let (client, ns_name) = client_and_namespace("k8sattr-late").await;
    let node = node_names(&client).await.remove(0);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns_name);
    let uid = create_pod(&pods, pod("early", &node, json!({"team": "red"}), false)).await;

    // The API server is unreachable from the start: the first list fails and is retried.
    let (kube_config, upstream) = api_server().await;
    let mut proxy = Proxy::start(upstream);
    proxy.cut().await;
    let config = json!({
        "filter": {"node": node},
        "pod_association": [{"sources": [{"from": "resource_attribute", "name": "k8s.pod.uid"}]}],
        "extract": {"metadata": ["k8s.pod.name"]}
    });
    let running = Running::start(
        config,
        Some(through_proxy(kube_config, proxy.port)),
        "without wait_for_metadata, build does not need the API server",
    )
    .await;
    wait_for("the first list to fail", WAIT, || async {
        (watch_errors(&running.registry) > 0.0).then_some(())
    })
    .await;
    let got = running.send_uid_guarded(&uid).await;
    assert!(!got.contains_key("k8s.pod.name"), "not synced: {got:?}");

    proxy.restore();
    wait_for("the pod after the first successful list", WAIT, || async {
        let got = running.send_uid_guarded(&uid).await;
        (value(&got, "k8s.pod.name") == Some("early")).then_some(())
    })
    .await;

    running.stop().await;
    proxy.cut().await;
    delete_namespace(&client, &ns_name).await;
}
