//! Exporters: a [`Sender`] per protocol (OTLP gRPC, OTLP/HTTP, debug) behind one
//! [`QueuedExporter`] that owns the sending queue, retries and counters.
//!
//! Semantics, as upstream's exporter helper:
//! - `sending_queue` is bounded (`queue_size` requests, or items with `sizer: items`). When it is
//!   full the data is refused at once with a retryable error (counted as
//!   `otelcol_exporter_enqueue_failed_*`), or, with `block_on_overflow`, the caller waits for room.
//! - `num_consumers` workers send concurrently. A retryable failure is retried with exponential
//!   backoff and jitter (`retry_on_failure`), waiting at least what the server asked for
//!   (Retry-After, RetryInfo); permanent failures and data past `max_elapsed_time` are dropped
//!   and counted as `otelcol_exporter_send_failed_*`.
//! - Without a queue, `consume` sends inline and returns the outcome to the caller.
//! - On shutdown the workers send what is queued; past the deadline, retries stop and what is
//!   left is dropped and counted.
//! - With `sending_queue.storage` (a `file_storage` extension) the queue is on disk
//!   ([`disk_queue`]): data counts as accepted once its file is written (so a receiver that
//!   waits for acknowledgements, filelog, may checkpoint past it), workers read it back to send
//!   it, and on shutdown what is not sent stays on disk for the next start instead of being
//!   dropped. Queued bytes are on disk, not in memory: the memory limiter does not count them.

pub mod codec;
pub mod debug;
pub mod disk_queue;
pub mod otlp_grpc;
pub mod otlp_http;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kotel_config::exporters::{QueueConfig, QueueSizer, RetryConfig};
use kotel_config::{ComponentId, ComponentKind, ExporterConfig};
use kotel_pipeline::obsreport::ExporterCounters;
use kotel_pipeline::{
    Acks, Backoff, BuildContext, BuildError, Built, ConsumeError, Consumer, Envelope,
    ExporterStages, Ledger, Payload, Refusal, Signal,
};
use tokio::sync::{Mutex, Semaphore, mpsc};

use disk_queue::{DiskQueue, Stored};

/// An exporter that cannot be set up (a TLS file that does not load, …).
#[derive(Debug, thiserror::Error)]
#[error("exporters.{id}: {message}")]
pub struct SetupError {
    id: ComponentId,
    message: String,
}

/// The client authenticator an exporter's `auth` names (kotel-config checked that it is one).
fn authenticator(
    cx: &BuildContext<'_>,
    auth: &Option<kotel_config::extensions::auth::AuthRef>,
) -> Option<Arc<dyn kotel_pipeline::ClientAuth>> {
    cx.auth.get(&auth.as_ref()?.authenticator)
}

/// Builds the exporter `cfg` describes: its protocol's [`Sender`] behind a [`QueuedExporter`],
/// whose workers are the task.
pub fn build(cx: BuildContext<'_>, cfg: &ExporterConfig) -> Result<Built, BuildError> {
    let setup = |message: String| {
        BuildError::new(SetupError {
            id: cx.id.clone(),
            message,
        })
    };
    let (sender, policy, queue): (Arc<dyn Sender>, SendPolicy, _) = match cfg {
        ExporterConfig::Otlp(c) => (
            Arc::new(
                otlp_grpc::OtlpGrpcSender::new(c)
                    .map_err(|e| setup(e.to_string()))?
                    .with_auth(authenticator(&cx, &c.auth)),
            ),
            SendPolicy {
                timeout: c.timeout,
                retry: c.retry_on_failure.clone(),
            },
            c.sending_queue.clone(),
        ),
        ExporterConfig::OtlpHttp(c) => (
            Arc::new(
                otlp_http::OtlpHttpSender::new(c)
                    .map_err(|e| setup(e.to_string()))?
                    .with_auth(authenticator(&cx, &c.auth)),
            ),
            SendPolicy {
                timeout: c.timeout,
                retry: c.retry_on_failure.clone(),
            },
            c.sending_queue.clone(),
        ),
        ExporterConfig::Debug(c) => (
            Arc::new(if c.use_internal_logger {
                debug::DebugSender::new(c)
            } else {
                debug::DebugSender::with_writer(c, std::io::stdout())
            }),
            SendPolicy {
                timeout: Duration::from_secs(5),
                retry: RetryConfig {
                    enabled: false,
                    ..Default::default()
                },
            },
            QueueConfig {
                enabled: false,
                ..Default::default()
            },
        ),
    };
    let disk = match queue.storage.as_deref().filter(|_| queue.enabled) {
        Some(ext) => Some(open_disk_queue(&cx, ext).map_err(setup)?),
        None => None,
    };
    let name = cx.name();
    let wiring = Wiring {
        counters: cx.telemetry.exporter(&name),
        ledger: cx.ledger.clone(),
        stages: cx.stages.exporters.clone(),
    };
    let (exporter, task) = QueuedExporter::new(name, sender, policy, &queue, disk, wiring);
    Ok(Built::consumer(exporter).with_task(async move {
        task.run().await;
        Ok::<(), std::convert::Infallible>(())
    }))
}

/// The exporter's queue directory in the `file_storage` extension `ext`, opened, with what an
/// earlier run left in it. Named beside upstream's per-signal files (`exporter_otlp_backend_traces`,
/// a bbolt database) without taking their names: the formats differ.
fn open_disk_queue(cx: &BuildContext<'_>, ext: &str) -> Result<(DiskQueue, Vec<Stored>), String> {
    let base = cx
        .storage
        .component_dir(ext, ComponentKind::Exporter, cx.id)
        .ok_or_else(|| format!("storage {ext:?} is not an enabled file_storage extension"))?;
    let mut dir = base.into_os_string();
    dir.push("_sending_queue");
    let dir = PathBuf::from(dir);
    let (queue, stored, damaged) = DiskQueue::open(&dir, cx.storage.fsync(ext))
        .map_err(|e| format!("sending_queue.storage: {}: {e}", dir.display()))?;
    for d in damaged {
        tracing::error!(exporter = %cx.id, error = %d, "persistent queue: skipping a damaged request");
    }
    if !stored.is_empty() {
        tracing::info!(
            exporter = %cx.id,
            requests = stored.len(),
            items = stored.iter().map(|s| s.items).sum::<u64>(),
            dir = %dir.display(),
            "persistent queue: sending what an earlier run left queued"
        );
    }
    Ok((queue, stored))
}

/// Why one attempt to send failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// Worth another attempt; `throttle` is the server's requested wait.
    #[error("{message}")]
    Retryable {
        message: String,
        throttle: Option<Duration>,
    },
    #[error("{0}")]
    Permanent(String),
}

impl SendError {
    /// The same error with `what` (such as the endpoint) in front of its message.
    pub fn context(self, what: &str) -> Self {
        match self {
            SendError::Retryable { message, throttle } => SendError::Retryable {
                message: format!("{what}: {message}"),
                throttle,
            },
            SendError::Permanent(m) => SendError::Permanent(format!("{what}: {m}")),
        }
    }

    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable {
            message: message.into(),
            throttle: None,
        }
    }
}

/// An export request, encoded once as OTLP protobuf when it enters the exporter: the queue
/// holds these bytes (a third or less of the decoded message's memory) and retries resend them.
#[derive(Clone)]
pub struct Outgoing {
    pub signal: Signal,
    pub items: u64,
    pub body: Bytes,
    /// Released when the request is sent; failed first when it is given up.
    pub acks: Acks,
}

impl Outgoing {
    pub fn encode(payload: &Payload) -> Self {
        Self {
            signal: payload.signal(),
            items: payload.item_count() as u64,
            body: codec::encode(payload),
            acks: Acks::default(),
        }
    }

    /// The message again, for senders that need it (debug output, JSON bodies).
    pub fn decode(&self) -> Result<Payload, prost::DecodeError> {
        use prost::Message;
        let b = self.body.as_ref();
        Ok(match self.signal {
            Signal::Traces => Payload::Traces(Message::decode(b)?),
            Signal::Metrics => Payload::Metrics(Message::decode(b)?),
            Signal::Logs => Payload::Logs(Message::decode(b)?),
        })
    }
}

/// One protocol's way of sending a request once.
#[async_trait::async_trait]
pub trait Sender: Send + Sync + 'static {
    async fn send(&self, request: &Outgoing) -> Result<(), SendError>;
}

/// Per-attempt timeout and retry settings.
#[derive(Clone)]
pub struct SendPolicy {
    pub timeout: Duration,
    pub retry: RetryConfig,
}

struct Job {
    request: Queued,
    cost: u32,
}

/// A queued request: in memory, or on disk (the queue it is in, and its header).
enum Queued {
    Memory(Outgoing),
    Disk(Arc<DiskQueue>, Stored),
}

struct Queue {
    tx: mpsc::UnboundedSender<Job>,
    room: Arc<Semaphore>,
    capacity: u32,
    by_items: bool,
    block: bool,
    disk: Option<Arc<DiskQueue>>,
}

/// Where an exporter reports and how it is stopped.
pub struct Wiring {
    pub counters: ExporterCounters,
    pub ledger: Ledger,
    pub stages: ExporterStages,
}

/// Why a request was not sent.
enum Unsent {
    /// Given up for good: already counted, logged and its acknowledgements failed.
    Dropped(SendError),
    /// The collector is stopping; the caller keeps it (persistent queue) or drops it.
    Stopped {
        reason: &'static str,
        err: SendError,
    },
}

/// An exporter: queue, workers, retries and counters around a [`Sender`].
pub struct QueuedExporter {
    name: String,
    sender: Arc<dyn Sender>,
    policy: SendPolicy,
    queue: Option<Queue>,
    counters: ExporterCounters,
    ledger: Ledger,
    stages: ExporterStages,
}

/// The exporter's workers, run by the topology.
pub struct ExporterTask {
    workers: Vec<futures::future::BoxFuture<'static, ()>>,
}

impl ExporterTask {
    pub async fn run(self) {
        futures::future::join_all(self.workers).await;
    }
}

impl QueuedExporter {
    /// `disk`: the persistent queue and what an earlier run left in it, queued first.
    pub fn new(
        name: String,
        sender: Arc<dyn Sender>,
        policy: SendPolicy,
        queue: &QueueConfig,
        disk: Option<(DiskQueue, Vec<Stored>)>,
        wiring: Wiring,
    ) -> (Arc<Self>, ExporterTask) {
        let Wiring {
            counters,
            ledger,
            stages,
        } = wiring;
        // kotel-config has refused what this cannot do (the bytes sizer).
        let by_items = queue.sizer == QueueSizer::Items;
        if !queue.enabled {
            let exporter = Arc::new(Self {
                name,
                sender,
                policy,
                queue: None,
                counters,
                ledger,
                stages,
            });
            return (exporter, ExporterTask { workers: vec![] });
        }
        let capacity = queue.queue_size.clamp(1, u32::MAX as usize >> 4) as u32;
        counters.queue_capacity.set(capacity as i64);
        let (tx, rx) = mpsc::unbounded_channel();
        let room = Arc::new(Semaphore::new(capacity as usize));
        let disk = disk.map(|(queue, recovered)| (Arc::new(queue), recovered));
        let recovered = disk
            .iter()
            .flat_map(|(queue, stored)| stored.iter().map(move |s| (queue.clone(), *s)));
        for (queue, stored) in recovered {
            // Over the capacity (queue_size lowered since): kept all the same, taking no room.
            let cost = cost_of(by_items, stored.items, capacity);
            let cost = match room.try_acquire_many(cost) {
                Ok(p) => {
                    p.forget();
                    cost
                }
                Err(_) => 0,
            };
            let _ = tx.send(Job {
                request: Queued::Disk(queue, stored),
                cost,
            });
        }
        let disk = disk.map(|(queue, _)| queue);
        let exporter = Arc::new(Self {
            name,
            sender,
            policy,
            queue: Some(Queue {
                tx,
                room: room.clone(),
                capacity,
                by_items,
                block: queue.block_on_overflow,
                disk,
            }),
            counters,
            ledger,
            stages,
        });
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..queue.num_consumers.max(1))
            .map(|_| {
                let exporter = exporter.clone();
                let rx = rx.clone();
                let room = room.clone();
                Box::pin(async move { exporter.work(rx, room).await })
                    as futures::future::BoxFuture<'static, ()>
            })
            .collect();
        exporter.update_queue_gauge();
        (exporter, ExporterTask { workers })
    }

    async fn work(&self, rx: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>, room: Arc<Semaphore>) {
        let persistent = self.queue.as_ref().is_some_and(|q| q.disk.is_some());
        loop {
            let job = {
                let mut rx = rx.lock().await;
                tokio::select! {
                    biased;
                    job = rx.recv() => job,
                    // A persistent queue keeps the rest on disk for the next start.
                    _ = self.stages.drain.cancelled() => {
                        if persistent { None } else { rx.try_recv().ok() }
                    }
                }
            };
            let Some(job) = job else { break };
            room.add_permits(job.cost as usize);
            self.update_queue_gauge();
            match job.request {
                Queued::Memory(request) => {
                    // Past the abort, this drops it at once: the rest of the queue goes too.
                    if let Err(Unsent::Stopped { reason, err }) =
                        self.send_with_retry(&request).await
                    {
                        self.give_up(&request, reason, err);
                    }
                    self.ledger.sub(request.body.len());
                }
                Queued::Disk(disk, stored) => self.send_stored(&disk, stored).await,
            }
        }
    }

    /// Reads a request from disk, sends it, and forgets it unless the collector stopped first.
    async fn send_stored(&self, disk: &Arc<DiskQueue>, stored: Stored) {
        let d = disk.clone();
        let read = tokio::task::spawn_blocking(move || d.read(stored.seq)).await;
        let body = match read.expect("the read does not panic") {
            Ok(body) => body,
            Err(damaged) => {
                self.counters.send_failed[stored.signal].inc_by(stored.items);
                tracing::error!(exporter = %self.name, error = %damaged, items = stored.items,
                    "persistent queue: dropping a damaged request");
                return;
            }
        };
        let request = Outgoing {
            signal: stored.signal,
            items: stored.items,
            body,
            acks: Acks::default(),
        };
        self.ledger.add(request.body.len());
        let outcome = self.send_with_retry(&request).await;
        self.ledger.sub(request.body.len());
        if let Err(Unsent::Stopped { reason, .. }) = outcome {
            tracing::info!(exporter = %self.name, items = stored.items,
                "persistent queue: kept for the next start ({reason})");
            return;
        }
        let d = disk.clone();
        let removed = tokio::task::spawn_blocking(move || d.remove(stored.seq)).await;
        if let Ok(Err(e)) = removed {
            // Sent again after a restart: a duplicate, not a loss.
            tracing::warn!(exporter = %self.name, error = %e, "persistent queue: cannot remove a sent request");
        }
    }

    fn update_queue_gauge(&self) {
        if let Some(q) = &self.queue {
            let used = q.capacity as i64 - q.room.available_permits() as i64;
            self.counters.queue_size.set(used.max(0));
        }
    }

    /// Sends with retries; the error says why it was not sent.
    async fn send_with_retry(&self, request: &Outgoing) -> Result<(), Unsent> {
        let signal = request.signal;
        let items = request.items;
        let start = Instant::now();
        let mut backoff = Backoff::new(&self.policy.retry);
        loop {
            // Past the abort no attempt starts, and one in flight is abandoned: the deadline
            // beats the timeout. `biased` checks the abort first.
            let attempt = tokio::select! {
                biased;
                _ = self.stages.abort.cancelled() => {
                    let err = SendError::retryable("not sent before the shutdown deadline");
                    return Err(Unsent::Stopped { reason: "shutdown deadline reached", err });
                }
                a = tokio::time::timeout(self.policy.timeout, self.sender.send(request)) => a,
            };
            let err = match attempt {
                Ok(Ok(())) => {
                    self.counters.sent[signal].inc_by(items);
                    return Ok(());
                }
                Ok(Err(e)) => e,
                Err(_) => SendError::retryable(format!(
                    "no answer within the timeout of {:?}",
                    self.policy.timeout
                )),
            };
            let throttle = match &err {
                SendError::Permanent(_) => {
                    return Err(self.give_up(request, "not retryable error", err));
                }
                SendError::Retryable { throttle, .. } => *throttle,
            };
            if !self.policy.retry.enabled {
                return Err(self.give_up(request, "retry_on_failure is disabled", err));
            }
            // Draining: one attempt each, as upstream stops retrying at shutdown, so a backend
            // that is down does not keep the node without a collector for the whole deadline.
            // (A replayable source, filelog, has not checkpointed past it: it is read again.)
            if self.stages.drain.is_cancelled() {
                return Err(Unsent::Stopped {
                    reason: "the collector is shutting down",
                    err,
                });
            }
            let delay = backoff.next_delay().max(throttle.unwrap_or_default());
            let max = self.policy.retry.max_elapsed_time;
            if !max.is_zero() && start.elapsed() + delay > max {
                return Err(self.give_up(request, "max_elapsed_time reached", err));
            }
            tracing::warn!(
                exporter = %self.name,
                error = %err,
                delay_ms = delay.as_millis() as u64,
                "send failed, will retry"
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                // Shutdown starts: the last attempt now rather than after the backoff.
                _ = self.stages.drain.cancelled() => {}
                _ = self.stages.abort.cancelled() => {
                    return Err(Unsent::Stopped { reason: "shutdown deadline reached", err });
                }
            }
        }
    }

    /// Counts and logs data dropped for `reason`.
    fn give_up(&self, request: &Outgoing, reason: &str, err: SendError) -> Unsent {
        request.acks.fail();
        self.counters.send_failed[request.signal].inc_by(request.items);
        tracing::error!(
            exporter = %self.name,
            signal = request.signal.as_str(),
            items = request.items,
            error = %err,
            "dropping data: {reason}"
        );
        Unsent::Dropped(err)
    }

    fn refuse(&self, data: Envelope, error: ConsumeError) -> Refusal {
        let signal = data.payload.signal();
        self.counters.enqueue_failed[signal].inc_by(data.payload.item_count() as u64);
        Refusal { error, data }
    }
}

#[async_trait::async_trait]
impl Consumer for QueuedExporter {
    async fn offer(&self, data: Envelope) -> Result<(), Refusal> {
        if self.stages.drain.is_cancelled() {
            return Err(Refusal {
                error: ConsumeError::ShuttingDown,
                data,
            });
        }
        let Some(q) = &self.queue else {
            let request = Outgoing::encode(&data.payload);
            let err = match self.send_with_retry(&request).await {
                Ok(()) => return Ok(()),
                Err(Unsent::Dropped(err)) => err,
                Err(Unsent::Stopped { reason, err }) => {
                    let _ = self.give_up(&request, reason, err.clone());
                    err
                }
            };
            return match err {
                SendError::Permanent(m) => Err(Refusal {
                    error: ConsumeError::Permanent(m),
                    data,
                }),
                SendError::Retryable { message, throttle } => Err(Refusal {
                    error: ConsumeError::Refused {
                        reason: message,
                        retry_after: throttle,
                    },
                    data,
                }),
            };
        };
        let cost = cost_of(q.by_items, data.payload.item_count() as u64, q.capacity);
        let permit = if q.block {
            tokio::select! {
                p = q.room.acquire_many(cost) => p.ok(),
                _ = self.stages.drain.cancelled() => None,
            }
        } else {
            q.room.try_acquire_many(cost).ok()
        };
        let Some(permit) = permit else {
            let error = if self.stages.drain.is_cancelled() {
                ConsumeError::ShuttingDown
            } else {
                ConsumeError::Refused {
                    reason: format!("sending queue of exporter {} is full", self.name),
                    retry_after: Some(Duration::from_secs(1)),
                }
            };
            return Err(self.refuse(data, error));
        };
        permit.forget();
        let mut request = Outgoing::encode(&data.payload);
        let (job, bytes) = match &q.disk {
            // On disk is delivered as far as the sender is concerned: when `data` (and its
            // acknowledgements) is dropped below, the receiver hears success.
            Some(disk) => {
                let (d, body) = (disk.clone(), request.body.clone());
                let (signal, items) = (request.signal, request.items);
                let put = tokio::task::spawn_blocking(move || d.put(signal, items, &body));
                match put.await.expect("the write does not panic") {
                    Ok(stored) => (Queued::Disk(disk.clone(), stored), 0),
                    Err(e) => {
                        q.room.add_permits(cost as usize);
                        tracing::error!(exporter = %self.name, error = %e, dir = %disk.dir().display(),
                            "persistent queue: cannot write a request");
                        let error = ConsumeError::Refused {
                            reason: format!("persistent queue of exporter {}: {e}", self.name),
                            retry_after: Some(Duration::from_secs(1)),
                        };
                        return Err(self.refuse(data, error));
                    }
                }
            }
            // Queued in memory is not delivered: the receiver hears only once the worker sent it.
            None => {
                request.acks = data.acks.clone();
                let bytes = request.body.len();
                self.ledger.add(bytes);
                (Queued::Memory(request), bytes)
            }
        };
        if q.tx.send(Job { request: job, cost }).is_err() {
            // Only once the workers are gone; a file written stays for the next start.
            q.room.add_permits(cost as usize);
            self.ledger.sub(bytes);
            return Err(self.refuse(data, ConsumeError::ShuttingDown));
        }
        self.update_queue_gauge();
        Ok(())
    }
}

/// What a request takes of the queue's room: 1, or its items with `sizer: items`.
fn cost_of(by_items: bool, items: u64, capacity: u32) -> u32 {
    if by_items {
        items.clamp(1, capacity as u64) as u32
    } else {
        1
    }
}
