//! The processor: enriches every resource of traces, metrics and logs, then hands the data on.
//! [`Enricher`] is the pure part (cache + rules); [`K8sAttributesProcessor`] wires it to the
//! pipeline and the API server.

use std::net::IpAddr;
use std::sync::Arc;

use kotel_config::ComponentId;
use kotel_config::processors::k8sattributes::K8sAttributesConfig;
use kotel_pipeline::proto::common::v1::KeyValue;
use kotel_pipeline::proto::resource::v1::Resource;
use kotel_pipeline::{BoxConsumer, Consumer, Envelope, Health, Payload, Refusal, Shutdown};
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::info;

use crate::association;
use crate::attrs::{self, K8S_NAMESPACE_NAME, K8S_NODE_NAME, K8S_POD_IP};
use crate::error::Error;
use crate::index::{DEFAULT_DELETE_GRACE, PodIndex};
use crate::metrics::Metrics;
use crate::settings::{Auth, Settings};
use crate::watch::Watches;

/// Association and extraction over a cache: everything the processor does to data.
pub struct Enricher {
    settings: Arc<Settings>,
    index: Arc<PodIndex>,
    metrics: Metrics,
}

impl Enricher {
    pub fn new(settings: Arc<Settings>, index: Arc<PodIndex>, metrics: Metrics) -> Self {
        Self {
            settings,
            index,
            metrics,
        }
    }

    pub fn index(&self) -> &Arc<PodIndex> {
        &self.index
    }

    /// Enriches every resource of `payload`; `peer` is the connection's IP.
    pub fn enrich(&self, payload: &mut Payload, peer: Option<IpAddr>) {
        // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; pods have plain IPv4.
        let peer = peer.map(|ip| ip.to_canonical());
        let resources: Box<dyn Iterator<Item = &mut Option<Resource>>> = match payload {
            Payload::Traces(r) => Box::new(r.resource_spans.iter_mut().map(|r| &mut r.resource)),
            Payload::Metrics(r) => Box::new(r.resource_metrics.iter_mut().map(|r| &mut r.resource)),
            Payload::Logs(r) => Box::new(r.resource_logs.iter_mut().map(|r| &mut r.resource)),
        };
        for resource in resources {
            let r = resource.get_or_insert_with(Resource::default);
            self.resource(&mut r.attributes, peer);
        }
    }

    /// Enriches one resource's attributes.
    pub fn resource(&self, out: &mut Vec<KeyValue>, peer: Option<IpAddr>) {
        let s = &*self.settings;
        if s.passthrough {
            if let Some(ip) = s
                .association
                .identify(out, peer)
                .and_then(|id| id.connection_ip())
            {
                attrs::set(out, K8S_POD_IP, &ip.to_string());
            }
            return;
        }
        let view = self.index.read();
        let (connection_ip, pod) = match s.association.identify(out, peer) {
            Some(id) => {
                let pod = association::find(&view, &s.extractor, &id);
                if pod.is_none() {
                    self.metrics.lookup_miss.inc();
                }
                (id.connection_ip(), pod)
            }
            None => (None, None),
        };
        if let Some(ip) = connection_ip {
            attrs::set(out, K8S_POD_IP, &ip.to_string());
        }
        let x = &s.extractor;
        if let Some(pod) = &pod {
            x.pod(&view, pod, out);
            x.container(pod, out);
        }
        // Namespace and node metadata also apply to data that names them without a pod match.
        let namespace = match &pod {
            Some(p) => Some(p.namespace.to_string()),
            None => attrs::get(out, K8S_NAMESPACE_NAME).map(str::to_string),
        };
        if let Some(ns) = namespace {
            x.namespace(&view, &ns, out);
        }
        let node = match pod.as_ref().and_then(|p| p.node_name.as_deref()) {
            Some(n) => Some(n.to_string()),
            None => attrs::get(out, K8S_NODE_NAME).map(str::to_string),
        };
        if let Some(node) = node {
            x.node(&view, &node, out);
        }
    }
}

/// The k8sattributes processor, a [`Consumer`] in front of the next stage.
pub struct K8sAttributesProcessor {
    enricher: Arc<Enricher>,
    next: BoxConsumer,
}

impl K8sAttributesProcessor {
    /// A processor over an existing enricher (tests and benches feed its index directly).
    pub fn new(enricher: Arc<Enricher>, next: BoxConsumer) -> Self {
        Self { enricher, next }
    }

    /// Builds the processor of component `id`. Creates the Kubernetes client; with
    /// `wait_for_metadata` it also starts the watches and returns once they synced, or fails
    /// after `wait_for_metadata_timeout`. Otherwise the watches start with [`BackgroundTask::run`].
    pub async fn build(
        id: &ComponentId,
        config: &K8sAttributesConfig,
        next: BoxConsumer,
        registry: &mut Registry,
        health: &Health,
    ) -> Result<(BoxConsumer, BackgroundTask), Error> {
        Self::build_inner(id, config, next, (registry, health), None).await
    }

    /// [`Self::build`] over a given client instead of one made from `auth_type` (tests put a
    /// proxy between the processor and the API server).
    pub async fn build_with_client(
        id: &ComponentId,
        config: &K8sAttributesConfig,
        next: BoxConsumer,
        registry: &mut Registry,
        client: kube::Client,
    ) -> Result<(BoxConsumer, BackgroundTask), Error> {
        let health = Health::default();
        Self::build_inner(id, config, next, (registry, &health), Some(client)).await
    }

    async fn build_inner(
        id: &ComponentId,
        config: &K8sAttributesConfig,
        next: BoxConsumer,
        (registry, health): (&mut Registry, &Health),
        client: Option<kube::Client>,
    ) -> Result<(BoxConsumer, BackgroundTask), Error> {
        let id = id.to_string();
        let settings = Arc::new(Settings::resolve(&id, config, |v| std::env::var(v).ok())?);
        let metrics = Metrics::register(&id, registry);
        let index = Arc::new(PodIndex::new(
            DEFAULT_DELETE_GRACE,
            settings.exclude.clone(),
        ));
        let enricher = Arc::new(Enricher::new(
            settings.clone(),
            index.clone(),
            metrics.clone(),
        ));
        let processor: BoxConsumer = Arc::new(Self::new(enricher, next));
        if settings.passthrough {
            info!(processor = %id, "passthrough: only k8s.pod.ip from the connection, no API calls");
            return Ok((processor, BackgroundTask(Task::Idle)));
        }
        let (client, api) = match client {
            Some(c) => (c, "the given client".to_string()),
            None => make_client(&settings).await?,
        };
        let watches = Watches::new(client, settings.clone(), index.clone(), metrics)
            .with_api(api)
            .with_health(health.clone());
        let Some(timeout) = settings.wait_for_metadata else {
            return Ok((processor, BackgroundTask(Task::Pending(Box::new(watches)))));
        };
        let ready = watches.ready();
        let stop = CancellationToken::new();
        let handle = tokio::spawn(watches.run(stop.clone()));
        let guard = stop.drop_guard();
        match tokio::time::timeout(timeout, ready.wait()).await {
            Ok(()) => {
                info!(processor = %id, pods = index.len(), "pod metadata synced");
                Ok((processor, BackgroundTask(Task::Running { handle, guard })))
            }
            Err(_) => {
                drop(guard);
                Err(Error::SyncTimeout {
                    path: format!("processors.{id}"),
                    what: ready.pending().join(", "),
                    timeout,
                })
            }
        }
    }
}

/// The client and the API server address it talks to (named in every watch error).
async fn make_client(s: &Settings) -> Result<(kube::Client, String), Error> {
    let path = format!("processors.{}", s.id);
    // kube's TLS config is the only one in kotelcol built on rustls' process-wide provider (the
    // others name theirs), and rustls cannot choose that provider itself when a binary links both
    // ring and aws-lc-rs (kotelcol does: reqwest brings aws-lc-rs); kube then panics. Choose ring,
    // as the workspace does, unless the binary has chosen already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match s.auth {
        Auth::ServiceAccount => kube::Config::incluster().map_err(|source| Error::InCluster {
            path: path.clone(),
            source,
        })?,
        Auth::KubeConfig => {
            kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions::default())
                .await
                .map_err(|source| Error::KubeConfig {
                    path: path.clone(),
                    source,
                })?
        }
        Auth::None => kube::Config::infer()
            .await
            .map_err(|e| Error::InvalidConfig {
                path: format!("{path}.auth_type"),
                reason: format!("none: no kubeconfig and no in-cluster config found: {e}"),
            })?,
    };
    let api = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(|source| Error::Client { path, source })?;
    Ok((client, api))
}

#[async_trait::async_trait]
impl Consumer for K8sAttributesProcessor {
    async fn offer(&self, mut data: Envelope) -> Result<(), Refusal> {
        let peer = data.context.peer.map(|a| a.ip());
        self.enricher.enrich(&mut data.payload, peer);
        self.next.offer(data).await
    }

    fn admit(&self) -> Result<(), kotel_pipeline::ConsumeError> {
        self.next.admit()
    }
}

enum Task {
    /// Passthrough: nothing to watch.
    Idle,
    /// Watches not started yet.
    Pending(Box<Watches>),
    /// Watches started by `build` (wait_for_metadata); dropping the guard stops them.
    Running {
        handle: JoinHandle<()>,
        guard: DropGuard,
    },
}

/// Keeps the watches going until shutdown.
pub struct BackgroundTask(Task);

impl BackgroundTask {
    pub async fn run(self, shutdown: Shutdown) -> Result<(), Error> {
        match self.0 {
            Task::Idle => shutdown.cancelled().await,
            Task::Pending(watches) => watches.run(shutdown).await,
            Task::Running { handle, guard } => {
                shutdown.cancelled().await;
                drop(guard);
                // The task only ends by cancellation; a panic in it has been logged already.
                let _ = handle.await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use kotel_pipeline::proto::common::v1::any_value::Value;
    use kotel_pipeline::proto::logs::v1::ResourceLogs;
    use kotel_pipeline::proto::metrics::v1::ResourceMetrics;
    use kotel_pipeline::proto::trace::v1::ResourceSpans;
    use kotel_pipeline::{
        CaptureSink, ExportLogsServiceRequest, ExportMetricsServiceRequest,
        ExportTraceServiceRequest, RequestContext,
    };

    use super::*;
    use crate::association::resource;
    use crate::index::tests::pod;

    fn processor(config: serde_json::Value) -> (K8sAttributesProcessor, Arc<CaptureSink>) {
        let config: K8sAttributesConfig = serde_json::from_value(config).unwrap();
        let settings = Arc::new(Settings::resolve("k8sattributes", &config, |_| None).unwrap());
        let index = Arc::new(PodIndex::default());
        index.apply_pod(pod("u1", "web", "10.0.0.1", 1));
        let mut host = pod("u2", "agent", "192.168.0.1", 1);
        host.host_network = true;
        index.apply_pod(host);
        let sink = CaptureSink::new();
        let enricher = Arc::new(Enricher::new(settings, index, Metrics::default()));
        (K8sAttributesProcessor::new(enricher, sink.clone()), sink)
    }

    fn envelope(payload: Payload, peer: Option<&str>) -> Envelope {
        Envelope::with_context(
            payload,
            RequestContext {
                peer: peer.map(|p| SocketAddr::new(p.parse().unwrap(), 4317)),
                metadata: None,
            },
        )
    }

    fn all_signals(attrs: &[(&str, &str)]) -> Vec<Payload> {
        let res = || {
            Some(Resource {
                attributes: resource(attrs),
                ..Default::default()
            })
        };
        vec![
            Payload::Traces(ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: res(),
                    ..Default::default()
                }],
            }),
            Payload::Metrics(ExportMetricsServiceRequest {
                resource_metrics: vec![ResourceMetrics {
                    resource: res(),
                    ..Default::default()
                }],
            }),
            Payload::Logs(ExportLogsServiceRequest {
                resource_logs: vec![
                    ResourceLogs {
                        resource: res(),
                        ..Default::default()
                    },
                    // A resource-less entry gets a resource.
                    ResourceLogs::default(),
                ],
            }),
        ]
    }

    fn resources(p: &Payload) -> Vec<BTreeMap> {
        let rs: Vec<&Option<Resource>> = match p {
            Payload::Traces(r) => r.resource_spans.iter().map(|r| &r.resource).collect(),
            Payload::Metrics(r) => r.resource_metrics.iter().map(|r| &r.resource).collect(),
            Payload::Logs(r) => r.resource_logs.iter().map(|r| &r.resource).collect(),
        };
        rs.into_iter()
            .map(|r| {
                r.as_ref()
                    .map(|r| {
                        r.attributes
                            .iter()
                            .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
                                Value::StringValue(s) => Some((kv.key.clone(), s.clone())),
                                _ => None,
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect()
    }

    type BTreeMap = std::collections::BTreeMap<String, String>;

    #[tokio::test]
    async fn every_resource_of_every_signal_is_enriched_from_the_peer() {
        let (p, sink) = processor(serde_json::json!({}));
        for payload in all_signals(&[("service.name", "web")]) {
            p.consume(envelope(payload, Some("10.0.0.1")))
                .await
                .unwrap();
        }
        let got = sink.take().await;
        assert_eq!(got.len(), 3);
        for env in &got {
            for r in resources(&env.payload) {
                assert_eq!(r["k8s.pod.name"], "web", "{r:?}");
                assert_eq!(r["k8s.pod.uid"], "u1");
                assert_eq!(r["k8s.pod.ip"], "10.0.0.1");
                assert_eq!(r["k8s.node.name"], "node-a");
            }
        }
    }

    #[tokio::test]
    async fn an_ipv4_mapped_peer_matches_the_ipv4_pod() {
        let (p, sink) = processor(serde_json::json!({}));
        let payload = all_signals(&[]).remove(0);
        p.consume(envelope(payload, Some("::ffff:10.0.0.1")))
            .await
            .unwrap();
        let r = &resources(&sink.take().await[0].payload)[0];
        assert_eq!(r["k8s.pod.name"], "web");
        assert_eq!(r["k8s.pod.ip"], "10.0.0.1");
    }

    #[tokio::test]
    async fn unmatched_data_passes_with_only_the_connection_ip() {
        let (p, sink) = processor(serde_json::json!({}));
        let payload = all_signals(&[("k8s.pod.ip", "10.0.0.1")]).remove(0);
        // The attribute decides (legacy order), and it is kept as given.
        p.consume(envelope(payload, Some("10.7.7.7")))
            .await
            .unwrap();
        let r = &resources(&sink.take().await[0].payload)[0];
        assert_eq!(r["k8s.pod.name"], "web");
        assert_eq!(r["k8s.pod.ip"], "10.0.0.1");

        let payload = all_signals(&[]).remove(0);
        p.consume(envelope(payload, Some("10.7.7.7")))
            .await
            .unwrap();
        let r = &resources(&sink.take().await[0].payload)[0];
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r["k8s.pod.ip"], "10.7.7.7");
    }

    #[tokio::test]
    async fn the_node_ip_of_a_host_network_pod_matches_nothing() {
        let (p, sink) = processor(serde_json::json!({}));
        let payload = all_signals(&[]).remove(0);
        p.consume(envelope(payload, Some("192.168.0.1")))
            .await
            .unwrap();
        let r = &resources(&sink.take().await[0].payload)[0];
        assert!(!r.contains_key("k8s.pod.name"), "{r:?}");
    }

    #[tokio::test]
    async fn passthrough_sets_only_the_pod_ip() {
        let (p, sink) = processor(serde_json::json!({"passthrough": true}));
        let payload = all_signals(&[]).remove(0);
        p.consume(envelope(payload, Some("10.0.0.1")))
            .await
            .unwrap();
        let r = &resources(&sink.take().await[0].payload)[0];
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r["k8s.pod.ip"], "10.0.0.1");
    }

    #[tokio::test]
    async fn namespace_metadata_applies_to_data_naming_its_namespace() {
        let (p, sink) = processor(serde_json::json!({
            "extract": {"metadata": ["service.namespace"]}
        }));
        let payload = all_signals(&[("k8s.namespace.name", "shop")]).remove(0);
        p.consume(envelope(payload, None)).await.unwrap();
        let r = &resources(&sink.take().await[0].payload)[0];
        assert_eq!(r["service.namespace"], "shop");
    }
}
