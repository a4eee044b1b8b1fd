//! The receiver Service (node-local traffic), its headless twin and the monitoring Service, with
//! upstream's labels telling them apart.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::namespaced_meta;
use crate::validate::Validated;

/// Upstream's label naming a Service's role (`base`, `headless`, `monitoring`), and the older
/// per-role labels it still sets beside it; ServiceMonitors select on them.
const SERVICE_TYPE_LABEL: &str = "operator.opentelemetry.io/collector-service-type";
const HEADLESS_LABEL: &str = "operator.opentelemetry.io/collector-headless-service";
const MONITORING_LABEL: &str = "operator.opentelemetry.io/collector-monitoring-service";

/// A Service's metadata: the child metadata plus its role labels.
fn service_meta(v: &Validated, name: String, role: &str, role_label: Option<&str>) -> ObjectMeta {
    let mut meta = namespaced_meta(v, name);
    let labels = meta.labels.get_or_insert_default();
    labels.insert(SERVICE_TYPE_LABEL.to_string(), role.to_string());
    if let Some(l) = role_label {
        labels.insert(l.to_string(), "Exists".to_string());
    }
    meta
}

/// The Service fields the resource sets for every collector Service (IP families, session
/// affinity, traffic distribution), as upstream passes them through.
fn addressing(v: &Validated) -> ServiceSpec {
    let s = &v.spec;
    ServiceSpec {
        ip_families: s.ip_families.clone(),
        ip_family_policy: s.ip_family_policy.clone(),
        session_affinity: s.session_affinity.clone(),
        session_affinity_config: s.session_affinity_config.clone(),
        traffic_distribution: s.traffic_distribution.clone(),
        ..Default::default()
    }
}

/// Receiver ports: `spec.ports` first, then ports inferred from the receivers. An inferred port
/// whose number is taken is dropped; one whose name is taken is renamed `port-<n>` (upstream).
pub fn service_ports(v: &Validated) -> Vec<ServicePort> {
    let mut ports: Vec<ServicePort> = v
        .spec
        .ports
        .iter()
        .flatten()
        .map(|p| ServicePort {
            name: p.name.clone(),
            port: p.port,
            protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".to_string())),
            app_protocol: p.app_protocol.clone(),
            target_port: Some(p.target_port.clone().unwrap_or(IntOrString::Int(p.port))),
            node_port: p.node_port,
        })
        .collect();
    for inferred in &v.facts.ports {
        let port = i32::from(inferred.port);
        if ports.iter().any(|p| p.port == port) {
            continue;
        }
        let name = if ports
            .iter()
            .any(|p| p.name.as_deref() == Some(inferred.name.as_str()))
        {
            format!("port-{port}")
        } else {
            inferred.name.clone()
        };
        ports.push(ServicePort {
            name: Some(name),
            port,
            protocol: Some("TCP".to_string()),
            app_protocol: inferred.app_protocol.clone(),
            target_port: Some(IntOrString::Int(port)),
            node_port: None,
        });
    }
    ports
}

/// `<name>-collector`: `None` without ports. Traffic stays on the node it arrived at, so an app
/// sends to the collector of its own node (`internalTrafficPolicy: Local`).
pub fn collector_service(v: &Validated) -> Option<Service> {
    let ports = service_ports(v);
    (!ports.is_empty()).then(|| Service {
        metadata: service_meta(v, v.names.collector(), "base", None),
        spec: Some(ServiceSpec {
            internal_traffic_policy: Some("Local".to_string()),
            ports: Some(ports),
            selector: Some(v.names.selector_labels()),
            type_: Some("ClusterIP".to_string()),
            ..addressing(v)
        }),
        ..Default::default()
    })
}

/// `<name>-collector-headless`: the receiver Service without a cluster IP (a DNS record per pod),
/// with upstream's annotation naming the serving-certificate Secret OpenShift would make for it.
pub fn headless_service(v: &Validated) -> Option<Service> {
    let mut service = collector_service(v)?;
    let name = v.names.headless_service();
    service.metadata = service_meta(v, name.clone(), "headless", Some(HEADLESS_LABEL));
    service.metadata.annotations.get_or_insert_default().insert(
        "service.beta.openshift.io/serving-cert-secret-name".to_string(),
        format!("{name}-tls"),
    );
    let spec = service.spec.get_or_insert_default();
    spec.cluster_ip = Some("None".to_string());
    Some(service)
}

/// `<name>-collector-monitoring`: the collector's own metrics; `None` when they are off.
pub fn monitoring_service(v: &Validated) -> Option<Service> {
    let port = i32::from(v.facts.metrics_port?);
    Some(Service {
        metadata: service_meta(
            v,
            v.names.monitoring_service(),
            "monitoring",
            Some(MONITORING_LABEL),
        ),
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                name: Some("monitoring".to_string()),
                port,
                protocol: Some("TCP".to_string()),
                target_port: Some(IntOrString::Int(port)),
                ..Default::default()
            }]),
            selector: Some(v.names.selector_labels()),
            type_: Some("ClusterIP".to_string()),
            ..addressing(v)
        }),
        ..Default::default()
    })
}
