//! `health_check`: answers 200 on its path once every pipeline runs, 503 before and during
//! shutdown, and 503 while a component has been unable to work for longer than a grace period
//! (see [`kotel_pipeline::Health`]); the body then names each such component and its error.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use kotel_pipeline::{Health, Shutdown};

use crate::net::{self, Listener};

/// How long a component may fail without a break before the collector answers unready: long
/// enough for a kubelet or API server restart, short enough to stop a rollout of a config that
/// cannot work at its first pod.
pub const FAILING_GRACE: Duration = Duration::from_secs(30);

/// Whether the collector is ready, shared by the service and the health endpoint.
#[derive(Clone)]
pub struct Readiness {
    running: Arc<AtomicBool>,
    health: Health,
    grace: Duration,
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new(Health::default(), FAILING_GRACE)
    }
}

impl Readiness {
    pub fn new(health: Health, grace: Duration) -> Self {
        Self {
            running: Arc::default(),
            health,
            grace,
        }
    }

    /// Every pipeline runs (`true`), or the collector is starting or stopping.
    pub fn set(&self, running: bool) {
        self.running.store(running, Ordering::Release);
    }

    pub fn get(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// What components report, for the service to hand to them.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The status and JSON body the endpoint answers now. A liveness probe (the operator adds
    /// `?probe=liveness`) asks only whether the collector runs: restarting it would not mend a
    /// component that cannot work.
    pub fn answer(&self, now: Instant, liveness: bool) -> (StatusCode, String) {
        if !self.get() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"status":"Server not available"}"#.into(),
            );
        }
        let failing = self.health.failing_for(self.grace, now);
        if failing.is_empty() || liveness {
            return (StatusCode::OK, r#"{"status":"Server available"}"#.into());
        }
        let components: serde_json::Map<String, serde_json::Value> = failing
            .into_iter()
            .map(|(c, e)| (c, serde_json::Value::String(e)))
            .collect();
        let body = serde_json::json!({"status": "Server not available", "failing": components});
        (StatusCode::SERVICE_UNAVAILABLE, body.to_string())
    }
}

/// Serves the endpoint; `bodies` (healthy, unhealthy) replace the JSON status when configured
/// (upstream's `response_body`): the status code still tells the two apart.
pub async fn serve(
    listener: Listener,
    path: String,
    bodies: Option<(String, String)>,
    ready: Readiness,
    shutdown: Shutdown,
) {
    let path = Arc::new(path);
    let bodies = Arc::new(bodies);
    net::serve_fn(
        listener,
        move |req, _peer| {
            let path = path.clone();
            let ready = ready.clone();
            let bodies = bodies.clone();
            async move {
                let (status, mut body) = if req.uri().path() != *path {
                    (StatusCode::NOT_FOUND, String::new())
                } else {
                    let liveness = req
                        .uri()
                        .query()
                        .is_some_and(|q| q.split('&').any(|kv| kv == "probe=liveness"));
                    ready.answer(Instant::now(), liveness)
                };
                if let (Some((healthy, unhealthy)), false) =
                    (bodies.as_ref(), status == StatusCode::NOT_FOUND)
                {
                    body = if status.is_success() {
                        healthy
                    } else {
                        unhealthy
                    }
                    .clone();
                }
                Ok(Response::builder()
                    .status(status)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .expect("static response parts are valid"))
            }
        },
        shutdown,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_failing_past_the_grace_period_makes_the_collector_unready() {
        let ready = Readiness::new(Health::default(), Duration::from_secs(30));
        ready.set(true);
        let kubelet = ready.health().reporter("kubeletstats");
        let t0 = Instant::now();
        kubelet.failed("kubelet request GET https://10.0.0.1:10250/stats/summary failed - 403");
        assert_eq!(
            ready.answer(t0, false).0,
            StatusCode::OK,
            "within the grace period"
        );
        let (status, body) = ready.answer(t0 + Duration::from_secs(31), false);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body["failing"]["kubeletstats"],
            "kubelet request GET https://10.0.0.1:10250/stats/summary failed - 403"
        );
        let live = ready.answer(t0 + Duration::from_secs(31), true);
        assert_eq!(live.0, StatusCode::OK, "alive, so no restart");
        kubelet.ok();
        assert_eq!(
            ready.answer(t0 + Duration::from_secs(32), false).0,
            StatusCode::OK
        );
        ready.set(false);
        assert_eq!(
            ready.answer(t0, true).0,
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping"
        );
    }
}
