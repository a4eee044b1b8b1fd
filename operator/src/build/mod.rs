//! Build: a [`Validated`] collector → every child object, one pure function per kind.
//!
//! Output is deterministic (sorted maps, sorted lists) so that server-side apply never flaps and
//! snapshot tests pin every field.

mod configmap;
mod daemonset;
mod rbac;
mod service;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::names::{OWNER_NAME_ANNOTATION, OWNER_NAMESPACE_ANNOTATION};
use crate::validate::Validated;

pub use configmap::config_map;
pub use daemonset::daemon_set;
pub use rbac::{cluster_role, cluster_role_binding, service_account};
pub use service::{collector_service, headless_service, monitoring_service, service_ports};

/// Every object one collector needs. `None` means "must not exist".
#[derive(Debug, Clone, PartialEq)]
pub struct Children {
    pub service_account: Option<ServiceAccount>,
    pub config_map: ConfigMap,
    pub cluster_role: Option<ClusterRole>,
    pub cluster_role_binding: Option<ClusterRoleBinding>,
    pub daemon_set: DaemonSet,
    pub service: Option<Service>,
    pub headless_service: Option<Service>,
    pub monitoring_service: Option<Service>,
}

pub fn children(v: &Validated) -> Children {
    let cluster_role = cluster_role(v);
    Children {
        service_account: service_account(v),
        config_map: config_map(v),
        cluster_role_binding: cluster_role.as_ref().map(|_| cluster_role_binding(v)),
        cluster_role,
        daemon_set: daemon_set(v),
        service: collector_service(v),
        headless_service: headless_service(v),
        monitoring_service: monitoring_service(v),
    }
}

/// Metadata of a namespaced child: labels and the controller owner reference that lets `.owns()`
/// wake the reconciler and the garbage collector delete it with the resource.
fn namespaced_meta(v: &Validated, name: String) -> ObjectMeta {
    ObjectMeta {
        annotations: (!v.annotations.is_empty()).then(|| v.annotations.clone()),
        labels: Some(child_labels(v, &name)),
        namespace: Some(v.names.namespace.clone()),
        owner_references: Some(vec![owner_reference(v)]),
        name: Some(name),
        ..Default::default()
    }
}

/// Metadata of a cluster-scoped child: no owner reference (it cannot point across scopes); the
/// finalizer removes it.
fn cluster_meta(v: &Validated, name: String) -> ObjectMeta {
    ObjectMeta {
        annotations: Some(BTreeMap::from([
            (
                OWNER_NAMESPACE_ANNOTATION.to_string(),
                v.names.namespace.clone(),
            ),
            (OWNER_NAME_ANNOTATION.to_string(), v.names.instance.clone()),
        ])),
        labels: Some(child_labels(v, &name)),
        name: Some(name),
        ..Default::default()
    }
}

/// The resource's labels, then the operator's on top: selector labels are never overridden.
fn child_labels(v: &Validated, name: &str) -> BTreeMap<String, String> {
    let mut labels = v.labels.clone();
    labels.extend(v.names.labels(name, &crate::names::image_tag(&v.image)));
    labels
}

pub fn owner_reference(v: &Validated) -> OwnerReference {
    OwnerReference {
        api_version: "opentelemetry.io/v1beta1".to_string(),
        kind: "OpenTelemetryCollector".to_string(),
        name: v.names.instance.clone(),
        uid: v.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}
