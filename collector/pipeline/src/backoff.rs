//! Exponential backoff with jitter, as upstream's `retry_on_failure`: exporters retry sends
//! with it, the batch processor its hand-offs to a full exporter queue.

use std::time::Duration;

use kotel_config::exporters::RetryConfig;
use rand::Rng;

/// Successive retry delays: `initial × multiplier^k`, capped at `max`, each scaled by a random
/// factor in `[1 - r, 1 + r]`.
pub struct Backoff {
    next: Duration,
    max: Duration,
    multiplier: f64,
    randomization: f64,
}

impl Backoff {
    pub fn new(cfg: &RetryConfig) -> Self {
        Self {
            next: cfg.initial_interval,
            max: cfg.max_interval,
            multiplier: cfg.multiplier.max(1.0),
            randomization: cfg.randomization_factor.clamp(0.0, 1.0),
        }
    }

    /// A backoff for internal hand-offs (batch → exporter queue): short, capped at one second.
    pub fn internal() -> Self {
        Self {
            next: Duration::from_millis(10),
            max: Duration::from_secs(1),
            multiplier: 2.0,
            randomization: 0.5,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = base.mul_f64(self.multiplier).min(self.max);
        if self.randomization == 0.0 {
            return base;
        }
        let factor = rand::rng().random_range(1.0 - self.randomization..=1.0 + self.randomization);
        base.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_within_jitter() {
        let cfg = RetryConfig {
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_millis(400),
            multiplier: 2.0,
            randomization_factor: 0.5,
            ..RetryConfig::default()
        };
        let mut b = Backoff::new(&cfg);
        let d: Vec<Duration> = (0..5).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(50) && d[0] <= Duration::from_millis(150));
        assert!(d[4] >= Duration::from_millis(200) && d[4] <= Duration::from_millis(600));
    }
}
