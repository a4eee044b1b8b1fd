//! The cache: pods of this node by uid, IP, name and container ID, plus the namespaces, nodes and
//! ReplicaSets extraction reads. Fed by watch events, read by the pipeline; no kube types here.
//!
//! Readers take a read lock for the few microseconds a lookup lasts and never wait on the API
//! server: during an outage the last known state stays in place until a relist replaces it.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use regex::Regex;

use crate::extract::Related;
use crate::model::{ObjectMeta, OwnerKind, PodMeta, ReplicaSetMeta};

/// Upstream's `defaultPodDeleteGracePeriod`: late data from a deleted pod still matches.
pub const DEFAULT_DELETE_GRACE: Duration = Duration::from_secs(120);

/// What applying a pod did to the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodChange {
    Added,
    Updated,
    /// Excluded by name or the ignore annotation; any earlier entry is gone.
    Excluded,
}

/// The kinds of object the index relists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Pod,
    Namespace,
    Node,
}

#[derive(Debug)]
struct Entry {
    pod: Arc<PodMeta>,
    deleted_at: Option<Instant>,
}

#[derive(Debug, Default)]
struct Store {
    pods: HashMap<Arc<str>, Entry>,
    by_ip: HashMap<IpAddr, Arc<str>>,
    by_name: HashMap<Box<str>, HashMap<Box<str>, Arc<str>>>,
    by_container: HashMap<Box<str>, Arc<str>>,
    namespaces: HashMap<Box<str>, ObjectMeta>,
    nodes: HashMap<Box<str>, ObjectMeta>,
    replicasets: HashMap<Box<str>, ReplicaSetMeta>,
    cluster_uid: Option<Box<str>>,
    relist: HashMap<Kind, HashSet<Box<str>>>,
}

/// The pod cache.
#[derive(Debug)]
pub struct PodIndex {
    store: RwLock<Store>,
    grace: Duration,
    exclude: Vec<Regex>,
}

impl Default for PodIndex {
    fn default() -> Self {
        Self::new(DEFAULT_DELETE_GRACE, Vec::new())
    }
}

/// Which of two pods claiming one IP or name keeps it: a live pod over a deleted one, then the
/// one started later (upstream's rule for reused IPs).
fn wins(new: &Entry, old: &Entry) -> bool {
    match (new.deleted_at.is_some(), old.deleted_at.is_some()) {
        (false, true) => true,
        (true, false) => false,
        _ => new.pod.start_time >= old.pod.start_time,
    }
}

impl Store {
    fn claim<K: std::hash::Hash + Eq>(
        pods: &HashMap<Arc<str>, Entry>,
        map: &mut HashMap<K, Arc<str>>,
        key: K,
        uid: &Arc<str>,
    ) {
        let entry = &pods[uid];
        match map.get(&key) {
            Some(holder) if holder != uid => {
                if pods.get(holder).is_none_or(|old| wins(entry, old)) {
                    map.insert(key, uid.clone());
                }
            }
            _ => {
                map.insert(key, uid.clone());
            }
        }
    }

    fn index(&mut self, uid: &Arc<str>) {
        let pod = self.pods[uid].pod.clone();
        if let (Some(ip), false) = (pod.ip, pod.host_network) {
            Self::claim(&self.pods, &mut self.by_ip, ip, uid);
        }
        let names = self.by_name.entry(pod.namespace.clone()).or_default();
        Self::claim(&self.pods, names, pod.name.clone(), uid);
        for c in pod.containers.iter() {
            for (_, id) in c.ids.iter() {
                Self::claim(&self.pods, &mut self.by_container, id.clone(), uid);
            }
        }
    }

    /// Removes the keys `pod` holds. With `handoff`, its IP goes to the best other pod claiming
    /// it; an update re-indexes the same pod at once and skips that scan.
    fn unindex(&mut self, pod: &PodMeta, handoff: bool) {
        let uid = &pod.uid;
        if let Some(ip) = pod.ip
            && self.by_ip.get(&ip) == Some(uid)
        {
            self.by_ip.remove(&ip);
            let next = if handoff {
                self.pods
                    .iter()
                    .filter(|(u, e)| *u != uid && e.pod.ip == Some(ip) && !e.pod.host_network)
                    .max_by(|a, b| {
                        if wins(a.1, b.1) {
                            std::cmp::Ordering::Greater
                        } else {
                            std::cmp::Ordering::Less
                        }
                    })
                    .map(|(u, _)| u.clone())
            } else {
                None
            };
            if let Some(next) = next {
                self.by_ip.insert(ip, next);
            }
        }
        if let Some(names) = self.by_name.get_mut(&pod.namespace) {
            if names.get(&pod.name) == Some(uid) {
                names.remove(&pod.name);
            }
            if names.is_empty() {
                self.by_name.remove(&pod.namespace);
            }
        }
        for c in pod.containers.iter() {
            for (_, id) in c.ids.iter() {
                if self.by_container.get(id) == Some(uid) {
                    self.by_container.remove(id);
                }
            }
        }
    }

    fn remove(&mut self, uid: &str, handoff: bool) -> Option<Arc<PodMeta>> {
        let entry = self.pods.remove(uid)?;
        self.unindex(&entry.pod, handoff);
        Some(entry.pod)
    }
}

impl PodIndex {
    /// A cache that keeps deleted pods for `grace` and never admits pods whose name matches one
    /// of `exclude`.
    pub fn new(grace: Duration, exclude: Vec<Regex>) -> Self {
        Self {
            store: RwLock::new(Store::default()),
            grace,
            exclude,
        }
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        // A panic while holding the lock cannot leave the maps half-updated in a way lookups
        // would trip over, so a poisoned lock is still usable.
        self.store.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A consistent view for lookups; hold it only briefly.
    pub fn read(&self) -> View<'_> {
        View {
            store: self.store.read().unwrap_or_else(|e| e.into_inner()),
        }
    }

    fn excluded(&self, pod: &PodMeta) -> bool {
        pod.ignored || self.exclude.iter().any(|re| re.is_match(&pod.name))
    }

    /// Adds or replaces a pod (an `Apply` or `InitApply` event).
    pub fn apply_pod(&self, pod: PodMeta) -> PodChange {
        let mut s = self.write();
        if let Some(seen) = s.relist.get_mut(&Kind::Pod) {
            seen.insert(pod.uid.as_ref().into());
        }
        if self.excluded(&pod) {
            s.remove(&pod.uid, true);
            return PodChange::Excluded;
        }
        let uid = pod.uid.clone();
        let change = match s.remove(&uid, false) {
            Some(_) => PodChange::Updated,
            None => PodChange::Added,
        };
        s.pods.insert(
            uid.clone(),
            Entry {
                pod: Arc::new(pod),
                deleted_at: None,
            },
        );
        s.index(&uid);
        change
    }

    /// Marks a pod deleted: it keeps matching for the grace period. Returns whether it was known.
    pub fn delete_pod(&self, uid: &str, now: Instant) -> bool {
        let mut s = self.write();
        match s.pods.get_mut(uid) {
            Some(e) => {
                e.deleted_at.get_or_insert(now);
                true
            }
            None => false,
        }
    }

    /// A relist of `kind` starts: objects not seen before [`Self::end_relist`] are gone.
    pub fn begin_relist(&self, kind: Kind) {
        self.write().relist.insert(kind, HashSet::new());
    }

    /// A relist of `kind` is complete. Returns how many objects it removed (pods: marked
    /// deleted, so they still match during the grace period).
    pub fn end_relist(&self, kind: Kind, now: Instant) -> usize {
        let mut s = self.write();
        let Some(seen) = s.relist.remove(&kind) else {
            return 0;
        };
        match kind {
            Kind::Pod => {
                let mut n = 0;
                for (uid, e) in s.pods.iter_mut() {
                    if e.deleted_at.is_none() && !seen.contains(uid.as_ref()) {
                        e.deleted_at = Some(now);
                        n += 1;
                    }
                }
                n
            }
            Kind::Namespace | Kind::Node => {
                let map = if kind == Kind::Namespace {
                    &mut s.namespaces
                } else {
                    &mut s.nodes
                };
                let before = map.len();
                map.retain(|name, _| seen.contains(name));
                before - map.len()
            }
        }
    }

    /// Drops pods deleted longer than the grace period ago, and ReplicaSets no pod refers to.
    /// Returns how many pods it dropped.
    pub fn purge(&self, now: Instant) -> usize {
        let mut s = self.write();
        let expired: Vec<Arc<str>> = s
            .pods
            .iter()
            .filter(|(_, e)| {
                e.deleted_at
                    .is_some_and(|t| now.saturating_duration_since(t) >= self.grace)
            })
            .map(|(u, _)| u.clone())
            .collect();
        for uid in &expired {
            s.remove(uid, true);
        }
        if !s.replicasets.is_empty() {
            let used: HashSet<&str> = s
                .pods
                .values()
                .filter_map(|e| e.pod.owner(OwnerKind::ReplicaSet))
                .map(|o| &*o.uid)
                .collect();
            let unused: Vec<Box<str>> = s
                .replicasets
                .keys()
                .filter(|k| !used.contains(k.as_ref()))
                .cloned()
                .collect();
            for k in unused {
                s.replicasets.remove(&k);
            }
        }
        expired.len()
    }

    pub fn apply_namespace(&self, ns: ObjectMeta) {
        let mut s = self.write();
        if let Some(seen) = s.relist.get_mut(&Kind::Namespace) {
            seen.insert(ns.name.clone());
        }
        if &*ns.name == "kube-system" {
            s.cluster_uid = Some(ns.uid.clone());
        }
        s.namespaces.insert(ns.name.clone(), ns);
    }

    pub fn delete_namespace(&self, name: &str) {
        self.write().namespaces.remove(name);
    }

    pub fn apply_node(&self, node: ObjectMeta) {
        let mut s = self.write();
        if let Some(seen) = s.relist.get_mut(&Kind::Node) {
            seen.insert(node.name.clone());
        }
        s.nodes.insert(node.name.clone(), node);
    }

    pub fn delete_node(&self, name: &str) {
        self.write().nodes.remove(name);
    }

    /// Records a ReplicaSet a pod of the cache refers to.
    pub fn insert_replicaset(&self, rs: ReplicaSetMeta) {
        self.write().replicasets.insert(rs.uid.clone(), rs);
    }

    /// ReplicaSets that cached pods refer to but the cache does not know yet:
    /// `(namespace, name, uid)`.
    pub fn missing_replicasets(&self) -> Vec<(String, String, String)> {
        let s = self.read();
        let mut seen = HashSet::new();
        s.store
            .pods
            .values()
            .filter(|e| e.deleted_at.is_none())
            .filter_map(|e| {
                let o = e.pod.owner(OwnerKind::ReplicaSet)?;
                (!s.store.replicasets.contains_key(&o.uid) && seen.insert(o.uid.clone())).then(
                    || {
                        (
                            e.pod.namespace.to_string(),
                            o.name.to_string(),
                            o.uid.to_string(),
                        )
                    },
                )
            })
            .collect()
    }

    /// Pods in the cache, deleted ones in their grace period included.
    pub fn len(&self) -> usize {
        self.read().store.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn replicaset_count(&self) -> usize {
        self.read().store.replicasets.len()
    }
}

/// A read-locked view of the cache.
pub struct View<'a> {
    store: RwLockReadGuard<'a, Store>,
}

impl View<'_> {
    pub fn by_uid(&self, uid: &str) -> Option<&Arc<PodMeta>> {
        self.store.pods.get(uid).map(|e| &e.pod)
    }

    pub fn by_ip(&self, ip: IpAddr) -> Option<&Arc<PodMeta>> {
        self.by_uid(self.store.by_ip.get(&ip)?)
    }

    pub fn by_name(&self, namespace: &str, name: &str) -> Option<&Arc<PodMeta>> {
        self.by_uid(self.store.by_name.get(namespace)?.get(name)?)
    }

    pub fn by_container_id(&self, id: &str) -> Option<&Arc<PodMeta>> {
        self.by_uid(self.store.by_container.get(id)?)
    }

    /// Every cached pod, live ones first, in no fixed order within each group.
    pub fn pods(&self) -> impl Iterator<Item = &Arc<PodMeta>> {
        let live = self.store.pods.values().filter(|e| e.deleted_at.is_none());
        let deleted = self.store.pods.values().filter(|e| e.deleted_at.is_some());
        live.chain(deleted).map(|e| &e.pod)
    }

    pub fn is_deleted(&self, uid: &str) -> bool {
        self.store
            .pods
            .get(uid)
            .is_some_and(|e| e.deleted_at.is_some())
    }
}

impl Related for View<'_> {
    fn namespace(&self, name: &str) -> Option<&ObjectMeta> {
        self.store.namespaces.get(name)
    }
    fn node(&self, name: &str) -> Option<&ObjectMeta> {
        self.store.nodes.get(name)
    }
    fn replicaset(&self, uid: &str) -> Option<&ReplicaSetMeta> {
        self.store.replicasets.get(uid)
    }
    fn cluster_uid(&self) -> Option<&str> {
        self.store.cluster_uid.as_deref()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Container, Owner};

    pub(crate) fn pod(uid: &str, name: &str, ip: &str, start: i64) -> PodMeta {
        PodMeta {
            uid: uid.into(),
            name: name.into(),
            namespace: "ns".into(),
            ip: (!ip.is_empty()).then(|| ip.parse().unwrap()),
            start_time: Some(start),
            node_name: Some("node-a".into()),
            ..Default::default()
        }
    }

    #[test]
    fn pods_are_found_by_uid_ip_name_and_container_id() {
        let idx = PodIndex::default();
        let mut p = pod("u1", "a", "10.0.0.1", 1);
        p.containers = vec![Container {
            name: "c".into(),
            ids: vec![(0, "cid".into())].into(),
            ..Default::default()
        }]
        .into();
        assert_eq!(idx.apply_pod(p), PodChange::Added);
        let v = idx.read();
        assert_eq!(&*v.by_uid("u1").unwrap().name, "a");
        assert_eq!(&*v.by_ip("10.0.0.1".parse().unwrap()).unwrap().uid, "u1");
        assert_eq!(&*v.by_name("ns", "a").unwrap().uid, "u1");
        assert_eq!(&*v.by_container_id("cid").unwrap().uid, "u1");
    }

    #[test]
    fn host_network_pods_are_never_indexed_by_ip() {
        let idx = PodIndex::default();
        let mut p = pod("u1", "a", "192.168.1.10", 1);
        p.host_network = true;
        idx.apply_pod(p);
        let v = idx.read();
        assert!(v.by_ip("192.168.1.10".parse().unwrap()).is_none());
        assert!(v.by_uid("u1").is_some());
        assert!(v.by_name("ns", "a").is_some());
    }

    #[test]
    fn an_update_moves_the_keys() {
        let idx = PodIndex::default();
        idx.apply_pod(pod("u1", "a", "", 1));
        let mut p = pod("u1", "a", "10.0.0.2", 1);
        p.labels = crate::model::pairs_from([("v".into(), "2".into())]);
        assert_eq!(idx.apply_pod(p), PodChange::Updated);
        idx.apply_pod(pod("u1", "a", "10.0.0.3", 1));
        let v = idx.read();
        assert!(v.by_ip("10.0.0.2".parse().unwrap()).is_none());
        assert_eq!(&*v.by_ip("10.0.0.3".parse().unwrap()).unwrap().uid, "u1");
    }

    #[test]
    fn deleted_pods_match_during_the_grace_period_then_go() {
        let idx = PodIndex::new(Duration::from_secs(120), Vec::new());
        idx.apply_pod(pod("u1", "a", "10.0.0.1", 1));
        let t0 = Instant::now();
        assert!(idx.delete_pod("u1", t0));
        assert!(idx.read().by_ip("10.0.0.1".parse().unwrap()).is_some());
        assert_eq!(idx.purge(t0 + Duration::from_secs(60)), 0);
        assert!(idx.read().by_uid("u1").is_some());
        assert_eq!(idx.purge(t0 + Duration::from_secs(121)), 1);
        let v = idx.read();
        assert!(v.by_uid("u1").is_none());
        assert!(v.by_ip("10.0.0.1".parse().unwrap()).is_none());
        assert!(v.by_name("ns", "a").is_none());
    }

    #[test]
    fn a_reused_ip_belongs_to_the_newer_live_pod() {
        let idx = PodIndex::default();
        let t0 = Instant::now();
        idx.apply_pod(pod("old", "a", "10.0.0.1", 10));
        // An older pod (earlier start) does not take the IP from a newer one.
        idx.apply_pod(pod("older", "b", "10.0.0.1", 5));
        assert_eq!(
            &*idx.read().by_ip("10.0.0.1".parse().unwrap()).unwrap().uid,
            "old"
        );
        idx.apply_pod(pod("new", "c", "10.0.0.1", 20));
        assert_eq!(
            &*idx.read().by_ip("10.0.0.1".parse().unwrap()).unwrap().uid,
            "new"
        );
        // Purging the deleted holder must not take the IP from the live pod.
        idx.delete_pod("old", t0);
        idx.purge(t0 + Duration::from_secs(500));
        assert_eq!(
            &*idx.read().by_ip("10.0.0.1".parse().unwrap()).unwrap().uid,
            "new"
        );
        // When the holder goes, the best remaining claimant gets the IP.
        idx.delete_pod("new", t0);
        idx.purge(t0 + Duration::from_secs(500));
        assert_eq!(
            &*idx.read().by_ip("10.0.0.1".parse().unwrap()).unwrap().uid,
            "older"
        );
    }

    #[test]
    fn a_live_pod_takes_an_ip_from_a_deleted_one() {
        let idx = PodIndex::default();
        idx.apply_pod(pod("old", "a", "10.0.0.1", 100));
        idx.delete_pod("old", Instant::now());
        idx.apply_pod(pod("new", "a", "10.0.0.1", 50));
        let v = idx.read();
        assert_eq!(&*v.by_ip("10.0.0.1".parse().unwrap()).unwrap().uid, "new");
        assert_eq!(&*v.by_name("ns", "a").unwrap().uid, "new");
    }

    #[test]
    fn excluded_and_ignored_pods_are_not_cached() {
        let idx = PodIndex::new(
            DEFAULT_DELETE_GRACE,
            vec![Regex::new("jaeger-agent").unwrap()],
        );
        assert_eq!(
            idx.apply_pod(pod("u1", "jaeger-agent-x", "10.0.0.1", 1)),
            PodChange::Excluded
        );
        let mut p = pod("u2", "web", "10.0.0.2", 1);
        idx.apply_pod(p.clone());
        p.ignored = true;
        assert_eq!(idx.apply_pod(p), PodChange::Excluded);
        assert!(idx.is_empty());
        assert!(idx.read().by_ip("10.0.0.2".parse().unwrap()).is_none());
    }

    #[test]
    fn a_relist_marks_vanished_pods_deleted_and_drops_vanished_namespaces() {
        let idx = PodIndex::default();
        idx.apply_pod(pod("u1", "a", "10.0.0.1", 1));
        idx.apply_pod(pod("u2", "b", "10.0.0.2", 1));
        idx.apply_namespace(ObjectMeta {
            name: "gone".into(),
            ..Default::default()
        });
        let t0 = Instant::now();
        idx.begin_relist(Kind::Pod);
        idx.apply_pod(pod("u2", "b", "10.0.0.2", 1));
        assert_eq!(idx.end_relist(Kind::Pod, t0), 1);
        assert!(idx.read().is_deleted("u1"));
        assert!(!idx.read().is_deleted("u2"));
        idx.begin_relist(Kind::Namespace);
        idx.apply_namespace(ObjectMeta {
            name: "kube-system".into(),
            uid: "cluster".into(),
            ..Default::default()
        });
        assert_eq!(idx.end_relist(Kind::Namespace, t0), 1);
        let v = idx.read();
        assert!(v.namespace("gone").is_none());
        assert_eq!(v.cluster_uid(), Some("cluster"));
    }

    #[test]
    fn replicasets_are_fetched_for_cached_pods_and_dropped_with_them() {
        let idx = PodIndex::new(Duration::ZERO, Vec::new());
        let mut p = pod("u1", "web-abc", "10.0.0.1", 1);
        p.owners = vec![Owner {
            kind: OwnerKind::ReplicaSet,
            name: "web-5d8f7c9b4f".into(),
            uid: "rs1".into(),
        }]
        .into();
        idx.apply_pod(p);
        assert_eq!(
            idx.missing_replicasets(),
            vec![("ns".into(), "web-5d8f7c9b4f".into(), "rs1".into())]
        );
        idx.insert_replicaset(ReplicaSetMeta {
            uid: "rs1".into(),
            deployment: Some(("web".into(), "d1".into())),
        });
        assert!(idx.missing_replicasets().is_empty());
        let now = Instant::now();
        idx.delete_pod("u1", now);
        idx.purge(now);
        assert_eq!(idx.replicaset_count(), 0);
    }
}
