//! The three telemetry signals, and a value kept for each.

use std::ops::{Index, IndexMut};

/// A telemetry signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Traces => "traces",
            Self::Metrics => "metrics",
            Self::Logs => "logs",
        }
    }

    /// Upstream's metric-name word for an item of this signal (`otelcol_receiver_accepted_spans`).
    pub fn item_word(self) -> &'static str {
        match self {
            Self::Traces => "spans",
            Self::Metrics => "metric_points",
            Self::Logs => "log_records",
        }
    }
}

/// One `T` per signal, indexed by [`Signal`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerSignal<T> {
    pub traces: T,
    pub metrics: T,
    pub logs: T,
}

impl<T> PerSignal<T> {
    pub fn from_fn(mut f: impl FnMut(Signal) -> T) -> Self {
        Self {
            traces: f(Signal::Traces),
            metrics: f(Signal::Metrics),
            logs: f(Signal::Logs),
        }
    }

    pub fn map<U>(&self, mut f: impl FnMut(Signal, &T) -> U) -> PerSignal<U> {
        PerSignal::from_fn(|s| f(s, &self[s]))
    }

    pub fn iter(&self) -> impl Iterator<Item = (Signal, &T)> {
        Signal::ALL.into_iter().map(move |s| (s, &self[s]))
    }
}

impl<T> Index<Signal> for PerSignal<T> {
    type Output = T;

    fn index(&self, s: Signal) -> &T {
        match s {
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metrics,
            Signal::Logs => &self.logs,
        }
    }
}

impl<T> IndexMut<Signal> for PerSignal<T> {
    fn index_mut(&mut self, s: Signal) -> &mut T {
        match s {
            Signal::Traces => &mut self.traces,
            Signal::Metrics => &mut self.metrics,
            Signal::Logs => &mut self.logs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_signal_has_its_own_slot() {
        let mut p = PerSignal::from_fn(|s| s.as_str().len());
        assert_eq!((p.traces, p.metrics, p.logs), (6, 7, 4));
        p[Signal::Metrics] += 1;
        assert_eq!(p[Signal::Metrics], 8);
        let words: Vec<_> = p
            .map(|s, _| s.item_word())
            .iter()
            .map(|(_, w)| *w)
            .collect();
        assert_eq!(words, ["spans", "metric_points", "log_records"]);
    }
}
