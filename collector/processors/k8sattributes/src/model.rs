//! The slim records the cache keeps: only the fields association and extraction read.
//!
//! A full `Pod` from the API is several kilobytes (managed fields, spec, volumes, conditions); the
//! watch adapters convert each object into these records at once and drop the rest, so what the
//! cache holds per pod is a few hundred bytes.

use std::net::IpAddr;
use std::sync::Arc;

/// Sorted `(key, value)` pairs: labels or annotations kept because some rule reads them.
pub type Pairs = Box<[(Box<str>, Box<str>)]>;

/// Looks a key up in sorted pairs.
pub fn pair<'a>(pairs: &'a [(Box<str>, Box<str>)], key: &str) -> Option<&'a str> {
    pairs
        .binary_search_by(|(k, _)| k.as_ref().cmp(key))
        .ok()
        .map(|i| pairs[i].1.as_ref())
}

/// Builds sorted pairs from any iterator of owned strings.
pub fn pairs_from(iter: impl IntoIterator<Item = (String, String)>) -> Pairs {
    let mut v: Vec<(Box<str>, Box<str>)> = iter
        .into_iter()
        .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
        .collect();
    v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    v.into_boxed_slice()
}

/// What the cache knows of one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodMeta {
    pub uid: Arc<str>,
    pub name: Box<str>,
    pub namespace: Box<str>,
    /// `status.podIP`.
    pub ip: Option<IpAddr>,
    /// hostNetwork pods share the node's IP, so they are never matched by IP.
    pub host_network: bool,
    /// Annotated `opentelemetry.io/k8s-processor/ignore: "true"`: never associated.
    pub ignored: bool,
    /// `spec.nodeName`, shared by every pod of the node.
    pub node_name: Option<Arc<str>>,
    /// `spec.hostname`.
    pub hostname: Option<Box<str>>,
    /// `metadata.creationTimestamp` as RFC 3339 (what upstream emits as `k8s.pod.start_time`).
    pub creation_timestamp: Option<Box<str>>,
    /// `status.startTime` in Unix seconds: decides which pod owns a reused IP.
    pub start_time: Option<i64>,
    /// Owner references of the kinds extraction reads.
    pub owners: Box<[Owner]>,
    /// Only the labels some rule reads.
    pub labels: Pairs,
    /// Only the annotations some rule reads.
    pub annotations: Pairs,
    /// Only when container metadata or `container.id` association is configured.
    pub containers: Box<[Container]>,
}

impl PodMeta {
    pub fn owner(&self, kind: OwnerKind) -> Option<&Owner> {
        self.owners.iter().find(|o| o.kind == kind)
    }

    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers.iter().find(|c| &*c.name == name)
    }

    pub fn container_by_id(&self, id: &str) -> Option<&Container> {
        self.containers
            .iter()
            .find(|c| c.ids.iter().any(|(_, cid)| &**cid == id))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerKind {
    ReplicaSet,
    DaemonSet,
    StatefulSet,
    Job,
}

impl OwnerKind {
    pub fn from_kind(kind: &str) -> Option<Self> {
        Some(match kind {
            "ReplicaSet" => Self::ReplicaSet,
            "DaemonSet" => Self::DaemonSet,
            "StatefulSet" => Self::StatefulSet,
            "Job" => Self::Job,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Owner {
    pub kind: OwnerKind,
    pub name: Box<str>,
    pub uid: Box<str>,
}

/// One container of a pod (init containers included).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Container {
    pub name: Box<str>,
    /// Image repository as written in the spec, without tag or digest.
    pub image_name: Option<Box<str>>,
    pub image_tag: Option<Box<str>>,
    /// `repo@sha256:…` from the status' imageID, when it is a digest reference.
    pub repo_digest: Option<Box<str>>,
    /// Container IDs (runtime prefix stripped) by restart count.
    pub ids: Box<[(u32, Box<str>)]>,
}

impl Container {
    /// The ID of the run with this restart count, or of the latest run.
    pub fn id(&self, restart_count: Option<u32>) -> Option<&str> {
        match restart_count {
            Some(n) => self.ids.iter().find(|(r, _)| *r == n),
            None => self.ids.iter().max_by_key(|(r, _)| *r),
        }
        .map(|(_, id)| &**id)
    }
}

/// A namespace's or node's metadata: uid plus the labels and annotations rules read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectMeta {
    pub name: Box<str>,
    pub uid: Box<str>,
    pub labels: Pairs,
    pub annotations: Pairs,
}

/// A ReplicaSet reduced to its Deployment owner.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplicaSetMeta {
    pub uid: Box<str>,
    pub deployment: Option<(Box<str>, Box<str>)>,
}

impl ReplicaSetMeta {
    pub fn deployment_name(&self) -> Option<&str> {
        self.deployment.as_ref().map(|(n, _)| &**n)
    }

    pub fn deployment_uid(&self) -> Option<&str> {
        self.deployment.as_ref().map(|(_, u)| &**u)
    }
}

/// Splits an image reference into repository, tag and digest.
///
/// `registry:5000/team/app:1.2@sha256:ab` → (`registry:5000/team/app`, `1.2`, `sha256:ab`).
/// A reference with neither tag nor digest has tag `latest`, as upstream reports it.
pub fn parse_image(image: &str) -> (String, Option<String>, Option<String>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d.to_string())),
        None => (image, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (
            &rest[..last_slash + i],
            Some(rest[last_slash + i + 1..].to_string()),
        ),
        None => (rest, None),
    };
    let tag = match (tag, &digest) {
        (None, None) => Some("latest".to_string()),
        (t, _) => t,
    };
    (repo.to_string(), tag, digest)
}

/// Strips the runtime prefix (`containerd://`, `docker://`, `cri-o://`) of a container ID.
pub fn strip_runtime(id: &str) -> &str {
    id.split_once("://").map_or(id, |(_, rest)| rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_into_repository_tag_and_digest() {
        assert_eq!(
            parse_image("nginx"),
            ("nginx".into(), Some("latest".into()), None)
        );
        assert_eq!(
            parse_image("registry:5000/team/app:1.2"),
            ("registry:5000/team/app".into(), Some("1.2".into()), None)
        );
        assert_eq!(
            parse_image("registry:5000/team/app@sha256:ab"),
            (
                "registry:5000/team/app".into(),
                None,
                Some("sha256:ab".into())
            )
        );
        assert_eq!(
            parse_image("ghcr.io/x/y:v1@sha256:ab"),
            (
                "ghcr.io/x/y".into(),
                Some("v1".into()),
                Some("sha256:ab".into())
            )
        );
    }

    #[test]
    fn runtime_prefix_is_stripped() {
        assert_eq!(strip_runtime("containerd://abc"), "abc");
        assert_eq!(strip_runtime("abc"), "abc");
    }

    #[test]
    fn latest_run_is_the_highest_restart_count() {
        let c = Container {
            ids: vec![(0, "a".into()), (2, "c".into()), (1, "b".into())].into(),
            ..Default::default()
        };
        assert_eq!(c.id(None), Some("c"));
        assert_eq!(c.id(Some(1)), Some("b"));
        assert_eq!(c.id(Some(5)), None);
    }

    #[test]
    fn pairs_are_sorted_for_lookup() {
        let p = pairs_from([("b".into(), "2".into()), ("a".into(), "1".into())]);
        assert_eq!(pair(&p, "a"), Some("1"));
        assert_eq!(pair(&p, "b"), Some("2"));
        assert_eq!(pair(&p, "c"), None);
    }
}
