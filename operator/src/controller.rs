//! The reconcile loop: observe → validate → build → apply → status for one resource, the
//! finalizer around cluster-scoped RBAC, and the error policy that tells bad input (wait for an
//! edit) from transient failure (back off and retry).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, Pod, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::apply::{self, ApplyError};
use crate::build;
use crate::crd::{FINALIZER, ManagementState, OpenTelemetryCollector};
use crate::diagnose;
use crate::metrics::Metrics;
use crate::names::{self, LABEL_KOTEL, MANAGER, Names};
use crate::status::{self, Outcome};
use crate::validate::{self, InvalidReason, InvalidSpec, OperatorDefaults};

/// Resync period of a healthy resource; changes to children wake the reconciler at once.
const RESYNC: Duration = Duration::from_secs(300);
/// How soon an unfinished rollout is looked at again (pod states are not watched).
const ROLLOUT_POLL: Duration = Duration::from_secs(10);
const BACKOFF_BASE: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Everything a reconcile needs.
pub struct Context {
    pub client: Client,
    pub defaults: OperatorDefaults,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per object, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        defaults: OperatorDefaults,
        recorder: Recorder,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            client,
            defaults,
            recorder,
            metrics,
            failures: Mutex::default(),
        }
    }
}

/// Transient failures; bad input never becomes an `Error` (it is reported in status instead).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("update finalizers of {name}: {source}")]
    Finalizer {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("write status of {name}: {source}")]
    Status {
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// A short fixed category, for metrics and logs.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Apply(_) => "kube_api",
            Error::Finalizer { .. } => "finalizer",
            Error::Status { .. } => "status",
        }
    }
}

fn key(cr: &OpenTelemetryCollector) -> String {
    format!("{}/{}", cr.namespace().unwrap_or_default(), cr.name_any())
}

/// The reconciler given to the kube-runtime Controller.
pub async fn reconcile(
    cr: Arc<OpenTelemetryCollector>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let start = Instant::now();
    let result = reconcile_inner(&cr, &ctx).await;
    let seconds = start.elapsed().as_secs_f64();
    match &result {
        Ok((label, _)) => {
            ctx.metrics.reconciled(label, seconds);
            ctx.failures
                .lock()
                .expect("failure map poisoned")
                .remove(&key(&cr));
        }
        Err(e) => {
            ctx.metrics.reconciled("error", seconds);
            ctx.metrics.error(e.category());
        }
    }
    result.map(|(_, action)| action)
}

/// Transient errors back off exponentially per object (5 s … 5 min).
pub fn error_policy(cr: Arc<OpenTelemetryCollector>, err: &Error, ctx: Arc<Context>) -> Action {
    let n = {
        let mut failures = ctx.failures.lock().expect("failure map poisoned");
        let n = failures.entry(key(&cr)).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(10)))
        .min(BACKOFF_MAX);
    warn!(
        collector = %key(&cr),
        category = err.category(),
        attempt = n,
        retry_in_s = delay.as_secs(),
        error = %err,
        "reconcile failed"
    );
    Action::requeue(delay)
}

async fn reconcile_inner(
    cr: &OpenTelemetryCollector,
    ctx: &Context,
) -> Result<(&'static str, Action), Error> {
    let name = cr.name_any();
    let ns = cr.namespace().unwrap_or_default();
    let names = Names::new(&name, &ns);

    if cr.meta().deletion_timestamp.is_some() {
        // Cleanup runs even when unmanaged: otherwise the deletion would hang on our finalizer.
        if has_finalizer(cr) {
            if ctx.defaults.collector_rbac {
                apply::remove_cluster_children(&ctx.client, &names).await?;
            }
            set_finalizer(cr, ctx, false).await?;
            info!(collector = %key(cr), "cluster RBAC removed, finalizer released");
        }
        return Ok(("deleted", Action::await_change()));
    }
    if cr.spec.management_state == ManagementState::Unmanaged {
        // Status still follows the generation, so GitOps tools see the edit was observed.
        debug!(collector = %key(cr), "unmanaged: nothing to do");
        write_status(cr, ctx, &Outcome::Unmanaged).await?;
        return Ok(("unmanaged", Action::await_change()));
    }

    let validated = match validate::validate(cr, &ctx.defaults) {
        Ok(v) => v,
        Err(invalid) => {
            warn!(collector = %key(cr), reason = %invalid.reason, message = %invalid.message, "invalid spec");
            ctx.metrics.error("invalid_spec");
            return stall(cr, ctx, &names, &invalid).await;
        }
    };
    let children = build::children(&validated);

    // The finalizer goes on before the ClusterRole exists, so it can never leak.
    if children.cluster_role.is_some() && !has_finalizer(cr) {
        set_finalizer(cr, ctx, true).await?;
    }
    let applied = match apply::apply(
        &ctx.client,
        &validated,
        &children,
        ctx.defaults.collector_rbac,
    )
    .await
    {
        Ok(a) => a,
        Err(e) if e.rejected_input().is_some() => {
            let message = e.rejected_input().unwrap_or_default();
            let invalid = InvalidSpec::new(
                InvalidReason::RejectedByAPIServer,
                format!("the API server refused {} {}: {message}", e.kind, e.name),
            );
            warn!(collector = %key(cr), error = %e, "the API server refused a child object");
            ctx.metrics.error("rejected_by_api_server");
            return stall(cr, ctx, &names, &invalid).await;
        }
        Err(e) => {
            let msg = e.to_string();
            if let Err(status_err) = write_status(cr, ctx, &Outcome::Failed(msg)).await {
                warn!(collector = %key(cr), error = %status_err, "could not report the failure in status");
            }
            return Err(e.into());
        }
    };
    if children.cluster_role.is_none() && has_finalizer(cr) {
        set_finalizer(cr, ctx, false).await?;
    }
    if applied.changed.config {
        let config_map = validated.names.config_map(&validated.config_hash);
        let note = format!("collector config {config_map} applied; the pods roll to it");
        publish(ctx, cr, EventType::Normal, "ConfigApplied", note).await;
    }
    if let Some((from, to)) = &applied.changed.image {
        let note = format!("collector image {from} → {to}; the pods roll to it");
        publish(ctx, cr, EventType::Normal, "ImageChanged", note).await;
    }
    let rollout = applied.daemon_set.as_ref().map(status::rollout);
    let complete = rollout.as_ref().is_some_and(|r| r.complete);
    // Pods are not watched: while a rollout is under way, look at them and come back soon, so
    // status names the pods that fail and what the kubelet says about them.
    let problems = if complete {
        Vec::new()
    } else {
        let desired = rollout.map_or(0, |r| r.desired);
        observe_pod_problems(ctx, &ns, &validated, desired).await
    };
    let outcome = Outcome::Applied {
        validated: &validated,
        daemon_set: applied.daemon_set.as_ref(),
        problems: &problems,
        progress_deadline: ctx.defaults.progress_deadline,
    };
    write_status(cr, ctx, &outcome).await?;
    debug!(collector = %key(cr), writes = applied.writes, "reconciled");
    let next = if complete { RESYNC } else { ROLLOUT_POLL };
    Ok(("ok", Action::requeue(next)))
}

/// Bad input: status says why (and whether an earlier collector still runs); only an edit can
/// fix it, and the edit wakes us.
async fn stall(
    cr: &OpenTelemetryCollector,
    ctx: &Context,
    names: &Names,
    invalid: &InvalidSpec,
) -> Result<(&'static str, Action), Error> {
    let ns = cr.namespace().unwrap_or_default();
    let running = collector_exists(ctx, &ns, names).await;
    write_status(cr, ctx, &Outcome::Invalid { invalid, running }).await?;
    Ok(("invalid", Action::await_change()))
}

/// Whether a collector DaemonSet of an earlier spec exists (so a refused spec leaves it running);
/// false when it cannot be read.
async fn collector_exists(ctx: &Context, ns: &str, names: &Names) -> bool {
    let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), ns);
    matches!(api.get_opt(&names.collector()).await, Ok(Some(_)))
}

/// The collector's pods that are not ready and why; empty when they cannot be read (status then
/// says only what the DaemonSet says).
async fn observe_pod_problems(
    ctx: &Context,
    ns: &str,
    validated: &validate::Validated,
    desired: i32,
) -> Vec<diagnose::PodProblem> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let lp = ListParams::default().labels(&validated.names.selector_string());
    let list = match pods.list(&lp).await {
        Ok(l) => l.items,
        Err(e) => {
            debug!(namespace = %ns, error = %e, "could not list collector pods");
            return Vec::new();
        }
    };
    // Events only for pods whose containers say nothing (a mount or sandbox failure, a
    // readiness probe that fails).
    let now = k8s_openapi::jiff::Timestamp::now();
    let events: Api<CoreEvent> = Api::namespaced(ctx.client.clone(), ns);
    let mut found = Vec::new();
    for p in diagnose::pod_problems(&list, &[], now) {
        if p.reason != "Pending" && p.reason != "NotReady" {
            continue;
        }
        let fs = format!("involvedObject.kind=Pod,involvedObject.name={}", p.pod);
        if let Ok(l) = events.list(&ListParams::default().fields(&fs)).await {
            found.extend(l.items);
        }
    }
    let mut problems = diagnose::pod_problems(&list, &found, now);
    // Fewer pods than nodes to run on: the DaemonSet controller may be refused their creation.
    if list.len() < usize::try_from(desired).unwrap_or(0) {
        let ds = validated.names.collector();
        let fs = format!("involvedObject.kind=DaemonSet,involvedObject.name={ds}");
        if let Ok(l) = events.list(&ListParams::default().fields(&fs)).await
            && let Some(p) = diagnose::creation_refused(&ds, &l.items, now)
        {
            problems.push(p);
        }
    }
    problems
}

fn has_finalizer(cr: &OpenTelemetryCollector) -> bool {
    cr.finalizers().iter().any(|f| f == FINALIZER)
}

/// Adds or removes our finalizer. A merge patch guarded by `resourceVersion`, not server-side
/// apply: an apply racing with the deletion could re-create the resource.
async fn set_finalizer(
    cr: &OpenTelemetryCollector,
    ctx: &Context,
    present: bool,
) -> Result<(), Error> {
    let mut finalizers: Vec<String> = cr
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if present {
        finalizers.push(FINALIZER.to_string());
    }
    let patch = json!({
        "metadata": {"finalizers": finalizers, "resourceVersion": cr.resource_version()}
    });
    let api: Api<OpenTelemetryCollector> =
        Api::namespaced(ctx.client.clone(), &cr.namespace().unwrap_or_default());
    // Under the operator's own field manager (the default would record it as `unknown`).
    let params = PatchParams {
        field_manager: Some(MANAGER.to_string()),
        ..PatchParams::default()
    };
    api.patch(&cr.name_any(), &params, &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::Finalizer {
            name: key(cr),
            source,
        })?;
    Ok(())
}

/// Writes status only when it changes, and records an Event when Ready changes.
async fn write_status(
    cr: &OpenTelemetryCollector,
    ctx: &Context,
    outcome: &Outcome<'_>,
) -> Result<(), Error> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let current = cr.status.as_ref();
    let desired = status::desired_status(current, cr.meta().generation, outcome, now);
    if current == Some(&desired) {
        return Ok(());
    }
    let api: Api<OpenTelemetryCollector> =
        Api::namespaced(ctx.client.clone(), &cr.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": "opentelemetry.io/v1beta1",
        "kind": "OpenTelemetryCollector",
        "status": desired,
    });
    api.patch_status(
        &cr.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|source| Error::Status {
        name: key(cr),
        source,
    })?;

    let before = status::ready_of(current);
    let after = status::ready_of(Some(&desired));
    if before != after
        && let Some((state, reason)) = after
    {
        let message = desired
            .conditions
            .iter()
            .find(|c| c.type_ == status::READY)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        let type_ = match (state.as_str(), reason.as_str()) {
            ("True", _) | (_, status::REASON_ROLLOUT | status::REASON_UNMANAGED) => {
                EventType::Normal
            }
            _ => EventType::Warning,
        };
        publish(ctx, cr, type_, &reason, message).await;
    }
    Ok(())
}

/// Events are best effort: a failure to record one never fails the reconcile.
async fn publish(
    ctx: &Context,
    cr: &OpenTelemetryCollector,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note.chars().take(1024).collect()),
        action: "Reconcile".to_string(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &cr.object_ref(&())).await {
        warn!(collector = %key(cr), error = %e, "could not record event");
    }
}

/// Runs one controller per watched namespace (or one for all) until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    namespaces: Vec<String>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    let client = ctx.client.clone();
    let controllers = scopes.into_iter().map(|ns| {
        let api = |c: Client| -> Api<OpenTelemetryCollector> {
            match &ns {
                Some(ns) => Api::namespaced(c, ns),
                None => Api::all(c),
            }
        };
        // Children are watched through our label only, so the cache holds our objects and not
        // every ConfigMap in the cluster.
        let owned = watcher::Config::default().labels(&format!("{LABEL_KOTEL}={MANAGER}"));
        let child = |c: Client| match &ns {
            Some(ns) => (
                Api::<DaemonSet>::namespaced(c.clone(), ns),
                Api::<ConfigMap>::namespaced(c.clone(), ns),
                Api::<Service>::namespaced(c.clone(), ns),
                Api::<ServiceAccount>::namespaced(c, ns),
            ),
            None => (
                Api::all(c.clone()),
                Api::all(c.clone()),
                Api::all(c.clone()),
                Api::all(c),
            ),
        };
        let (ds, cm, svc, sa) = child(client.clone());
        let mut stop = shutdown.clone();
        // Cluster-scoped children have no owner reference; their annotations name the owner.
        fn owner<K: Resource>(obj: K) -> Option<ObjectRef<OpenTelemetryCollector>> {
            let (ns, name) = names::owner_of(obj.annotations())?;
            Some(ObjectRef::new(&name).within(&ns))
        }
        Controller::new(api(client.clone()), watcher::Config::default())
            .owns(ds, owned.clone())
            .owns(cm, owned.clone())
            .owns(svc, owned.clone())
            .owns(sa, owned.clone())
            .watches(
                Api::<ClusterRole>::all(client.clone()),
                owned.clone(),
                owner,
            )
            .watches(Api::<ClusterRoleBinding>::all(client.clone()), owned, owner)
            .graceful_shutdown_on(async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            })
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|result| async move {
                match result {
                    Ok((obj, _)) => debug!(collector = %obj, "reconcile done"),
                    Err(e) => debug!(error = %e, "controller event"),
                }
            })
    });
    futures::future::join_all(controllers).await;
}
