//! Receivers built into kotelcol (OTLP) and what every receiver is handed: one consumer per
//! signal it feeds.

pub mod otlp;

use kotel_pipeline::{BoxConsumer, Signal};

/// The consumers a receiver pushes to, one per signal that has a pipeline.
#[derive(Clone, Default)]
pub struct SignalConsumers {
    pub traces: Option<BoxConsumer>,
    pub metrics: Option<BoxConsumer>,
    pub logs: Option<BoxConsumer>,
}

impl SignalConsumers {
    pub fn get(&self, signal: Signal) -> Option<&BoxConsumer> {
        match signal {
            Signal::Traces => self.traces.as_ref(),
            Signal::Metrics => self.metrics.as_ref(),
            Signal::Logs => self.logs.as_ref(),
        }
    }

    pub fn set(&mut self, signal: Signal, consumer: BoxConsumer) {
        match signal {
            Signal::Traces => self.traces = Some(consumer),
            Signal::Metrics => self.metrics = Some(consumer),
            Signal::Logs => self.logs = Some(consumer),
        }
    }
}
