//! Summary (+ `/pods` metadata) → OTLP metrics: one resource per node, pod, container and volume,
//! each with the upstream receiver's metric names, units, types and resource attributes.
//!
//! Pure apart from the CPU-usage memory between scrapes; `now` is passed in so output is
//! reproducible.

use kotel_config::receivers::kubeletstats::{KubeletStatsConfig, MetricGroup};
use kotel_pipeline::ExportMetricsServiceRequest;
use kotel_pipeline::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use kotel_pipeline::proto::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};
use kotel_pipeline::proto::resource::v1::Resource;

use crate::cpu_usage::CpuUsage;
use crate::metrics::{self, EntityMetrics, Kind, M};
use crate::pods::{ContainerResources, PodInfo, PodMetadata};
use crate::summary::{
    ContainerStats, CpuStats, FsStats, MemoryStats, NetworkStats, NodeStats, PodStats, Summary,
    VolumeStats,
};
use crate::time::Timestamp;

/// The instrumentation scope upstream's receiver reports, so scope-based routing keeps working.
pub const SCOPE_NAME: &str =
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/kubeletstatsreceiver";

/// Resource attributes this receiver sets.
mod attr {
    pub const NODE_NAME: &str = "k8s.node.name";
    pub const POD_UID: &str = "k8s.pod.uid";
    pub const POD_NAME: &str = "k8s.pod.name";
    pub const NAMESPACE: &str = "k8s.namespace.name";
    pub const CONTAINER_NAME: &str = "k8s.container.name";
    pub const CONTAINER_ID: &str = "container.id";
    pub const VOLUME_NAME: &str = "k8s.volume.name";
    pub const VOLUME_TYPE: &str = "k8s.volume.type";
    pub const PVC_NAME: &str = "k8s.persistentvolumeclaim.name";
    pub const SYSTEM_CONTAINER: &str = "k8s.node.system_container.name";
    pub const ALL: [&str; 10] = [
        NODE_NAME,
        POD_UID,
        POD_NAME,
        NAMESPACE,
        CONTAINER_NAME,
        CONTAINER_ID,
        VOLUME_NAME,
        VOLUME_TYPE,
        PVC_NAME,
        SYSTEM_CONTAINER,
    ];
}

/// What to emit, resolved once from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    enabled: Vec<bool>,
    attrs: [bool; 10],
    system_containers: bool,
    node: bool,
    pod: bool,
    container: bool,
    volume: bool,
    container_id: bool,
    volume_type: bool,
    all_interfaces_pod: bool,
    all_interfaces_node: bool,
}

impl Settings {
    pub fn new(c: &KubeletStatsConfig) -> Self {
        let label = |l: &str| c.extra_metadata_labels.iter().any(|x| x == l);
        Self {
            enabled: M::ALL
                .iter()
                .map(|m| c.metric_enabled(m.def().name))
                .collect(),
            attrs: attr::ALL.map(|a| c.resource_attribute_enabled(a)),
            node: c.group_enabled(MetricGroup::Node),
            system_containers: [
                M::SystemContainerCpuTime,
                M::SystemContainerCpuUsage,
                M::SystemContainerMemUsage,
                M::SystemContainerMemWorkingSet,
            ]
            .iter()
            .any(|m| c.metric_enabled(m.def().name)),
            pod: c.group_enabled(MetricGroup::Pod),
            container: c.group_enabled(MetricGroup::Container),
            volume: c.group_enabled(MetricGroup::Volume),
            container_id: label(attr::CONTAINER_ID),
            volume_type: label(attr::VOLUME_TYPE),
            all_interfaces_pod: c.collect_all_network_interfaces.pod,
            all_interfaces_node: c.collect_all_network_interfaces.node,
        }
    }

    fn on(&self, m: M) -> bool {
        self.enabled[m as usize]
    }

    fn attr_on(&self, key: &str) -> bool {
        attr::ALL
            .iter()
            .position(|a| *a == key)
            .is_some_and(|i| self.attrs[i])
    }
}

/// Converts summaries, remembering CPU time between scrapes.
pub struct Converter {
    settings: Settings,
    cpu: CpuUsage,
    scope_version: String,
    key: String,
}

impl Converter {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            cpu: CpuUsage::default(),
            scope_version: env!("CARGO_PKG_VERSION").to_string(),
            key: String::new(),
        }
    }

    pub fn from_config(c: &KubeletStatsConfig) -> Self {
        Self::new(Settings::new(c))
    }

    /// One scrape's metrics. `pods` is the kubelet's `/pods` when extra metadata or pod specs are
    /// wanted; `now` stamps points whose stats carry no time and measures uptime.
    pub fn convert(
        &mut self,
        summary: &Summary,
        pods: Option<&PodMetadata>,
        now: Timestamp,
    ) -> ExportMetricsServiceRequest {
        self.cpu.begin_scrape();
        let mut out = Vec::with_capacity(1 + summary.pods.len() * 5);
        if self.settings.node {
            self.node(&summary.node, now, &mut out);
        }
        for pod in &summary.pods {
            let info = pods.and_then(|p| p.pod(&pod.pod_ref.uid));
            self.pod(pod, info, now, &mut out);
        }
        self.cpu.end_scrape();
        ExportMetricsServiceRequest {
            resource_metrics: out,
        }
    }

    fn node(&mut self, n: &NodeStats, now: Timestamp, out: &mut Vec<ResourceMetrics>) {
        let mut b = Builder::new(&self.settings, n.start_time, now);
        self.key.clear();
        self.key.push_str("node/");
        self.key.push_str(&n.node_name);
        b.cpu(&metrics::NODE, n.cpu.as_ref(), &mut self.cpu, &self.key);
        b.memory(&metrics::NODE, n.memory.as_ref());
        b.fs(&metrics::NODE, n.fs.as_ref());
        if let Some(net) = &n.network {
            b.network(&metrics::NODE, net, self.settings.all_interfaces_node);
        }
        b.uptime(metrics::NODE.uptime);
        let mut attrs = Vec::with_capacity(1);
        push_attr(&self.settings, &mut attrs, attr::NODE_NAME, &n.node_name);
        self.emit(b, attrs, out);
        if self.settings.system_containers {
            for c in &n.system_containers {
                self.system_container(n, c, now, out);
            }
        }
    }

    /// The kubelet's own cgroups (`kubelet`, `runtime`, `pods`, `misc`): optional metrics,
    /// one resource per system container.
    fn system_container(
        &mut self,
        n: &NodeStats,
        c: &ContainerStats,
        now: Timestamp,
        out: &mut Vec<ResourceMetrics>,
    ) {
        let mut b = Builder::new(&self.settings, c.start_time, now);
        if let Some(cpu) = &c.cpu
            && let Some(nanos) = cpu.usage_core_nano_seconds
        {
            let seconds = nanos as f64 / 1e9;
            b.double(M::SystemContainerCpuTime, seconds, cpu.time);
            self.key.clear();
            self.key.push_str("system/");
            self.key.push_str(&c.name);
            let t = cpu.time.unwrap_or(now);
            if let Some(u) = self.cpu.observe(&self.key, seconds, t) {
                b.double(M::SystemContainerCpuUsage, u, cpu.time);
            }
        }
        if let Some(m) = &c.memory {
            b.gauge_int(M::SystemContainerMemUsage, m.usage_bytes, m.time);
            b.gauge_int(M::SystemContainerMemWorkingSet, m.working_set_bytes, m.time);
        }
        let mut attrs = Vec::with_capacity(2);
        push_attr(&self.settings, &mut attrs, attr::NODE_NAME, &n.node_name);
        push_attr(&self.settings, &mut attrs, attr::SYSTEM_CONTAINER, &c.name);
        self.emit(b, attrs, out);
    }

    fn pod(
        &mut self,
        p: &PodStats,
        info: Option<&PodInfo>,
        now: Timestamp,
        out: &mut Vec<ResourceMetrics>,
    ) {
        let s = &self.settings;
        let mut pod_attrs = Vec::with_capacity(3);
        push_attr(s, &mut pod_attrs, attr::POD_UID, &p.pod_ref.uid);
        push_attr(s, &mut pod_attrs, attr::POD_NAME, &p.pod_ref.name);
        push_attr(s, &mut pod_attrs, attr::NAMESPACE, &p.pod_ref.namespace);

        if self.settings.pod {
            let mut b = Builder::new(&self.settings, p.start_time, now);
            self.key.clear();
            self.key.push_str("pod/");
            self.key.push_str(&p.pod_ref.uid);
            let usage = b.cpu(&metrics::POD, p.cpu.as_ref(), &mut self.cpu, &self.key);
            b.memory(&metrics::POD, p.memory.as_ref());
            b.fs(&metrics::POD, p.ephemeral_storage.as_ref());
            if let Some(net) = &p.network {
                b.network(&metrics::POD, net, self.settings.all_interfaces_pod);
            }
            b.uptime(metrics::POD.uptime);
            if let Some(info) = info {
                b.utilization(&metrics::POD, usage, p.memory.as_ref(), pod_resources(info));
            }
            let attrs = pod_attrs.clone();
            self.emit(b, attrs, out);
        }

        if self.settings.container {
            for c in &p.containers {
                self.container(p, c, info, &pod_attrs, now, out);
            }
        }

        if self.settings.volume {
            for v in &p.volumes {
                self.volume(v, info, &pod_attrs, p.start_time, now, out);
            }
        }
    }

    fn container(
        &mut self,
        p: &PodStats,
        c: &ContainerStats,
        info: Option<&PodInfo>,
        pod_attrs: &[KeyValue],
        now: Timestamp,
        out: &mut Vec<ResourceMetrics>,
    ) {
        let mut b = Builder::new(&self.settings, c.start_time, now);
        self.key.clear();
        self.key.push_str("container/");
        self.key.push_str(&p.pod_ref.uid);
        self.key.push('/');
        self.key.push_str(&c.name);
        let usage = b.cpu(
            &metrics::CONTAINER,
            c.cpu.as_ref(),
            &mut self.cpu,
            &self.key,
        );
        b.memory(&metrics::CONTAINER, c.memory.as_ref());
        b.fs(&metrics::CONTAINER, c.rootfs.as_ref());
        b.uptime(metrics::CONTAINER.uptime);
        if let Some(res) = info.and_then(|i| i.resources.get(&c.name)) {
            b.utilization(&metrics::CONTAINER, usage, c.memory.as_ref(), *res);
        }
        if b.is_empty() {
            return;
        }
        let s = &self.settings;
        let mut attrs = Vec::with_capacity(pod_attrs.len() + 2);
        attrs.extend_from_slice(pod_attrs);
        push_attr(s, &mut attrs, attr::CONTAINER_NAME, &c.name);
        if s.container_id {
            match info.and_then(|i| i.container_ids.get(&c.name)) {
                Some(id) => push_attr(s, &mut attrs, attr::CONTAINER_ID, id),
                None => tracing::debug!(
                    pod = %p.pod_ref.name,
                    namespace = %p.pod_ref.namespace,
                    container = %c.name,
                    "no container id in the kubelet's /pods"
                ),
            }
        }
        self.emit(b, attrs, out);
    }

    fn volume(
        &mut self,
        v: &VolumeStats,
        info: Option<&PodInfo>,
        pod_attrs: &[KeyValue],
        start: Option<Timestamp>,
        now: Timestamp,
        out: &mut Vec<ResourceMetrics>,
    ) {
        let mut b = Builder::new(&self.settings, start, now);
        let t = v.time;
        b.gauge_int(M::VolumeAvailable, v.available_bytes, t);
        b.gauge_int(M::VolumeCapacity, v.capacity_bytes, t);
        b.gauge_int(M::VolumeInodes, v.inodes, t);
        b.gauge_int(M::VolumeInodesFree, v.inodes_free, t);
        b.gauge_int(M::VolumeInodesUsed, v.inodes_used, t);
        if b.is_empty() {
            return;
        }
        let s = &self.settings;
        let mut attrs = Vec::with_capacity(pod_attrs.len() + 3);
        attrs.extend_from_slice(pod_attrs);
        push_attr(s, &mut attrs, attr::VOLUME_NAME, &v.name);
        if s.volume_type
            && let Some(source) = info.and_then(|i| i.volumes.get(&v.name))
        {
            push_attr(s, &mut attrs, attr::VOLUME_TYPE, source.ty);
            if let Some(claim) = &source.claim_name {
                push_attr(s, &mut attrs, attr::PVC_NAME, claim);
            }
        }
        self.emit(b, attrs, out);
    }

    fn emit(&self, b: Builder<'_>, attributes: Vec<KeyValue>, out: &mut Vec<ResourceMetrics>) {
        if b.is_empty() {
            return;
        }
        out.push(ResourceMetrics {
            resource: Some(Resource {
                attributes,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.to_string(),
                    version: self.scope_version.clone(),
                    ..Default::default()
                }),
                metrics: b.metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        });
    }
}

/// A pod's resources: the sum over its containers, only where every container sets the value.
fn pod_resources(info: &PodInfo) -> ContainerResources {
    let sum = |f: fn(&ContainerResources) -> Option<f64>| -> Option<f64> {
        if info.resources.is_empty() {
            return None;
        }
        info.resources.values().map(f).sum()
    };
    ContainerResources {
        cpu_limit: sum(|r| r.cpu_limit),
        cpu_request: sum(|r| r.cpu_request),
        memory_limit: sum(|r| r.memory_limit),
        memory_request: sum(|r| r.memory_request),
    }
}

fn push_attr(s: &Settings, attrs: &mut Vec<KeyValue>, key: &'static str, value: &str) {
    if s.attr_on(key) {
        attrs.push(KeyValue {
            key: key.to_string(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.to_string())),
            }),
            ..Default::default()
        });
    }
}

/// Collects one resource's metrics.
struct Builder<'a> {
    settings: &'a Settings,
    start: u64,
    now: Timestamp,
    metrics: Vec<Metric>,
}

impl<'a> Builder<'a> {
    fn new(settings: &'a Settings, start: Option<Timestamp>, now: Timestamp) -> Self {
        Self {
            settings,
            start: start.unwrap_or(0),
            now,
            metrics: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// Records cpu.time and cpu.usage; returns the usage for the utilization metrics.
    fn cpu(
        &mut self,
        e: &EntityMetrics,
        cpu: Option<&CpuStats>,
        tracker: &mut CpuUsage,
        key: &str,
    ) -> Option<f64> {
        let cpu = cpu?;
        let nanos = cpu.usage_core_nano_seconds?;
        let seconds = nanos as f64 / 1e9;
        let t = cpu.time.unwrap_or(self.now);
        self.double(e.cpu_time, seconds, cpu.time);
        let usage = tracker.observe(key, seconds, t);
        if let Some(u) = usage {
            self.double(e.cpu_usage, u, cpu.time);
        }
        usage
    }

    fn memory(&mut self, e: &EntityMetrics, mem: Option<&MemoryStats>) {
        let Some(m) = mem else { return };
        let t = m.time;
        self.gauge_int(e.mem_available, m.available_bytes, t);
        self.gauge_int(e.mem_usage, m.usage_bytes, t);
        self.gauge_int(e.mem_rss, m.rss_bytes, t);
        self.gauge_int(e.mem_working_set, m.working_set_bytes, t);
        self.gauge_int(e.mem_page_faults, m.page_faults, t);
        self.gauge_int(e.mem_major_page_faults, m.major_page_faults, t);
    }

    fn fs(&mut self, e: &EntityMetrics, fs: Option<&FsStats>) {
        let Some(f) = fs else { return };
        let t = f.time;
        self.gauge_int(e.fs_available, f.available_bytes, t);
        self.gauge_int(e.fs_capacity, f.capacity_bytes, t);
        self.gauge_int(e.fs_usage, f.used_bytes, t);
    }

    fn network(&mut self, e: &EntityMetrics, net: &NetworkStats, all: bool) {
        let Some((io, errors)) = e.network else {
            return;
        };
        let t = net.time.unwrap_or(self.now);
        let mut add = |m: M, pick: fn(&InterfaceCounters) -> (Option<u64>, Option<u64>)| {
            if !self.settings.on(m) {
                return;
            }
            let mut points = Vec::new();
            let mut push = |iface: &str, rx: Option<u64>, tx: Option<u64>| {
                for (dir, v) in [("receive", rx), ("transmit", tx)] {
                    if let Some(v) = v {
                        points.push(NumberDataPoint {
                            attributes: vec![
                                string_kv("interface", iface),
                                string_kv("direction", dir),
                            ],
                            start_time_unix_nano: self.start,
                            time_unix_nano: t,
                            value: Some(number_data_point::Value::AsInt(clamp(v))),
                            ..Default::default()
                        });
                    }
                }
            };
            if all && !net.interfaces.is_empty() {
                for i in &net.interfaces {
                    let (rx, tx) = pick(&InterfaceCounters::of(i));
                    push(&i.name, rx, tx);
                }
            } else {
                let (rx, tx) = pick(&InterfaceCounters::inline(net));
                push(net.name.as_deref().unwrap_or_default(), rx, tx);
            }
            if !points.is_empty() {
                self.metrics.push(metric(m, points));
            }
        };
        add(io, |c| (c.rx_bytes, c.tx_bytes));
        add(errors, |c| (c.rx_errors, c.tx_errors));
    }

    fn uptime(&mut self, m: M) {
        if !self.settings.on(m) || self.start == 0 || self.now < self.start {
            return;
        }
        let secs = (self.now - self.start) / 1_000_000_000;
        self.push(m, number_data_point::Value::AsInt(clamp(secs)), self.now);
    }

    fn utilization(
        &mut self,
        e: &EntityMetrics,
        cpu_usage: Option<f64>,
        mem: Option<&MemoryStats>,
        r: ContainerResources,
    ) {
        let Some([cpu_limit, cpu_request, mem_limit, mem_request]) = e.utilization else {
            return;
        };
        let ratio = |v: Option<f64>, of: Option<f64>| match (v, of) {
            (Some(v), Some(of)) if of > 0.0 => Some(v / of),
            _ => None,
        };
        let cpu_t = self.now;
        if let Some(x) = ratio(cpu_usage, r.cpu_limit) {
            self.double_at(cpu_limit, x, cpu_t);
        }
        if let Some(x) = ratio(cpu_usage, r.cpu_request) {
            self.double_at(cpu_request, x, cpu_t);
        }
        let working_set = mem.and_then(|m| m.working_set_bytes).map(|v| v as f64);
        let mem_t = mem.and_then(|m| m.time).unwrap_or(self.now);
        if let Some(x) = ratio(working_set, r.memory_limit) {
            self.double_at(mem_limit, x, mem_t);
        }
        if let Some(x) = ratio(working_set, r.memory_request) {
            self.double_at(mem_request, x, mem_t);
        }
    }

    fn gauge_int(&mut self, m: M, v: Option<u64>, t: Option<Timestamp>) {
        if let Some(v) = v {
            let t = t.unwrap_or(self.now);
            self.push(m, number_data_point::Value::AsInt(clamp(v)), t);
        }
    }

    fn double(&mut self, m: M, v: f64, t: Option<Timestamp>) {
        let t = t.unwrap_or(self.now);
        self.double_at(m, v, t);
    }

    fn double_at(&mut self, m: M, v: f64, t: Timestamp) {
        self.push(m, number_data_point::Value::AsDouble(v), t);
    }

    fn push(&mut self, m: M, value: number_data_point::Value, t: Timestamp) {
        if !self.settings.on(m) {
            return;
        }
        let point = NumberDataPoint {
            start_time_unix_nano: self.start,
            time_unix_nano: t,
            value: Some(value),
            ..Default::default()
        };
        self.metrics.push(metric(m, vec![point]));
    }
}

/// The four counters of an interface, whether inline (the default one) or listed.
struct InterfaceCounters {
    rx_bytes: Option<u64>,
    rx_errors: Option<u64>,
    tx_bytes: Option<u64>,
    tx_errors: Option<u64>,
}

impl InterfaceCounters {
    fn of(i: &crate::summary::InterfaceStats) -> Self {
        Self {
            rx_bytes: i.rx_bytes,
            rx_errors: i.rx_errors,
            tx_bytes: i.tx_bytes,
            tx_errors: i.tx_errors,
        }
    }

    fn inline(n: &NetworkStats) -> Self {
        Self {
            rx_bytes: n.rx_bytes,
            rx_errors: n.rx_errors,
            tx_bytes: n.tx_bytes,
            tx_errors: n.tx_errors,
        }
    }
}

fn metric(m: M, data_points: Vec<NumberDataPoint>) -> Metric {
    let d = m.def();
    let data = match d.kind {
        Kind::Gauge => metric::Data::Gauge(Gauge { data_points }),
        Kind::Sum { monotonic } => metric::Data::Sum(Sum {
            data_points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: monotonic,
        }),
    };
    Metric {
        name: d.name.to_string(),
        description: d.description.to_string(),
        unit: d.unit.to_string(),
        metadata: Vec::new(),
        data: Some(data),
    }
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

/// Kubelet counters are uint64; OTLP ints are int64. Values past i64::MAX do not occur in
/// practice, and saturating beats wrapping negative.
fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
