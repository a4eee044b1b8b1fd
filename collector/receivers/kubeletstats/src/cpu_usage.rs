//! Scrape-based `cpu.usage`: the change in cumulative CPU time between two consecutive scrapes,
//! divided by the time between the kubelet's samples (the upstream default since the
//! `receiver.kubeletstats.cpuUsageScrapeBased` gate went on).
//!
//! Nothing is reported on the first sight of an entity, when the sample time did not move (the
//! kubelet served a cached sample twice) or when the counter went backwards (a restart).
//! Entities not seen in a scrape are forgotten at its end, so the map tracks the node's churn.

use std::collections::HashMap;

use crate::time::Timestamp;

#[derive(Debug, Clone, Copy)]
struct Sample {
    cpu_seconds: f64,
    time: Timestamp,
    scrape: u64,
}

/// Previous samples by entity key, kept between scrapes.
#[derive(Debug, Default)]
pub struct CpuUsage {
    previous: HashMap<String, Sample>,
    scrape: u64,
}

impl CpuUsage {
    /// Starts a scrape: samples not observed until [`CpuUsage::end_scrape`] are dropped then.
    pub fn begin_scrape(&mut self) {
        self.scrape += 1;
    }

    pub fn end_scrape(&mut self) {
        let current = self.scrape;
        self.previous.retain(|_, s| s.scrape == current);
    }

    /// Records `cpu_seconds` at `time` for `key` and returns cores used since the previous sample.
    pub fn observe(&mut self, key: &str, cpu_seconds: f64, time: Timestamp) -> Option<f64> {
        let sample = Sample {
            cpu_seconds,
            time,
            scrape: self.scrape,
        };
        // Look up by &str first so a known entity costs no key allocation.
        let Some(prev) = self.previous.get_mut(key) else {
            self.previous.insert(key.to_string(), sample);
            return None;
        };
        let before = std::mem::replace(prev, sample);
        if time <= before.time || cpu_seconds < before.cpu_seconds {
            return None;
        }
        let elapsed = (time - before.time) as f64 / 1e9;
        Some((cpu_seconds - before.cpu_seconds) / elapsed)
    }

    /// Entities remembered, for tests.
    pub fn len(&self) -> usize {
        self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.previous.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn rate_from_the_second_sample_on() {
        let mut c = CpuUsage::default();
        c.begin_scrape();
        assert_eq!(c.observe("n", 100.0, 10 * S), None);
        c.end_scrape();
        c.begin_scrape();
        assert_eq!(c.observe("n", 105.0, 20 * S), Some(0.5));
        c.end_scrape();
        // The same sample served again: no time passed, nothing to say.
        c.begin_scrape();
        assert_eq!(c.observe("n", 105.0, 20 * S), None);
        c.end_scrape();
        // A reset (container restart) reports nothing, then rates resume from the new base.
        c.begin_scrape();
        assert_eq!(c.observe("n", 1.0, 30 * S), None);
        c.end_scrape();
        c.begin_scrape();
        assert_eq!(c.observe("n", 3.0, 34 * S), Some(0.5));
        c.end_scrape();
    }

    #[test]
    fn forgets_entities_that_disappear() {
        let mut c = CpuUsage::default();
        c.begin_scrape();
        c.observe("a", 1.0, S);
        c.observe("b", 1.0, S);
        c.end_scrape();
        c.begin_scrape();
        c.observe("a", 2.0, 2 * S);
        c.end_scrape();
        assert_eq!(c.len(), 1);
        c.begin_scrape();
        assert_eq!(c.observe("b", 3.0, 3 * S), None, "b starts over");
        c.end_scrape();
    }
}
