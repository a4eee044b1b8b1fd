//! Extraction: which attributes a matched pod (and its namespace, node, ReplicaSet) adds to a
//! resource, and which labels and annotations the cache must keep for that.

use std::borrow::Cow;

use kotel_config::processors::k8sattributes::{FieldExtract, FieldFrom, K8sAttributesConfig};
use kotel_pipeline::proto::common::v1::KeyValue;
use regex::Regex;

use crate::attrs::{self, *};
use crate::error::Error;
use crate::model::{Container, ObjectMeta, OwnerKind, PodMeta, ReplicaSetMeta, pair};

/// Annotation prefix whose keys become attributes with `extract.otel_annotations`.
pub const OTEL_ANNOTATION_PREFIX: &str = "resource.opentelemetry.io/";
const LABEL_APP_INSTANCE: &str = "app.kubernetes.io/instance";
const LABEL_APP_NAME: &str = "app.kubernetes.io/name";
const LABEL_APP_VERSION: &str = "app.kubernetes.io/version";

/// Which `extract.metadata` keys are on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub namespace: bool,
    pub pod_name: bool,
    pub pod_uid: bool,
    pub start_time: bool,
    pub hostname: bool,
    pub pod_ip: bool,
    pub deployment_name: bool,
    pub deployment_uid: bool,
    pub replicaset_name: bool,
    pub replicaset_uid: bool,
    pub daemonset_name: bool,
    pub daemonset_uid: bool,
    pub statefulset_name: bool,
    pub statefulset_uid: bool,
    pub job_name: bool,
    pub job_uid: bool,
    pub cronjob_name: bool,
    pub node_name: bool,
    pub node_uid: bool,
    pub cluster_uid: bool,
    pub container_name: bool,
    pub container_id: bool,
    pub image_name: bool,
    pub image_tag: bool,
    pub repo_digests: bool,
    pub service_namespace: bool,
    pub service_name: bool,
    pub service_version: bool,
    pub service_instance_id: bool,
}

impl Metadata {
    pub fn from_keys<S: AsRef<str>>(keys: &[S]) -> Self {
        let mut m = Self::default();
        for k in keys {
            let flag = match k.as_ref() {
                K8S_NAMESPACE_NAME => &mut m.namespace,
                K8S_POD_NAME => &mut m.pod_name,
                K8S_POD_UID => &mut m.pod_uid,
                K8S_POD_START_TIME => &mut m.start_time,
                K8S_POD_HOSTNAME => &mut m.hostname,
                K8S_POD_IP => &mut m.pod_ip,
                K8S_DEPLOYMENT_NAME => &mut m.deployment_name,
                K8S_DEPLOYMENT_UID => &mut m.deployment_uid,
                K8S_REPLICASET_NAME => &mut m.replicaset_name,
                K8S_REPLICASET_UID => &mut m.replicaset_uid,
                K8S_DAEMONSET_NAME => &mut m.daemonset_name,
                K8S_DAEMONSET_UID => &mut m.daemonset_uid,
                K8S_STATEFULSET_NAME => &mut m.statefulset_name,
                K8S_STATEFULSET_UID => &mut m.statefulset_uid,
                K8S_JOB_NAME => &mut m.job_name,
                K8S_JOB_UID => &mut m.job_uid,
                K8S_CRONJOB_NAME => &mut m.cronjob_name,
                K8S_NODE_NAME => &mut m.node_name,
                K8S_NODE_UID => &mut m.node_uid,
                K8S_CLUSTER_UID => &mut m.cluster_uid,
                K8S_CONTAINER_NAME => &mut m.container_name,
                CONTAINER_ID => &mut m.container_id,
                CONTAINER_IMAGE_NAME => &mut m.image_name,
                CONTAINER_IMAGE_TAG => &mut m.image_tag,
                CONTAINER_IMAGE_REPO_DIGESTS => &mut m.repo_digests,
                SERVICE_NAMESPACE => &mut m.service_namespace,
                SERVICE_NAME => &mut m.service_name,
                SERVICE_VERSION => &mut m.service_version,
                SERVICE_INSTANCE_ID => &mut m.service_instance_id,
                _ => continue,
            };
            *flag = true;
        }
        m
    }

    /// Whether any per-container attribute is wanted (the cache then keeps containers).
    pub fn wants_containers(&self) -> bool {
        self.container_name
            || self.container_id
            || self.image_name
            || self.image_tag
            || self.repo_digests
            || self.service_version
            || self.service_instance_id
    }

    /// Whether the pod's owner references are read.
    pub fn wants_owners(&self) -> bool {
        self.deployment_name
            || self.deployment_uid
            || self.replicaset_name
            || self.replicaset_uid
            || self.daemonset_name
            || self.daemonset_uid
            || self.statefulset_name
            || self.statefulset_uid
            || self.job_name
            || self.job_uid
            || self.cronjob_name
            || self.service_name
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Label,
    Annotation,
}

#[derive(Debug, Clone)]
enum Matcher {
    Key {
        key: String,
        tag: String,
    },
    /// Anchored regex. With capture groups the tag name is a `$1` / `${name}` template;
    /// without, upstream names the attribute `k8s.<from>.<kind>.<key>` whatever `tag_name` says.
    Regex {
        re: Regex,
        template: Option<String>,
        prefix: String,
    },
}

/// One `extract.labels` or `extract.annotations` rule, compiled.
#[derive(Debug, Clone)]
pub struct FieldRule {
    pub from: FieldFrom,
    pub kind: FieldKind,
    matcher: Matcher,
}

impl FieldRule {
    pub fn compile(rule: &FieldExtract, kind: FieldKind, path: &str) -> Result<Self, Error> {
        let from = match rule.from {
            FieldFrom::Pod => "pod",
            FieldFrom::Namespace => "namespace",
            FieldFrom::Node => "node",
        };
        let plural = match kind {
            FieldKind::Label => "labels",
            FieldKind::Annotation => "annotations",
        };
        let prefix = format!("k8s.{from}.{plural}.");
        let matcher = match (&rule.key, &rule.key_regex) {
            (Some(key), None) => Matcher::Key {
                key: key.clone(),
                tag: rule
                    .tag_name
                    .clone()
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| format!("{prefix}{key}")),
            },
            (None, Some(re)) => {
                let compiled =
                    Regex::new(&format!("^(?:{re})$")).map_err(|source| Error::InvalidRegex {
                        path: path.to_string(),
                        source,
                    })?;
                let template = (compiled.captures_len() > 1)
                    .then(|| rule.tag_name.clone().filter(|t| !t.is_empty()))
                    .flatten();
                Matcher::Regex {
                    re: compiled,
                    template,
                    prefix,
                }
            }
            _ => {
                return Err(Error::InvalidConfig {
                    path: path.to_string(),
                    reason: "set exactly one of key or key_regex".into(),
                });
            }
        };
        Ok(Self {
            from: rule.from,
            kind,
            matcher,
        })
    }

    /// Whether this rule reads the label or annotation `key` (so the cache keeps it).
    pub fn reads(&self, key: &str) -> bool {
        match &self.matcher {
            Matcher::Key { key: k, .. } => k == key,
            Matcher::Regex { re, .. } => re.is_match(key),
        }
    }

    /// Adds the attributes this rule finds in `pairs`.
    pub fn apply(&self, pairs: &[(Box<str>, Box<str>)], out: &mut Vec<KeyValue>) {
        match &self.matcher {
            Matcher::Key { key, tag } => {
                if let Some(v) = pair(pairs, key) {
                    attrs::set(out, tag, v);
                }
            }
            Matcher::Regex {
                re,
                template,
                prefix,
            } => {
                for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
                    let name: Cow<'_, str> = match template {
                        Some(t) => match re.captures(k) {
                            Some(caps) => {
                                let mut name = String::new();
                                caps.expand(t, &mut name);
                                Cow::Owned(name)
                            }
                            None => continue,
                        },
                        None if re.is_match(k) => Cow::Owned(format!("{prefix}{k}")),
                        None => continue,
                    };
                    if !name.is_empty() {
                        attrs::set(out, &name, v);
                    }
                }
            }
        }
    }
}

/// Namespace, node and ReplicaSet metadata the extraction reads besides the pod.
pub trait Related {
    fn namespace(&self, name: &str) -> Option<&ObjectMeta>;
    fn node(&self, name: &str) -> Option<&ObjectMeta>;
    fn replicaset(&self, uid: &str) -> Option<&ReplicaSetMeta>;
    fn cluster_uid(&self) -> Option<&str>;
}

/// The compiled `extract` section.
#[derive(Debug, Clone)]
pub struct Extractor {
    pub metadata: Metadata,
    pub rules: Vec<FieldRule>,
    pub otel_annotations: bool,
    pub deployment_name_from_replicaset: bool,
    cronjob: Regex,
}

impl Extractor {
    pub fn new(config: &K8sAttributesConfig, path: &str) -> Result<Self, Error> {
        let e = &config.extract;
        let mut rules = Vec::new();
        for (i, r) in e.labels.iter().enumerate() {
            let p = format!("{path}.extract.labels[{i}]");
            rules.push(FieldRule::compile(r, FieldKind::Label, &p)?);
        }
        for (i, r) in e.annotations.iter().enumerate() {
            let p = format!("{path}.extract.annotations[{i}]");
            rules.push(FieldRule::compile(r, FieldKind::Annotation, &p)?);
        }
        Ok(Self {
            metadata: Metadata::from_keys(&e.metadata),
            rules,
            otel_annotations: e.otel_annotations,
            deployment_name_from_replicaset: e.deployment_name_from_replicaset,
            cronjob: Regex::new(r"^(.*)-[0-9]+$").expect("static regex"),
        })
    }

    fn rules_for(&self, from: FieldFrom, kind: FieldKind) -> impl Iterator<Item = &FieldRule> {
        self.rules
            .iter()
            .filter(move |r| r.from == from && r.kind == kind)
    }

    /// Whether any rule reads labels or annotations of `from`.
    pub fn reads_from(&self, from: FieldFrom) -> bool {
        self.rules.iter().any(|r| r.from == from)
    }

    /// Whether the cache keeps the label `key` of an object of kind `from`.
    pub fn keeps_label(&self, from: FieldFrom, key: &str) -> bool {
        let service = from == FieldFrom::Pod
            && ((self.metadata.service_name
                && (key == LABEL_APP_INSTANCE || key == LABEL_APP_NAME))
                || (self.metadata.service_version && key == LABEL_APP_VERSION));
        service || self.rules_for(from, FieldKind::Label).any(|r| r.reads(key))
    }

    /// Whether the cache keeps the annotation `key` of an object of kind `from`.
    pub fn keeps_annotation(&self, from: FieldFrom, key: &str) -> bool {
        (from == FieldFrom::Pod && self.otel_annotations && key.starts_with(OTEL_ANNOTATION_PREFIX))
            || self
                .rules_for(from, FieldKind::Annotation)
                .any(|r| r.reads(key))
    }

    /// Whether ReplicaSets must be read: the deployment is the ReplicaSet's owner.
    pub fn needs_replicasets(&self) -> bool {
        let m = &self.metadata;
        m.deployment_uid
            || ((m.deployment_name || m.service_name) && !self.deployment_name_from_replicaset)
    }

    fn deployment_name<'a>(&self, rel: &'a impl Related, pod: &'a PodMeta) -> Option<&'a str> {
        let rs = pod.owner(OwnerKind::ReplicaSet)?;
        if self.deployment_name_from_replicaset {
            deployment_from_replicaset_name(&rs.name)
        } else {
            rel.replicaset(&rs.uid)?.deployment_name()
        }
    }

    /// Adds the pod-level attributes of `pod`.
    pub fn pod(&self, rel: &impl Related, pod: &PodMeta, out: &mut Vec<KeyValue>) {
        let m = &self.metadata;
        if m.namespace {
            attrs::set(out, K8S_NAMESPACE_NAME, &pod.namespace);
        }
        if m.pod_name {
            attrs::set(out, K8S_POD_NAME, &pod.name);
        }
        if m.pod_uid {
            attrs::set(out, K8S_POD_UID, &pod.uid);
        }
        if m.start_time
            && let Some(t) = &pod.creation_timestamp
        {
            attrs::set(out, K8S_POD_START_TIME, t);
        }
        if m.hostname
            && let Some(h) = &pod.hostname
        {
            attrs::set(out, K8S_POD_HOSTNAME, h);
        }
        if m.pod_ip
            && let Some(ip) = pod.ip
        {
            attrs::set(out, K8S_POD_IP, &ip.to_string());
        }
        if m.node_name
            && let Some(n) = &pod.node_name
        {
            attrs::set(out, K8S_NODE_NAME, n);
        }
        if m.cluster_uid
            && let Some(u) = rel.cluster_uid()
        {
            attrs::set(out, K8S_CLUSTER_UID, u);
        }
        self.owners(rel, pod, out);
        if m.service_name
            && let Some(name) = self.service_name(rel, pod)
        {
            attrs::set(out, SERVICE_NAME, name);
        }
        if m.service_version
            && let Some(v) = pair(&pod.labels, LABEL_APP_VERSION)
        {
            attrs::set(out, SERVICE_VERSION, v);
        }
        for r in self.rules_for(FieldFrom::Pod, FieldKind::Label) {
            r.apply(&pod.labels, out);
        }
        for r in self.rules_for(FieldFrom::Pod, FieldKind::Annotation) {
            r.apply(&pod.annotations, out);
        }
        if self.otel_annotations {
            for (k, v) in pod.annotations.iter() {
                if let Some(attr) = k.strip_prefix(OTEL_ANNOTATION_PREFIX)
                    && !attr.is_empty()
                {
                    attrs::set(out, attr, v);
                }
            }
        }
    }

    fn owners(&self, rel: &impl Related, pod: &PodMeta, out: &mut Vec<KeyValue>) {
        let m = &self.metadata;
        if let Some(rs) = pod.owner(OwnerKind::ReplicaSet) {
            if m.replicaset_name {
                attrs::set(out, K8S_REPLICASET_NAME, &rs.name);
            }
            if m.replicaset_uid {
                attrs::set(out, K8S_REPLICASET_UID, &rs.uid);
            }
            if m.deployment_name
                && let Some(d) = self.deployment_name(rel, pod)
            {
                attrs::set(out, K8S_DEPLOYMENT_NAME, d);
            }
            if m.deployment_uid
                && let Some(d) = rel.replicaset(&rs.uid).and_then(|r| r.deployment_uid())
            {
                attrs::set(out, K8S_DEPLOYMENT_UID, d);
            }
        }
        if let Some(ds) = pod.owner(OwnerKind::DaemonSet) {
            if m.daemonset_name {
                attrs::set(out, K8S_DAEMONSET_NAME, &ds.name);
            }
            if m.daemonset_uid {
                attrs::set(out, K8S_DAEMONSET_UID, &ds.uid);
            }
        }
        if let Some(ss) = pod.owner(OwnerKind::StatefulSet) {
            if m.statefulset_name {
                attrs::set(out, K8S_STATEFULSET_NAME, &ss.name);
            }
            if m.statefulset_uid {
                attrs::set(out, K8S_STATEFULSET_UID, &ss.uid);
            }
        }
        if let Some(job) = pod.owner(OwnerKind::Job) {
            if m.job_name {
                attrs::set(out, K8S_JOB_NAME, &job.name);
            }
            if m.job_uid {
                attrs::set(out, K8S_JOB_UID, &job.uid);
            }
            if m.cronjob_name
                && let Some(c) = self.cronjob_name(&job.name)
            {
                attrs::set(out, K8S_CRONJOB_NAME, c);
            }
        }
    }

    fn cronjob_name<'a>(&self, job: &'a str) -> Option<&'a str> {
        Some(self.cronjob.captures(job)?.get(1)?.as_str())
    }

    /// `app.kubernetes.io/instance` > `app.kubernetes.io/name` > the owning workload > the pod.
    fn service_name<'a>(&self, rel: &'a impl Related, pod: &'a PodMeta) -> Option<&'a str> {
        if let Some(v) = pair(&pod.labels, LABEL_APP_INSTANCE).or(pair(&pod.labels, LABEL_APP_NAME))
        {
            return Some(v);
        }
        if let Some(rs) = pod.owner(OwnerKind::ReplicaSet) {
            return Some(self.deployment_name(rel, pod).unwrap_or(&rs.name));
        }
        if let Some(job) = pod.owner(OwnerKind::Job) {
            return Some(self.cronjob_name(&job.name).unwrap_or(&job.name));
        }
        if let Some(o) = pod
            .owner(OwnerKind::StatefulSet)
            .or(pod.owner(OwnerKind::DaemonSet))
        {
            return Some(&o.name);
        }
        Some(&pod.name)
    }

    /// Adds container-level attributes when the resource names its container (by
    /// `k8s.container.name` or `container.id`), or when the pod has a single container.
    pub fn container(&self, pod: &PodMeta, out: &mut Vec<KeyValue>) {
        let m = &self.metadata;
        if !m.wants_containers() {
            return;
        }
        let container: &Container = if let Some(name) = attrs::get(out, K8S_CONTAINER_NAME) {
            match pod.container(name) {
                Some(c) => c,
                None => return,
            }
        } else if let Some(id) = attrs::get(out, CONTAINER_ID) {
            match pod.container_by_id(crate::model::strip_runtime(id)) {
                Some(c) => c,
                None => return,
            }
        } else if let [only] = &*pod.containers {
            only
        } else {
            return;
        };
        if m.container_name {
            attrs::set(out, K8S_CONTAINER_NAME, &container.name);
        }
        if m.image_name
            && let Some(v) = &container.image_name
        {
            attrs::set(out, CONTAINER_IMAGE_NAME, v);
        }
        if m.image_tag
            && let Some(v) = &container.image_tag
        {
            attrs::set(out, CONTAINER_IMAGE_TAG, v);
        }
        if m.repo_digests
            && let Some(v) = &container.repo_digest
        {
            attrs::set_array(out, CONTAINER_IMAGE_REPO_DIGESTS, &[v]);
        }
        if m.service_instance_id {
            let id = format!("{}.{}.{}", pod.namespace, pod.name, container.name);
            attrs::set(out, SERVICE_INSTANCE_ID, &id);
        }
        if m.service_version
            && let Some(v) = &container.image_tag
        {
            attrs::set(out, SERVICE_VERSION, v);
        }
        if m.container_id {
            let run = attrs::get_int(out, K8S_CONTAINER_RESTART_COUNT)
                .and_then(|n| u32::try_from(n).ok());
            if let Some(id) = container.id(run) {
                let id = id.to_string();
                attrs::set(out, CONTAINER_ID, &id);
            }
        }
    }

    /// Adds the namespace's labels, annotations and `service.namespace`.
    pub fn namespace(&self, rel: &impl Related, namespace: &str, out: &mut Vec<KeyValue>) {
        if self.metadata.service_namespace {
            attrs::set(out, SERVICE_NAMESPACE, namespace);
        }
        if !self.reads_from(FieldFrom::Namespace) {
            return;
        }
        if let Some(ns) = rel.namespace(namespace) {
            for r in self.rules_for(FieldFrom::Namespace, FieldKind::Label) {
                r.apply(&ns.labels, out);
            }
            for r in self.rules_for(FieldFrom::Namespace, FieldKind::Annotation) {
                r.apply(&ns.annotations, out);
            }
        }
    }

    /// Adds the node's labels, annotations and uid.
    pub fn node(&self, rel: &impl Related, node: &str, out: &mut Vec<KeyValue>) {
        if !self.metadata.node_uid && !self.reads_from(FieldFrom::Node) {
            return;
        }
        let Some(n) = rel.node(node) else {
            return;
        };
        for r in self.rules_for(FieldFrom::Node, FieldKind::Label) {
            r.apply(&n.labels, out);
        }
        for r in self.rules_for(FieldFrom::Node, FieldKind::Annotation) {
            r.apply(&n.annotations, out);
        }
        if self.metadata.node_uid && !n.uid.is_empty() {
            attrs::set(out, K8S_NODE_UID, &n.uid);
        }
    }
}

/// `web-7d4b9c8f5d` → `web`: the last segment of a ReplicaSet created by a Deployment is a
/// 10-character hash (the pod-template-hash, upstream's rule).
pub fn deployment_from_replicaset_name(rs: &str) -> Option<&str> {
    let (name, hash) = rs.rsplit_once('-')?;
    let is_hash = hash.len() == 10
        && hash
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (is_hash && !name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;
    use crate::model::{Owner, pairs_from};

    #[derive(Default)]
    struct Rel {
        namespaces: HashMap<String, ObjectMeta>,
        nodes: HashMap<String, ObjectMeta>,
        replicasets: HashMap<String, ReplicaSetMeta>,
        cluster: Option<String>,
    }

    impl Related for Rel {
        fn namespace(&self, name: &str) -> Option<&ObjectMeta> {
            self.namespaces.get(name)
        }
        fn node(&self, name: &str) -> Option<&ObjectMeta> {
            self.nodes.get(name)
        }
        fn replicaset(&self, uid: &str) -> Option<&ReplicaSetMeta> {
            self.replicasets.get(uid)
        }
        fn cluster_uid(&self) -> Option<&str> {
            self.cluster.as_deref()
        }
    }

    fn config(yaml: &str) -> K8sAttributesConfig {
        let v: serde_json::Value = serde_json::from_str(yaml).unwrap();
        serde_json::from_value(v).unwrap()
    }

    fn map(out: &[KeyValue]) -> BTreeMap<String, String> {
        out.iter()
            .map(|kv| {
                let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(kotel_pipeline::proto::common::v1::any_value::Value::StringValue(s)) => {
                        s.clone()
                    }
                    other => format!("{other:?}"),
                };
                (kv.key.clone(), v)
            })
            .collect()
    }

    fn pod() -> PodMeta {
        PodMeta {
            uid: "uid-1".into(),
            name: "web-7d4b9c8f5d-x2x9q".into(),
            namespace: "shop".into(),
            ip: Some("10.0.0.5".parse().unwrap()),
            node_name: Some("node-a".into()),
            hostname: Some("web".into()),
            creation_timestamp: Some("2024-05-01T10:00:00Z".into()),
            owners: vec![Owner {
                kind: OwnerKind::ReplicaSet,
                name: "web-7d4b9c8f5d".into(),
                uid: "rs-uid".into(),
            }]
            .into(),
            labels: pairs_from([
                ("app.kubernetes.io/component".into(), "frontend".into()),
                ("team".into(), "payments".into()),
            ]),
            annotations: pairs_from([
                ("git/sha".into(), "abc".into()),
                (
                    "resource.opentelemetry.io/service.name".into(),
                    "web-svc".into(),
                ),
            ]),
            containers: vec![
                Container {
                    name: "app".into(),
                    image_name: Some("ghcr.io/shop/web".into()),
                    image_tag: Some("1.4".into()),
                    repo_digest: Some("ghcr.io/shop/web@sha256:aa".into()),
                    ids: vec![(0, "c0".into()), (1, "c1".into())].into(),
                },
                Container {
                    name: "sidecar".into(),
                    image_name: Some("envoy".into()),
                    image_tag: Some("latest".into()),
                    repo_digest: None,
                    ids: vec![(0, "s0".into())].into(),
                },
            ]
            .into(),
            ..Default::default()
        }
    }

    fn rel() -> Rel {
        let mut r = Rel::default();
        r.replicasets.insert(
            "rs-uid".into(),
            ReplicaSetMeta {
                uid: "rs-uid".into(),
                deployment: Some(("web".into(), "dep-uid".into())),
            },
        );
        r
    }

    #[test]
    fn default_metadata_from_pod_and_replicaset() {
        let x = Extractor::new(&K8sAttributesConfig::default(), "p").unwrap();
        let mut out = Vec::new();
        x.pod(&rel(), &pod(), &mut out);
        let got = map(&out);
        let want: BTreeMap<String, String> = [
            ("k8s.namespace.name", "shop"),
            ("k8s.pod.name", "web-7d4b9c8f5d-x2x9q"),
            ("k8s.pod.uid", "uid-1"),
            ("k8s.pod.start_time", "2024-05-01T10:00:00Z"),
            ("k8s.deployment.name", "web"),
            ("k8s.node.name", "node-a"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn deployment_name_derived_from_the_replicaset_name_needs_no_replicaset() {
        let c = config(
            r#"{"extract":{"metadata":["k8s.deployment.name"],"deployment_name_from_replicaset":true}}"#,
        );
        let x = Extractor::new(&c, "p").unwrap();
        assert!(!x.needs_replicasets());
        let mut out = Vec::new();
        x.pod(&Rel::default(), &pod(), &mut out);
        assert_eq!(map(&out)["k8s.deployment.name"], "web");
        assert_eq!(deployment_from_replicaset_name("web-abc"), None);
        assert_eq!(
            deployment_from_replicaset_name("a-b-0123456789"),
            Some("a-b")
        );
    }

    #[test]
    fn deployment_name_is_absent_until_the_replicaset_is_known() {
        let x = Extractor::new(&K8sAttributesConfig::default(), "p").unwrap();
        assert!(x.needs_replicasets());
        let mut out = Vec::new();
        x.pod(&Rel::default(), &pod(), &mut out);
        assert!(!map(&out).contains_key("k8s.deployment.name"));
    }

    #[test]
    fn labels_and_annotations_by_key_and_by_regex_with_templates() {
        let c = config(
            r#"{"extract":{"metadata":[],
                "labels":[{"key":"team"},
                          {"tag_name":"app.$1","key_regex":"app\\.kubernetes\\.io/(.*)"},
                          {"tag_name":"ignored","key_regex":"te.m"}],
                "annotations":[{"tag_name":"commit","key":"git/sha"}]}}"#,
        );
        let x = Extractor::new(&c, "p").unwrap();
        let mut out = Vec::new();
        x.pod(&Rel::default(), &pod(), &mut out);
        let got = map(&out);
        assert_eq!(got["k8s.pod.labels.team"], "payments");
        assert_eq!(got["app.component"], "frontend");
        assert_eq!(got["commit"], "abc");
        // A regex without groups names the attribute by the default pattern, as upstream.
        assert!(!got.contains_key("ignored"));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn key_regex_is_anchored_and_named_groups_expand() {
        let c = config(
            r#"{"extract":{"metadata":[],
                "labels":[{"tag_name":"k.${rest}","key_regex":"app\\.kubernetes\\.io/(?P<rest>comp.*)"},
                          {"tag_name":"x.$1","key_regex":"(ea)"}]}}"#,
        );
        let x = Extractor::new(&c, "p").unwrap();
        let mut out = Vec::new();
        x.pod(&Rel::default(), &pod(), &mut out);
        let got = map(&out);
        assert_eq!(got["k.component"], "frontend");
        assert_eq!(got.len(), 1, "{got:?}");
    }

    #[test]
    fn cache_keeps_only_the_labels_rules_read() {
        let c = config(
            r#"{"extract":{"metadata":["service.name"],
                "labels":[{"key":"team"},{"key_regex":"tier-.*","from":"namespace"}],
                "otel_annotations":true}}"#,
        );
        let x = Extractor::new(&c, "p").unwrap();
        assert!(x.keeps_label(FieldFrom::Pod, "team"));
        assert!(x.keeps_label(FieldFrom::Pod, "app.kubernetes.io/name"));
        assert!(!x.keeps_label(FieldFrom::Pod, "tier-1"));
        assert!(x.keeps_label(FieldFrom::Namespace, "tier-1"));
        assert!(!x.keeps_label(FieldFrom::Namespace, "xtier-1"));
        assert!(x.keeps_annotation(FieldFrom::Pod, "resource.opentelemetry.io/a"));
        assert!(!x.keeps_annotation(FieldFrom::Pod, "git/sha"));
        assert!(x.reads_from(FieldFrom::Namespace));
        assert!(!x.reads_from(FieldFrom::Node));
    }

    #[test]
    fn otel_annotations_become_attributes() {
        let c = config(r#"{"extract":{"metadata":[],"otel_annotations":true}}"#);
        let x = Extractor::new(&c, "p").unwrap();
        let mut out = Vec::new();
        x.pod(&Rel::default(), &pod(), &mut out);
        assert_eq!(map(&out)["service.name"], "web-svc");
    }

    #[test]
    fn container_attributes_only_for_a_named_container() {
        let c = config(
            r#"{"extract":{"metadata":["k8s.container.name","container.id","container.image.name",
                "container.image.tag","container.image.repo_digests","service.instance.id","service.version"]}}"#,
        );
        let x = Extractor::new(&c, "p").unwrap();
        let p = pod();

        // Two containers and nothing naming one: no container attributes.
        let mut out = Vec::new();
        x.container(&p, &mut out);
        assert!(out.is_empty());

        let mut out = vec![attrs::kv("k8s.container.name", "app")];
        x.container(&p, &mut out);
        let got = map(&out);
        assert_eq!(got["container.image.name"], "ghcr.io/shop/web");
        assert_eq!(got["container.image.tag"], "1.4");
        assert_eq!(got["container.id"], "c1", "latest run by default");
        assert_eq!(got["service.instance.id"], "shop.web-7d4b9c8f5d-x2x9q.app");
        assert_eq!(got["service.version"], "1.4");
        assert!(got["container.image.repo_digests"].contains("sha256:aa"));

        let mut out = vec![
            attrs::kv("k8s.container.name", "app"),
            attrs::kv("k8s.container.restart_count", "0"),
        ];
        x.container(&p, &mut out);
        assert_eq!(map(&out)["container.id"], "c0");

        let mut out = vec![attrs::kv("container.id", "containerd://s0")];
        x.container(&p, &mut out);
        assert_eq!(map(&out)["k8s.container.name"], "sidecar");

        let mut out = vec![attrs::kv("k8s.container.name", "nope")];
        x.container(&p, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn owners_cronjob_and_service_name() {
        let c = config(
            r#"{"extract":{"metadata":["k8s.job.name","k8s.job.uid","k8s.cronjob.name","service.name",
                "k8s.replicaset.name","k8s.daemonset.name"]}}"#,
        );
        let x = Extractor::new(&c, "p").unwrap();
        let mut p = pod();
        p.owners = vec![Owner {
            kind: OwnerKind::Job,
            name: "backup-28312345".into(),
            uid: "job-uid".into(),
        }]
        .into();
        let mut out = Vec::new();
        x.pod(&Rel::default(), &p, &mut out);
        let got = map(&out);
        assert_eq!(got["k8s.job.name"], "backup-28312345");
        assert_eq!(got["k8s.job.uid"], "job-uid");
        assert_eq!(got["k8s.cronjob.name"], "backup");
        assert_eq!(got["service.name"], "backup");
        assert!(!got.contains_key("k8s.replicaset.name"));

        let mut p = pod();
        p.labels = pairs_from([("app.kubernetes.io/name".into(), "shopfront".into())]);
        let mut out = Vec::new();
        x.pod(&rel(), &p, &mut out);
        assert_eq!(map(&out)["service.name"], "shopfront");
    }

    #[test]
    fn namespace_and_node_metadata() {
        let c = config(
            r#"{"extract":{"metadata":["k8s.node.uid","service.namespace"],
                "labels":[{"key":"env","from":"namespace"},{"tag_name":"zone","key":"topology.kubernetes.io/zone","from":"node"}],
                "annotations":[{"key":"owner","from":"namespace"}]}}"#,
        );
        let x = Extractor::new(&c, "p").unwrap();
        let mut r = Rel::default();
        r.namespaces.insert(
            "shop".into(),
            ObjectMeta {
                name: "shop".into(),
                uid: "ns-uid".into(),
                labels: pairs_from([("env".into(), "prod".into())]),
                annotations: pairs_from([("owner".into(), "team-a".into())]),
            },
        );
        r.nodes.insert(
            "node-a".into(),
            ObjectMeta {
                name: "node-a".into(),
                uid: "node-uid".into(),
                labels: pairs_from([("topology.kubernetes.io/zone".into(), "z1".into())]),
                annotations: Box::new([]),
            },
        );
        let mut out = Vec::new();
        x.namespace(&r, "shop", &mut out);
        x.node(&r, "node-a", &mut out);
        let got = map(&out);
        assert_eq!(got["k8s.namespace.labels.env"], "prod");
        assert_eq!(got["k8s.namespace.annotations.owner"], "team-a");
        assert_eq!(got["service.namespace"], "shop");
        assert_eq!(got["zone"], "z1");
        assert_eq!(got["k8s.node.uid"], "node-uid");
    }

    #[test]
    fn extraction_never_overwrites() {
        let x = Extractor::new(&K8sAttributesConfig::default(), "p").unwrap();
        let mut out = vec![attrs::kv("k8s.pod.name", "given")];
        x.pod(&rel(), &pod(), &mut out);
        assert_eq!(map(&out)["k8s.pod.name"], "given");
    }

    #[test]
    fn cluster_uid_comes_from_kube_system() {
        let c = config(r#"{"extract":{"metadata":["k8s.cluster.uid"]}}"#);
        let x = Extractor::new(&c, "p").unwrap();
        let r = Rel {
            cluster: Some("cluster-1".into()),
            ..Default::default()
        };
        let mut out = Vec::new();
        x.pod(&r, &pod(), &mut out);
        assert_eq!(map(&out)["k8s.cluster.uid"], "cluster-1");
    }
}
