//! One scrape: fetch `/stats/summary` (and `/pods` when needed), convert, hand to the pipeline;
//! and the loop that repeats it every `collection_interval` until shutdown. A failed scrape is
//! logged and counted; the next one happens on schedule.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kotel_pipeline::{BoxConsumer, ConsumeError, Envelope, HealthReporter, Payload, Shutdown};
use tokio::time::MissedTickBehavior;

use crate::client::{FetchError, KubeletClient};
use crate::convert::Converter;
use crate::pods::PodMetadata;
use crate::summary::Summary;
use crate::telemetry::{Reason, Telemetry};

pub const SUMMARY_PATH: &str = "/stats/summary";
pub const PODS_PATH: &str = "/pods";

#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("kubelet response from {url} is not valid JSON of the expected shape: {source}")]
    Decode {
        url: String,
        source: serde_json::Error,
    },
    #[error("the pipeline did not accept the metrics: {0}")]
    Consume(#[from] ConsumeError),
}

impl ScrapeError {
    /// Bounded label for the error counter.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Fetch(e) => e.reason(),
            Self::Decode { .. } => Reason::DECODE,
            Self::Consume(_) => Reason::CONSUME,
        }
    }
}

/// What one successful scrape produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrapeOutcome {
    pub resources: usize,
    pub points: usize,
}

pub struct Scraper {
    pub(crate) client: KubeletClient,
    pub(crate) converter: Converter,
    pub(crate) needs_pods: bool,
    pub(crate) next: BoxConsumer,
    pub(crate) telemetry: Telemetry,
    pub(crate) health: HealthReporter,
    pub(crate) receiver: String,
}

impl Scraper {
    /// Scrapes once and hands the result to the next consumer.
    pub async fn scrape(&mut self) -> Result<ScrapeOutcome, ScrapeError> {
        let summary_body = self.client.get(SUMMARY_PATH).await?;
        let summary = Summary::from_slice(&summary_body).map_err(|source| ScrapeError::Decode {
            url: self.client.url(SUMMARY_PATH),
            source,
        })?;
        drop(summary_body);
        let pods = if self.needs_pods {
            let body = self.client.get(PODS_PATH).await?;
            Some(
                PodMetadata::from_slice(&body).map_err(|source| ScrapeError::Decode {
                    url: self.client.url(PODS_PATH),
                    source,
                })?,
            )
        } else {
            None
        };
        let request = self.converter.convert(&summary, pods.as_ref(), now_nanos());
        let payload = Payload::Metrics(request);
        let outcome = ScrapeOutcome {
            resources: match &payload {
                Payload::Metrics(r) => r.resource_metrics.len(),
                _ => 0,
            },
            points: payload.item_count(),
        };
        if outcome.resources > 0 {
            self.next.consume(Envelope::new(payload)).await?;
        }
        self.telemetry.points.inc_by(outcome.points as u64);
        Ok(outcome)
    }

    /// Scrapes, counting and logging the outcome.
    pub async fn scrape_and_record(&mut self) {
        self.telemetry.scrapes.inc();
        let started = Instant::now();
        let result = self.scrape().await;
        self.telemetry
            .duration
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(o) => {
                self.health.ok();
                tracing::debug!(
                    receiver = %self.receiver,
                    resources = o.resources,
                    points = o.points,
                    "scraped the kubelet"
                );
            }
            Err(e) => {
                self.telemetry.error(e.reason());
                // The kubelet answered nothing usable; a full pipeline is not this receiver's
                // failure (back-pressure is reported where it happens).
                if !matches!(e, ScrapeError::Consume(_)) {
                    self.health.failed(&e);
                }
                let (url, status) = match &e {
                    ScrapeError::Fetch(f) => (Some(f.url().to_string()), f.status()),
                    ScrapeError::Decode { url, .. } => (Some(url.clone()), None),
                    ScrapeError::Consume(_) => (None, None),
                };
                tracing::warn!(
                    receiver = %self.receiver,
                    url = url.as_deref().unwrap_or(""),
                    status = status.unwrap_or(0),
                    reason = e.reason(),
                    error = %e,
                    "kubelet scrape failed; retrying at the next interval"
                );
            }
        }
    }

    /// Waits `initial_delay`, then scrapes every `interval` until `shutdown`.
    pub async fn run(mut self, initial_delay: Duration, interval: Duration, shutdown: Shutdown) {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(initial_delay) => {}
        }
        let mut ticker = tokio::time::interval(interval);
        // A scrape slower than the interval delays the next one instead of bunching them up.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = self.scrape_and_record() => {}
            }
        }
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
