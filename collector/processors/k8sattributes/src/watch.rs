//! Watch adapters: kube watchers feed the [`PodIndex`], converting each object into its slim
//! record at once. The only module that talks to the API server.
//!
//! Every watcher retries with kube's default backoff and leaves the cache as it is while the API
//! server is away; a relist after reconnecting replaces what changed meanwhile.

use std::collections::BTreeSet;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta as K8sObjectMeta;
use kotel_config::processors::k8sattributes::FieldFrom;
use kotel_pipeline::{Health, HealthReporter, error_chain};
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::extract::Extractor;
use crate::index::{Kind, PodChange, PodIndex};
use crate::metrics::Metrics;
use crate::model::{
    Container, ObjectMeta, Owner, OwnerKind, PodMeta, ReplicaSetMeta, pairs_from, parse_image,
    strip_runtime,
};
use crate::settings::{Scope, Settings};

/// The annotation that keeps a pod out of association.
pub const IGNORE_ANNOTATION: &str = "opentelemetry.io/k8s-processor/ignore";
/// How often deleted pods past their grace period are dropped (upstream's delete loop).
pub const PURGE_INTERVAL: Duration = Duration::from_secs(30);
/// How often ReplicaSets of cached pods are looked up again when the first try failed.
const REPLICASET_RETRY: Duration = Duration::from_secs(30);

/// Converts a pod into what the cache keeps; `None` for a pod without uid.
pub fn pod_meta(pod: &Pod, settings: &Settings) -> Option<PodMeta> {
    let x = &settings.extractor;
    let md = &x.metadata;
    let meta = &pod.metadata;
    let uid = meta.uid.as_deref()?;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let annotations = meta.annotations.as_ref();
    let ignored = annotations
        .and_then(|a| a.get(IGNORE_ANNOTATION))
        .is_some_and(|v| v == "true");
    let owners = if md.wants_owners() {
        meta.owner_references
            .iter()
            .flatten()
            .filter_map(|o| {
                Some(Owner {
                    kind: OwnerKind::from_kind(&o.kind)?,
                    name: o.name.as_str().into(),
                    uid: o.uid.as_str().into(),
                })
            })
            .collect()
    } else {
        Box::default()
    };
    let containers = if settings.keeps_containers() {
        containers(pod)
    } else {
        Box::default()
    };
    Some(PodMeta {
        uid: uid.into(),
        name: meta.name.as_deref().unwrap_or_default().into(),
        namespace: meta.namespace.as_deref().unwrap_or_default().into(),
        ip: status
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse().ok()),
        host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
        ignored,
        node_name: spec.and_then(|s| s.node_name.as_deref()).map(Arc::from),
        hostname: spec
            .and_then(|s| s.hostname.as_deref())
            .filter(|_| md.hostname)
            .map(Box::from),
        creation_timestamp: meta
            .creation_timestamp
            .as_ref()
            .filter(|_| md.start_time)
            .map(|t| t.0.to_string().into_boxed_str()),
        start_time: status
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0.as_second()),
        owners,
        labels: keep(meta.labels.as_ref(), |k| x.keeps_label(FieldFrom::Pod, k)),
        annotations: keep(annotations, |k| x.keeps_annotation(FieldFrom::Pod, k)),
        containers,
    })
}

fn keep(
    map: Option<&std::collections::BTreeMap<String, String>>,
    wanted: impl Fn(&str) -> bool,
) -> crate::model::Pairs {
    pairs_from(
        map.into_iter()
            .flatten()
            .filter(|(k, _)| wanted(k))
            .map(|(k, v)| (k.clone(), v.clone())),
    )
}

fn containers(pod: &Pod) -> Box<[Container]> {
    let Some(spec) = &pod.spec else {
        return Box::default();
    };
    let status = pod.status.as_ref();
    let statuses = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .chain(
            status
                .and_then(|s| s.init_container_statuses.as_ref())
                .into_iter()
                .flatten(),
        );
    let mut out: Vec<Container> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| {
            let (name, tag, _) =
                c.image
                    .as_deref()
                    .map(parse_image)
                    .unwrap_or((String::new(), None, None));
            Container {
                name: c.name.as_str().into(),
                image_name: (!name.is_empty()).then(|| name.into_boxed_str()),
                image_tag: tag.map(String::into_boxed_str),
                ..Default::default()
            }
        })
        .collect();
    for st in statuses {
        let Some(c) = out.iter_mut().find(|c| *c.name == st.name) else {
            continue;
        };
        let restarts = u32::try_from(st.restart_count).unwrap_or(0);
        let mut ids: Vec<(u32, Box<str>)> = Vec::new();
        if let Some(id) = st.container_id.as_deref().filter(|id| !id.is_empty()) {
            ids.push((restarts, strip_runtime(id).into()));
        }
        let previous = st
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .and_then(|t| t.container_id.as_deref());
        if let (Some(id), Some(run)) = (previous, restarts.checked_sub(1)) {
            ids.push((run, strip_runtime(id).into()));
        }
        c.ids = ids.into_boxed_slice();
        if st.image_id.contains("@sha256:") {
            c.repo_digest = Some(st.image_id.as_str().into());
        }
    }
    out.into_boxed_slice()
}

/// Converts a namespace's or node's metadata, keeping the labels and annotations rules read.
pub fn object_meta(meta: &K8sObjectMeta, from: FieldFrom, x: &Extractor) -> ObjectMeta {
    ObjectMeta {
        name: meta.name.as_deref().unwrap_or_default().into(),
        uid: meta.uid.as_deref().unwrap_or_default().into(),
        labels: keep(meta.labels.as_ref(), |k| x.keeps_label(from, k)),
        annotations: keep(meta.annotations.as_ref(), |k| x.keeps_annotation(from, k)),
    }
}

/// Reduces a ReplicaSet to its Deployment owner, recorded under `uid` (the pod's reference).
pub fn replicaset_meta(uid: &str, meta: &K8sObjectMeta) -> ReplicaSetMeta {
    let deployment = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "Deployment" && o.controller.unwrap_or(true))
        .map(|o| (o.name.as_str().into(), o.uid.as_str().into()));
    ReplicaSetMeta {
        uid: uid.into(),
        deployment,
    }
}

/// Which watches have completed their first list.
#[derive(Debug, Clone)]
pub struct Ready {
    pending: Arc<watch::Sender<BTreeSet<&'static str>>>,
}

impl Ready {
    fn new(names: impl IntoIterator<Item = &'static str>) -> Self {
        Self {
            pending: Arc::new(watch::Sender::new(names.into_iter().collect())),
        }
    }

    fn done(&self, name: &'static str) {
        self.pending.send_if_modified(|p| p.remove(name));
    }

    fn is_done(&self, name: &'static str) -> bool {
        !self.pending.borrow().contains(name)
    }

    /// What has not synced yet, for the timeout message.
    pub fn pending(&self) -> Vec<&'static str> {
        self.pending.borrow().iter().copied().collect()
    }

    /// Resolves once every watch has synced.
    pub async fn wait(&self) {
        let mut rx = self.pending.subscribe();
        // The sender lives in self, so the channel cannot close while we wait.
        let _ = rx.wait_for(|p| p.is_empty()).await;
    }
}

/// The watches of one processor, ready to run.
pub struct Watches {
    client: Client,
    /// The API server's address, for error messages.
    api: Arc<str>,
    settings: Arc<Settings>,
    index: Arc<PodIndex>,
    metrics: Metrics,
    ready: Ready,
    health: Health,
}

impl Watches {
    pub fn new(
        client: Client,
        settings: Arc<Settings>,
        index: Arc<PodIndex>,
        metrics: Metrics,
    ) -> Self {
        let plan = &settings.watch;
        let mut names = vec!["pods"];
        if plan.namespaces != Scope::Off {
            names.push("namespaces");
        }
        if plan.kube_system {
            names.push("kube-system namespace");
        }
        if plan.nodes != Scope::Off {
            names.push("nodes");
        }
        if plan.replicasets {
            names.push("replicasets");
        }
        Self {
            client,
            api: Arc::from("the API server"),
            settings,
            index,
            metrics,
            ready: Ready::new(names),
            health: Health::default(),
        }
    }

    /// Reports watches that cannot sync to the collector's health.
    pub fn with_health(mut self, health: Health) -> Self {
        self.health = health;
        self
    }

    fn health_of(&self, resource: &str) -> HealthReporter {
        self.health
            .reporter(format!("{} {resource} watch", self.settings.id))
    }

    /// Names the API server's address in watch errors.
    pub fn with_api(mut self, api: String) -> Self {
        self.api = Arc::from(api);
        self
    }

    pub fn ready(&self) -> Ready {
        self.ready.clone()
    }

    /// Runs every watch until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let s = &self.settings;
        info!(
            processor = %s.id,
            node = s.node.as_deref().unwrap_or("<all>"),
            namespaces = ?s.watch.namespaces,
            nodes = ?s.watch.nodes,
            replicasets = s.watch.replicasets,
            "watching pods"
        );
        let rs_wanted = Arc::new(Notify::new());
        tokio::join!(
            self.pods(&shutdown, &rs_wanted),
            self.namespaces(&shutdown),
            self.kube_system(&shutdown),
            self.nodes(&shutdown),
            self.replicasets(&shutdown, &rs_wanted),
            self.purge(&shutdown),
        );
    }

    async fn pods(&self, shutdown: &CancellationToken, rs_wanted: &Notify) {
        let s = &self.settings;
        let api: Api<Pod> = match &s.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let mut config = watcher::Config::default().any_semantic();
        if let Some(f) = &s.field_selector {
            config = config.fields(f);
        }
        if let Some(l) = &s.label_selector {
            config = config.labels(l);
        }
        let (index, m) = (&self.index, &self.metrics);
        drive(
            ("pods", &self.api),
            (&self.health_of("pods"), &self.ready),
            watcher::watcher(api, config),
            shutdown,
            m,
            |event| {
                match event {
                    Event::Init => index.begin_relist(Kind::Pod),
                    Event::InitApply(pod) | Event::Apply(pod) => {
                        if let Some(meta) = pod_meta(&pod, s) {
                            match index.apply_pod(meta) {
                                PodChange::Added => m.pod_added.inc(),
                                PodChange::Updated => m.pod_updated.inc(),
                                PodChange::Excluded => 0,
                            };
                            rs_wanted.notify_one();
                        }
                    }
                    Event::Delete(pod) => {
                        if let Some(uid) = pod.metadata.uid.as_deref()
                            && index.delete_pod(uid, Instant::now())
                        {
                            m.pod_deleted.inc();
                        }
                    }
                    Event::InitDone => {
                        let gone = index.end_relist(Kind::Pod, Instant::now());
                        m.pod_deleted.inc_by(gone as u64);
                        debug!(processor = %s.id, pods = index.len(), gone, "pod list synced");
                        self.ready.done("pods");
                        rs_wanted.notify_one();
                    }
                }
                m.pod_table_size.set(index.len() as i64);
            },
        )
        .await;
    }

    async fn namespaces(&self, shutdown: &CancellationToken) {
        let config = match &self.settings.watch.namespaces {
            Scope::Off => return,
            Scope::One(name) => watcher::Config::default().fields(&format!("metadata.name={name}")),
            Scope::All => watcher::Config::default(),
        };
        self.namespace_watch("namespaces", config, shutdown).await;
    }

    async fn kube_system(&self, shutdown: &CancellationToken) {
        if !self.settings.watch.kube_system {
            return;
        }
        let config = watcher::Config::default().fields("metadata.name=kube-system");
        self.namespace_watch("kube-system namespace", config, shutdown)
            .await;
    }

    async fn namespace_watch(
        &self,
        name: &'static str,
        config: watcher::Config,
        shutdown: &CancellationToken,
    ) {
        let api: Api<PartialObjectMeta<Namespace>> = Api::all(self.client.clone());
        let (index, m, x) = (&self.index, &self.metrics, &self.settings.extractor);
        drive(
            (name, &self.api),
            (&self.health_of(name), &self.ready),
            watcher::watcher(api, config),
            shutdown,
            m,
            |event| {
                match event {
                    Event::Init => index.begin_relist(Kind::Namespace),
                    Event::InitApply(ns) | Event::Apply(ns) => {
                        index.apply_namespace(object_meta(ns.meta(), FieldFrom::Namespace, x));
                    }
                    Event::Delete(ns) => {
                        index.delete_namespace(ns.meta().name.as_deref().unwrap_or(""))
                    }
                    Event::InitDone => {
                        index.end_relist(Kind::Namespace, Instant::now());
                        self.ready.done(name);
                    }
                }
                m.namespace_events.inc();
            },
        )
        .await;
    }

    async fn nodes(&self, shutdown: &CancellationToken) {
        let config = match &self.settings.watch.nodes {
            Scope::Off => return,
            Scope::One(name) => watcher::Config::default().fields(&format!("metadata.name={name}")),
            Scope::All => watcher::Config::default(),
        };
        let api: Api<PartialObjectMeta<Node>> = Api::all(self.client.clone());
        let (index, m, x) = (&self.index, &self.metrics, &self.settings.extractor);
        drive(
            ("nodes", &self.api),
            (&self.health_of("nodes"), &self.ready),
            watcher::watcher(api, config),
            shutdown,
            m,
            |event| {
                match event {
                    Event::Init => index.begin_relist(Kind::Node),
                    Event::InitApply(n) | Event::Apply(n) => {
                        index.apply_node(object_meta(n.meta(), FieldFrom::Node, x));
                    }
                    Event::Delete(n) => index.delete_node(n.meta().name.as_deref().unwrap_or("")),
                    Event::InitDone => {
                        index.end_relist(Kind::Node, Instant::now());
                        self.ready.done("nodes");
                    }
                }
                m.node_events.inc();
            },
        )
        .await;
    }

    /// Fetches (metadata only) the ReplicaSets of cached pods, instead of watching every
    /// ReplicaSet of the cluster: memory follows the node's pods, not the cluster's history.
    async fn replicasets(&self, shutdown: &CancellationToken, wanted: &Notify) {
        if !self.settings.watch.replicasets {
            return;
        }
        let mut backoff = Duration::from_secs(1);
        let mut wait = REPLICASET_RETRY;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wanted.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            match self.fetch_missing_replicasets(shutdown).await {
                None => return,
                Some(true) => {
                    backoff = Duration::from_secs(1);
                    wait = REPLICASET_RETRY;
                    if self.ready.is_done("pods") {
                        self.ready.done("replicasets");
                    }
                }
                Some(false) => {
                    wait = backoff;
                    backoff = (backoff * 2).min(REPLICASET_RETRY);
                }
            }
        }
    }

    /// One pass over the ReplicaSets cached pods refer to: `Some(true)` when all were read,
    /// `Some(false)` after an error, `None` on shutdown.
    async fn fetch_missing_replicasets(&self, shutdown: &CancellationToken) -> Option<bool> {
        for (ns, name, uid) in self.index.missing_replicasets() {
            let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &ns);
            let got = tokio::select! {
                _ = shutdown.cancelled() => return None,
                got = api.get_metadata_opt(&name) => got,
            };
            match got {
                Ok(Some(rs)) => {
                    self.index
                        .insert_replicaset(replicaset_meta(&uid, &rs.metadata));
                    self.metrics.replicaset_fetched.inc();
                }
                // Gone already: remember that, so it is not asked for again.
                Ok(None) => self.index.insert_replicaset(ReplicaSetMeta {
                    uid: uid.as_str().into(),
                    deployment: None,
                }),
                Err(error) => {
                    self.metrics.watch_error("replicasets");
                    warn!(
                        processor = %self.settings.id, api = %self.api, namespace = %ns,
                        replicaset = %name, error = %error_chain(&error),
                        "could not read a ReplicaSet for k8s.deployment.name; retrying"
                    );
                    return Some(false);
                }
            }
        }
        Some(true)
    }

    async fn purge(&self, shutdown: &CancellationToken) {
        let mut tick = tokio::time::interval(PURGE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let dropped = self.index.purge(Instant::now());
            if dropped > 0 {
                debug!(processor = %self.settings.id, dropped, "dropped deleted pods past their grace period");
            }
            self.metrics.pod_table_size.set(self.index.len() as i64);
        }
    }
}

/// Pulls a watch stream with backoff until `shutdown`, handing each event to `handle`.
///
/// Until the resource first synced, a failing watch is reported to the collector's health (the
/// processor has nothing to enrich with); afterwards it works from its cache and only logs.
async fn drive<K>(
    (resource, api): (&'static str, &str),
    (health, ready): (&HealthReporter, &Ready),
    stream: impl Stream<Item = Result<Event<K>, watcher::Error>>,
    shutdown: &CancellationToken,
    metrics: &Metrics,
    mut handle: impl FnMut(Event<K>),
) {
    let mut stream = pin!(stream.default_backoff());
    let mut limiter = LogLimiter::new(ERROR_LOG_EVERY);
    let mut reported = false;
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = stream.next() => next,
        };
        match next {
            Some(Ok(event)) => {
                handle(event);
                if std::mem::take(&mut reported) {
                    health.ok();
                }
            }
            Some(Err(error)) => {
                metrics.watch_error(resource);
                if !ready.is_done(resource) {
                    health.failed(format_args!(
                        "{resource} watch at {api}: {}",
                        error_chain(&error)
                    ));
                    reported = true;
                }
                if let Some(suppressed) = limiter.allow(Instant::now()) {
                    warn!(
                        resource, api, error = %error_chain(&error), suppressed,
                        "watch failed; keeping the last known state and retrying with backoff"
                    );
                }
            }
            None => return,
        }
    }
}

/// At most one watch-error log line per resource in this period; the rest are counted.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(30);

/// Lets one event through per period and counts those it held back.
struct LogLimiter {
    every: Duration,
    last: Option<Instant>,
    held: u64,
}

impl LogLimiter {
    fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            held: 0,
        }
    }

    /// `Some(held back since the last one)` when this event may be logged.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < self.every => {
                self.held += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn watch_errors_are_logged_once_per_period_with_a_count() {
        let mut l = super::LogLimiter::new(Duration::from_secs(30));
        let t0 = Instant::now();
        assert_eq!(l.allow(t0), Some(0));
        for i in 1..=10 {
            assert_eq!(l.allow(t0 + Duration::from_millis(100 * i)), None);
        }
        assert_eq!(l.allow(t0 + Duration::from_secs(31)), Some(10));
        assert_eq!(l.allow(t0 + Duration::from_secs(32)), None);
    }

    use kotel_config::processors::k8sattributes::K8sAttributesConfig;

    use super::*;

    #[tokio::test]
    async fn a_watch_that_cannot_sync_is_reported_to_health_with_the_address() {
        // Nothing listens on port 1 of loopback: every list is refused.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        let client = Client::try_from(config).unwrap();
        let settings = Arc::new(settings("{}"));
        let health = Health::default();
        let watches = Watches::new(client, settings, Arc::default(), Metrics::default())
            .with_api("http://127.0.0.1:1/".into())
            .with_health(health.clone());
        let stop = CancellationToken::new();
        let run = tokio::spawn(watches.run(stop.clone()));
        let deadline = Instant::now() + Duration::from_secs(10);
        let failing = loop {
            let f = health.failing_for(Duration::ZERO, Instant::now());
            if !f.is_empty() || Instant::now() > deadline {
                break f;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        stop.cancel();
        run.await.unwrap();
        let pods = failing.iter().find(|(c, _)| c == "k pods watch");
        let (_, error) = pods.unwrap_or_else(|| panic!("pods watch not reported: {failing:?}"));
        assert!(error.contains("127.0.0.1:1"), "{error}");
    }

    fn settings(json: &str) -> Settings {
        let c: K8sAttributesConfig = serde_json::from_str(json).unwrap();
        Settings::resolve("k", &c, |_| None).unwrap()
    }

    fn api_pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web-5d8f7c9b4f-abcde", "namespace": "shop", "uid": "pod-uid",
                "creationTimestamp": "2024-05-01T10:00:00Z",
                "labels": {"app": "web", "team": "a", "pod-template-hash": "5d8f7c9b4f"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "web-5d8f7c9b4f", "uid": "rs-uid", "controller": true}],
                "managedFields": [{"manager": "kube-controller-manager", "operation": "Update"}]
            },
            "spec": {
                "nodeName": "node-a", "hostname": "web",
                "containers": [{"name": "app", "image": "ghcr.io/shop/web:1.4"}]
            },
            "status": {
                "podIP": "10.1.2.3", "startTime": "2024-05-01T10:00:02Z",
                "containerStatuses": [{"name": "app", "restartCount": 1, "ready": true,
                    "image": "ghcr.io/shop/web:1.4",
                    "imageID": "ghcr.io/shop/web@sha256:aa",
                    "containerID": "containerd://c1",
                    "lastState": {"terminated": {"exitCode": 1, "containerID": "containerd://c0"}}}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_pod_keeps_only_what_the_rules_read() {
        let s = settings(r#"{"extract":{"labels":[{"key":"team"}]}}"#);
        let p = pod_meta(&api_pod(), &s).unwrap();
        assert_eq!(&*p.uid, "pod-uid");
        assert_eq!(p.ip, Some("10.1.2.3".parse().unwrap()));
        assert_eq!(p.node_name.as_deref(), Some("node-a"));
        assert_eq!(
            p.creation_timestamp.as_deref(),
            Some("2024-05-01T10:00:00Z")
        );
        assert_eq!(p.start_time, Some(1_714_557_602));
        assert_eq!(p.labels.len(), 1, "only the label a rule reads");
        assert!(p.annotations.is_empty());
        assert!(p.containers.is_empty(), "no container metadata configured");
        assert!(p.hostname.is_none(), "k8s.pod.hostname not configured");
        assert_eq!(p.owners.len(), 1);
        assert!(!p.ignored);
    }

    #[test]
    fn containers_are_kept_when_container_metadata_is_wanted() {
        let s = settings(r#"{"extract":{"metadata":["container.id","container.image.name"]}}"#);
        let p = pod_meta(&api_pod(), &s).unwrap();
        assert!(p.owners.is_empty(), "no owner metadata configured");
        let c = &p.containers[0];
        assert_eq!(&*c.name, "app");
        assert_eq!(c.image_name.as_deref(), Some("ghcr.io/shop/web"));
        assert_eq!(c.image_tag.as_deref(), Some("1.4"));
        assert_eq!(c.repo_digest.as_deref(), Some("ghcr.io/shop/web@sha256:aa"));
        assert_eq!(c.id(None), Some("c1"));
        assert_eq!(c.id(Some(0)), Some("c0"));
    }

    #[test]
    fn the_ignore_annotation_marks_the_pod() {
        let s = settings("{}");
        let mut pod = api_pod();
        pod.metadata
            .annotations
            .get_or_insert_default()
            .insert(IGNORE_ANNOTATION.into(), "true".into());
        assert!(pod_meta(&pod, &s).unwrap().ignored);
    }

    #[test]
    fn replicaset_reduces_to_its_deployment() {
        let meta: K8sObjectMeta = serde_json::from_value(serde_json::json!({
            "name": "web-5d8f7c9b4f", "uid": "rs-uid",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                "uid": "dep-uid", "controller": true}]
        }))
        .unwrap();
        let rs = replicaset_meta("rs-uid", &meta);
        assert_eq!(rs.deployment_name(), Some("web"));
        assert_eq!(rs.deployment_uid(), Some("dep-uid"));
    }

    #[tokio::test]
    async fn ready_waits_for_every_watch() {
        let r = Ready::new(["pods", "nodes"]);
        r.done("pods");
        assert_eq!(r.pending(), vec!["nodes"]);
        let waiter = tokio::spawn({
            let r = r.clone();
            async move { r.wait().await }
        });
        r.done("nodes");
        waiter.await.unwrap();
    }
}
