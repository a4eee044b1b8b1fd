//! `k8sattributes` (new name `k8s_attributes`) processor: adds pod metadata found by association.

use std::time::Duration;

use serde::Deserialize;

use crate::duration;
use crate::error::{ConfigError, check_regex};

/// The default `extract.metadata` of the newest upstream README.
pub const DEFAULT_METADATA: &[&str] = &[
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.pod.uid",
    "k8s.pod.start_time",
    "k8s.deployment.name",
    "k8s.node.name",
];

/// Every metadata key kotel can extract.
pub const SUPPORTED_METADATA: &[&str] = &[
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.pod.uid",
    "k8s.pod.start_time",
    "k8s.pod.hostname",
    "k8s.pod.ip",
    "k8s.deployment.name",
    "k8s.deployment.uid",
    "k8s.replicaset.name",
    "k8s.replicaset.uid",
    "k8s.daemonset.name",
    "k8s.daemonset.uid",
    "k8s.statefulset.name",
    "k8s.statefulset.uid",
    "k8s.job.name",
    "k8s.job.uid",
    "k8s.cronjob.name",
    "k8s.node.name",
    "k8s.node.uid",
    "k8s.cluster.uid",
    "k8s.container.name",
    "container.id",
    "container.image.name",
    "container.image.tag",
    "container.image.repo_digests",
    "service.namespace",
    "service.name",
    "service.version",
    "service.instance.id",
];

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct K8sAttributesConfig {
    /// `serviceAccount` (default) or `kubeConfig`.
    pub auth_type: String,
    /// Only tag `k8s.pod.ip` from the connection; no API calls.
    pub passthrough: bool,
    pub filter: Filter,
    pub pod_association: Vec<AssociationRule>,
    pub extract: Extract,
    pub exclude: Exclude,
    /// Start pipelines only after the first sync of the pod cache.
    pub wait_for_metadata: bool,
    /// Default 10s.
    #[serde(deserialize_with = "duration::de")]
    pub wait_for_metadata_timeout: Duration,
}

impl Default for K8sAttributesConfig {
    fn default() -> Self {
        Self {
            auth_type: "serviceAccount".into(),
            passthrough: false,
            filter: Filter::default(),
            pod_association: Vec::new(),
            extract: Extract::default(),
            exclude: Exclude::default(),
            wait_for_metadata: false,
            wait_for_metadata_timeout: Duration::from_secs(10),
        }
    }
}

impl K8sAttributesConfig {
    pub(crate) fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if !matches!(
            self.auth_type.as_str(),
            "serviceAccount" | "kubeConfig" | "none"
        ) {
            return Err(ConfigError::new(
                format!("{path}.auth_type"),
                format!("{:?}: use serviceAccount or kubeConfig", self.auth_type),
            ));
        }
        for (i, m) in self.extract.metadata.iter().enumerate() {
            if !SUPPORTED_METADATA.contains(&m.as_str()) {
                return Err(ConfigError::new(
                    format!("{path}.extract.metadata[{i}]"),
                    format!("{m:?} is not a metadata key kotel can extract"),
                ));
            }
        }
        for (i, f) in self.filter.fields.iter().enumerate() {
            f.validate(&format!("{path}.filter.fields[{i}]"), FIELD_OPS)?;
        }
        for (i, f) in self.filter.labels.iter().enumerate() {
            f.validate(&format!("{path}.filter.labels[{i}]"), LABEL_OPS)?;
        }
        for (i, rule) in self.pod_association.iter().enumerate() {
            if rule.sources.is_empty() || rule.sources.len() > 4 {
                return Err(ConfigError::new(
                    format!("{path}.pod_association[{i}].sources"),
                    "a rule has between 1 and 4 sources",
                ));
            }
            for (j, s) in rule.sources.iter().enumerate() {
                let p = format!("{path}.pod_association[{i}].sources[{j}]");
                match (s.from.as_str(), &s.name) {
                    ("connection", _) => {}
                    ("resource_attribute", Some(n)) if !n.is_empty() => {}
                    ("resource_attribute", _) => {
                        return Err(ConfigError::new(p, "resource_attribute needs a name"));
                    }
                    (other, _) => {
                        return Err(ConfigError::new(
                            p,
                            format!("from {other:?}: use connection or resource_attribute"),
                        ));
                    }
                }
            }
        }
        for (i, f) in self
            .extract
            .labels
            .iter()
            .chain(&self.extract.annotations)
            .enumerate()
        {
            if f.key.is_some() == f.key_regex.is_some() {
                return Err(ConfigError::new(
                    format!("{path}.extract"),
                    format!("field rule {i}: set exactly one of key or key_regex"),
                ));
            }
            if let Some(re) = &f.key_regex {
                check_regex(format!("{path}.extract.key_regex"), re)?;
            }
        }
        for (i, p) in self.exclude.pods.iter().enumerate() {
            check_regex(format!("{path}.exclude.pods[{i}].name"), &p.name)?;
        }
        Ok(())
    }

    /// Whether any label or annotation rule reads from `from`.
    pub fn extracts_from(&self, from: FieldFrom) -> bool {
        self.extract
            .labels
            .iter()
            .chain(&self.extract.annotations)
            .any(|f| f.from == from)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Filter {
    pub node: Option<String>,
    /// Name of an env var holding the node name, usually `K8S_NODE_NAME`.
    pub node_from_env_var: Option<String>,
    pub namespace: Option<String>,
    pub fields: Vec<SelectorFilter>,
    pub labels: Vec<SelectorFilter>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectorFilter {
    pub key: String,
    #[serde(default)]
    pub value: String,
    /// `equals` (default), `not-equals`, `exists`, `does-not-exist`.
    #[serde(default)]
    pub op: Option<String>,
}

/// Operators a `filter.fields` entry may use (field selectors know no others).
pub const FIELD_OPS: &[&str] = &["equals", "not-equals"];
/// Operators a `filter.labels` entry may use (`in` / `notin` are rejected, as upstream).
pub const LABEL_OPS: &[&str] = &["equals", "not-equals", "exists", "does-not-exist"];

impl SelectorFilter {
    fn validate(&self, path: &str, ops: &[&str]) -> Result<(), ConfigError> {
        if self.key.is_empty() {
            return Err(ConfigError::new(format!("{path}.key"), "key is empty"));
        }
        match self.op.as_deref() {
            None | Some("") => Ok(()),
            Some(op) if ops.contains(&op) => Ok(()),
            Some(op) => Err(ConfigError::new(
                format!("{path}.op"),
                format!("{op:?}: use one of {}", ops.join(", ")),
            )),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssociationRule {
    pub sources: Vec<AssociationSource>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssociationSource {
    /// `connection` or `resource_attribute`.
    pub from: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Extract {
    pub metadata: Vec<String>,
    pub labels: Vec<FieldExtract>,
    pub annotations: Vec<FieldExtract>,
    /// Derive `k8s.deployment.name` from the ReplicaSet name instead of watching ReplicaSets.
    pub deployment_name_from_replicaset: bool,
    pub otel_annotations: bool,
}

impl Default for Extract {
    fn default() -> Self {
        Self {
            metadata: DEFAULT_METADATA.iter().map(|s| s.to_string()).collect(),
            labels: Vec::new(),
            annotations: Vec::new(),
            deployment_name_from_replicaset: false,
            otel_annotations: false,
        }
    }
}

impl Extract {
    pub fn wants(&self, key: &str) -> bool {
        self.metadata.iter().any(|m| m == key)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldExtract {
    pub tag_name: Option<String>,
    pub key: Option<String>,
    pub key_regex: Option<String>,
    #[serde(default)]
    pub from: FieldFrom,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldFrom {
    #[default]
    Pod,
    Namespace,
    Node,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Exclude {
    /// Pods whose name matches one of these regexes are never associated.
    pub pods: Vec<ExcludePod>,
}

impl Default for Exclude {
    fn default() -> Self {
        Self {
            pods: vec![
                ExcludePod {
                    name: "jaeger-agent".into(),
                },
                ExcludePod {
                    name: "jaeger-collector".into(),
                },
            ],
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExcludePod {
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(fields: &[(&str, &str)], labels: &[(&str, &str)]) -> K8sAttributesConfig {
        let f = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(k, op)| SelectorFilter {
                    key: k.to_string(),
                    value: "v".into(),
                    op: Some(op.to_string()),
                })
                .collect()
        };
        K8sAttributesConfig {
            filter: Filter {
                fields: f(fields),
                labels: f(labels),
                ..Filter::default()
            },
            ..K8sAttributesConfig::default()
        }
    }

    #[test]
    fn filter_operators_are_checked_where_the_collector_would_reject_them() {
        let ok = filter(
            &[("metadata.name", "not-equals")],
            &[("app", "exists"), ("canary", "does-not-exist")],
        );
        assert!(ok.validate("processors.k8sattributes").is_ok());

        let err = filter(&[("metadata.name", "exists")], &[])
            .validate("processors.k8sattributes")
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("processors.k8sattributes.filter.fields[0].op"),
            "{err}"
        );
        let err = filter(&[], &[("app", "in")]).validate("p").unwrap_err();
        assert!(
            err.to_string().starts_with("p.filter.labels[0].op"),
            "{err}"
        );
    }
}
