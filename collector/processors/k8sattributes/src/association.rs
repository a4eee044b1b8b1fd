//! Association: which pod a resource came from, by `pod_association` rules in order.
//!
//! The first rule whose sources are all present decides; if its values match no pod, the
//! resource stays unassociated (later rules are not tried, as upstream). With no rules the legacy
//! order applies: `k8s.pod.ip`, `ip`, the connection's peer, then `host.name` if it is an IP.

use std::net::IpAddr;
use std::sync::Arc;

use kotel_config::processors::k8sattributes::AssociationRule;
use kotel_pipeline::proto::common::v1::KeyValue;

use crate::attrs::{self, CONTAINER_ID, HOST_NAME, K8S_NAMESPACE_NAME, K8S_POD_IP, K8S_POD_NAME};
use crate::attrs::{K8S_POD_UID, kv};
use crate::error::Error;
use crate::extract::Extractor;
use crate::index::View;
use crate::model::{PodMeta, strip_runtime};

/// Where one value of an identifier comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The peer address of the connection the data arrived on.
    Connection,
    PodIp,
    PodUid,
    PodName,
    NamespaceName,
    ContainerId,
    /// `host.name`, used only when it parses as an IP address.
    HostName,
    /// Any other resource attribute, compared with what extraction would add for the pod.
    Other(String),
}

impl Source {
    fn from_attribute(name: &str) -> Self {
        match name {
            K8S_POD_IP => Self::PodIp,
            K8S_POD_UID => Self::PodUid,
            K8S_POD_NAME => Self::PodName,
            K8S_NAMESPACE_NAME => Self::NamespaceName,
            CONTAINER_ID => Self::ContainerId,
            HOST_NAME => Self::HostName,
            other => Self::Other(other.to_string()),
        }
    }

    fn is_ip(&self) -> bool {
        matches!(self, Self::Connection | Self::PodIp | Self::HostName)
    }
}

/// One value of an identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Ip(IpAddr),
    /// An IP-valued source whose value is not an IP: it matches nothing.
    BadIp,
    Text(&'a str),
}

/// The values of the rule that decides, borrowed from the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier<'a> {
    pub parts: Vec<(Source, Value<'a>)>,
}

impl Identifier<'_> {
    /// The connection's IP when this identifier uses it: the processor then sets `k8s.pod.ip`.
    pub fn connection_ip(&self) -> Option<IpAddr> {
        self.parts.iter().find_map(|(s, v)| match (s, v) {
            (Source::Connection, Value::Ip(ip)) => Some(*ip),
            _ => None,
        })
    }
}

/// The compiled `pod_association` section.
#[derive(Debug, Clone, Default)]
pub struct Association {
    rules: Vec<Vec<Source>>,
}

impl Association {
    pub fn new(rules: &[AssociationRule], path: &str) -> Result<Self, Error> {
        let mut out = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            let mut sources = Vec::with_capacity(rule.sources.len());
            for (j, s) in rule.sources.iter().enumerate() {
                sources.push(match (s.from.as_str(), s.name.as_deref()) {
                    ("connection", _) => Source::Connection,
                    ("resource_attribute", Some(name)) if !name.is_empty() => {
                        Source::from_attribute(name)
                    }
                    _ => {
                        return Err(Error::InvalidConfig {
                            path: format!("{path}.pod_association[{i}].sources[{j}]"),
                            reason: "use from: connection, or from: resource_attribute with a name"
                                .into(),
                        });
                    }
                });
            }
            out.push(sources);
        }
        Ok(Self { rules: out })
    }

    /// Whether some rule matches on `container.id` (the cache then keeps container IDs).
    pub fn uses_container_id(&self) -> bool {
        self.rules
            .iter()
            .flatten()
            .any(|s| *s == Source::ContainerId)
    }

    /// The identifier of the first rule whose sources are all present.
    pub fn identify<'a>(
        &self,
        attributes: &'a [KeyValue],
        peer: Option<IpAddr>,
    ) -> Option<Identifier<'a>> {
        if self.rules.is_empty() {
            return legacy(attributes, peer);
        }
        'rules: for rule in &self.rules {
            let mut parts = Vec::with_capacity(rule.len());
            for source in rule {
                let value = match source {
                    Source::Connection => match peer {
                        Some(ip) => Value::Ip(ip),
                        None => continue 'rules,
                    },
                    Source::HostName => match attrs::get(attributes, HOST_NAME)
                        .and_then(|h| h.parse::<IpAddr>().ok())
                    {
                        Some(ip) => Value::Ip(ip),
                        None => continue 'rules,
                    },
                    other => {
                        let Some(text) = attrs::get(attributes, attribute_name(other)) else {
                            continue 'rules;
                        };
                        if other.is_ip() {
                            text.parse().map_or(Value::BadIp, Value::Ip)
                        } else {
                            Value::Text(text)
                        }
                    }
                };
                parts.push((source.clone(), value));
            }
            return Some(Identifier { parts });
        }
        None
    }
}

fn attribute_name(source: &Source) -> &str {
    match source {
        Source::Connection => "",
        Source::PodIp => K8S_POD_IP,
        Source::PodUid => K8S_POD_UID,
        Source::PodName => K8S_POD_NAME,
        Source::NamespaceName => K8S_NAMESPACE_NAME,
        Source::ContainerId => CONTAINER_ID,
        Source::HostName => HOST_NAME,
        Source::Other(name) => name,
    }
}

/// Upstream's order when no rules are configured; whatever IP it finds counts as the
/// connection's, so `k8s.pod.ip` is set from it.
fn legacy(attributes: &[KeyValue], peer: Option<IpAddr>) -> Option<Identifier<'_>> {
    let from_attr = |key| attrs::get(attributes, key).and_then(|v| v.parse::<IpAddr>().ok());
    let ip = from_attr(K8S_POD_IP)
        .or_else(|| from_attr("ip"))
        .or(peer)
        .or_else(|| from_attr(HOST_NAME))?;
    Some(Identifier {
        parts: vec![(Source::Connection, Value::Ip(ip))],
    })
}

/// Whether `pod` carries this value.
fn matches(view: &View<'_>, extractor: &Extractor, pod: &PodMeta, part: &(Source, Value)) -> bool {
    match part {
        (_, Value::BadIp) => false,
        (_, Value::Ip(ip)) => pod.ip == Some(*ip) && !pod.host_network,
        (Source::PodUid, Value::Text(v)) => &*pod.uid == *v,
        (Source::PodName, Value::Text(v)) => &*pod.name == *v,
        (Source::NamespaceName, Value::Text(v)) => &*pod.namespace == *v,
        (Source::ContainerId, Value::Text(v)) => pod.container_by_id(strip_runtime(v)).is_some(),
        (Source::Other(name), Value::Text(v)) => {
            let mut out = Vec::new();
            extractor.pod(view, pod, &mut out);
            attrs::get(&out, name) == Some(v)
        }
        (_, Value::Text(_)) => false,
    }
}

/// Finds the pod an identifier names.
pub fn find(view: &View<'_>, extractor: &Extractor, id: &Identifier<'_>) -> Option<Arc<PodMeta>> {
    let text = |want: Source| {
        id.parts.iter().find_map(|(s, v)| match v {
            Value::Text(t) if *s == want => Some(*t),
            _ => None,
        })
    };
    let ip = id.parts.iter().find_map(|(_, v)| match v {
        Value::Ip(ip) => Some(*ip),
        _ => None,
    });
    // The most selective key picks a candidate; every part must then agree with it.
    let candidate = if let Some(uid) = text(Source::PodUid) {
        view.by_uid(uid)
    } else if let Some(cid) = text(Source::ContainerId) {
        view.by_container_id(strip_runtime(cid))
    } else if let Some(ip) = ip {
        view.by_ip(ip)
    } else if let (Some(ns), Some(name)) = (text(Source::NamespaceName), text(Source::PodName)) {
        view.by_name(ns, name)
    } else if id.parts.iter().any(|(_, v)| *v == Value::BadIp) {
        None
    } else {
        // Rules on other attributes only: few pods per node, so a scan is cheap.
        return view
            .pods()
            .find(|p| {
                id.parts
                    .iter()
                    .all(|part| matches(view, extractor, p, part))
            })
            .cloned();
    };
    let pod = candidate?;
    id.parts
        .iter()
        .all(|part| matches(view, extractor, pod, part))
        .then(|| pod.clone())
}

/// A resource attribute list for tests and benches.
pub fn resource(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs.iter().map(|(k, v)| kv(k, v)).collect()
}

#[cfg(test)]
mod tests {
    use kotel_config::processors::k8sattributes::{AssociationSource, K8sAttributesConfig};

    use super::*;
    use crate::index::PodIndex;
    use crate::index::tests::pod;
    use crate::model::Container;

    fn rules(rules: &[&[(&str, Option<&str>)]]) -> Association {
        let rules: Vec<AssociationRule> = rules
            .iter()
            .map(|r| AssociationRule {
                sources: r
                    .iter()
                    .map(|(from, name)| AssociationSource {
                        from: from.to_string(),
                        name: name.map(str::to_string),
                    })
                    .collect(),
            })
            .collect();
        Association::new(&rules, "p").unwrap()
    }

    fn index() -> PodIndex {
        let idx = PodIndex::default();
        idx.apply_pod(pod("u1", "web", "10.0.0.1", 1));
        let mut p2 = pod("u2", "db", "10.0.0.2", 1);
        p2.containers = vec![Container {
            name: "postgres".into(),
            ids: vec![(0, "abc123".into())].into(),
            ..Default::default()
        }]
        .into();
        idx.apply_pod(p2);
        let mut host = pod("u3", "node-exporter", "192.168.0.10", 1);
        host.host_network = true;
        idx.apply_pod(host);
        idx
    }

    fn lookup(
        a: &Association,
        idx: &PodIndex,
        res: &[KeyValue],
        peer: Option<&str>,
    ) -> Option<String> {
        let x = Extractor::new(&K8sAttributesConfig::default(), "p").unwrap();
        let id = a.identify(res, peer.map(|p| p.parse().unwrap()))?;
        let view = idx.read();
        find(&view, &x, &id).map(|p| p.uid.to_string())
    }

    #[test]
    fn connection_rule_matches_the_peer_ip() {
        let a = rules(&[&[("connection", None)]]);
        let idx = index();
        assert_eq!(
            lookup(&a, &idx, &[], Some("10.0.0.1")).as_deref(),
            Some("u1")
        );
        assert_eq!(lookup(&a, &idx, &[], Some("10.9.9.9")), None);
        assert_eq!(lookup(&a, &idx, &[], None), None);
    }

    #[test]
    fn host_network_pods_never_match_by_ip() {
        let a = rules(&[
            &[("connection", None)],
            &[("resource_attribute", Some("k8s.pod.ip"))],
        ]);
        let idx = index();
        assert_eq!(lookup(&a, &idx, &[], Some("192.168.0.10")), None);
        let res = resource(&[("k8s.pod.ip", "192.168.0.10")]);
        assert_eq!(lookup(&a, &idx, &res, None), None);
        // The uid still finds it.
        let a = rules(&[&[("resource_attribute", Some("k8s.pod.uid"))]]);
        let res = resource(&[("k8s.pod.uid", "u3")]);
        assert_eq!(lookup(&a, &idx, &res, None).as_deref(), Some("u3"));
    }

    #[test]
    fn rules_apply_in_order_and_the_first_complete_one_decides() {
        let a = rules(&[
            &[("resource_attribute", Some("k8s.pod.uid"))],
            &[("resource_attribute", Some("k8s.pod.ip"))],
            &[("connection", None)],
        ]);
        let idx = index();
        // uid wins over the connection.
        let res = resource(&[("k8s.pod.uid", "u2")]);
        assert_eq!(
            lookup(&a, &idx, &res, Some("10.0.0.1")).as_deref(),
            Some("u2")
        );
        // No uid: the pod IP attribute decides.
        let res = resource(&[("k8s.pod.ip", "10.0.0.2")]);
        assert_eq!(
            lookup(&a, &idx, &res, Some("10.0.0.1")).as_deref(),
            Some("u2")
        );
        // A present but unknown uid ends association: later rules are not tried.
        let res = resource(&[("k8s.pod.uid", "nope")]);
        assert_eq!(lookup(&a, &idx, &res, Some("10.0.0.1")), None);
        // Nothing but the connection.
        assert_eq!(
            lookup(&a, &idx, &[], Some("10.0.0.1")).as_deref(),
            Some("u1")
        );
    }

    #[test]
    fn all_sources_of_a_rule_must_match() {
        let a = rules(&[&[
            ("resource_attribute", Some("k8s.pod.name")),
            ("resource_attribute", Some("k8s.namespace.name")),
        ]]);
        let idx = index();
        let res = resource(&[("k8s.pod.name", "web"), ("k8s.namespace.name", "ns")]);
        assert_eq!(lookup(&a, &idx, &res, None).as_deref(), Some("u1"));
        let res = resource(&[("k8s.pod.name", "web"), ("k8s.namespace.name", "other")]);
        assert_eq!(lookup(&a, &idx, &res, None), None);
        // Only one of the two present: the rule does not apply.
        let res = resource(&[("k8s.pod.name", "web")]);
        assert!(a.identify(&res, None).is_none());

        let a = rules(&[&[
            ("resource_attribute", Some("k8s.pod.uid")),
            ("connection", None),
        ]]);
        let res = resource(&[("k8s.pod.uid", "u1")]);
        assert_eq!(
            lookup(&a, &idx, &res, Some("10.0.0.1")).as_deref(),
            Some("u1")
        );
        assert_eq!(lookup(&a, &idx, &res, Some("10.0.0.2")), None);
    }

    #[test]
    fn container_id_rule_strips_the_runtime_prefix() {
        let a = rules(&[&[("resource_attribute", Some("container.id"))]]);
        assert!(a.uses_container_id());
        let idx = index();
        let res = resource(&[("container.id", "abc123")]);
        assert_eq!(lookup(&a, &idx, &res, None).as_deref(), Some("u2"));
        let res = resource(&[("container.id", "containerd://abc123")]);
        assert_eq!(lookup(&a, &idx, &res, None).as_deref(), Some("u2"));
    }

    #[test]
    fn host_name_is_used_only_when_it_is_an_ip() {
        let a = rules(&[
            &[("resource_attribute", Some("host.name"))],
            &[("connection", None)],
        ]);
        let idx = index();
        let res = resource(&[("host.name", "10.0.0.2")]);
        assert_eq!(
            lookup(&a, &idx, &res, Some("10.0.0.1")).as_deref(),
            Some("u2")
        );
        let res = resource(&[("host.name", "my-laptop")]);
        assert_eq!(
            lookup(&a, &idx, &res, Some("10.0.0.1")).as_deref(),
            Some("u1")
        );
    }

    #[test]
    fn an_unparsable_pod_ip_matches_nothing() {
        let a = rules(&[
            &[("resource_attribute", Some("k8s.pod.ip"))],
            &[("connection", None)],
        ]);
        let idx = index();
        let res = resource(&[("k8s.pod.ip", "not-an-ip")]);
        assert_eq!(lookup(&a, &idx, &res, Some("10.0.0.1")), None);
    }

    #[test]
    fn legacy_order_without_rules() {
        let a = Association::default();
        let idx = index();
        let res = resource(&[("k8s.pod.ip", "10.0.0.2")]);
        assert_eq!(
            lookup(&a, &idx, &res, Some("10.0.0.1")).as_deref(),
            Some("u2")
        );
        let res = resource(&[("ip", "10.0.0.2")]);
        assert_eq!(
            lookup(&a, &idx, &res, Some("10.0.0.1")).as_deref(),
            Some("u2")
        );
        assert_eq!(
            lookup(&a, &idx, &[], Some("10.0.0.1")).as_deref(),
            Some("u1")
        );
        let res = resource(&[("host.name", "10.0.0.2")]);
        assert_eq!(lookup(&a, &idx, &res, None).as_deref(), Some("u2"));
        let id = a.identify(&[], Some("10.0.0.1".parse().unwrap())).unwrap();
        assert_eq!(id.connection_ip(), Some("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn other_attributes_compare_with_extracted_values() {
        let a = rules(&[&[
            ("resource_attribute", Some("k8s.pod.name")),
            ("resource_attribute", Some("k8s.node.name")),
        ]]);
        let idx = index();
        let res = resource(&[("k8s.pod.name", "db"), ("k8s.node.name", "node-a")]);
        assert_eq!(lookup(&a, &idx, &res, None).as_deref(), Some("u2"));
        let res = resource(&[("k8s.pod.name", "db"), ("k8s.node.name", "node-b")]);
        assert_eq!(lookup(&a, &idx, &res, None), None);
    }

    #[test]
    fn deleted_pods_still_match_in_their_grace_period() {
        let a = rules(&[&[("connection", None)]]);
        let idx = index();
        idx.delete_pod("u1", std::time::Instant::now());
        assert_eq!(
            lookup(&a, &idx, &[], Some("10.0.0.1")).as_deref(),
            Some("u1")
        );
    }
}
