//! Whether each component can do its work, as the components themselves see it.
//!
//! A component that cannot work (the kubelet refuses every scrape, the API server never answers
//! the pod watch) says so here with the error, and says so again once it recovers. The
//! `health_check` extension reads it: a failure that lasts past a grace period turns the
//! collector unready, so a rollout of a config that cannot work stops at its first pod and
//! `kubectl get` shows which pod, while a blip (a kubelet restart) changes nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The failures of every component of one collector, shared by all of them.
#[derive(Clone, Default)]
pub struct Health(Arc<Mutex<BTreeMap<String, Failure>>>);

/// A component's current failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What failed, naming the address and the cause.
    pub error: String,
    /// When the component first failed since it last worked.
    pub since: Instant,
}

impl Health {
    /// A handle for one component (or one part of it, e.g. `k8s_attributes pods watch`).
    pub fn reporter(&self, component: impl Into<String>) -> HealthReporter {
        HealthReporter {
            health: self.clone(),
            component: component.into(),
        }
    }

    /// Components failing without a break for at least `grace` at `now`, with their errors.
    pub fn failing_for(&self, grace: Duration, now: Instant) -> Vec<(String, String)> {
        self.lock()
            .iter()
            .filter(|(_, f)| now.saturating_duration_since(f.since) >= grace)
            .map(|(c, f)| (c.clone(), f.error.clone()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Failure>> {
        // A panic elsewhere while holding the lock leaves a map that is still whole.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What one component uses to report its state.
#[derive(Clone)]
pub struct HealthReporter {
    health: Health,
    component: String,
}

impl HealthReporter {
    /// The component works again: its failure, if any, is cleared.
    pub fn ok(&self) {
        self.health.lock().remove(&self.component);
    }

    /// The component failed. The first failure's time is kept, so a component that keeps failing
    /// eventually passes the grace period; the latest error is what is shown.
    pub fn failed(&self, error: impl std::fmt::Display) {
        self.failed_at(error, Instant::now());
    }

    fn failed_at(&self, error: impl std::fmt::Display, now: Instant) {
        let error = error.to_string();
        self.health
            .lock()
            .entry(self.component.clone())
            .and_modify(|f| f.error.clone_from(&error))
            .or_insert(Failure { error, since: now });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(30);

    #[test]
    fn a_failure_counts_only_once_it_outlasts_the_grace_period() {
        let health = Health::default();
        let kubelet = health.reporter("kubeletstats");
        let t0 = Instant::now();
        kubelet.failed_at("403 Forbidden", t0);
        assert!(health.failing_for(GRACE, t0 + GRACE / 2).is_empty());
        // Failing again keeps the first time and shows the latest error.
        kubelet.failed_at("401 Unauthorized", t0 + GRACE / 2);
        assert_eq!(
            health.failing_for(GRACE, t0 + GRACE),
            vec![("kubeletstats".to_string(), "401 Unauthorized".to_string())]
        );
    }

    #[test]
    fn working_again_clears_the_failure_and_restarts_the_clock() {
        let health = Health::default();
        let watch = health.reporter("k8s_attributes pods watch");
        let other = health.reporter("kubeletstats");
        let t0 = Instant::now();
        watch.failed_at("connection refused", t0);
        other.failed_at("timeout", t0);
        watch.ok();
        let failing = health.failing_for(GRACE, t0 + GRACE);
        assert_eq!(
            failing,
            vec![("kubeletstats".to_string(), "timeout".to_string())]
        );
        watch.failed_at("connection refused", t0 + GRACE);
        assert_eq!(health.failing_for(GRACE, t0 + GRACE).len(), 1);
        assert_eq!(health.failing_for(GRACE, t0 + GRACE * 2).len(), 2);
    }
}
