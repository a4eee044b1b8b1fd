//! Status: what the operator tells the user, computed purely from the outcome of a reconcile and
//! the DaemonSet as observed.
//!
//! Conditions follow Kubernetes conventions so that both Flux's kstatus and Argo CD read them:
//! `Ready` is True only when the DaemonSet rollout is complete; `Reconciling` (True while work is
//! pending) and `Stalled` (True when only an edit can help) are kstatus's abnormal-true pair.

use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{OpenTelemetryCollectorStatus, ScaleStatus};
use crate::diagnose::{self, PodProblem};
use crate::validate::{InvalidSpec, Validated};

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// Reason of Ready=True.
pub const REASON_RECONCILED: &str = "Reconciled";
pub const REASON_ROLLOUT: &str = "RolloutInProgress";
pub const REASON_ERROR: &str = "ReconcileError";
/// Ready=False and Stalled=True: pods fail in a way only a change can end (crash loop, image,
/// mount, container config).
pub const REASON_PODS_FAILING: &str = "PodsFailing";
/// Ready=False and Stalled=True: the rollout of this generation did not finish in time.
pub const REASON_DEADLINE: &str = "ProgressDeadlineExceeded";
/// Every condition while `managementState` is unmanaged: the operator changes nothing.
pub const REASON_UNMANAGED: &str = "Unmanaged";
/// Condition (only while True): `upgradeStrategy: none` keeps an image older than the operator's.
pub const UPGRADE_HELD: &str = "UpgradeHeld";
/// Condition (only while True): the config uses names upstream deprecated or renamed.
pub const CONFIG_DEPRECATED: &str = "ConfigDeprecated";
/// Condition (only while True): `--collector-rbac-allow` withholds rights the config needs.
pub const RBAC_WITHHELD: &str = "CollectorRBACWithheld";
/// How many failing pods a condition message names.
const PROBLEMS_NAMED: usize = 3;

/// How a reconcile ended.
pub enum Outcome<'a> {
    /// Everything applied; the DaemonSet as the cluster has it.
    Applied {
        validated: &'a Validated,
        daemon_set: Option<&'a DaemonSet>,
        /// Collector pods that are not ready, and why (empty when the rollout is complete).
        problems: &'a [PodProblem],
        /// How long a rollout may take before it is reported as Stalled.
        progress_deadline: Duration,
    },
    /// `managementState: unmanaged`: nothing was looked at or changed.
    Unmanaged,
    /// Bad input; nothing was changed. `running`: a collector of an earlier spec still runs.
    Invalid {
        invalid: &'a InvalidSpec,
        running: bool,
    },
    /// A transient failure; it will be retried.
    Failed(String),
}

/// The rollout state of a DaemonSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub desired: i32,
    pub ready: i32,
    pub complete: bool,
    pub message: String,
}

/// As `kubectl rollout status` judges a DaemonSet: the controller has seen the current spec, and
/// every scheduled pod is updated and available.
pub fn rollout(ds: &DaemonSet) -> Rollout {
    let generation = ds.metadata.generation.unwrap_or(0);
    let Some(s) = ds.status.as_ref() else {
        return Rollout {
            desired: 0,
            ready: 0,
            complete: false,
            message: "waiting for the DaemonSet controller to report status".to_string(),
        };
    };
    let desired = s.desired_number_scheduled;
    let updated = s.updated_number_scheduled.unwrap_or(0);
    let available = s.number_available.unwrap_or(0);
    let observed = s.observed_generation.unwrap_or(0) >= generation;
    let complete = observed && updated >= desired && available >= desired;
    let message = if !observed {
        "waiting for the DaemonSet controller to observe the new spec".to_string()
    } else if complete {
        format!("DaemonSet rollout complete: {available}/{desired} pods available")
    } else {
        format!(
            "waiting for DaemonSet rollout: {updated} of {desired} pods updated, {available} available"
        )
    };
    Rollout {
        desired,
        ready: s.number_ready,
        complete,
        message,
    }
}

/// The status to write. Keeps `lastTransitionTime` of conditions whose status did not change,
/// so an unchanged outcome yields an identical status (and no write). Reconciling's
/// `lastTransitionTime` is when the rollout of the current generation began: the progress
/// deadline counts from it.
pub fn desired_status(
    current: Option<&OpenTelemetryCollectorStatus>,
    generation: Option<i64>,
    outcome: &Outcome<'_>,
    now: Time,
) -> OpenTelemetryCollectorStatus {
    let mut status = current.cloned().unwrap_or_default();
    status.observed_generation = generation;
    let old = std::mem::take(&mut status.conditions);
    let find = |type_: &str| old.iter().find(|c| c.type_ == type_);
    // Conditions besides the kstatus three: rebuilt from a spec that was applied, kept otherwise.
    let mut extra: Vec<Condition> = Vec::new();
    let (ready, reconciling, stalled) = match outcome {
        Outcome::Applied {
            validated,
            daemon_set,
            problems,
            progress_deadline,
        } => {
            status.version = Some(validated.version.clone());
            status.image = Some(validated.image.clone());
            extra = notices(validated);
            let r = daemon_set.map(rollout);
            status.scale = Some(ScaleStatus {
                selector: Some(validated.names.selector_string()),
                replicas: Some(r.as_ref().map_or(0, |r| r.desired)),
                status_replicas: Some(
                    r.as_ref()
                        .map_or("0/0".to_string(), |r| format!("{}/{}", r.ready, r.desired)),
                ),
            });
            match r {
                Some(r) if r.complete => kstatus(true, false, false, REASON_RECONCILED, &r.message),
                other => {
                    let mut msg =
                        other.map_or("waiting for the DaemonSet".to_string(), |r| r.message);
                    if !problems.is_empty() {
                        msg = format!("{msg}: {}", diagnose::summary(problems, PROBLEMS_NAMED));
                    }
                    let overdue = deadline_passed(&old, generation, &now, *progress_deadline);
                    let stuck_reason = if problems.iter().any(|p| p.stuck) {
                        Some(REASON_PODS_FAILING)
                    } else if overdue {
                        msg = format!(
                            "the rollout did not finish within {}s: {msg}; the earlier config's ConfigMap is kept, so reverting the change rolls back",
                            progress_deadline.as_secs()
                        );
                        Some(REASON_DEADLINE)
                    } else {
                        None
                    };
                    match stuck_reason {
                        Some(reason) => kstatus(false, false, true, reason, &msg),
                        None => kstatus(false, true, false, REASON_ROLLOUT, &msg),
                    }
                }
            }
        }
        Outcome::Unmanaged => {
            let msg = "managementState is unmanaged: the operator changes nothing of this collector, which runs as it was left";
            // Ready stays True if it was (the collector runs as before); anything else is
            // Unknown, never False, which kstatus would read as in progress for as long as the
            // resource stays unmanaged.
            let (mut ready, reconciling, stalled) =
                kstatus(false, false, false, REASON_UNMANAGED, msg);
            ready.status = match find(READY) {
                Some(c) if c.status == "True" => "True".to_string(),
                _ => "Unknown".to_string(),
            };
            (ready, reconciling, stalled)
        }
        Outcome::Invalid {
            invalid: e,
            running,
        } => {
            let reason = e.reason.as_str();
            let msg = if *running {
                format!(
                    "{}; the running collector keeps its last good config",
                    e.message
                )
            } else {
                format!("{}; nothing was rolled out", e.message)
            };
            kstatus(false, false, true, reason, &msg)
        }
        Outcome::Failed(msg) => kstatus(false, true, false, REASON_ERROR, msg),
    };
    let kept: Vec<Condition> = if matches!(outcome, Outcome::Applied { .. }) {
        Vec::new()
    } else {
        old.iter()
            .filter(|c| ![READY, RECONCILING, STALLED].contains(&c.type_.as_str()))
            .cloned()
            .collect()
    };
    let fresh = [ready, reconciling, stalled]
        .into_iter()
        .chain(extra)
        .map(|mut c| {
            c.observed_generation = generation;
            c.last_transition_time = old
                .iter()
                .find(|o| o.type_ == c.type_ && o.status == c.status && !new_rollout(o, &c))
                .map_or_else(|| now.clone(), |o| o.last_transition_time.clone());
            c
        })
        .collect::<Vec<_>>();
    status.conditions = fresh.into_iter().chain(kept).collect();
    status
}

/// A Reconciling=True for another generation than the one before: a new rollout began.
fn new_rollout(old: &Condition, new: &Condition) -> bool {
    new.type_ == RECONCILING
        && new.status == "True"
        && old.observed_generation != new.observed_generation
}

/// Whether the rollout of `generation` has been under way for longer than `deadline` (or was
/// already reported overdue: it stays so until it completes or the spec changes).
fn deadline_passed(
    old: &[Condition],
    generation: Option<i64>,
    now: &Time,
    deadline: Duration,
) -> bool {
    let this = |c: &&Condition| c.observed_generation == generation && c.status == "True";
    let overdue = old
        .iter()
        .filter(this)
        .any(|c| c.type_ == STALLED && c.reason == REASON_DEADLINE);
    let started = old
        .iter()
        .filter(this)
        .find(|c| c.type_ == RECONCILING && c.reason == REASON_ROLLOUT)
        .map(|c| c.last_transition_time.0.as_second());
    let limit = i64::try_from(deadline.as_secs()).unwrap_or(i64::MAX);
    overdue || started.is_some_and(|t| now.0.as_second().saturating_sub(t) >= limit)
}

/// The informational conditions of an applied spec (present only while True).
fn notices(v: &Validated) -> Vec<Condition> {
    let mut out = Vec::new();
    if let Some(offered) = &v.held_upgrade {
        let msg = format!(
            "upgradeStrategy is none: the collectors keep {}; this operator ships {offered} (set upgradeStrategy: automatic, or spec.image, to roll)",
            v.image
        );
        out.push(cond(UPGRADE_HELD, true, "UpgradeStrategyNone", &msg));
    }
    if !v.deprecations.is_empty() {
        let msg = format!(
            "the config uses deprecated names, accepted as their replacements (the spec is left as written): {}",
            v.deprecations.join("; ")
        );
        out.push(cond(CONFIG_DEPRECATED, true, "DeprecatedConfig", &msg));
    }
    if !v.rbac_withheld.is_empty() {
        let msg = format!(
            "the operator's --collector-rbac-allow keeps it from granting what the config needs: {}; bind these to ServiceAccount {} yourself, or the components that need them cannot work",
            v.rbac_withheld.join("; "),
            v.service_account
        );
        out.push(cond(RBAC_WITHHELD, true, "NotAllowedByOperator", &msg));
    }
    out
}

/// Ready, Reconciling and Stalled with one reason and message.
fn kstatus(
    ready: bool,
    reconciling: bool,
    stalled: bool,
    reason: &str,
    message: &str,
) -> (Condition, Condition, Condition) {
    (
        cond(READY, ready, reason, message),
        cond(RECONCILING, reconciling, reason, message),
        cond(STALLED, stalled, reason, message),
    )
}

fn cond(type_: &str, status: bool, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        // Condition messages are limited to 32 KiB; config error lists can be long.
        message: message.chars().take(4096).collect(),
        observed_generation: None,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    }
}

/// The Ready condition of a status, as (status, reason).
pub fn ready_of(status: Option<&OpenTelemetryCollectorStatus>) -> Option<(String, String)> {
    status?
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DaemonSetStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn ds(generation: i64, observed: i64, desired: i32, updated: i32, available: i32) -> DaemonSet {
        DaemonSet {
            metadata: ObjectMeta {
                generation: Some(generation),
                ..Default::default()
            },
            status: Some(DaemonSetStatus {
                observed_generation: Some(observed),
                desired_number_scheduled: desired,
                updated_number_scheduled: Some(updated),
                number_available: Some(available),
                number_ready: available,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn rollout_complete_only_when_observed_updated_and_available() {
        assert!(rollout(&ds(2, 2, 3, 3, 3)).complete);
        assert!(!rollout(&ds(2, 1, 3, 3, 3)).complete);
        assert!(!rollout(&ds(2, 2, 3, 2, 3)).complete);
        assert!(!rollout(&ds(2, 2, 3, 3, 2)).complete);
        assert!(
            rollout(&ds(1, 1, 0, 0, 0)).complete,
            "no nodes: nothing to wait for"
        );
    }

    #[test]
    fn invalid_spec_is_stalled_not_reconciling() {
        let e = InvalidSpec {
            reason: crate::validate::InvalidReason::InvalidConfig,
            message: "receivers.otlp: bad".into(),
        };
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(1000).unwrap());
        let outcome = Outcome::Invalid {
            invalid: &e,
            running: true,
        };
        let s = desired_status(None, Some(4), &outcome, now.clone());
        let by = |t: &str| s.conditions.iter().find(|c| c.type_ == t).unwrap().clone();
        assert_eq!(by(READY).status, "False");
        assert_eq!(by(READY).reason, "InvalidConfig");
        assert_eq!(by(STALLED).status, "True");
        assert_eq!(by(RECONCILING).status, "False");
        assert_eq!(s.observed_generation, Some(4));

        // Same outcome later: identical status, transition times kept.
        let later = Time(k8s_openapi::jiff::Timestamp::from_second(2000).unwrap());
        let again = desired_status(Some(&s), Some(4), &outcome, later);
        assert_eq!(again, s);
        assert!(by(READY).message.ends_with("keeps its last good config"));

        // Nothing ran yet: the message does not claim a last good config.
        let first = Outcome::Invalid {
            invalid: &e,
            running: false,
        };
        let s = desired_status(None, Some(1), &first, now);
        let ready = s.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert!(
            ready.message.ends_with("nothing was rolled out"),
            "{}",
            ready.message
        );
    }

    fn validated(config_extra: serde_json::Value) -> Validated {
        let mut config = serde_json::json!({
            "receivers": {"otlp": {"protocols": {"grpc": {}}}},
            "exporters": {"debug": {}},
            "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["debug"]}}}
        });
        if let serde_json::Value::Object(extra) = config_extra {
            for (k, v) in extra {
                config[k] = v;
            }
        }
        let cr: crate::crd::OpenTelemetryCollector = serde_json::from_value(serde_json::json!({
            "apiVersion": "opentelemetry.io/v1beta1",
            "kind": "OpenTelemetryCollector",
            "metadata": {"name": "agent", "namespace": "obs", "uid": "u1", "generation": 1},
            "spec": {"mode": "daemonset", "config": config},
        }))
        .unwrap();
        crate::validate::validate(&cr, &Default::default()).expect("valid")
    }

    /// A reconcile that applied `v` and found the DaemonSet `ds`, with a 600 s deadline.
    fn applied<'a>(v: &'a Validated, ds: &'a DaemonSet) -> Outcome<'a> {
        Outcome::Applied {
            validated: v,
            daemon_set: Some(ds),
            problems: &[],
            progress_deadline: Duration::from_secs(600),
        }
    }

    fn at(second: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(second).unwrap())
    }

    fn by<'a>(s: &'a OpenTelemetryCollectorStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    /// Issue 14: a rollout that does not finish within the deadline is Stalled, counted from
    /// when the rollout of this generation began; a new generation starts the clock again.
    #[test]
    fn a_rollout_over_its_deadline_is_stalled_until_the_spec_changes() {
        let v = validated(serde_json::json!({}));
        let rolling = ds(1, 1, 1, 0, 0);
        let outcome = applied(&v, &rolling);
        let s = desired_status(None, Some(1), &outcome, at(1000));
        assert_eq!(by(&s, RECONCILING).status, "True");
        let s = desired_status(Some(&s), Some(1), &outcome, at(1599));
        assert_eq!(by(&s, STALLED).status, "False", "still inside the deadline");
        let s = desired_status(Some(&s), Some(1), &outcome, at(1600));
        assert_eq!(by(&s, STALLED).status, "True");
        assert_eq!(by(&s, STALLED).reason, REASON_DEADLINE);
        assert_eq!(
            by(&s, RECONCILING).status,
            "False",
            "kstatus: Failed, not InProgress"
        );
        assert!(
            by(&s, READY).message.contains("within 600s"),
            "{}",
            by(&s, READY).message
        );
        // Stays overdue on later looks at the same generation.
        let s = desired_status(Some(&s), Some(1), &outcome, at(1700));
        assert_eq!(by(&s, STALLED).reason, REASON_DEADLINE);
        // An edit (generation 2) starts a new rollout and a new clock.
        let s = desired_status(Some(&s), Some(2), &outcome, at(1800));
        assert_eq!(by(&s, RECONCILING).status, "True");
        assert_eq!(by(&s, RECONCILING).last_transition_time, at(1800));
        let s = desired_status(Some(&s), Some(2), &outcome, at(2399));
        assert_eq!(by(&s, STALLED).status, "False");
        // It completes: Ready.
        let done = ds(1, 1, 1, 1, 1);
        let complete = applied(&v, &done);
        let s = desired_status(Some(&s), Some(2), &complete, at(2500));
        assert_eq!(by(&s, READY).status, "True");
        assert_eq!(by(&s, STALLED).status, "False");
    }

    /// Issue 14: unmanaged still observes the generation (Flux would wait forever otherwise),
    /// keeps Ready's state, and is neither reconciling nor stalled.
    #[test]
    fn unmanaged_follows_the_generation_and_keeps_ready() {
        let v = validated(serde_json::json!({}));
        let done = ds(1, 1, 1, 1, 1);
        let complete = applied(&v, &done);
        let s = desired_status(None, Some(1), &complete, at(1000));
        let u = desired_status(Some(&s), Some(2), &Outcome::Unmanaged, at(2000));
        assert_eq!(u.observed_generation, Some(2));
        assert_eq!(by(&u, READY).status, "True");
        assert_eq!(by(&u, READY).reason, REASON_UNMANAGED);
        assert_eq!(
            by(&u, READY).last_transition_time,
            at(1000),
            "Ready did not change"
        );
        assert_eq!(by(&u, RECONCILING).status, "False");
        assert_eq!(by(&u, STALLED).status, "False");
        assert!(
            u.conditions
                .iter()
                .all(|c| c.observed_generation == Some(2))
        );
        assert_eq!(u.version, s.version, "what runs is unchanged");
        // Nothing before, or not ready before: Ready is Unknown, never False.
        let fresh = desired_status(None, Some(1), &Outcome::Unmanaged, at(1000));
        assert_eq!(by(&fresh, READY).status, "Unknown");
        let e = InvalidSpec::new(crate::validate::InvalidReason::InvalidConfig, "bad");
        let refused = Outcome::Invalid {
            invalid: &e,
            running: true,
        };
        let bad = desired_status(None, Some(1), &refused, at(1000));
        let then = desired_status(Some(&bad), Some(2), &Outcome::Unmanaged, at(2000));
        assert_eq!(by(&then, READY).status, "Unknown");
        assert_eq!(by(&then, STALLED).status, "False");
        // Steady: no write.
        assert_eq!(
            desired_status(Some(&u), Some(2), &Outcome::Unmanaged, at(3000)),
            u
        );
    }

    #[test]
    fn notices_appear_while_true_and_survive_a_refused_edit() {
        let v = validated(serde_json::json!({"exporters": {"logging": {}},
            "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["logging"]}}}}));
        let done = ds(1, 1, 1, 1, 1);
        let outcome = applied(&v, &done);
        let s = desired_status(None, Some(1), &outcome, at(1000));
        let d = by(&s, CONFIG_DEPRECATED);
        assert_eq!(d.status, "True");
        assert!(d.message.contains("exporters.logging"), "{}", d.message);
        assert!(s.conditions.iter().all(|c| c.type_ != UPGRADE_HELD));
        let e = InvalidSpec::new(crate::validate::InvalidReason::InvalidConfig, "bad");
        let refused = Outcome::Invalid {
            invalid: &e,
            running: true,
        };
        let r = desired_status(Some(&s), Some(2), &refused, at(2000));
        assert_eq!(by(&r, CONFIG_DEPRECATED), d, "describes what still runs");
        // Fixed: gone.
        let clean = validated(serde_json::json!({}));
        let outcome = applied(&clean, &done);
        let c = desired_status(Some(&r), Some(3), &outcome, at(3000));
        assert!(c.conditions.iter().all(|c| c.type_ != CONFIG_DEPRECATED));
        assert!(c.conditions.iter().all(|c| c.type_ != RBAC_WITHHELD));
        // Rights the operator may not grant are named, with the ServiceAccount to bind them to.
        let mut limited = validated(serde_json::json!({}));
        limited.rbac_withheld = vec!["get,list,watch replicasets.apps".into()];
        let l = desired_status(Some(&c), Some(4), &applied(&limited, &done), at(4000));
        let w = by(&l, RBAC_WITHHELD);
        assert_eq!(
            (w.status.as_str(), w.reason.as_str()),
            ("True", "NotAllowedByOperator")
        );
        assert!(w.message.contains("replicasets.apps"), "{}", w.message);
        assert!(
            w.message.contains(&limited.service_account),
            "{}",
            w.message
        );
        assert_eq!(by(&l, READY).status, "True", "informational only");
    }
}
