//! Receivers: the OTLP receiver built into kotelcol, and the dispatch from a receiver's config to
//! its component's build (the others live in their own crates).

pub mod otlp;

use kotel_config::ReceiverConfig;
use kotel_pipeline::{BoxConsumer, BuildContext, BuildError, Built, PerSignal, ReceiverOutputs};

/// The consumers a receiver pushes to, one per signal that has a pipeline.
pub type SignalConsumers = PerSignal<Option<BoxConsumer>>;

/// Builds the receiver `cfg` describes.
pub async fn build(
    cx: BuildContext<'_>,
    cfg: &ReceiverConfig,
    out: ReceiverOutputs,
) -> Result<Built, BuildError> {
    match cfg {
        ReceiverConfig::Otlp(c) => otlp::build(cx, c, out).await.map_err(BuildError::new),
        ReceiverConfig::Filelog(c) => kotel_filelog::build(cx, c, out).map_err(BuildError::new),
        ReceiverConfig::KubeletStats(c) => {
            kotel_kubeletstats::build(cx, c, out).map_err(BuildError::new)
        }
    }
}
