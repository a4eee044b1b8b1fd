//! Self-telemetry, under upstream's `otelsvc_k8s_*` names, labelled with the processor id.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub const POD_ADDED: &str = "otelcol_otelsvc_k8s_pod_added";
pub const POD_UPDATED: &str = "otelcol_otelsvc_k8s_pod_updated";
pub const POD_DELETED: &str = "otelcol_otelsvc_k8s_pod_deleted";
pub const POD_TABLE_SIZE: &str = "otelcol_otelsvc_k8s_pod_table_size";
pub const IP_LOOKUP_MISS: &str = "otelcol_otelsvc_k8s_ip_lookup_miss";
pub const NAMESPACE_EVENTS: &str = "otelcol_otelsvc_k8s_namespace_events";
pub const NODE_EVENTS: &str = "otelcol_otelsvc_k8s_node_events";
pub const REPLICASET_FETCHED: &str = "otelcol_otelsvc_k8s_replicaset_fetched";
pub const WATCH_ERRORS: &str = "otelcol_k8sattributes_watch_errors";

#[derive(Debug, Default, Clone)]
pub struct Metrics {
    pub pod_added: Counter,
    pub pod_updated: Counter,
    pub pod_deleted: Counter,
    pub pod_table_size: Gauge,
    /// Resources that carried an identifier matching no cached pod.
    pub lookup_miss: Counter,
    pub namespace_events: Counter,
    pub node_events: Counter,
    pub replicaset_fetched: Counter,
    /// Watch or fetch errors by resource (`pods`, `namespaces`, `nodes`, `replicasets`).
    pub watch_errors: Family<Vec<(String, String)>, Counter>,
}

impl Metrics {
    /// Registers the metrics in `registry` under the label `processor=<id>`.
    pub fn register(id: &str, registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_label(("processor".into(), id.to_string().into()));
        r.register(POD_ADDED, "Pods added to the cache", m.pod_added.clone());
        r.register(POD_UPDATED, "Pod updates applied", m.pod_updated.clone());
        r.register(POD_DELETED, "Pods deleted", m.pod_deleted.clone());
        r.register(
            POD_TABLE_SIZE,
            "Pods in the cache, deleted ones in their grace period included",
            m.pod_table_size.clone(),
        );
        r.register(
            IP_LOOKUP_MISS,
            "Resources whose pod identifier matched no cached pod",
            m.lookup_miss.clone(),
        );
        r.register(
            NAMESPACE_EVENTS,
            "Namespace watch events applied",
            m.namespace_events.clone(),
        );
        r.register(
            NODE_EVENTS,
            "Node watch events applied",
            m.node_events.clone(),
        );
        r.register(
            REPLICASET_FETCHED,
            "ReplicaSets fetched for the deployment of cached pods",
            m.replicaset_fetched.clone(),
        );
        r.register(
            WATCH_ERRORS,
            "Errors watching or fetching from the API server (retried with backoff)",
            m.watch_errors.clone(),
        );
        m
    }

    pub fn watch_error(&self, resource: &'static str) {
        self.watch_errors
            .get_or_create(&vec![("resource".to_string(), resource.to_string())])
            .inc();
    }
}
