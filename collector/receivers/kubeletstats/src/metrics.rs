//! The metrics this receiver emits: upstream names, units, types and descriptions, and which
//! metric of each entity (node, pod, container) reads which stats field.

/// The shape of a metric's data points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// A cumulative sum.
    Sum {
        monotonic: bool,
    },
}

/// Whether points carry `as_int` or `as_double`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Int,
    Double,
}

/// A metric's fixed description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Def {
    pub name: &'static str,
    pub unit: &'static str,
    pub kind: Kind,
    pub value_type: ValueType,
    pub description: &'static str,
}

const GAUGE: Kind = Kind::Gauge;
const COUNTER: Kind = Kind::Sum { monotonic: true };

macro_rules! metrics {
    ($($id:ident => $name:literal, $unit:literal, $kind:expr, $vt:ident, $desc:literal;)*) => {
        /// Every metric kotel emits, by identity.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum M { $($id),* }

        impl M {
            pub const ALL: &'static [M] = &[$(M::$id),*];

            pub fn def(self) -> &'static Def {
                match self {
                    $(M::$id => &Def {
                        name: $name,
                        unit: $unit,
                        kind: $kind,
                        value_type: ValueType::$vt,
                        description: $desc,
                    }),*
                }
            }
        }
    };
}

metrics! {
    ContainerCpuTime => "container.cpu.time", "s", COUNTER, Double,
        "Total cumulative CPU time (sum of all cores) spent by the container/pod/node since its creation";
    ContainerCpuUsage => "container.cpu.usage", "{cpu}", GAUGE, Double,
        "Total CPU usage (sum of all cores per second) averaged over the sample window";
    ContainerFsAvailable => "container.filesystem.available", "By", GAUGE, Int, "Container filesystem available";
    ContainerFsCapacity => "container.filesystem.capacity", "By", GAUGE, Int, "Container filesystem capacity";
    ContainerFsUsage => "container.filesystem.usage", "By", GAUGE, Int, "Container filesystem usage";
    ContainerMemAvailable => "container.memory.available", "By", GAUGE, Int, "Container memory available";
    ContainerMemMajorPageFaults => "container.memory.major_page_faults", "1", GAUGE, Int, "Container memory major_page_faults";
    ContainerMemPageFaults => "container.memory.page_faults", "1", GAUGE, Int, "Container memory page_faults";
    ContainerMemRss => "container.memory.rss", "By", GAUGE, Int, "Container memory rss";
    ContainerMemUsage => "container.memory.usage", "By", GAUGE, Int, "Container memory usage";
    ContainerMemWorkingSet => "container.memory.working_set", "By", GAUGE, Int, "Container memory working_set";
    ContainerUptime => "container.uptime", "s", COUNTER, Int, "The time since the container started";
    ContainerCpuLimitUtilization => "k8s.container.cpu_limit_utilization", "1", GAUGE, Double,
        "Container cpu utilization as a ratio of the container's limits";
    ContainerCpuRequestUtilization => "k8s.container.cpu_request_utilization", "1", GAUGE, Double,
        "Container cpu utilization as a ratio of the container's requests";
    ContainerMemLimitUtilization => "k8s.container.memory_limit_utilization", "1", GAUGE, Double,
        "Container memory utilization as a ratio of the container's limits";
    ContainerMemRequestUtilization => "k8s.container.memory_request_utilization", "1", GAUGE, Double,
        "Container memory utilization as a ratio of the container's requests";

    NodeCpuTime => "k8s.node.cpu.time", "s", COUNTER, Double,
        "Total cumulative CPU time (sum of all cores) spent by the container/pod/node since its creation";
    NodeCpuUsage => "k8s.node.cpu.usage", "{cpu}", GAUGE, Double,
        "Total CPU usage (sum of all cores per second) averaged over the sample window";
    NodeFsAvailable => "k8s.node.filesystem.available", "By", GAUGE, Int, "Node filesystem available";
    NodeFsCapacity => "k8s.node.filesystem.capacity", "By", GAUGE, Int, "Node filesystem capacity";
    NodeFsUsage => "k8s.node.filesystem.usage", "By", GAUGE, Int, "Node filesystem usage";
    NodeMemAvailable => "k8s.node.memory.available", "By", GAUGE, Int, "Node memory available";
    NodeMemMajorPageFaults => "k8s.node.memory.major_page_faults", "1", GAUGE, Int, "Node memory major_page_faults";
    NodeMemPageFaults => "k8s.node.memory.page_faults", "1", GAUGE, Int, "Node memory page_faults";
    NodeMemRss => "k8s.node.memory.rss", "By", GAUGE, Int, "Node memory rss";
    NodeMemUsage => "k8s.node.memory.usage", "By", GAUGE, Int, "Node memory usage";
    NodeMemWorkingSet => "k8s.node.memory.working_set", "By", GAUGE, Int, "Node memory working_set";
    NodeNetworkErrors => "k8s.node.network.errors", "1", COUNTER, Int, "Node network errors";
    NodeNetworkIo => "k8s.node.network.io", "By", COUNTER, Int, "Node network IO";
    NodeUptime => "k8s.node.uptime", "s", COUNTER, Int, "The time since the node started";
    SystemContainerCpuTime => "k8s.node.system_container.cpu.time", "s", COUNTER, Double,
        "Total cumulative CPU time (sum of all cores) spent by the system container since its creation";
    SystemContainerCpuUsage => "k8s.node.system_container.cpu.usage", "{cpu}", GAUGE, Double,
        "Total CPU usage (sum of all cores per second) averaged over the sample window";
    SystemContainerMemUsage => "k8s.node.system_container.memory.usage", "By", GAUGE, Int,
        "System container memory usage";
    SystemContainerMemWorkingSet => "k8s.node.system_container.memory.working_set", "By", GAUGE, Int,
        "System container memory working_set";

    PodCpuTime => "k8s.pod.cpu.time", "s", COUNTER, Double,
        "Total cumulative CPU time (sum of all cores) spent by the container/pod/node since its creation";
    PodCpuUsage => "k8s.pod.cpu.usage", "{cpu}", GAUGE, Double,
        "Total CPU usage (sum of all cores per second) averaged over the sample window";
    PodCpuLimitUtilization => "k8s.pod.cpu_limit_utilization", "1", GAUGE, Double,
        "Pod cpu utilization as a ratio of the pod's total container limits. If any container is missing a limit the metric is not emitted.";
    PodCpuRequestUtilization => "k8s.pod.cpu_request_utilization", "1", GAUGE, Double,
        "Pod cpu utilization as a ratio of the pod's total container requests. If any container is missing a request the metric is not emitted.";
    PodFsAvailable => "k8s.pod.filesystem.available", "By", GAUGE, Int, "Pod filesystem available";
    PodFsCapacity => "k8s.pod.filesystem.capacity", "By", GAUGE, Int, "Pod filesystem capacity";
    PodFsUsage => "k8s.pod.filesystem.usage", "By", GAUGE, Int, "Pod filesystem usage";
    PodMemAvailable => "k8s.pod.memory.available", "By", GAUGE, Int, "Pod memory available";
    PodMemMajorPageFaults => "k8s.pod.memory.major_page_faults", "1", GAUGE, Int, "Pod memory major_page_faults";
    PodMemPageFaults => "k8s.pod.memory.page_faults", "1", GAUGE, Int, "Pod memory page_faults";
    PodMemRss => "k8s.pod.memory.rss", "By", GAUGE, Int, "Pod memory rss";
    PodMemUsage => "k8s.pod.memory.usage", "By", GAUGE, Int, "Pod memory usage";
    PodMemWorkingSet => "k8s.pod.memory.working_set", "By", GAUGE, Int, "Pod memory working_set";
    PodMemLimitUtilization => "k8s.pod.memory_limit_utilization", "1", GAUGE, Double,
        "Pod memory utilization as a ratio of the pod's total container limits. If any container is missing a limit the metric is not emitted.";
    PodMemRequestUtilization => "k8s.pod.memory_request_utilization", "1", GAUGE, Double,
        "Pod memory utilization as a ratio of the pod's total container requests. If any container is missing a request the metric is not emitted.";
    PodNetworkErrors => "k8s.pod.network.errors", "1", COUNTER, Int, "Pod network errors";
    PodNetworkIo => "k8s.pod.network.io", "By", COUNTER, Int, "Pod network IO";
    PodUptime => "k8s.pod.uptime", "s", COUNTER, Int, "The time since the pod started";

    VolumeAvailable => "k8s.volume.available", "By", GAUGE, Int, "The number of available bytes in the volume.";
    VolumeCapacity => "k8s.volume.capacity", "By", GAUGE, Int, "The total capacity in bytes of the volume.";
    VolumeInodes => "k8s.volume.inodes", "1", GAUGE, Int, "The total inodes in the filesystem.";
    VolumeInodesFree => "k8s.volume.inodes.free", "1", GAUGE, Int, "The free inodes in the filesystem.";
    VolumeInodesUsed => "k8s.volume.inodes.used", "1", GAUGE, Int,
        "The inodes used by the filesystem. This may not equal inodes - free because filesystem may share inodes with other filesystems.";
}

/// The metrics of one kind of entity that share a stats shape (cpu, memory, filesystem).
pub struct EntityMetrics {
    pub cpu_time: M,
    pub cpu_usage: M,
    pub fs_available: M,
    pub fs_capacity: M,
    pub fs_usage: M,
    pub mem_available: M,
    pub mem_usage: M,
    pub mem_rss: M,
    pub mem_working_set: M,
    pub mem_page_faults: M,
    pub mem_major_page_faults: M,
    pub uptime: M,
    /// Network io and errors; containers have none.
    pub network: Option<(M, M)>,
    /// cpu limit, cpu request, memory limit, memory request utilization; nodes have none.
    pub utilization: Option<[M; 4]>,
}

pub const NODE: EntityMetrics = EntityMetrics {
    cpu_time: M::NodeCpuTime,
    cpu_usage: M::NodeCpuUsage,
    fs_available: M::NodeFsAvailable,
    fs_capacity: M::NodeFsCapacity,
    fs_usage: M::NodeFsUsage,
    mem_available: M::NodeMemAvailable,
    mem_usage: M::NodeMemUsage,
    mem_rss: M::NodeMemRss,
    mem_working_set: M::NodeMemWorkingSet,
    mem_page_faults: M::NodeMemPageFaults,
    mem_major_page_faults: M::NodeMemMajorPageFaults,
    uptime: M::NodeUptime,
    network: Some((M::NodeNetworkIo, M::NodeNetworkErrors)),
    utilization: None,
};

pub const POD: EntityMetrics = EntityMetrics {
    cpu_time: M::PodCpuTime,
    cpu_usage: M::PodCpuUsage,
    fs_available: M::PodFsAvailable,
    fs_capacity: M::PodFsCapacity,
    fs_usage: M::PodFsUsage,
    mem_available: M::PodMemAvailable,
    mem_usage: M::PodMemUsage,
    mem_rss: M::PodMemRss,
    mem_working_set: M::PodMemWorkingSet,
    mem_page_faults: M::PodMemPageFaults,
    mem_major_page_faults: M::PodMemMajorPageFaults,
    uptime: M::PodUptime,
    network: Some((M::PodNetworkIo, M::PodNetworkErrors)),
    utilization: Some([
        M::PodCpuLimitUtilization,
        M::PodCpuRequestUtilization,
        M::PodMemLimitUtilization,
        M::PodMemRequestUtilization,
    ]),
};

pub const CONTAINER: EntityMetrics = EntityMetrics {
    cpu_time: M::ContainerCpuTime,
    cpu_usage: M::ContainerCpuUsage,
    fs_available: M::ContainerFsAvailable,
    fs_capacity: M::ContainerFsCapacity,
    fs_usage: M::ContainerFsUsage,
    mem_available: M::ContainerMemAvailable,
    mem_usage: M::ContainerMemUsage,
    mem_rss: M::ContainerMemRss,
    mem_working_set: M::ContainerMemWorkingSet,
    mem_page_faults: M::ContainerMemPageFaults,
    mem_major_page_faults: M::ContainerMemMajorPageFaults,
    uptime: M::ContainerUptime,
    network: None,
    utilization: Some([
        M::ContainerCpuLimitUtilization,
        M::ContainerCpuRequestUtilization,
        M::ContainerMemLimitUtilization,
        M::ContainerMemRequestUtilization,
    ]),
};

#[cfg(test)]
mod tests {
    use kotel_config::receivers::kubeletstats::METRICS;

    use super::*;

    #[test]
    fn every_emitted_metric_is_in_the_config_catalogue() {
        for m in M::ALL {
            assert!(
                METRICS.iter().any(|(n, _)| *n == m.def().name),
                "{} is missing from kotel-config's METRICS",
                m.def().name
            );
        }
    }

    #[test]
    fn every_default_metric_is_emitted() {
        for (name, default) in METRICS {
            if *default {
                assert!(
                    M::ALL.iter().any(|m| m.def().name == *name),
                    "default metric {name} is not implemented"
                );
            }
        }
    }
}
