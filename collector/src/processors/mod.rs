//! Processors built into kotelcol (batch, memory_limiter), and the
//! dispatch from a processor's config to its component's build.

pub mod batch;
pub mod memory_limiter;

use kotel_config::ProcessorConfig;
use kotel_pipeline::{BoxConsumer, BuildContext, BuildError, Built};

/// Builds the processor `cfg` describes, handing on to `next`.
pub async fn build(
    cx: BuildContext<'_>,
    cfg: &ProcessorConfig,
    next: BoxConsumer,
) -> Result<Built, BuildError> {
    match cfg {
        ProcessorConfig::Batch(c) => Ok(batch::build(cx, c, next)),
        ProcessorConfig::MemoryLimiter(c) => {
            memory_limiter::build(cx, c, next).map_err(BuildError::new)
        }
        ProcessorConfig::K8sAttributes(c) => kotel_k8sattributes::build(cx, c, next)
            .await
            .map_err(BuildError::new),
    }
}
