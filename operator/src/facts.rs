//! What the pod needs to know about a collector config: ports to expose, the health endpoint to
//! probe, the metrics port, and host directories to mount. Read from kotel-config's typed config,
//! only for components that run (referenced by a pipeline or `service.extensions`).

use std::collections::BTreeMap;

use kotel_config::{Config, ExtensionConfig, ReceiverConfig};

/// One port a receiver listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub port: u16,
    pub app_protocol: Option<String>,
}

/// A host directory the collector reads or writes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostMount {
    /// Volume name.
    pub name: String,
    pub path: String,
    pub read_only: bool,
}

/// Facts about a validated config that shape the DaemonSet and Services.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigFacts {
    pub ports: Vec<Port>,
    /// `(port, path)` of the health_check extension, when it runs.
    pub health: Option<(u16, String)>,
    /// The collector's own Prometheus metrics port; `None` when turned off.
    pub metrics_port: Option<u16>,
    pub host_mounts: Vec<HostMount>,
}

impl HostMount {
    /// The hostPath type: the kubelet's own log directories exist on every node, so a missing one
    /// is a real fault worth a clear mount error; anything else (docker's container directory on a
    /// containerd node, a checkpoint directory on first start) must never keep the pod from
    /// starting, so it is created when absent.
    pub fn host_path_type(&self) -> &'static str {
        if self.read_only && KUBELET_LOG_DIRS.contains(&self.path.as_str()) {
            "Directory"
        } else {
            "DirectoryOrCreate"
        }
    }
}

/// Directories every kubelet makes at start, whatever its container runtime.
const KUBELET_LOG_DIRS: &[&str] = &["/var/log/pods", "/var/log/containers"];

impl ConfigFacts {
    /// Whether the collector writes to the node (checkpoints), which needs root on a hostPath.
    pub fn writes_to_host(&self) -> bool {
        self.host_mounts.iter().any(|m| !m.read_only)
    }
}

/// Host log directories that a filelog include may point into, and their volume names.
/// `/var/log/containers` holds symlinks into `/var/log/pods`, and docker's json files live under
/// `/var/lib/docker/containers`, so each implies the next.
const LOG_ROOTS: &[(&str, &str)] = &[
    ("/var/log/containers", "varlogcontainers"),
    ("/var/log/pods", "varlogpods"),
    ("/var/lib/docker/containers", "varlibdockercontainers"),
];

pub fn facts(config: &Config) -> ConfigFacts {
    let ports = config
        .receiver_ports()
        .into_iter()
        .map(|p| Port {
            name: p.name(),
            port: p.port,
            app_protocol: p.app_protocol,
        })
        .collect();

    // name → mount; a BTreeMap keeps volumes ordered and deduplicated.
    let mut mounts: BTreeMap<String, HostMount> = BTreeMap::new();
    for (_, receiver) in config.active_receivers() {
        let ReceiverConfig::Filelog(f) = receiver else {
            continue;
        };
        for include in &f.include {
            let Some(first) = LOG_ROOTS.iter().position(|(root, _)| under(include, root)) else {
                continue;
            };
            for (path, name) in &LOG_ROOTS[first..] {
                mounts.insert(
                    name.to_string(),
                    HostMount {
                        name: name.to_string(),
                        path: path.to_string(),
                        read_only: true,
                    },
                );
            }
        }
    }
    // A running file_storage keeps its directory on the node, so checkpoints survive restarts.
    for (id, extension) in config.active_extensions() {
        if let ExtensionConfig::FileStorage(fs) = extension {
            let name = format!("checkpoints-{}", volume_suffix(&id.to_string()));
            mounts.insert(
                name.clone(),
                HostMount {
                    name,
                    path: fs.directory.clone(),
                    read_only: false,
                },
            );
        }
    }

    ConfigFacts {
        ports,
        health: config.health_check(),
        metrics_port: config.telemetry_metrics_port(),
        host_mounts: mounts.into_values().collect(),
    }
}

fn under(glob: &str, root: &str) -> bool {
    glob == root
        || glob
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A DNS-label-safe volume name suffix from a component id such as `file_storage/logs`.
fn volume_suffix(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.trim_matches('-').chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filelog_under_pods_mounts_pods_read_only_and_storage_writable() {
        let config = Config::from_yaml(
            r#"
receivers:
  filelog:
    include: [/var/log/pods/*/*/*.log]
    storage: file_storage
exporters: {debug: {}}
extensions:
  file_storage: {directory: /var/lib/otelcol/file_storage}
service:
  extensions: [file_storage]
  pipelines:
    logs: {receivers: [filelog], exporters: [debug]}
"#,
        )
        .expect("valid");
        let f = facts(&config);
        let paths: Vec<_> = f
            .host_mounts
            .iter()
            .map(|m| (m.path.as_str(), m.read_only))
            .collect();
        assert_eq!(
            paths,
            vec![
                ("/var/lib/otelcol/file_storage", false),
                ("/var/lib/docker/containers", true),
                ("/var/log/pods", true),
            ]
        );
        assert!(f.writes_to_host());
        assert!(f.ports.is_empty());
    }

    #[test]
    fn a_persistent_sending_queue_keeps_its_storage_on_the_node() {
        let config = Config::from_yaml(
            r#"
receivers:
  otlp: {protocols: {grpc: {}}}
exporters:
  otlp:
    endpoint: backend:4317
    sending_queue: {storage: file_storage/queue}
extensions:
  file_storage/queue: {directory: /var/lib/otelcol/queue, create_directory: true}
service:
  extensions: [file_storage/queue]
  pipelines:
    traces: {receivers: [otlp], exporters: [otlp]}
"#,
        )
        .expect("valid");
        let f = facts(&config);
        let mounts: Vec<_> = f
            .host_mounts
            .iter()
            .map(|m| (m.name.as_str(), m.path.as_str(), m.read_only))
            .collect();
        assert_eq!(
            mounts,
            vec![(
                "checkpoints-file-storage-queue",
                "/var/lib/otelcol/queue",
                false
            )]
        );
        assert!(f.writes_to_host());
    }

    #[test]
    fn only_the_kubelets_log_dirs_must_exist_on_the_node() {
        let m = |path: &str, read_only| HostMount {
            name: "v".into(),
            path: path.into(),
            read_only,
        };
        assert_eq!(m("/var/log/pods", true).host_path_type(), "Directory");
        assert_eq!(m("/var/log/containers", true).host_path_type(), "Directory");
        // Absent on containerd nodes: a `Directory` type kept the pod in ContainerCreating.
        assert_eq!(
            m("/var/lib/docker/containers", true).host_path_type(),
            "DirectoryOrCreate"
        );
        assert_eq!(
            m("/var/lib/otelcol", false).host_path_type(),
            "DirectoryOrCreate"
        );
    }
}
