//! `batch` processor: merges requests into batches of `send_batch_size` items (a trigger, not a
//! cap), splits anything above `send_batch_max_size`, and sends a partial batch after `timeout`.
//!
//! Semantics ("bounded and refuses", never ack-and-lose):
//! - The buffer is bounded in items (4 × the larger of send_batch_size and send_batch_max_size).
//!   `consume` waits up to one second for room, then refuses with a retryable error, which the
//!   OTLP receiver answers with UNAVAILABLE / 503 and a retry hint.
//! - Accepted data is never dropped because the next stage is busy: a refused hand-off (a full
//!   exporter queue) is retried with a short backoff while the batch keeps holding the data, so
//!   the buffer fills and intake slows. Only a permanent error from the next stage, or the
//!   shutdown deadline, drops data, and both are logged and counted.
//! - Delivery is at least once: when a pipeline fans out to several exporters and one refuses,
//!   the retried hand-off may give the others a second copy.
//! - Request context (peer, metadata) is kept when every request in a batch shares it, and
//!   dropped otherwise, so k8sattributes with `from: connection` belongs before batch.

use std::sync::Arc;
use std::time::Duration;

use kotel_config::ComponentId;
use kotel_config::processors::batch::BatchConfig;
use kotel_pipeline::{
    Acks, Backoff, BoxConsumer, BuildContext, Built, ConsumeError, Consumer, Envelope, Ledger,
    Payload, PerSignal, Refusal, RequestContext, Shutdown, Signal, payload,
};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

/// How long `consume` waits for room in the buffer before refusing.
const WAIT_FOR_ROOM: Duration = Duration::from_secs(1);

struct Item {
    data: Envelope,
    bytes: usize,
    cost: u32,
}

/// The consumer side of a batch processor.
pub struct Batch {
    tx: mpsc::UnboundedSender<Item>,
    room: Arc<Semaphore>,
    capacity: u32,
    ledger: Ledger,
    refused: PerSignal<Counter>,
}

/// The batching loop, run by the topology.
pub struct BatchTask {
    id: ComponentId,
    rx: mpsc::UnboundedReceiver<Item>,
    room: Arc<Semaphore>,
    next: BoxConsumer,
    cfg: BatchConfig,
    ledger: Ledger,
    pending: PerSignal<Option<Pending>>,
}

struct Pending {
    payload: Payload,
    items: usize,
    bytes: usize,
    cost: u32,
    context: Option<RequestContext>,
    mixed: bool,
    /// Acknowledgements of every request merged in, carried by each piece sent on.
    acks: Acks,
    deadline: Instant,
}

/// The component contract's build: the batcher, and its task in the processor stage (which
/// ends retries of hand-offs when the exporters abort).
pub fn build(cx: BuildContext<'_>, cfg: &BatchConfig, next: BoxConsumer) -> Built {
    let refused = cx.telemetry.processor_refused(&cx.name());
    let (batch, task) = new(cx.id, cfg, next, cx.ledger.clone(), refused);
    let (drain, abort) = (
        cx.stages.processors.clone(),
        cx.stages.exporters.abort.clone(),
    );
    Built::consumer(batch).with_task(async move {
        task.run(drain, abort).await;
        Ok::<(), std::convert::Infallible>(())
    })
}

pub fn new(
    id: &ComponentId,
    cfg: &BatchConfig,
    next: BoxConsumer,
    ledger: Ledger,
    refused: PerSignal<Counter>,
) -> (Arc<Batch>, BatchTask) {
    // kotel-config has refused what this cannot do (metadata_keys).
    let unit = cfg.send_batch_size.max(cfg.send_batch_max_size).max(1);
    let capacity = (unit.saturating_mul(4)).min(u32::MAX as usize >> 4) as u32;
    let room = Arc::new(Semaphore::new(capacity as usize));
    let (tx, rx) = mpsc::unbounded_channel();
    let batch = Arc::new(Batch {
        tx,
        room: room.clone(),
        capacity,
        ledger: ledger.clone(),
        refused,
    });
    let task = BatchTask {
        id: id.clone(),
        rx,
        room,
        next,
        cfg: cfg.clone(),
        ledger,
        pending: PerSignal::default(),
    };
    (batch, task)
}

#[async_trait::async_trait]
impl Consumer for Batch {
    async fn offer(&self, data: Envelope) -> Result<(), Refusal> {
        let items = data.payload.item_count();
        if items == 0 {
            return Ok(());
        }
        let signal = data.payload.signal();
        let cost = (items as u32).clamp(1, self.capacity);
        // A request waiting for room is memory too: counted from now, so the memory limiter
        // in front sees every request the batch holds or keeps waiting.
        let bytes = data.payload.encoded_len();
        self.ledger.add(bytes);
        let permit = match self.room.try_acquire_many(cost) {
            Ok(p) => Some(p),
            Err(_) => tokio::time::timeout(WAIT_FOR_ROOM, self.room.acquire_many(cost))
                .await
                .ok()
                .and_then(Result::ok),
        };
        let Some(permit) = permit else {
            self.ledger.sub(bytes);
            self.refused[signal].inc_by(items as u64);
            let error = ConsumeError::Refused {
                reason: "batch buffer is full: the exporters are behind".into(),
                retry_after: Some(Duration::from_secs(1)),
            };
            return Err(Refusal::new(error, data));
        };
        permit.forget();
        if let Err(back) = self.tx.send(Item { data, bytes, cost }) {
            self.room.add_permits(cost as usize);
            self.ledger.sub(bytes);
            return Err(Refusal::new(ConsumeError::ShuttingDown, back.0.data));
        }
        Ok(())
    }
}

impl BatchTask {
    /// Batches until `drain`, then sends everything buffered. `abort` ends retries of hand-offs
    /// at the shutdown deadline.
    pub async fn run(mut self, drain: Shutdown, abort: Shutdown) {
        loop {
            let deadline = self
                .pending
                .iter()
                .filter_map(|(_, p)| p.as_ref())
                .map(|p| p.deadline)
                .min();
            tokio::select! {
                biased;
                _ = drain.cancelled() => break,
                item = self.rx.recv() => match item {
                    Some(item) => self.add(item, &abort).await,
                    None => break,
                },
                _ = sleep_until(deadline), if deadline.is_some() => {
                    let now = Instant::now();
                    for s in Signal::ALL {
                        if self.pending[s].as_ref().is_some_and(|p| p.deadline <= now) {
                            self.flush(s, &abort).await;
                        }
                    }
                }
            }
        }
        self.rx.close();
        while let Some(item) = self.rx.recv().await {
            self.add(item, &abort).await;
        }
        for s in Signal::ALL {
            self.flush(s, &abort).await;
        }
    }

    async fn add(&mut self, item: Item, abort: &Shutdown) {
        let i = item.data.payload.signal();
        let items = item.data.payload.item_count();
        match &mut self.pending[i] {
            Some(p) => {
                if let Err(back) = payload::merge(&mut p.payload, item.data.payload) {
                    unreachable!("payload of signal {:?} in slot {i:?}", back.signal());
                }
                p.items += items;
                p.bytes += item.bytes;
                p.cost += item.cost;
                p.acks.merge(item.data.acks);
                if !p.mixed && p.context.as_ref() != Some(&item.data.context) {
                    p.mixed = true;
                    p.context = None;
                }
            }
            slot @ None => {
                *slot = Some(Pending {
                    payload: item.data.payload,
                    items,
                    bytes: item.bytes,
                    cost: item.cost,
                    context: Some(item.data.context),
                    mixed: false,
                    acks: item.data.acks,
                    deadline: Instant::now() + self.cfg.timeout,
                });
            }
        }
        let full = self.pending[i]
            .as_ref()
            .is_some_and(|p| p.items >= self.cfg.send_batch_size);
        if full || self.cfg.timeout.is_zero() {
            self.flush(i, abort).await;
        }
    }

    async fn flush(&mut self, i: Signal, abort: &Shutdown) {
        let Some(mut p) = self.pending[i].take() else {
            return;
        };
        let context = p.context.take().unwrap_or_default();
        let max = self.cfg.send_batch_max_size;
        while p.payload.item_count() > 0 {
            let piece = if max > 0 && p.payload.item_count() > max {
                payload::split_front(&mut p.payload, max)
            } else {
                let empty = empty_like(&p.payload);
                std::mem::replace(&mut p.payload, empty)
            };
            let data = Envelope::with_context(piece, context.clone()).with_acks(p.acks.clone());
            self.hand_off(data, abort).await;
        }
        self.ledger.sub(p.bytes);
        self.room.add_permits(p.cost as usize);
    }

    /// Passes a batch on, retrying while the next stage refuses.
    async fn hand_off(&self, mut data: Envelope, abort: &Shutdown) {
        let mut backoff = Backoff::internal();
        loop {
            let error = match self.next.offer(data).await {
                Ok(()) => return,
                Err(Refusal { error, data: back }) => {
                    data = back;
                    error
                }
            };
            let items = data.payload.item_count();
            if let ConsumeError::Permanent(reason) = &error {
                tracing::error!(processor = %self.id, items, %reason, "next stage rejected a batch; dropping it");
                data.acks.fail();
                return;
            }
            let wait = match &error {
                ConsumeError::Refused {
                    retry_after: Some(d),
                    ..
                } => backoff.next_delay().min(*d),
                _ => backoff.next_delay(),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = abort.cancelled() => {
                    tracing::error!(processor = %self.id, items, %error, "shutdown deadline reached; dropping a batch the exporters did not take");
                    data.acks.fail();
                    return;
                }
            }
        }
    }
}

fn empty_like(p: &Payload) -> Payload {
    match p {
        Payload::Traces(_) => Payload::Traces(Default::default()),
        Payload::Metrics(_) => Payload::Metrics(Default::default()),
        Payload::Logs(_) => Payload::Logs(Default::default()),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kotel_pipeline::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use kotel_pipeline::{CaptureSink, ExportLogsServiceRequest};

    fn logs(n: usize) -> Envelope {
        Envelope::new(Payload::Logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord::default(); n],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }))
    }

    #[tokio::test]
    async fn batches_split_at_max_and_everything_is_sent_on_drain() {
        let sink = CaptureSink::new();
        let cfg = BatchConfig {
            send_batch_size: 10,
            send_batch_max_size: 10,
            timeout: Duration::from_secs(3600),
            ..Default::default()
        };
        let id: ComponentId = "batch".parse().unwrap();
        let (batch, task) = new(
            &id,
            &cfg,
            sink.clone(),
            Ledger::default(),
            Default::default(),
        );
        let drain = Shutdown::new();
        let run = tokio::spawn(task.run(drain.clone(), Shutdown::new()));
        for _ in 0..7 {
            batch.consume(logs(4)).await.unwrap();
        }
        drain.cancel();
        run.await.unwrap();
        let got = sink.take().await;
        let sizes: Vec<usize> = got.iter().map(|e| e.payload.item_count()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 28);
        assert!(sizes.iter().all(|&s| s <= 10), "{sizes:?}");
    }
}
