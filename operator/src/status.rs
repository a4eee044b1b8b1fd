//! Status: what the operator tells the user, computed purely from the outcome of a reconcile and
//! the DaemonSet as observed.
//!
//! Conditions follow Kubernetes conventions so that both Flux's kstatus and Argo CD read them:
//! `Ready` is True only when the DaemonSet rollout is complete; `Reconciling` (True while work is
//! pending) and `Stalled` (True when only an edit can help) are kstatus's abnormal-true pair.

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
    },
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
/// so an unchanged outcome yields an identical status (and no write).
pub fn desired_status(
    current: Option<&OpenTelemetryCollectorStatus>,
    generation: Option<i64>,
    outcome: &Outcome<'_>,
    now: Time,
) -> OpenTelemetryCollectorStatus {
    let mut status = current.cloned().unwrap_or_default();
    status.observed_generation = generation;
    let (ready, reconciling, stalled) = match outcome {
        Outcome::Applied {
            validated,
            daemon_set,
            problems,
        } => {
            status.version = Some(validated.version.clone());
            status.image = Some(validated.image.clone());
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
                Some(r) if r.complete => (
                    cond(READY, true, REASON_RECONCILED, &r.message),
                    cond(RECONCILING, false, REASON_RECONCILED, &r.message),
                    cond(STALLED, false, REASON_RECONCILED, &r.message),
                ),
                other => {
                    let mut msg =
                        other.map_or("waiting for the DaemonSet".to_string(), |r| r.message);
                    if !problems.is_empty() {
                        msg = format!("{msg}: {}", diagnose::summary(problems, PROBLEMS_NAMED));
                    }
                    if problems.iter().any(|p| p.stuck) {
                        (
                            cond(READY, false, REASON_PODS_FAILING, &msg),
                            cond(RECONCILING, false, REASON_PODS_FAILING, &msg),
                            cond(STALLED, true, REASON_PODS_FAILING, &msg),
                        )
                    } else {
                        (
                            cond(READY, false, REASON_ROLLOUT, &msg),
                            cond(RECONCILING, true, REASON_ROLLOUT, &msg),
                            cond(STALLED, false, REASON_ROLLOUT, &msg),
                        )
                    }
                }
            }
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
            (
                cond(READY, false, reason, &msg),
                cond(RECONCILING, false, reason, &msg),
                cond(STALLED, true, reason, &msg),
            )
        }
        Outcome::Failed(msg) => (
            cond(READY, false, REASON_ERROR, msg),
            cond(RECONCILING, true, REASON_ERROR, msg),
            cond(STALLED, false, REASON_ERROR, msg),
        ),
    };
    let old = std::mem::take(&mut status.conditions);
    status.conditions = [ready, reconciling, stalled]
        .into_iter()
        .map(|mut c| {
            c.observed_generation = generation;
            c.last_transition_time = old
                .iter()
                .find(|o| o.type_ == c.type_ && o.status == c.status)
                .map_or_else(|| now.clone(), |o| o.last_transition_time.clone());
            c
        })
        .collect();
    status
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
}
