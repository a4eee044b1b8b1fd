//! The receiver's own metrics, registered under `receiver="<id>"`. Error reasons are a fixed set
//! of short words (see [`crate::client::FetchError::reason`] and [`Reason`]).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub const SCRAPES: &str = "otelcol_kubeletstats_scrapes";
pub const SCRAPE_ERRORS: &str = "otelcol_kubeletstats_scrape_errors";
pub const SCRAPE_DURATION: &str = "otelcol_kubeletstats_scrape_duration_seconds";
pub const METRIC_POINTS: &str = "otelcol_kubeletstats_metric_points";

/// Failure reasons besides the request's own ([`crate::client::FetchError::reason`]).
pub struct Reason;

impl Reason {
    /// The body was not a summary / pod list.
    pub const DECODE: &'static str = "decode";
    /// The pipeline did not accept the metrics.
    pub const CONSUME: &'static str = "consume";
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub reason: &'static str,
}

#[derive(Debug, Clone)]
pub struct Telemetry {
    pub scrapes: Counter,
    pub errors: Family<ErrorLabels, Counter>,
    pub duration: Histogram,
    pub points: Counter,
}

impl Telemetry {
    pub fn register(receiver: &str, registry: &mut Registry) -> Self {
        let t = Self::unregistered();
        let r = registry.sub_registry_with_label(("receiver".into(), receiver.to_string().into()));
        r.register(SCRAPES, "Scrapes of the kubelet started", t.scrapes.clone());
        r.register(
            SCRAPE_ERRORS,
            "Scrapes that failed, by reason (connect, tls, credentials, http_status, timeout, http, body, decode, consume)",
            t.errors.clone(),
        );
        r.register(
            SCRAPE_DURATION,
            "Time from request to metrics handed to the pipeline",
            t.duration.clone(),
        );
        r.register(
            METRIC_POINTS,
            "Metric data points produced from kubelet stats",
            t.points.clone(),
        );
        t
    }

    pub fn unregistered() -> Self {
        Self {
            scrapes: Counter::default(),
            errors: Family::default(),
            duration: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            points: Counter::default(),
        }
    }

    pub fn error(&self, reason: &'static str) {
        self.errors.get_or_create(&ErrorLabels { reason }).inc();
    }
}
