//! The poll loop: find files, tell old from new by fingerprint, read what was added, batch the
//! records into OTLP requests, hand them downstream and checkpoint what was accepted.
//!
//! Offsets advance only when the pipeline accepted the records before them. When it refuses,
//! the batch is dropped from memory, reading pauses (backoff) and resumes from the last accepted
//! offsets: the file itself is the retry buffer, so nothing is skipped or repeated.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kotel_config::receivers::filelog::{FilelogConfig, StartAt};
use kotel_pipeline::proto::collector::logs::v1::ExportLogsServiceRequest;
use kotel_pipeline::proto::common::v1::{InstrumentationScope, KeyValue};
use kotel_pipeline::proto::logs::v1::{ResourceLogs, ScopeLogs};
use kotel_pipeline::proto::resource::v1::Resource;
use kotel_pipeline::{AckWait, Acks, BoxConsumer, ConsumeError, Envelope, Payload, Shutdown};

use crate::checkpoint::{Loaded, Saved, Saver, Store};
use crate::discovery::{Discovery, Found};
use crate::entry::Entry;
use crate::fingerprint::Fingerprint;
use crate::metrics::Metrics;
use crate::operators::{Chain, ChainStats, FileCtx, Unfinished};
use crate::reader::{LineReader, Next};

/// Records per request handed downstream.
const BATCH_RECORDS: usize = 8192;
/// Approximate line bytes per request.
const BATCH_BYTES: usize = 4 << 20;
/// Bytes read from one file in one poll before the others get their turn.
const FILE_BYTES_PER_POLL: u64 = 64 << 20;
/// Polls a file is remembered after it was last seen, and a vanished file's handle is kept
/// open while it yields nothing more (the writer may still append after a rename).
const GENERATIONS: u64 = 3;
/// How long a stopping receiver waits for its last batches to be delivered before its final
/// checkpoint (what is not delivered by then is read again at the next start).
const SHUTDOWN_ACK_WAIT: Duration = Duration::from_secs(5);

/// An acknowledgement that is already settled (a flush with nothing to send).
fn ack_now() -> AckWait {
    let (acks, wait) = Acks::pair();
    drop(acks);
    wait
}

/// The receiver settings the poll loop uses.
#[derive(Debug, Clone)]
pub struct Settings {
    pub poll_interval: Duration,
    pub fingerprint_size: usize,
    pub max_log_size: usize,
    pub max_concurrent_files: usize,
    pub start_at_end: bool,
    pub force_flush_period: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl Settings {
    pub fn from_config(c: &FilelogConfig) -> Self {
        let (retry_initial, retry_max) = if c.retry_on_failure.enabled {
            (
                c.retry_on_failure.initial_interval,
                c.retry_on_failure.max_interval,
            )
        } else {
            (Duration::from_millis(100), Duration::from_secs(5))
        };
        Self {
            poll_interval: c.poll_interval.max(Duration::from_millis(1)),
            fingerprint_size: usize::try_from(c.fingerprint_size).unwrap_or(1000).max(1),
            max_log_size: usize::try_from(c.max_log_size)
                .unwrap_or(1 << 20)
                .clamp(1, 256 << 20),
            max_concurrent_files: c.max_concurrent_files.max(1),
            start_at_end: c.start_at == StartAt::End,
            force_flush_period: c.force_flush_period,
            retry_initial: retry_initial.max(Duration::from_millis(1)),
            retry_max: retry_max.max(retry_initial),
        }
    }
}

/// A file the receiver knows: its identity, accepted offset and, while found, an open handle.
struct Tracked {
    /// Stable while tracked (indices shift as files are forgotten), for acknowledgements.
    id: u64,
    fp: Fingerprint,
    /// Records before this offset were accepted downstream; reading goes on from here.
    offset: u64,
    /// See [`Position::done`].
    done: u64,
    /// What the checkpoint holds: the position up to which every record was delivered (sent
    /// by the exporters, or dropped for good). Behind `offset` while batches are on their way,
    /// so a crash re-reads them rather than losing them.
    acked: Position,
    path: PathBuf,
    file: Option<File>,
    dev_ino: (u64, u64),
    ctx: Option<FileCtx>,
    last_seen: u64,
    /// End of file at the last read and when it last moved, for `force_flush_period`.
    eof: u64,
    last_growth: Instant,
    /// Polls a vanished file's handle yielded nothing.
    idle_polls: u64,
    /// Partial lines of the file this one replaced at its path, continued by this file's first
    /// chunks (in memory: a restart in between emits the final chunks alone).
    inherited: Option<Unfinished>,
    /// Its unfinished lines went to the file that took its path: never emitted from here.
    handed_on: bool,
}

/// What a read does with a partial line at the end of what the file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AtEnd {
    /// Read it again next time; emit it once the file was quiet for `force_flush_period`.
    Wait,
    /// Leave it in the file's context for [`Poller::hand_on`].
    HandOn,
    /// Emit it now: the handle is about to be closed for good.
    Flush,
}

/// How far a file was read and accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    /// Reading resumes here: no unfinished partial line starts before it.
    offset: u64,
    /// Every record whose last line ends at or before this was accepted. Past `offset` when
    /// lines of the other stream were sent while a partial line was still open; on re-reading,
    /// their records are not sent again.
    done: u64,
}

/// Why a poll stopped early.
enum Stop {
    Shutdown,
    Refused,
}

#[derive(Default)]
struct Batch {
    resource_logs: Vec<ResourceLogs>,
    /// (file, resource) of the last ResourceLogs, to append to it.
    last: Option<(usize, Arc<Vec<KeyValue>>)>,
    records: usize,
    bytes: usize,
    /// Positions to advance once this batch is accepted.
    commits: Vec<(usize, Position)>,
}

impl Batch {
    fn push(&mut self, file: usize, e: Entry) {
        let same = matches!(&self.last, Some((f, r)) if *f == file && (Arc::ptr_eq(r, &e.resource) || **r == *e.resource));
        if !same {
            self.resource_logs.push(ResourceLogs {
                resource: Some(Resource {
                    attributes: (*e.resource).clone(),
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope::default()),
                    ..Default::default()
                }],
                ..Default::default()
            });
            self.last = Some((file, e.resource.clone()));
        }
        let rl = self.resource_logs.last_mut().expect("just pushed");
        rl.scope_logs[0].log_records.push(e.record);
        self.records += 1;
    }

    fn full(&self) -> bool {
        self.records >= BATCH_RECORDS || self.bytes >= BATCH_BYTES
    }

    fn commit(&mut self, file: usize, pos: Position) {
        match self.commits.last_mut() {
            Some((f, o)) if *f == file => *o = pos,
            _ => self.commits.push((file, pos)),
        }
    }
}

pub struct Poller {
    id: String,
    s: Settings,
    discovery: Discovery,
    chain: Chain,
    store: Option<Store>,
    saver: Option<Saver>,
    next: BoxConsumer,
    metrics: Metrics,
    tracked: Vec<Tracked>,
    poll: u64,
    buf: Vec<u8>,
    batch: Batch,
    scratch: Vec<Entry>,
    dirty: bool,
    backoff: Duration,
    /// Batches accepted downstream and not yet delivered, oldest first, with the positions
    /// their delivery lets the checkpoint reach.
    unacked: VecDeque<(Vec<(u64, Position)>, AckWait)>,
    next_id: u64,
    /// (renamed-away file, file that took its path) found this poll, for [`Poller::hand_on`].
    rotations: Vec<(usize, usize)>,
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}

impl Poller {
    pub fn new(
        id: String,
        s: Settings,
        discovery: Discovery,
        chain: Chain,
        store: Option<Store>,
        next: BoxConsumer,
        metrics: Metrics,
    ) -> Self {
        let backoff = s.retry_initial;
        Self {
            id,
            s,
            discovery,
            chain,
            store,
            saver: None,
            next,
            metrics,
            tracked: Vec::new(),
            poll: 0,
            buf: Vec::new(),
            batch: Batch::default(),
            scratch: Vec::new(),
            dirty: false,
            unacked: VecDeque::new(),
            next_id: 0,
            rotations: Vec::new(),
            backoff,
        }
    }

    pub async fn run(mut self, shutdown: Shutdown) {
        self.load_checkpoints();
        self.follow_rotated();
        if let Some(store) = self.store.take() {
            let errors = self.metrics.checkpoint_errors.clone();
            let id = self.id.clone();
            self.saver = Some(Saver::start(store, move |r| {
                if let Err(e) = r {
                    errors.inc();
                    tracing::warn!(receiver = %id, error = %e, "saving checkpoints failed; the next change is saved again");
                }
            }));
        }
        loop {
            let started = tokio::time::Instant::now();
            let stop = self.poll_once(&shutdown).await;
            self.settle_acks();
            self.save_checkpoints();
            let wait = match stop {
                Err(Stop::Shutdown) => break,
                Err(Stop::Refused) => {
                    let w = self.backoff;
                    self.backoff = (self.backoff * 2).min(self.s.retry_max);
                    w
                }
                Ok(()) => {
                    self.backoff = self.s.retry_initial;
                    self.s.poll_interval.saturating_sub(started.elapsed())
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        // The last batches are usually still in the batch processor or the exporter: give them
        // a moment, then checkpoint what was delivered (the rest is read again next start).
        self.wait_for_acks(SHUTDOWN_ACK_WAIT).await;
        self.save_checkpoints();
        if let Some(mut saver) = self.saver.take() {
            saver.finish();
        }
        self.metrics.open_files.set(0);
        tracing::info!(receiver = %self.id, "filelog receiver stopped");
    }

    fn load_checkpoints(&mut self) {
        let Some(store) = &self.store else { return };
        match store.load() {
            Loaded::Empty => {}
            Loaded::Files(files) => {
                tracing::info!(receiver = %self.id, files = files.len(), "resuming from checkpoints");
                for f in files {
                    self.next_id += 1;
                    self.tracked.push(Tracked {
                        id: self.next_id,
                        fp: f.fingerprint,
                        offset: f.offset,
                        done: f.done.max(f.offset),
                        acked: Position {
                            offset: f.offset,
                            done: f.done.max(f.offset),
                        },
                        path: f.path.into(),
                        file: None,
                        dev_ino: (0, 0),
                        ctx: None,
                        last_seen: 0,
                        eof: f.offset,
                        last_growth: Instant::now(),
                        idle_polls: 0,
                        inherited: None,
                        handed_on: false,
                    });
                }
            }
            Loaded::Corrupt { reason, moved_to } => {
                self.metrics.checkpoint_resets.inc();
                tracing::error!(
                    receiver = %self.id,
                    %reason,
                    moved_to = %moved_to.display(),
                    "checkpoint is corrupt; set aside, files start per start_at"
                );
            }
        }
    }

    /// Checkpointed files that are no longer at their path because the kubelet rotated them
    /// while no collector ran (`0.log` → `0.log.<time>`): found again by fingerprint among
    /// their rotated siblings and kept open, so the unread tail is read like that of any file
    /// renamed away (and the file that took the path continues its partial lines).
    fn follow_rotated(&mut self) {
        let n = self.s.fingerprint_size;
        for t in self.tracked.iter_mut().filter(|t| t.file.is_none()) {
            let same = |file: &File| Fingerprint::read(file, n).is_ok_and(|fp| fp.continues(&t.fp));
            if File::open(&t.path).is_ok_and(|f| same(&f)) {
                continue; // still there: found by the first poll
            }
            let (Some(dir), Some(name)) = (t.path.parent(), t.path.file_name()) else {
                continue;
            };
            let prefix = format!("{}.", name.to_string_lossy());
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                let fname = e.file_name().to_string_lossy().into_owned();
                if !fname.starts_with(&prefix) || fname.ends_with(".gz") {
                    continue;
                }
                let Ok(file) = File::open(e.path()) else {
                    continue;
                };
                let Ok(meta) = file.metadata() else { continue };
                if meta.len() >= t.offset && same(&file) {
                    tracing::info!(receiver = %self.id, path = %t.path.display(), rotated = %e.path().display(), "reading the unread tail of a file rotated while stopped");
                    t.dev_ino = (meta.dev(), meta.ino());
                    t.file = Some(file);
                    break;
                }
            }
        }
    }

    /// Hands the current offsets to the checkpoint writer when they changed.
    fn save_checkpoints(&mut self) {
        let Some(saver) = &self.saver else { return };
        if !self.dirty {
            return;
        }
        let saved: Vec<Saved> = self
            .tracked
            .iter()
            .map(|t| Saved {
                fingerprint: t.fp.clone(),
                offset: t.acked.offset,
                done: t.acked.done,
                path: t.path.to_string_lossy().into_owned(),
            })
            .collect();
        saver.submit(saved);
        self.dirty = false;
    }

    async fn poll_once(&mut self, shutdown: &Shutdown) -> Result<(), Stop> {
        self.poll += 1;
        let found = self.discovery.scan();
        let batching = found.len() > self.s.max_concurrent_files;
        let mut matched = vec![false; self.tracked.len()];
        let mut index = Index::build(&self.tracked);
        let result = async {
            for chunk in found.chunks(self.s.max_concurrent_files) {
                let mut to_read = Vec::with_capacity(chunk.len());
                let mut resolved = Vec::with_capacity(chunk.len());
                for f in chunk {
                    if let Some(i) = self.resolve(f, &mut matched, &mut index) {
                        resolved.push(i);
                        let t = &self.tracked[i];
                        // Unchanged and nothing pending: no read needed.
                        let idle = t.eof == f.size && t.offset == f.size && t.file.is_some();
                        if !idle {
                            to_read.push(i);
                        }
                    }
                }
                for (pred, succ) in std::mem::take(&mut self.rotations) {
                    self.hand_on(pred, succ, shutdown).await?;
                }
                self.metrics.reading_files.set(to_read.len() as i64);
                for &i in &to_read {
                    if shutdown.is_cancelled() {
                        return Err(Stop::Shutdown);
                    }
                    self.read_file(i, AtEnd::Wait, shutdown).await?;
                }
                if batching {
                    // Bound open files: keep offsets, let the handles go.
                    for &i in &resolved {
                        self.tracked[i].file = None;
                    }
                }
            }
            // Files no longer found (renamed out of the pattern, deleted): drain what is left
            // through the handle still open — unless that handle is a file found again under
            // a new identity (truncated and rewritten in place), whose old offset means nothing.
            let live: std::collections::HashSet<(u64, u64)> = self
                .tracked
                .iter()
                .filter(|t| t.last_seen == self.poll)
                .map(|t| t.dev_ino)
                .collect();
            for i in 0..self.tracked.len() {
                let t = &mut self.tracked[i];
                if t.file.is_some() && t.last_seen != self.poll && live.contains(&t.dev_ino) {
                    t.file = None;
                    continue;
                }
                if self.tracked[i].file.is_some() && self.tracked[i].last_seen != self.poll {
                    let before = self.tracked[i].eof;
                    self.read_file(i, AtEnd::Wait, shutdown).await?;
                    let t = &mut self.tracked[i];
                    if t.eof == before {
                        t.idle_polls += 1;
                        if t.idle_polls >= GENERATIONS {
                            // A partial line no file continued is emitted as it is, not lost.
                            if !t.handed_on && t.offset < t.eof {
                                self.read_file(i, AtEnd::Flush, shutdown).await?;
                            }
                            self.tracked[i].file = None;
                        }
                    } else {
                        t.idle_polls = 0;
                    }
                }
            }
            self.flush(shutdown).await
        }
        .await;
        self.metrics.reading_files.set(0);
        if result.is_err() {
            self.abandon_batch();
        }
        if result.is_ok() {
            self.prune();
        }
        self.metrics
            .open_files
            .set(self.tracked.iter().filter(|t| t.file.is_some()).count() as i64);
        result
    }

    /// Forgets files unseen for a few polls whose handles are closed.
    fn prune(&mut self) {
        let poll = self.poll;
        let before = self.tracked.len();
        self.tracked
            .retain(|t| t.file.is_some() || t.last_seen + GENERATIONS > poll);
        if self.tracked.len() != before {
            self.dirty = true;
        }
    }

    /// Finds the known file `f` is, or starts tracking it. `None`: skip it this poll (empty,
    /// unreadable, a duplicate of a file already matched, or a copy still being written).
    fn resolve(&mut self, f: &Found, matched: &mut Vec<bool>, index: &mut Index) -> Option<usize> {
        let n = self.s.fingerprint_size;
        // Fast path: the same file still open at the same path.
        if let Some(&i) = index.by_path.get(&f.path) {
            let t = &mut self.tracked[i];
            if !matched[i]
                && t.dev_ino == (f.dev, f.ino)
                && let Some(file) = &t.file
            {
                // Read the fingerprint even when the size is unchanged: a copy-truncated file
                // rewritten to the same size between two polls differs only there.
                match Fingerprint::read(file, n) {
                    Ok(fp) if fp.continues(&t.fp) && f.size >= t.offset => {
                        t.fp = fp;
                        t.last_seen = self.poll;
                        t.idle_polls = 0;
                        matched[i] = true;
                        return Some(i);
                    }
                    Ok(_) => {} // truncated or rewritten: a new file at this path
                    Err(e) => {
                        tracing::debug!(path = %f.path.display(), error = %e, "fingerprint read failed");
                        return None;
                    }
                }
            }
        }
        let file = match File::open(&f.path) {
            Ok(file) => file,
            Err(e) => {
                tracing::debug!(path = %f.path.display(), error = %e, "cannot open file");
                return None;
            }
        };
        let meta = file.metadata().ok()?;
        let fp = Fingerprint::read(&file, n).ok()?;
        if fp.is_empty() {
            return None;
        }
        let candidate = index
            .by_path
            .get(&f.path)
            .copied()
            .filter(|&i| fp.continues(&self.tracked[i].fp))
            .or_else(|| index.fps(&self.tracked).exact.get(&fp).copied())
            .or_else(|| {
                (0..self.tracked.len()).find(|&i| {
                    let t = &self.tracked[i];
                    t.fp.len() < fp.len() && fp.continues(&t.fp)
                })
            });
        if let Some(i) = candidate {
            if matched[i] {
                return None; // same content already read this poll (a copy)
            }
            let t = &mut self.tracked[i];
            if meta.len() < t.offset {
                tracing::info!(path = %f.path.display(), "file truncated; reading from its start");
                t.offset = 0;
                t.done = 0;
                t.acked = Position { offset: 0, done: 0 };
                t.ctx = None;
                self.dirty = true;
            }
            if t.path != f.path {
                index.by_path.insert(f.path.clone(), i);
                t.path = f.path.clone();
            }
            t.fp = fp;
            t.file = Some(file);
            t.dev_ino = (meta.dev(), meta.ino());
            t.last_seen = self.poll;
            t.idle_polls = 0;
            matched[i] = true;
            return Some(i);
        }
        if index.fps(&self.tracked).is_prefix_of_known(&fp) {
            return None; // a copy of a known file, still being written
        }
        let offset = if self.poll == 1 && self.s.start_at_end {
            meta.len()
        } else {
            0
        };
        self.next_id += 1;
        self.tracked.push(Tracked {
            id: self.next_id,
            fp: fp.clone(),
            offset,
            done: offset,
            acked: Position {
                offset,
                done: offset,
            },
            path: f.path.clone(),
            file: Some(file),
            dev_ino: (meta.dev(), meta.ino()),
            ctx: None,
            last_seen: self.poll,
            eof: offset,
            last_growth: Instant::now(),
            idle_polls: 0,
            inherited: None,
            handed_on: false,
        });
        self.dirty = true;
        let i = self.tracked.len() - 1;
        // Renamed away with its handle still open, and this file took its path: a rotation.
        if let Some(&p) = index.by_path.get(&f.path)
            && self.tracked[p].file.is_some()
            && self.tracked[p].dev_ino != (meta.dev(), meta.ino())
        {
            self.rotations.push((p, i));
        }
        matched.push(true);
        index.insert(f.path.clone(), fp, i);
        Some(i)
    }

    /// `pred` was renamed away and `succ` took its path. The runtime may have reopened its log
    /// between the chunks of one line: read what `pred` still holds, then let `succ` continue
    /// the lines `pred` left unfinished, so such a line arrives whole (as upstream, whose
    /// recombine joins chunks by `log.file.path`).
    async fn hand_on(&mut self, pred: usize, succ: usize, shutdown: &Shutdown) -> Result<(), Stop> {
        let read = self.read_file(pred, AtEnd::HandOn, shutdown).await?;
        let t = &mut self.tracked[pred];
        if let Some(u) = t.ctx.as_mut().and_then(FileCtx::take_unfinished) {
            t.handed_on = true;
            // Its lines end in `succ` now: nothing of `pred` is left to send.
            self.batch.commit(
                pred,
                Position {
                    offset: read.done,
                    done: read.done,
                },
            );
            self.tracked[succ].inherited = Some(u);
        }
        // Sent now, so that `pred`'s offsets are current when it is read again this poll.
        self.flush(shutdown).await
    }

    /// Reads file `i` from its accepted offset to its end (or this poll's byte budget); the
    /// position its records reach once accepted.
    async fn read_file(
        &mut self,
        i: usize,
        at_end: AtEnd,
        shutdown: &Shutdown,
    ) -> Result<Position, Stop> {
        let Some(file) = self.tracked[i].file.take() else {
            let t = &self.tracked[i];
            return Ok(Position {
                offset: t.offset,
                done: t.done,
            });
        };
        let result = self.read_open_file(i, &file, at_end, shutdown).await;
        self.tracked[i].file = Some(file);
        result
    }

    async fn read_open_file(
        &mut self,
        i: usize,
        file: &File,
        at_end: AtEnd,
        shutdown: &Shutdown,
    ) -> Result<Position, Stop> {
        let start_offset = self.tracked[i].offset;
        let already_done = self.tracked[i].done;
        let mut ctx = match self.tracked[i].ctx.take() {
            Some(c) => c,
            None => self.chain.file_ctx(&self.tracked[i].path),
        };
        ctx.observed = now_nanos();
        ctx.recombine.clear();
        if start_offset == 0
            && let Some(u) = &self.tracked[i].inherited
        {
            ctx.inherit(u);
        }
        let mut buf = std::mem::take(&mut self.buf);
        let mut reader = LineReader::new(file, &mut buf, start_offset, self.s.max_log_size);
        let mut stats = ChainStats::default();
        let mut lines = 0u64;
        let mut safe = start_offset;
        let mut done = already_done.max(start_offset);
        let mut outcome = Ok(());
        loop {
            if self.batch.full() {
                self.batch.commit(i, Position { offset: safe, done });
                if let Err(stop) = self.flush(shutdown).await {
                    outcome = Err(stop);
                    break;
                }
                ctx.observed = now_nanos();
            }
            let next = match reader.next_line() {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(receiver = %self.id, path = %self.tracked[i].path.display(), error = %e, "read failed; retrying next poll");
                    break;
                }
            };
            match next {
                Next::Line { token, start, end } => {
                    lines += 1;
                    self.batch.bytes += token.len();
                    self.chain
                        .process(token, start, &mut ctx, &mut self.scratch, &mut stats);
                    safe = self.chain.pending_start(&ctx).unwrap_or(end);
                    if end <= already_done {
                        // Re-read only to rebuild a partial line; these records were sent.
                        self.scratch.clear();
                    }
                    for e in self.scratch.drain(..) {
                        self.batch.push(i, e);
                    }
                    done = done.max(end);
                    if end - start_offset >= FILE_BYTES_PER_POLL {
                        break; // the rest next poll, after the other files
                    }
                }
                Next::Eof { tail, start } => {
                    let eof = start + tail.len() as u64;
                    let t = &mut self.tracked[i];
                    if eof != t.eof {
                        t.eof = eof;
                        t.last_growth = Instant::now();
                    }
                    let stale = at_end == AtEnd::Flush
                        || (at_end == AtEnd::Wait
                            && !t.handed_on
                            && !self.s.force_flush_period.is_zero()
                            && t.last_growth.elapsed() >= self.s.force_flush_period);
                    if stale && (!tail.is_empty() || self.chain.pending_start(&ctx).is_some()) {
                        // The writer went quiet mid-line: emit what is there.
                        if !tail.is_empty() {
                            lines += 1;
                            self.chain.process(
                                tail,
                                start,
                                &mut ctx,
                                &mut self.scratch,
                                &mut stats,
                            );
                        }
                        self.chain
                            .flush_pending(&mut ctx, &mut self.scratch, &mut stats);
                        for e in self.scratch.drain(..) {
                            self.batch.push(i, e);
                        }
                        safe = eof;
                        done = eof;
                    } else {
                        safe = self.chain.pending_start(&ctx).unwrap_or(start);
                    }
                    break;
                }
            }
        }
        self.buf = buf;
        // Pending partial lines are read again next poll from `safe`.
        if at_end != AtEnd::HandOn {
            ctx.recombine.clear();
        }
        self.tracked[i].ctx = Some(ctx);
        let pos = Position { offset: safe, done };
        if outcome.is_ok() {
            self.batch.commit(i, pos);
        }
        self.metrics.lines_read.inc_by(lines);
        self.metrics.parse_errors.inc_by(stats.parse_errors);
        self.metrics.dropped.inc_by(stats.dropped);
        outcome.map(|()| pos)
    }

    /// Hands the batch downstream; on acceptance advances the offsets it covers.
    async fn flush(&mut self, shutdown: &Shutdown) -> Result<(), Stop> {
        let batch = std::mem::take(&mut self.batch);
        let mut wait = None;
        if batch.records > 0 {
            let records = batch.records as u64;
            let req = ExportLogsServiceRequest {
                resource_logs: batch.resource_logs,
            };
            let (acks, w) = Acks::pair();
            wait = Some(w);
            let send = self
                .next
                .consume(Envelope::new(Payload::Logs(req)).with_acks(acks));
            let res = if shutdown.is_cancelled() {
                // Final flush while stopping: give the pipeline a moment, no more.
                tokio::time::timeout(Duration::from_secs(5), send)
                    .await
                    .unwrap_or(Err(ConsumeError::ShuttingDown))
            } else {
                tokio::select! {
                    r = send => r,
                    () = shutdown.cancelled() => Err(ConsumeError::ShuttingDown),
                }
            };
            match res {
                Ok(()) => {}
                Err(ConsumeError::Permanent(reason)) => {
                    self.metrics.dropped.inc_by(records);
                    tracing::warn!(receiver = %self.id, %reason, records, "pipeline rejected records permanently; dropped");
                }
                Err(ConsumeError::Refused { reason, .. }) => {
                    tracing::debug!(receiver = %self.id, %reason, "pipeline refused; pausing");
                    return Err(Stop::Refused);
                }
                Err(ConsumeError::ShuttingDown) => return Err(Stop::Shutdown),
            }
        }
        let mut acked = Vec::with_capacity(batch.commits.len());
        for (i, pos) in batch.commits {
            let t = &mut self.tracked[i];
            t.offset = pos.offset;
            t.done = pos.done;
            if t.offset > 0 {
                t.inherited = None; // continued and sent
            }
            acked.push((t.id, pos));
        }
        if let Some(wait) = wait {
            self.unacked.push_back((acked, wait));
        } else {
            self.unacked.push_back((acked, ack_now()));
        }
        self.settle_acks();
        self.save_checkpoints();
        Ok(())
    }

    /// Moves checkpoints past the batches the pipeline has delivered, oldest first: a batch
    /// still on its way holds back every later one, so a crash never skips it.
    fn settle_acks(&mut self) {
        while let Some((_, wait)) = self.unacked.front_mut() {
            match wait.settled() {
                None => break,
                Some(delivered) => {
                    if !delivered {
                        // Dropped by an exporter (and counted there): not read again, as upstream.
                        self.metrics.undelivered_batches.inc();
                    }
                }
            }
            let (commits, _) = self.unacked.pop_front().expect("front exists");
            for (id, pos) in commits {
                if let Some(t) = self.tracked.iter_mut().find(|t| t.id == id)
                    && t.acked != pos
                {
                    t.acked = pos;
                    self.dirty = true;
                }
            }
        }
    }

    /// Waits up to `limit` for batches still on their way (at shutdown, before the last save).
    async fn wait_for_acks(&mut self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            self.settle_acks();
            if self.unacked.is_empty() || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A refused or interrupted batch: forget it; its files are read again from their offsets.
    fn abandon_batch(&mut self) {
        self.batch = Batch::default();
    }
}

/// Lookups over the known files for one poll.
struct Index {
    by_path: HashMap<PathBuf, usize>,
    /// Built on first need: most polls find every file at its known path.
    fps: Option<FpIndex>,
}

struct FpIndex {
    exact: HashMap<Fingerprint, usize>,
    /// Sorted fingerprints, to tell a partial copy of a known file (a prefix of it).
    sorted: BTreeMap<Fingerprint, usize>,
}

impl Index {
    fn build(tracked: &[Tracked]) -> Self {
        let by_path = tracked
            .iter()
            .enumerate()
            .map(|(i, t)| (t.path.clone(), i))
            .collect();
        Self { by_path, fps: None }
    }

    fn fps(&mut self, tracked: &[Tracked]) -> &mut FpIndex {
        self.fps.get_or_insert_with(|| {
            let exact: HashMap<_, _> = tracked
                .iter()
                .enumerate()
                .map(|(i, t)| (t.fp.clone(), i))
                .collect();
            let sorted = exact.iter().map(|(f, i)| (f.clone(), *i)).collect();
            FpIndex { exact, sorted }
        })
    }

    fn insert(&mut self, path: PathBuf, fp: Fingerprint, i: usize) {
        self.by_path.insert(path, i);
        if let Some(f) = &mut self.fps {
            f.exact.insert(fp.clone(), i);
            f.sorted.insert(fp, i);
        }
    }
}

impl FpIndex {
    fn is_prefix_of_known(&self, fp: &Fingerprint) -> bool {
        self.sorted
            .range(fp.clone()..)
            .next()
            .is_some_and(|(k, _)| k.len() > fp.len() && k.continues(fp))
    }
}
