//! The kubelet's `stats/v1alpha1` Summary (`GET /stats/summary`), as far as the receiver reads it.
//!
//! Every numeric field is optional, as in the kubelet's Go types (`*uint64` with `omitempty`):
//! an absent field becomes no data point, never a zero. Lists may be absent or `null`. Fields the
//! receiver does not map are ignored, so newer kubelets with more fields parse unchanged.

use serde::{Deserialize, Deserializer};

use crate::time::{Timestamp, de_time};

/// The whole document.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    #[serde(default)]
    pub node: NodeStats,
    #[serde(default, deserialize_with = "de_list")]
    pub pods: Vec<PodStats>,
}

impl Summary {
    /// Parses a `/stats/summary` body.
    pub fn from_slice(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    #[serde(default)]
    pub node_name: String,
    #[serde(default, deserialize_with = "de_list")]
    pub system_containers: Vec<ContainerStats>,
    #[serde(default, deserialize_with = "de_time")]
    pub start_time: Option<Timestamp>,
    pub cpu: Option<CpuStats>,
    pub memory: Option<MemoryStats>,
    pub network: Option<NetworkStats>,
    pub fs: Option<FsStats>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStats {
    pub pod_ref: PodReference,
    #[serde(default, deserialize_with = "de_time")]
    pub start_time: Option<Timestamp>,
    #[serde(default, deserialize_with = "de_list")]
    pub containers: Vec<ContainerStats>,
    pub cpu: Option<CpuStats>,
    pub memory: Option<MemoryStats>,
    pub network: Option<NetworkStats>,
    #[serde(default, rename = "volume", deserialize_with = "de_list")]
    pub volumes: Vec<VolumeStats>,
    #[serde(rename = "ephemeral-storage")]
    pub ephemeral_storage: Option<FsStats>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PodReference {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub uid: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStats {
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "de_time")]
    pub start_time: Option<Timestamp>,
    pub cpu: Option<CpuStats>,
    pub memory: Option<MemoryStats>,
    pub rootfs: Option<FsStats>,
    pub logs: Option<FsStats>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    #[serde(default, deserialize_with = "de_time")]
    pub time: Option<Timestamp>,
    pub usage_nano_cores: Option<u64>,
    pub usage_core_nano_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    #[serde(default, deserialize_with = "de_time")]
    pub time: Option<Timestamp>,
    pub available_bytes: Option<u64>,
    pub usage_bytes: Option<u64>,
    pub working_set_bytes: Option<u64>,
    pub rss_bytes: Option<u64>,
    pub page_faults: Option<u64>,
    pub major_page_faults: Option<u64>,
}

/// Network statistics: the default interface inline, every interface in `interfaces`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStats {
    #[serde(default, deserialize_with = "de_time")]
    pub time: Option<Timestamp>,
    // The inline `InterfaceStats` of the default interface, spelled out: `#[serde(flatten)]`
    // would buffer every field of the object first.
    pub name: Option<String>,
    pub rx_bytes: Option<u64>,
    pub rx_errors: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub tx_errors: Option<u64>,
    #[serde(default, deserialize_with = "de_list")]
    pub interfaces: Vec<InterfaceStats>,
}

impl NetworkStats {
    /// The default interface's counters.
    pub fn default_interface(&self) -> InterfaceStats {
        InterfaceStats {
            name: self.name.clone().unwrap_or_default(),
            rx_bytes: self.rx_bytes,
            rx_errors: self.rx_errors,
            tx_bytes: self.tx_bytes,
            tx_errors: self.tx_errors,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterfaceStats {
    #[serde(default)]
    pub name: String,
    pub rx_bytes: Option<u64>,
    pub rx_errors: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub tx_errors: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FsStats {
    #[serde(default, deserialize_with = "de_time")]
    pub time: Option<Timestamp>,
    pub available_bytes: Option<u64>,
    pub capacity_bytes: Option<u64>,
    pub used_bytes: Option<u64>,
    pub inodes_free: Option<u64>,
    pub inodes: Option<u64>,
    pub inodes_used: Option<u64>,
}

/// A pod volume: the inline `FsStats` plus its name and claim.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeStats {
    #[serde(default, deserialize_with = "de_time")]
    pub time: Option<Timestamp>,
    pub available_bytes: Option<u64>,
    pub capacity_bytes: Option<u64>,
    pub used_bytes: Option<u64>,
    pub inodes_free: Option<u64>,
    pub inodes: Option<u64>,
    pub inodes_used: Option<u64>,
    #[serde(default)]
    pub name: String,
    pub pvc_ref: Option<PvcReference>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PvcReference {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
}

/// A list that Go may write as `null` (a nil slice without `omitempty`).
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
    fn absent_and_null_fields_stay_absent() {
        let s = Summary::from_slice(
            br#"{"node":{"nodeName":"n1","systemContainers":null,
                 "cpu":{"time":"2024-01-02T03:04:05Z","usageCoreNanoSeconds":5},
                 "memory":{"usageBytes":null}},
                 "pods":[{"podRef":{"name":"p","namespace":"ns","uid":"u"},"containers":null,
                          "volume":[{"name":"v","time":"2024-01-02T03:04:05Z"}],
                          "futureField":{"x":1}}]}"#,
        )
        .unwrap();
        assert_eq!(s.node.node_name, "n1");
        let cpu = s.node.cpu.as_ref().unwrap();
        assert_eq!(cpu.usage_core_nano_seconds, Some(5));
        assert_eq!(cpu.usage_nano_cores, None);
        assert_eq!(s.node.memory.as_ref().unwrap().usage_bytes, None);
        assert!(s.node.fs.is_none());
        assert!(s.pods[0].containers.is_empty());
        assert_eq!(s.pods[0].volumes[0].name, "v");
        assert_eq!(s.pods[0].volumes[0].capacity_bytes, None);
    }

    #[test]
    fn malformed_documents_are_errors() {
        assert!(Summary::from_slice(b"<html>").is_err());
        assert!(Summary::from_slice(br#"{"node":{"cpu":{"usageCoreNanoSeconds":-1}}}"#).is_err());
    }
}
