//! Why a rollout does not progress, in the words of the kubelet: for each collector pod that is
//! not ready, what its containers wait on or died of, or the last warning Event about it (a
//! volume that cannot mount leaves the pod `ContainerCreating` and says why only in an Event).
//! Pure: the controller lists the pods and Events, this turns them into status text.

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Container waiting reasons that only a change (of the spec, the image or the node) can end.
const STUCK: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// Warning Event reasons of a pod that only a change can end.
const STUCK_EVENTS: &[&str] = &[
    "FailedMount",
    "FailedCreatePodSandBox",
    "FailedAttachVolume",
];

/// A collector that runs but has not been ready for this long will not become ready by waiting:
/// kotelcol answers unready only once a component has failed without a break for 30 s.
const NOT_READY_STUCK: SignedDuration = SignedDuration::from_secs(120);

/// With hostNetwork every port of the collector is a port of the node, its own metrics (8888
/// unless `service.telemetry.metrics` says otherwise) included.
const PORT_CLASH_HINT: &str = " (with hostNetwork each port of the collector is a port of the \
     node: give collectors on the same nodes different receiver ports and \
     service.telemetry.metrics addresses; the default is 8888)";

/// One pod that is not ready, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    pub pod: String,
    pub node: Option<String>,
    /// The kubelet's reason, such as `CrashLoopBackOff` or `FailedMount`.
    pub reason: String,
    pub message: String,
    /// Whether waiting will not help (crash loop, image, mount, config error).
    pub stuck: bool,
}

impl std::fmt::Display for PodProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pod {}", self.pod)?;
        if let Some(n) = &self.node {
            write!(f, " on {n}")?;
        }
        write!(f, ": {}", self.reason)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn one_line(s: &str) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s.chars().take(300).collect()
}

/// When the pod's containers have been running since, if they all run.
fn running_since(p: &Pod) -> Option<Timestamp> {
    let containers = p.status.as_ref()?.container_statuses.as_ref()?;
    containers
        .iter()
        .map(|c| {
            c.state
                .as_ref()?
                .running
                .as_ref()?
                .started_at
                .as_ref()
                .map(|t| t.0)
        })
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .max()
}

/// What is wrong with each pod that is not ready; pods being deleted are left out. `events` are
/// the namespace's Events about these pods (any order; the newest warning per pod is used).
pub fn pod_problems(pods: &[Pod], events: &[Event], now: Timestamp) -> Vec<PodProblem> {
    let mut out = Vec::new();
    for p in pods {
        if p.metadata.deletion_timestamp.is_some() || ready(p) {
            continue;
        }
        let name = p.metadata.name.clone().unwrap_or_default();
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
        let status = p.status.clone().unwrap_or_default();
        let containers = status.container_statuses.unwrap_or_default();
        let from_container = containers.iter().find_map(|c| {
            let state = c.state.as_ref()?;
            if let Some(w) = &state.waiting {
                let reason = w.reason.clone().unwrap_or_default();
                // ContainerCreating and PodInitializing say nothing: an Event may.
                if reason.is_empty() || reason == "ContainerCreating" || reason == "PodInitializing"
                {
                    return None;
                }
                let mut message = one_line(w.message.as_deref().unwrap_or(""));
                if let Some(t) = c.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
                    let why = t.reason.clone().unwrap_or_default();
                    let last = format!(
                        "container {} exited with code {}{}{}",
                        c.name,
                        t.exit_code,
                        if why.is_empty() { "" } else { " " },
                        why
                    );
                    let tail = t.message.as_deref().map(one_line).unwrap_or_default();
                    message = [message, last, tail]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join("; ");
                }
                return Some((reason.clone(), message, STUCK.contains(&reason.as_str())));
            }
            if let Some(t) = &state.terminated {
                return Some((
                    t.reason.clone().unwrap_or_else(|| "Terminated".into()),
                    format!("container {} exited with code {}", c.name, t.exit_code),
                    false,
                ));
            }
            None
        });
        let problem = from_container.or_else(|| {
            let newest = events
                .iter()
                .filter(|e| {
                    e.involved_object.name.as_deref() == Some(name.as_str())
                        && e.type_.as_deref() == Some("Warning")
                })
                .max_by_key(|e| {
                    e.last_timestamp
                        .as_ref()
                        .map(|t| t.0)
                        .or_else(|| e.event_time.as_ref().map(|t| t.0))
                })?;
            let reason = newest.reason.clone().unwrap_or_default();
            let mut message = one_line(newest.message.as_deref().unwrap_or(""));
            if reason == "Unhealthy" && message.contains("statuscode: 503") {
                message.push_str(
                    " (kotelcol's health endpoint and log name the component that cannot work)",
                );
            }
            // Another pod holds a port of the node: only a change of one of them ends that.
            let port_clash = reason == "FailedScheduling" && message.contains("free ports");
            if port_clash {
                message.push_str(PORT_CLASH_HINT);
            }
            let stuck = port_clash || STUCK_EVENTS.contains(&reason.as_str());
            Some((reason.clone(), message, stuck))
        });
        // Running but never ready for long: the collector says it cannot work.
        let long_unready =
            running_since(p).is_some_and(|t| now.duration_since(t) > NOT_READY_STUCK);
        let problem = problem.map(|(r, m, stuck)| (r, m, stuck || long_unready));
        let (reason, message, stuck) = problem.unwrap_or_else(|| {
            let phase = status.phase.unwrap_or_else(|| "Pending".into());
            let running_not_ready = containers
                .iter()
                .any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()));
            if running_not_ready {
                (
                    "NotReady".into(),
                    "running, readiness probe not passing yet".into(),
                    long_unready,
                )
            } else {
                (phase, String::new(), false)
            }
        });
        out.push(PodProblem {
            pod: name,
            node,
            reason,
            message,
            stuck,
        });
    }
    out.sort_by(|a, b| a.pod.cmp(&b.pod));
    out
}

/// How recent a DaemonSet's `FailedCreate` must be to count: the controller retries a refused
/// pod with a backoff of at most a few minutes, refreshing the Event each time, so an older one
/// is about a spec that has changed since.
const FAILED_CREATE_FRESH: SignedDuration = SignedDuration::from_secs(300);

/// Pods the DaemonSet controller could not create (Pod Security Admission, a quota, an admission
/// webhook): its newest fresh `FailedCreate` Warning among `events` (the DaemonSet's), which
/// names the policy. Waiting does not help: only a change of the resource or the namespace does.
pub fn creation_refused(daemon_set: &str, events: &[Event], now: Timestamp) -> Option<PodProblem> {
    let newest = events
        .iter()
        .filter(|e| {
            e.involved_object.name.as_deref() == Some(daemon_set)
                && e.type_.as_deref() == Some("Warning")
                && e.reason.as_deref() == Some("FailedCreate")
        })
        .filter_map(|e| {
            let t = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or_else(|| e.event_time.as_ref().map(|t| t.0))?;
            Some((t, e))
        })
        .filter(|(t, _)| now.duration_since(*t) <= FAILED_CREATE_FRESH)
        .max_by_key(|(t, _)| *t)?;
    let mut message = one_line(newest.1.message.as_deref().unwrap_or(""));
    if message.contains("PodSecurity") {
        message.push_str(
            " (the namespace's Pod Security level refuses what this config needs from the node: run it in a namespace labelled pod-security.kubernetes.io/enforce=privileged, or leave out what needs host access)",
        );
    }
    Some(PodProblem {
        pod: format!("of DaemonSet {daemon_set}"),
        node: None,
        reason: "FailedCreate".to_string(),
        message,
        stuck: true,
    })
}

/// A status message naming at most `max` problems and how many more there are.
pub fn summary(problems: &[PodProblem], max: usize) -> String {
    let mut s = problems
        .iter()
        .take(max)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > max {
        s.push_str(&format!("; and {} more pods", problems.len() - max));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    /// An Event of `type_` about pod `pod`, last seen at `t`.
    fn event(pod: &str, type_: &str, reason: &str, message: &str, t: &str) -> Event {
        serde_json::from_value(json!({
            "metadata": {"name": format!("{pod}-{reason}")},
            "involvedObject": {"kind": "Pod", "name": pod},
            "reason": reason, "message": message, "type": type_, "lastTimestamp": t,
        }))
        .unwrap()
    }

    #[test]
    fn crash_loop_names_the_pod_node_exit_code_and_is_stuck() {
        let p = pod(json!({
            "metadata": {"name": "c-collector-abc"},
            "spec": {"nodeName": "n1", "containers": []},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "otc-container", "image": "i", "imageID": "", "ready": false, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": "exporters.otlp: endpoint\nmissing"}},
            }]},
        }));
        let got = pod_problems(&[p], &[], Timestamp::now());
        assert_eq!(got.len(), 1);
        assert!(got[0].stuck);
        let text = got[0].to_string();
        assert!(
            text.starts_with("pod c-collector-abc on n1: CrashLoopBackOff: back-off 40s"),
            "{text}"
        );
        assert!(
            text.contains("exited with code 1 Error; exporters.otlp: endpoint missing"),
            "{text}"
        );
    }

    #[test]
    fn a_mount_failure_comes_from_the_newest_warning_event() {
        let p = pod(json!({
            "metadata": {"name": "c-collector-x"},
            "spec": {"nodeName": "n1", "containers": []},
            "status": {"phase": "Pending", "containerStatuses": [{
                "name": "otc-container", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}},
            }]},
        }));
        let events = [
            event(
                "c-collector-x",
                "Normal",
                "Scheduled",
                "assigned",
                "2026-01-01T00:00:00Z",
            ),
            event(
                "c-collector-x",
                "Warning",
                "FailedMount",
                "MountVolume.SetUp failed for volume \"varlibdockercontainers\": hostPath type check failed: /var/lib/docker/containers is not a directory",
                "2026-01-01T00:00:05Z",
            ),
        ];
        let got = pod_problems(&[p], &events, Timestamp::now());
        assert_eq!(got[0].reason, "FailedMount");
        assert!(got[0].stuck);
        assert!(got[0].message.contains("varlibdockercontainers"));
    }

    #[test]
    fn ready_and_terminating_pods_are_not_problems_and_a_slow_start_is_not_stuck() {
        let ready = pod(json!({
            "metadata": {"name": "a"}, "spec": {"containers": []},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }));
        let going = pod(json!({
            "metadata": {"name": "b", "deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"containers": []},
        }));
        let starting = pod(json!({
            "metadata": {"name": "c"}, "spec": {"containers": []},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "x", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"running": {}},
            }]},
        }));
        let got = pod_problems(&[ready, going, starting], &[], Timestamp::now());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].reason, "NotReady");
        assert!(!got[0].stuck);
        assert_eq!(
            summary(&got, 3),
            "pod c: NotReady: running, readiness probe not passing yet"
        );
    }

    #[test]
    fn a_collector_unready_for_minutes_is_stuck_and_the_probe_failure_is_named() {
        let p = pod(json!({
            "metadata": {"name": "m-collector-z"},
            "spec": {"nodeName": "n1", "containers": []},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "otc-container", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
            }]},
        }));
        let events = [event(
            "m-collector-z",
            "Warning",
            "Unhealthy",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            "2026-01-01T00:01:00Z",
        )];
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let early = pod_problems(
            std::slice::from_ref(&p),
            &events,
            at("2026-01-01T00:01:00Z"),
        );
        assert_eq!(early[0].reason, "Unhealthy");
        assert!(!early[0].stuck, "a minute is not long enough to give up");
        assert!(
            early[0].message.contains("name the component"),
            "{}",
            early[0].message
        );
        let late = pod_problems(
            std::slice::from_ref(&p),
            &events,
            at("2026-01-01T00:03:00Z"),
        );
        assert!(late[0].stuck);
        let quiet = pod_problems(&[p], &[], at("2026-01-01T00:03:00Z"));
        assert_eq!(quiet[0].reason, "NotReady");
        assert!(quiet[0].stuck);
    }

    #[test]
    fn a_port_held_by_another_host_network_pod_is_stuck_with_a_hint() {
        let p = pod(json!({
            "metadata": {"name": "b-collector-q"}, "spec": {"containers": []},
            "status": {"phase": "Pending"},
        }));
        let events = [event(
            "b-collector-q",
            "Warning",
            "FailedScheduling",
            "0/4 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.",
            "2026-01-01T00:00:00Z",
        )];
        let got = pod_problems(&[p], &events, Timestamp::now());
        assert_eq!(got[0].reason, "FailedScheduling");
        assert!(got[0].stuck);
        assert!(got[0].message.contains("8888"), "{}", got[0].message);
    }

    /// Issue 16: pods refused at creation (Pod Security Admission) are named with the policy,
    /// and only a fresh refusal counts.
    #[test]
    fn a_refused_pod_creation_names_the_policy_and_is_stuck() {
        let refused = |t: &str| -> Event {
            serde_json::from_value(json!({
                "metadata": {"name": "ds-failed"},
                "involvedObject": {"kind": "DaemonSet", "name": "agent-collector"},
                "reason": "FailedCreate", "type": "Warning", "lastTimestamp": t,
                "message": "Error creating: pods \"agent-collector-x\" is forbidden: violates PodSecurity \"restricted:latest\": hostPath volumes (volumes \"varlogpods\")",
            }))
            .unwrap()
        };
        let now: Timestamp = "2026-12-01T10:10:00Z".parse().unwrap();
        let p = creation_refused("agent-collector", &[refused("2026-12-01T10:09:00Z")], now)
            .expect("a problem");
        assert!(p.stuck);
        assert!(
            p.message
                .contains("violates PodSecurity \"restricted:latest\""),
            "{p}"
        );
        assert!(
            p.to_string()
                .starts_with("pod of DaemonSet agent-collector: FailedCreate"),
            "{p}"
        );
        assert_eq!(
            creation_refused("agent-collector", &[refused("2026-12-01T09:00:00Z")], now),
            None,
            "an hour-old refusal is about an older spec"
        );
        assert_eq!(
            creation_refused("other-collector", &[refused("2026-12-01T10:09:00Z")], now),
            None
        );
    }
}
