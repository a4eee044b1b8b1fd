//! Apply: make the cluster match the built children with server-side apply under one field
//! manager, then prune what is no longer wanted.
//!
//! Each child is read first and only written when some desired field differs from what the
//! cluster has, so a steady state costs reads and no writes.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::{debug, info};

use crate::build::Children;
use crate::names::{CONFIG_HASH_ANNOTATION, CONTAINER, LABEL_KOTEL, MANAGER, Names};
use crate::quantity;
use crate::validate::Validated;

#[derive(Debug, thiserror::Error)]
#[error("{verb} {kind} {name}: {source}")]
pub struct ApplyError {
    pub verb: &'static str,
    pub kind: &'static str,
    pub name: String,
    #[source]
    pub source: kube::Error,
}

impl ApplyError {
    /// The API server's message when it refused the object for what it contains (422 Invalid,
    /// 413 too large, 400 from strict field validation, and the 500 server-side apply answers
    /// for a list with a key twice, such as two mounts at one path): the resource must change,
    /// a retry cannot help.
    pub fn rejected_input(&self) -> Option<&str> {
        match &self.source {
            kube::Error::Api(s)
                if s.code == 422
                    || s.code == 413
                    || (s.code == 400 && s.message.contains("unknown field"))
                    || (s.code == 500
                        && s.message.contains("failed to create typed patch object")) =>
            {
                Some(&s.message)
            }
            _ => None,
        }
    }
}

/// What an apply did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Objects created, patched or deleted.
    pub writes: usize,
    /// The DaemonSet as the cluster has it after the apply (for status).
    pub daemon_set: Option<DaemonSet>,
    /// What the collector pods start with now, where it differs from what they ran before (the
    /// DaemonSet's pod template as it was): events name only what changed.
    pub changed: Changed,
}

/// What a DaemonSet write changed for the pods: their config, their image (from → to).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changed {
    pub config: bool,
    pub image: Option<(String, String)>,
}

/// Compares the pod template before and after: a first DaemonSet has a new config and no earlier
/// image.
fn changed(before: Option<&DaemonSet>, after: &DaemonSet) -> Changed {
    let hash = |ds: &DaemonSet| {
        ds.spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(CONFIG_HASH_ANNOTATION).cloned())
    };
    let image = |ds: &DaemonSet| {
        ds.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers.iter().find(|c| c.name == CONTAINER))
            .and_then(|c| c.image.clone())
    };
    let Some(before) = before else {
        return Changed {
            config: true,
            image: None,
        };
    };
    Changed {
        config: hash(before) != hash(after),
        image: match (image(before), image(after)) {
            (Some(b), Some(a)) if a != b => Some((b, a)),
            _ => None,
        },
    }
}

/// Whether every field of `desired` is already present, with the same value, in `observed`.
/// Fields the API server adds (defaults, status, managedFields) do not matter, and a desired
/// field may be missing when the API server would not store it (see [`may_be_absent`]).
/// Quantities must be canonical on both sides first ([`comparable`]).
pub fn is_subset(desired: &Value, observed: &Value) -> bool {
    match (desired, observed) {
        (Value::Object(d), Value::Object(o)) => d.iter().all(|(k, dv)| match o.get(k) {
            Some(ov) if !ov.is_null() => is_subset(dv, ov),
            _ => may_be_absent(k, dv),
        }),
        (Value::Array(d), Value::Array(o)) => {
            d.len() == o.len() && d.iter().zip(o).all(|(dv, ov)| is_subset(dv, ov))
        }
        (d, o) => d == o,
    }
}

/// Pointer fields whose zero value the API server keeps and whose absence means something else
/// (escalation allowed, the image's user, tolerate forever, token mounted, the default grace
/// period): a desired zero missing from the cluster is a real difference, someone removed it.
const MEANINGFUL_ZEROS: &[&str] = &[
    "allowPrivilegeEscalation",
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "tolerationSeconds",
    "automountServiceAccountToken",
    "hostUsers",
    "terminationGracePeriodSeconds",
];

/// Whether the API server may store the desired field `key: v` as absent: empty lists and maps,
/// and the zero values (`false`, `0`, `""`) it drops from non-pointer fields (`readOnly: false`,
/// `value: ""`, `hostNetwork: false`), except the [`MEANINGFUL_ZEROS`].
fn may_be_absent(key: &str, v: &Value) -> bool {
    let zero = match v {
        Value::Null => return true,
        Value::Array(a) => return a.is_empty(),
        Value::Object(o) => return o.iter().all(|(k, v)| may_be_absent(k, v)),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
    };
    zero && !MEANINGFUL_ZEROS.contains(&key)
}

/// An object as the comparison sees it: serialized, with its quantities canonical.
fn comparable<K: Serialize>(obj: &K) -> Value {
    let mut v = serde_json::to_value(obj).expect("k8s objects serialize");
    quantity::canonicalize_in(&mut v);
    v
}

/// What [`ensure`] found before it wrote, if it wrote.
enum Before<K> {
    /// Up to date: nothing written.
    Unchanged,
    Created,
    Updated(K),
}

impl<K> Before<K> {
    fn writes(&self) -> usize {
        usize::from(!matches!(self, Before::Unchanged))
    }
}

/// Reads one object and applies `desired` only when it differs. Returns the object as the
/// cluster has it, and what was there before a write.
async fn ensure<K>(api: &Api<K>, desired: &K) -> Result<(K, Before<K>), ApplyError>
where
    K: Resource<DynamicType = ()>
        + k8s_openapi::Resource
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let observed = api
        .get_opt(&desired.name_any())
        .await
        .map_err(|e| apply_error::<K>("get", desired.name_any(), e))?;
    ensure_observed(api, desired, observed).await
}

/// [`ensure`] for an object already read.
async fn ensure_observed<K>(
    api: &Api<K>,
    desired: &K,
    observed: Option<K>,
) -> Result<(K, Before<K>), ApplyError>
where
    K: Resource<DynamicType = ()>
        + k8s_openapi::Resource
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let name = desired.name_any();
    let before = match observed {
        Some(o) if is_subset(&comparable(desired), &comparable(&o)) => {
            debug!(kind = kind_of::<K>(), %name, "up to date");
            return Ok((o, Before::Unchanged));
        }
        Some(o) => Before::Updated(o),
        None => Before::Created,
    };
    let params = PatchParams::apply(MANAGER).force();
    let applied = api
        .patch(&name, &params, &Patch::Apply(desired))
        .await
        .map_err(|e| apply_error::<K>("apply", name.clone(), e))?;
    info!(kind = kind_of::<K>(), %name, created = matches!(before, Before::Created), "applied");
    Ok((applied, before))
}

fn apply_error<K: k8s_openapi::Resource>(
    verb: &'static str,
    name: String,
    source: kube::Error,
) -> ApplyError {
    ApplyError {
        verb,
        kind: kind_of::<K>(),
        name,
        source,
    }
}

/// A DaemonSet's selector cannot change: one made with other selector labels (by an earlier
/// kotel, whose `managed-by` was its own) is deleted so the apply can create it anew. Its pods go
/// with it (a node is without a collector until the new pod starts); filelog resumes from its
/// checkpoints. A DaemonSet the upstream operator made has the same selector and is taken over
/// in place. Returns what is left of `observed`, and whether it was deleted.
async fn remove_if_selector_differs(
    api: &Api<DaemonSet>,
    desired: &DaemonSet,
    observed: Option<DaemonSet>,
) -> Result<(Option<DaemonSet>, bool), ApplyError> {
    let selector = |ds: &DaemonSet| ds.spec.as_ref().map(|s| s.selector.clone());
    let Some(o) = observed else {
        return Ok((None, false));
    };
    if selector(&o) == selector(desired) {
        return Ok((Some(o), false));
    }
    let name = o.name_any();
    info!(%name, "the DaemonSet's selector differs and cannot change: replacing it");
    match api.delete(&name, &DeleteParams::background()).await {
        Ok(_) => Ok((None, true)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok((None, false)),
        Err(e) => Err(apply_error::<DaemonSet>("delete", name, e)),
    }
}

/// Deletes `name` if it exists and carries kotel's marker label (never someone else's object).
async fn remove<K>(api: &Api<K>, name: &str) -> Result<bool, ApplyError>
where
    K: Resource<DynamicType = ()> + k8s_openapi::Resource + Clone + Debug + DeserializeOwned,
{
    let err = |verb, source| apply_error::<K>(verb, name.to_string(), source);
    let Some(observed) = api.get_opt(name).await.map_err(|e| err("get", e))? else {
        return Ok(false);
    };
    if observed.labels().get(LABEL_KOTEL).map(String::as_str) != Some(MANAGER) {
        return Ok(false);
    }
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {
            info!(kind = kind_of::<K>(), %name, "deleted");
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(err("delete", e)),
    }
}

async fn ensure_or_remove<K>(
    api: &Api<K>,
    desired: Option<&K>,
    name: &str,
    applied: &mut Applied,
) -> Result<Option<K>, ApplyError>
where
    K: Resource<DynamicType = ()>
        + k8s_openapi::Resource
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    match desired {
        Some(d) => {
            let (obj, before) = ensure(api, d).await?;
            applied.writes += before.writes();
            Ok(Some(obj))
        }
        None => {
            applied.writes += usize::from(remove(api, name).await?);
            Ok(None)
        }
    }
}

fn kind_of<K: k8s_openapi::Resource>() -> &'static str {
    K::KIND
}

/// Applies every child in dependency order (identity and config before the pods that use them),
/// then prunes ConfigMaps beyond the retention and children no longer wanted. Without
/// `cluster_rbac` (`--collector-rbac off`) ClusterRoles and bindings are not read or touched.
pub async fn apply(
    client: &Client,
    v: &Validated,
    c: &Children,
    cluster_rbac: bool,
) -> Result<Applied, ApplyError> {
    let ns = v.names.namespace.as_str();
    let mut applied = Applied::default();

    let sa_api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    ensure_or_remove(
        &sa_api,
        c.service_account.as_ref(),
        &v.names.collector(),
        &mut applied,
    )
    .await?;

    let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let (_, before) = ensure(&cm_api, &c.config_map).await?;
    applied.writes += before.writes();

    if cluster_rbac {
        let cr_api: Api<ClusterRole> = Api::all(client.clone());
        ensure_or_remove(
            &cr_api,
            c.cluster_role.as_ref(),
            &v.names.cluster_role(),
            &mut applied,
        )
        .await?;
        let crb_api: Api<ClusterRoleBinding> = Api::all(client.clone());
        ensure_or_remove(
            &crb_api,
            c.cluster_role_binding.as_ref(),
            &v.names.cluster_role_binding(),
            &mut applied,
        )
        .await?;
    }

    let svc_api: Api<Service> = Api::namespaced(client.clone(), ns);
    ensure_or_remove(
        &svc_api,
        c.service.as_ref(),
        &v.names.collector(),
        &mut applied,
    )
    .await?;
    ensure_or_remove(
        &svc_api,
        c.headless_service.as_ref(),
        &v.names.headless_service(),
        &mut applied,
    )
    .await?;
    ensure_or_remove(
        &svc_api,
        c.monitoring_service.as_ref(),
        &v.names.monitoring_service(),
        &mut applied,
    )
    .await?;

    let ds_api: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
    let name = c.daemon_set.name_any();
    let observed = ds_api
        .get_opt(&name)
        .await
        .map_err(|e| apply_error::<DaemonSet>("get", name, e))?;
    let (observed, deleted) = remove_if_selector_differs(&ds_api, &c.daemon_set, observed).await?;
    applied.writes += usize::from(deleted);
    let (ds, before) = ensure_observed(&ds_api, &c.daemon_set, observed).await?;
    applied.writes += before.writes();
    applied.changed = match &before {
        Before::Unchanged => Changed::default(),
        Before::Created => changed(None, &ds),
        Before::Updated(b) => changed(Some(b), &ds),
    };
    applied.daemon_set = Some(ds);

    applied.writes += prune_config_maps(
        &cm_api,
        &v.names,
        &c.config_map.name_any(),
        v.config_versions,
    )
    .await?;
    Ok(applied)
}

/// Keeps the current ConfigMap and the `keep` newest others (so a rollback has its config);
/// deletes the rest.
async fn prune_config_maps(
    api: &Api<ConfigMap>,
    names: &Names,
    current: &str,
    keep: usize,
) -> Result<usize, ApplyError> {
    let list = api
        .list(&ListParams::default().labels(&names.selector_string()))
        .await
        .map_err(|source| ApplyError {
            verb: "list",
            kind: "ConfigMap",
            name: names.selector_string(),
            source,
        })?;
    let mut old: Vec<ConfigMap> = list
        .items
        .into_iter()
        .filter(|cm| cm.name_any() != current)
        .collect();
    // Newest first; names break ties so the choice is stable.
    old.sort_by(|a, b| {
        b.creation_timestamp()
            .cmp(&a.creation_timestamp())
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
    let mut deleted = 0;
    for cm in old.iter().skip(keep) {
        deleted += usize::from(remove(api, &cm.name_any()).await?);
    }
    Ok(deleted)
}

/// Removes the cluster-scoped children (the finalizer's job); idempotent.
pub async fn remove_cluster_children(client: &Client, names: &Names) -> Result<(), ApplyError> {
    let crb_api: Api<ClusterRoleBinding> = Api::all(client.clone());
    remove(&crb_api, &names.cluster_role_binding()).await?;
    let cr_api: Api<ClusterRole> = Api::all(client.clone());
    remove(&cr_api, &names.cluster_role()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api_error(code: u16, message: &str) -> ApplyError {
        let status: kube::core::Status = serde_json::from_value(json!({
            "status": "Failure", "code": code, "message": message, "reason": "",
        }))
        .unwrap();
        ApplyError {
            verb: "apply",
            kind: "DaemonSet",
            name: "agent-collector".into(),
            source: kube::Error::Api(Box::new(status)),
        }
    }

    #[test]
    fn refusals_for_the_content_are_the_users_to_fix() {
        let twice = "failed to create typed patch object (ns/agent-collector; apps/v1, Kind=DaemonSet): .spec.template.spec.containers[name=\"otc-container\"].volumeMounts: duplicate entries for key [mountPath=\"/var/log/pods\"]";
        for (code, message) in [
            (
                422,
                "DaemonSet.apps \"x\" is invalid: spec.template.spec.containers[1].image: Required value",
            ),
            (413, "request entity too large"),
            (500, twice),
        ] {
            assert_eq!(
                api_error(code, message).rejected_input(),
                Some(message),
                "{code}"
            );
        }
        for (code, message) in [
            (500, "etcdserver: request timed out"),
            (409, "conflict"),
            (503, "unavailable"),
        ] {
            assert_eq!(
                api_error(code, message).rejected_input(),
                None,
                "{code} {message}"
            );
        }
    }

    #[test]
    fn subset_ignores_server_added_fields() {
        let desired = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"ports": [{"port": 1}]}});
        let observed = json!({
            "metadata": {"name": "a", "labels": {"x": "1"}, "resourceVersion": "7", "managedFields": []},
            "spec": {"ports": [{"port": 1, "protocol": "TCP"}], "clusterIP": "10.0.0.1"},
            "status": {}
        });
        assert!(is_subset(&desired, &observed));
    }

    #[test]
    fn subset_sees_changes() {
        let desired = json!({"spec": {"ports": [{"port": 2}]}});
        let observed = json!({"spec": {"ports": [{"port": 1}]}});
        assert!(!is_subset(&desired, &observed));
        let more = json!({"spec": {"ports": [{"port": 1}, {"port": 2}]}});
        assert!(!is_subset(&more, &observed));
        assert!(!is_subset(&json!({"data": {"k": "v"}}), &json!({})));
    }

    #[test]
    fn empty_desired_matches_missing() {
        assert!(is_subset(
            &json!({"spec": {"env": [], "x": {}}}),
            &json!({"spec": {}})
        ));
    }

    #[test]
    fn zero_values_the_server_drops_match_missing() {
        let desired = json!({"spec": {"hostNetwork": false, "containers": [{
            "env": [{"name": "E", "value": ""}],
            "ports": [{"containerPort": 80, "hostPort": 0}],
            "volumeMounts": [{"name": "v", "mountPath": "/v", "readOnly": false}]
        }]}});
        let observed = json!({"spec": {"containers": [{
            "env": [{"name": "E"}],
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "volumeMounts": [{"name": "v", "mountPath": "/v"}]
        }]}});
        assert!(is_subset(&desired, &observed));
        let observed = json!({"spec": {"containers": [{
            "env": [{"name": "E", "value": "x"}],
            "ports": [{"containerPort": 80}],
            "volumeMounts": [{"name": "v", "mountPath": "/v"}]
        }]}});
        assert!(!is_subset(&desired, &observed), "a non-zero value differs");
    }

    #[test]
    fn meaningful_zeros_must_be_present() {
        let desired =
            json!({"securityContext": {"allowPrivilegeEscalation": false, "runAsUser": 0}});
        assert!(is_subset(&desired, &desired.clone()));
        assert!(!is_subset(
            &desired,
            &json!({"securityContext": {"runAsUser": 0}})
        ));
        assert!(!is_subset(
            &desired,
            &json!({"securityContext": {"allowPrivilegeEscalation": false}})
        ));
    }

    #[test]
    fn quantities_compare_by_value() {
        let desired =
            comparable(&json!({"resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}}}));
        let stored =
            comparable(&json!({"resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}}));
        assert!(is_subset(&desired, &stored));
        let changed = comparable(&json!({"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}));
        assert!(!is_subset(&desired, &changed));
    }

    /// Issue 14: events name what changed for the pods; an image-only change is not a config.
    #[test]
    fn changed_tells_config_from_image() {
        let ds = |hash: &str, image: &str| -> DaemonSet {
            serde_json::from_value(json!({"spec": {"selector": {}, "template": {
                "metadata": {"annotations": {CONFIG_HASH_ANNOTATION: hash}},
                "spec": {"containers": [{"name": "sidecar", "image": "other:1"},
                                        {"name": CONTAINER, "image": image}]}}}}))
            .unwrap()
        };
        assert_eq!(
            changed(None, &ds("a", "c:1")),
            Changed {
                config: true,
                image: None
            }
        );
        assert_eq!(
            changed(Some(&ds("a", "c:1")), &ds("a", "c:2")),
            Changed {
                config: false,
                image: Some(("c:1".into(), "c:2".into()))
            }
        );
        assert_eq!(
            changed(Some(&ds("a", "c:1")), &ds("b", "c:1")),
            Changed {
                config: true,
                image: None
            }
        );
        assert_eq!(
            changed(Some(&ds("a", "c:1")), &ds("a", "c:1")),
            Changed::default()
        );
    }
}
