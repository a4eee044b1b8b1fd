//! The operator's own Prometheus metrics: reconciles by result, errors by fixed category, and
//! reconcile duration. Label values come from small fixed sets, never from error text.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub const RECONCILES: &str = "kotel_operator_reconciles";
pub const ERRORS: &str = "kotel_operator_reconcile_errors";
pub const DURATION: &str = "kotel_operator_reconcile_duration_seconds";
pub const LEADER: &str = "kotel_operator_leader";

type Labels = [(&'static str, &'static str); 1];

pub struct Metrics {
    registry: Registry,
    reconciles: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    duration: Histogram,
    leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let reconciles = Family::<Labels, Counter>::default();
        let errors = Family::<Labels, Counter>::default();
        // 1 ms … ~16 s.
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        let leader = Gauge::default();
        registry.register(
            RECONCILES,
            "Reconciles by result (ok, invalid, error)",
            reconciles.clone(),
        );
        registry.register(
            ERRORS,
            "Reconcile errors by category (invalid_spec, kube_api, finalizer, status)",
            errors.clone(),
        );
        registry.register(DURATION, "Reconcile duration", duration.clone());
        registry.register(
            LEADER,
            "1 when this replica holds the leader lease",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            errors,
            duration,
            leader,
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, result: &'static str, seconds: f64) {
        self.reconciles.get_or_create(&[("result", result)]).inc();
        self.duration.observe(seconds);
    }

    pub fn error(&self, category: &'static str) {
        self.errors.get_or_create(&[("category", category)]).inc();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_by_category() {
        let m = Metrics::default();
        m.reconciled("ok", 0.01);
        m.error("kube_api");
        let text = m.render();
        assert!(
            text.contains("kotel_operator_reconciles_total{result=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains("kotel_operator_reconcile_errors_total{category=\"kube_api\"} 1"));
        assert!(text.contains("kotel_operator_reconcile_duration_seconds_count 1"));
    }
}
