//! Config resolution: the serde config becomes compiled rules, selectors and a plan of what to
//! watch. Pure, so every decision about what the processor asks of the API server is testable.

use std::time::Duration;

use kotel_config::processors::k8sattributes::{FieldFrom, K8sAttributesConfig, SelectorFilter};
use regex::Regex;

use crate::association::Association;
use crate::error::Error;
use crate::extract::Extractor;

/// How the processor reaches the API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// In-cluster config: the pod's service account.
    ServiceAccount,
    /// `KUBECONFIG`, else `~/.kube/config`.
    KubeConfig,
    /// Whatever the environment offers (kubeconfig, then in-cluster), upstream's `none`.
    None,
}

/// Which objects of a kind are watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Off,
    /// One object, by `metadata.name` field selector.
    One(String),
    All,
}

/// What the processor watches besides pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchPlan {
    /// Namespaces, for their labels and annotations.
    pub namespaces: Scope,
    /// `kube-system` alone, for `k8s.cluster.uid`, when namespaces are not watched anyway.
    pub kube_system: bool,
    /// Nodes, for their labels, annotations and uid.
    pub nodes: Scope,
    /// ReplicaSets of cached pods are fetched (metadata only) for the deployment.
    pub replicasets: bool,
}

/// The resolved processor settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The component id, for messages and error paths.
    pub id: String,
    pub passthrough: bool,
    pub auth: Auth,
    /// The node whose pods are watched; `None` watches the whole cluster (gateway).
    pub node: Option<String>,
    pub namespace: Option<String>,
    pub field_selector: Option<String>,
    pub label_selector: Option<String>,
    pub association: Association,
    pub extractor: Extractor,
    pub exclude: Vec<Regex>,
    pub wait_for_metadata: Option<Duration>,
    pub watch: WatchPlan,
}

impl Settings {
    /// Resolves `config` of component `id`; `env` reads environment variables.
    pub fn resolve(
        id: &str,
        config: &K8sAttributesConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let path = format!("processors.{id}");
        let auth = match config.auth_type.as_str() {
            "serviceAccount" => Auth::ServiceAccount,
            "kubeConfig" => Auth::KubeConfig,
            "none" => Auth::None,
            other => {
                return Err(Error::InvalidConfig {
                    path: format!("{path}.auth_type"),
                    reason: format!("{other:?}: use serviceAccount or kubeConfig"),
                });
            }
        };
        let association = Association::new(&config.pod_association, &path)?;
        let extractor = Extractor::new(config, &path)?;
        let exclude = config
            .exclude
            .pods
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Regex::new(&p.name).map_err(|source| Error::InvalidRegex {
                    path: format!("{path}.exclude.pods[{i}].name"),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let filter = &config.filter;
        let node = match (&filter.node_from_env_var, &filter.node) {
            // Passthrough makes no API calls, so it needs no node either.
            _ if config.passthrough => None,
            (Some(var), _) if !var.is_empty() => match env(var).filter(|v| !v.is_empty()) {
                Some(node) => Some(node),
                None => {
                    return Err(Error::NodeEnvUnset {
                        path,
                        var: var.clone(),
                    });
                }
            },
            (_, Some(node)) if !node.is_empty() => Some(node.clone()),
            _ => None,
        };
        let namespace = filter.namespace.clone().filter(|n| !n.is_empty());

        let mut fields = Vec::new();
        if let Some(node) = &node {
            fields.push(format!("spec.nodeName={node}"));
        }
        for (i, f) in filter.fields.iter().enumerate() {
            fields.push(selector(f, false).map_err(|reason| Error::InvalidConfig {
                path: format!("{path}.filter.fields[{i}]"),
                reason,
            })?);
        }
        let labels = filter
            .labels
            .iter()
            .enumerate()
            .map(|(i, f)| {
                selector(f, true).map_err(|reason| Error::InvalidConfig {
                    path: format!("{path}.filter.labels[{i}]"),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let md = &extractor.metadata;
        let namespaces = match (&namespace, extractor.reads_from(FieldFrom::Namespace)) {
            (_, false) => Scope::Off,
            (Some(ns), true) => Scope::One(ns.clone()),
            (None, true) => Scope::All,
        };
        let kube_system = md.cluster_uid
            && match &namespaces {
                Scope::All => false,
                Scope::One(ns) => ns != "kube-system",
                Scope::Off => true,
            };
        let nodes = match (&node, md.node_uid || extractor.reads_from(FieldFrom::Node)) {
            (_, false) => Scope::Off,
            (Some(n), true) => Scope::One(n.clone()),
            (None, true) => Scope::All,
        };
        let watch = WatchPlan {
            namespaces,
            kube_system,
            nodes,
            replicasets: extractor.needs_replicasets(),
        };

        Ok(Self {
            id: id.to_string(),
            passthrough: config.passthrough,
            auth,
            node,
            namespace,
            field_selector: (!fields.is_empty()).then(|| fields.join(",")),
            label_selector: (!labels.is_empty()).then(|| labels.join(",")),
            association,
            extractor,
            exclude,
            wait_for_metadata: config
                .wait_for_metadata
                .then_some(config.wait_for_metadata_timeout),
            watch,
        })
    }

    /// Whether cached pods keep their containers.
    pub fn keeps_containers(&self) -> bool {
        self.extractor.metadata.wants_containers() || self.association.uses_container_id()
    }
}

/// One filter as selector syntax; labels also take `exists` and `does-not-exist`.
fn selector(f: &SelectorFilter, label: bool) -> Result<String, String> {
    if f.key.is_empty() {
        return Err("key is empty".into());
    }
    let op = f.op.as_deref().unwrap_or("equals");
    Ok(match op {
        "equals" | "" => format!("{}={}", f.key, f.value),
        "not-equals" => format!("{}!={}", f.key, f.value),
        "exists" if label => f.key.clone(),
        "does-not-exist" if label => format!("!{}", f.key),
        other if label => {
            return Err(format!(
                "op {other:?}: use equals, not-equals, exists or does-not-exist"
            ));
        }
        other => return Err(format!("op {other:?}: use equals or not-equals")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> K8sAttributesConfig {
        serde_json::from_str(json).unwrap()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn node_from_env_var_scopes_the_pod_watch() {
        let c = config(r#"{"filter":{"node_from_env_var":"K8S_NODE_NAME"}}"#);
        let s = Settings::resolve("k8sattributes", &c, |v| {
            (v == "K8S_NODE_NAME").then(|| "node-7".to_string())
        })
        .unwrap();
        assert_eq!(s.node.as_deref(), Some("node-7"));
        assert_eq!(s.field_selector.as_deref(), Some("spec.nodeName=node-7"));
    }

    #[test]
    fn an_unset_node_env_var_is_an_error_not_a_cluster_wide_watch() {
        let c = config(r#"{"filter":{"node_from_env_var":"K8S_NODE_NAME"}}"#);
        let err = Settings::resolve("k8sattributes", &c, no_env).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("K8S_NODE_NAME"), "{msg}");
        assert!(msg.contains("spec.nodeName"), "{msg}");
    }

    #[test]
    fn filters_become_selectors() {
        let c = config(
            r#"{"filter":{"node":"n1","namespace":"shop",
                "fields":[{"key":"metadata.name","value":"x","op":"not-equals"}],
                "labels":[{"key":"app","value":"web"},{"key":"tier","op":"exists"},
                          {"key":"canary","op":"does-not-exist"}]}}"#,
        );
        let s = Settings::resolve("k", &c, no_env).unwrap();
        assert_eq!(
            s.field_selector.as_deref(),
            Some("spec.nodeName=n1,metadata.name!=x")
        );
        assert_eq!(s.label_selector.as_deref(), Some("app=web,tier,!canary"));
        assert_eq!(s.namespace.as_deref(), Some("shop"));

        let c = config(r#"{"filter":{"fields":[{"key":"a","op":"exists"}]}}"#);
        assert!(Settings::resolve("k", &c, no_env).is_err());
        let c = config(r#"{"filter":{"labels":[{"key":"a","op":"in"}]}}"#);
        assert!(Settings::resolve("k", &c, no_env).is_err());
    }

    #[test]
    fn defaults_watch_pods_and_fetch_replicasets_only() {
        let s = Settings::resolve("k", &K8sAttributesConfig::default(), no_env).unwrap();
        assert_eq!(
            s.watch,
            WatchPlan {
                namespaces: Scope::Off,
                kube_system: false,
                nodes: Scope::Off,
                replicasets: true,
            }
        );
        assert!(!s.keeps_containers());
        assert_eq!(s.exclude.len(), 2);
    }

    #[test]
    fn namespaces_and_nodes_are_watched_only_when_extraction_reads_them() {
        let c = config(
            r#"{"filter":{"node":"n1"},
                "extract":{"metadata":["k8s.cluster.uid","k8s.deployment.name"],
                           "deployment_name_from_replicaset":true,
                           "labels":[{"key":"zone","from":"node"},{"key":"env","from":"namespace"}]}}"#,
        );
        let s = Settings::resolve("k", &c, no_env).unwrap();
        assert_eq!(
            s.watch,
            WatchPlan {
                namespaces: Scope::All,
                kube_system: false,
                nodes: Scope::One("n1".into()),
                replicasets: false,
            }
        );

        let c = config(r#"{"extract":{"metadata":["k8s.cluster.uid"]}}"#);
        let s = Settings::resolve("k", &c, no_env).unwrap();
        assert_eq!(s.watch.namespaces, Scope::Off);
        assert!(s.watch.kube_system);
    }

    #[test]
    fn bad_regexes_name_their_path() {
        let c = config(r#"{"exclude":{"pods":[{"name":"("}]}}"#);
        let err = Settings::resolve("k8sattributes/a", &c, no_env).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("processors.k8sattributes/a.exclude.pods[0].name"),
            "{err}"
        );
        let c = config(r#"{"extract":{"labels":[{"key_regex":"("}]}}"#);
        let err = Settings::resolve("k", &c, no_env).unwrap_err();
        assert!(err.to_string().contains("extract.labels[0]"), "{err}");
    }

    #[test]
    fn container_id_association_keeps_containers() {
        let c = config(
            r#"{"extract":{"metadata":[]},
                "pod_association":[{"sources":[{"from":"resource_attribute","name":"container.id"}]}]}"#,
        );
        assert!(
            Settings::resolve("k", &c, no_env)
                .unwrap()
                .keeps_containers()
        );
    }
}
