//! ServiceAccount, ClusterRole and ClusterRoleBinding of the collector pods.

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleRef, Subject};

use super::{cluster_meta, namespaced_meta};
use crate::validate::Validated;

/// `None` when `spec.serviceAccount` names an existing one.
pub fn service_account(v: &Validated) -> Option<ServiceAccount> {
    v.owns_service_account.then(|| ServiceAccount {
        metadata: namespaced_meta(v, v.names.collector()),
        ..Default::default()
    })
}

/// `None` when the running components need no cluster permissions.
pub fn cluster_role(v: &Validated) -> Option<ClusterRole> {
    (!v.rbac_rules.is_empty()).then(|| ClusterRole {
        metadata: cluster_meta(v, v.names.cluster_role()),
        rules: Some(v.rbac_rules.clone()),
        ..Default::default()
    })
}

pub fn cluster_role_binding(v: &Validated) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: cluster_meta(v, v.names.cluster_role_binding()),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_string(),
            kind: "ClusterRole".to_string(),
            name: v.names.cluster_role(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_string(),
            name: v.service_account.clone(),
            namespace: Some(v.names.namespace.clone()),
            ..Default::default()
        }]),
    }
}
