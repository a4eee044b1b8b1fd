//! The kubelet's `GET /pods` (a core/v1 PodList), reduced to what the receiver labels and divides
//! with: container ids, volume types and container resource limits/requests, indexed by pod UID.

use std::collections::HashMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

/// What `/pods` says about the pods on this node, by pod UID.
#[derive(Debug, Clone, Default)]
pub struct PodMetadata {
    pods: HashMap<String, PodInfo>,
}

#[derive(Debug, Clone, Default)]
pub struct PodInfo {
    /// Container name → container id without the runtime prefix (`containerd://`).
    pub container_ids: HashMap<String, String>,
    /// Volume name → its type, as upstream spells it.
    pub volumes: HashMap<String, VolumeSource>,
    /// Container name → its resources.
    pub resources: HashMap<String, ContainerResources>,
}

/// A volume's type and, for a claim, the claim's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSource {
    pub ty: &'static str,
    pub claim_name: Option<String>,
}

/// A container's limits and requests: CPU in cores, memory in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ContainerResources {
    pub cpu_limit: Option<f64>,
    pub cpu_request: Option<f64>,
    pub memory_limit: Option<f64>,
    pub memory_request: Option<f64>,
}

impl PodMetadata {
    /// Parses a `/pods` body.
    pub fn from_slice(body: &[u8]) -> Result<Self, serde_json::Error> {
        let list: PodList = serde_json::from_slice(body)?;
        let pods = list
            .items
            .into_iter()
            .map(|p| (p.metadata.uid.clone(), PodInfo::from(p)))
            .collect();
        Ok(Self { pods })
    }

    pub fn pod(&self, uid: &str) -> Option<&PodInfo> {
        self.pods.get(uid)
    }
}

impl From<Pod> for PodInfo {
    fn from(p: Pod) -> Self {
        let mut info = PodInfo::default();
        if let Some(status) = p.status {
            let statuses = status
                .container_statuses
                .into_iter()
                .chain(status.init_container_statuses)
                .chain(status.ephemeral_container_statuses);
            for s in statuses {
                if let Some(id) = s.container_id.filter(|id| !id.is_empty()) {
                    let id = match id.split_once("://") {
                        Some((_, bare)) => bare.to_string(),
                        None => id,
                    };
                    info.container_ids.insert(s.name, id);
                }
            }
        }
        if let Some(spec) = p.spec {
            for c in spec.containers {
                let r = c.resources.unwrap_or_default();
                let res = ContainerResources {
                    cpu_limit: r.limits.cpu.and_then(|q| q.0),
                    cpu_request: r.requests.cpu.and_then(|q| q.0),
                    memory_limit: r.limits.memory.and_then(|q| q.0),
                    memory_request: r.requests.memory.and_then(|q| q.0),
                };
                info.resources.insert(c.name, res);
            }
            for v in spec.volumes {
                if let Some(source) = v.source() {
                    info.volumes.insert(v.name, source);
                }
            }
        }
        info
    }
}

#[derive(Deserialize)]
struct PodList {
    #[serde(default, deserialize_with = "de_list")]
    items: Vec<Pod>,
}

#[derive(Deserialize)]
struct Pod {
    metadata: ObjectMeta,
    spec: Option<PodSpec>,
    status: Option<PodStatus>,
}

#[derive(Deserialize)]
struct ObjectMeta {
    #[serde(default)]
    uid: String,
}

#[derive(Deserialize)]
struct PodSpec {
    #[serde(default, deserialize_with = "de_list")]
    containers: Vec<Container>,
    #[serde(default, deserialize_with = "de_list")]
    volumes: Vec<Volume>,
}

#[derive(Deserialize)]
struct Container {
    name: String,
    resources: Option<Resources>,
}

#[derive(Default, Deserialize)]
struct Resources {
    #[serde(default)]
    limits: ResourceList,
    #[serde(default)]
    requests: ResourceList,
}

#[derive(Default, Deserialize)]
struct ResourceList {
    cpu: Option<Quantity>,
    memory: Option<Quantity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Volume {
    name: String,
    config_map: Option<IgnoredAny>,
    #[serde(rename = "downwardAPI")]
    downward_api: Option<IgnoredAny>,
    empty_dir: Option<IgnoredAny>,
    secret: Option<IgnoredAny>,
    persistent_volume_claim: Option<ClaimSource>,
    host_path: Option<IgnoredAny>,
    aws_elastic_block_store: Option<IgnoredAny>,
    gce_persistent_disk: Option<IgnoredAny>,
    glusterfs: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClaimSource {
    #[serde(default)]
    claim_name: String,
}

impl Volume {
    /// The upstream receiver's `k8s.volume.type` values; other sources get no type.
    fn source(&self) -> Option<VolumeSource> {
        let ty = if self.config_map.is_some() {
            "configMap"
        } else if self.downward_api.is_some() {
            "downwardAPI"
        } else if self.empty_dir.is_some() {
            "emptyDir"
        } else if self.secret.is_some() {
            "secret"
        } else if let Some(claim) = &self.persistent_volume_claim {
            return Some(VolumeSource {
                ty: "persistentVolumeClaim",
                claim_name: Some(claim.claim_name.clone()),
            });
        } else if self.host_path.is_some() {
            "hostPath"
        } else if self.aws_elastic_block_store.is_some() {
            "awsElasticBlockStore"
        } else if self.gce_persistent_disk.is_some() {
            "gcePersistentDisk"
        } else if self.glusterfs.is_some() {
            "glusterfs"
        } else {
            return None;
        };
        Some(VolumeSource {
            ty,
            claim_name: None,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodStatus {
    #[serde(default, deserialize_with = "de_list")]
    container_statuses: Vec<ContainerStatus>,
    #[serde(default, deserialize_with = "de_list")]
    init_container_statuses: Vec<ContainerStatus>,
    #[serde(default, deserialize_with = "de_list")]
    ephemeral_container_statuses: Vec<ContainerStatus>,
}

#[derive(Deserialize)]
struct ContainerStatus {
    name: String,
    #[serde(rename = "containerID")]
    container_id: Option<String>,
}

/// A resource quantity (`500m`, `128Mi`, `1.5`, `2e3`) as a number; unparseable text is `None`.
struct Quantity(Option<f64>);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(f64),
        }
        Ok(Quantity(match Raw::deserialize(d)? {
            Raw::Text(s) => parse_quantity(&s),
            Raw::Number(n) => Some(n),
        }))
    }
}

/// Parses a Kubernetes quantity: a decimal number, then a binary (`Ki`…`Ei`) or decimal
/// (`n`, `u`, `m`, `k`, `M`…`E`) suffix or an exponent (`e3`).
pub fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(num_len);
    let value: f64 = num.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => 10f64.powi(exp[1..].parse().ok()?),
        _ => return None,
    };
    Some(value * scale)
}

fn de_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("1.5"), Some(1.5));
        assert_eq!(parse_quantity("128Mi"), Some(134_217_728.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("2e3"), Some(2000.0));
        assert_eq!(parse_quantity("1E"), Some(1e18));
        assert_eq!(parse_quantity("12Q"), None);
        assert_eq!(parse_quantity(""), None);
    }

    #[test]
    fn indexes_ids_volumes_and_resources() {
        let m = PodMetadata::from_slice(
            br#"{"kind":"PodList","items":[{"metadata":{"uid":"u1","name":"p"},
              "spec":{"containers":[{"name":"app","resources":{"limits":{"cpu":"500m","memory":"1Gi"},"requests":{"cpu":"250m"}}},
                                    {"name":"side"}],
                      "volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"pvc-1"}},
                                 {"name":"cfg","configMap":{"name":"c"}},
                                 {"name":"odd","csi":{"driver":"x"}}]},
              "status":{"containerStatuses":[{"name":"app","containerID":"containerd://abc"},
                                             {"name":"side"}]}}]}"#,
        )
        .unwrap();
        let p = m.pod("u1").unwrap();
        assert_eq!(p.container_ids.get("app").map(String::as_str), Some("abc"));
        assert!(!p.container_ids.contains_key("side"));
        assert_eq!(
            p.volumes["data"],
            VolumeSource {
                ty: "persistentVolumeClaim",
                claim_name: Some("pvc-1".into())
            }
        );
        assert_eq!(p.volumes["cfg"].ty, "configMap");
        assert!(!p.volumes.contains_key("odd"));
        assert_eq!(
            p.resources["app"],
            ContainerResources {
                cpu_limit: Some(0.5),
                cpu_request: Some(0.25),
                memory_limit: Some(1_073_741_824.0),
                memory_request: None,
            }
        );
        assert_eq!(p.resources["side"], ContainerResources::default());
    }
}
