//! Test harness: a /var/log/pods-like tree in a temp dir, the receiver run in-process into a
//! collecting consumer, and polling helpers (no timing asserts: wait for a condition with a
//! generous deadline).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kotel_config::ComponentId;
use kotel_config::receivers::filelog::FilelogConfig;
use kotel_filelog::FilelogReceiver;
use kotel_pipeline::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use kotel_pipeline::{ConsumeError, Consumer, Envelope, Payload, Refusal, Shutdown};
use prometheus_client::registry::Registry;

pub use kotel_testkit::wait_until;

pub const DEADLINE: Duration = Duration::from_secs(60);

/// One received record, flattened for assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct Rec {
    pub body: String,
    pub time: u64,
    pub attrs: BTreeMap<String, String>,
    pub resource: BTreeMap<String, String>,
}

fn text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BytesValue(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn map(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

/// Collects records; refuses the first `refuse` requests.
#[derive(Default)]
pub struct Collect {
    pub records: std::sync::Mutex<Vec<Rec>>,
    pub requests: AtomicUsize,
    pub refuse: AtomicUsize,
    pub refused: AtomicUsize,
}

#[async_trait::async_trait]
impl Consumer for Collect {
    async fn offer(&self, data: Envelope) -> Result<(), Refusal> {
        if self
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(Refusal::new(ConsumeError::refused("test says no"), data));
        }
        let Payload::Logs(req) = data.payload else {
            panic!("filelog sends logs")
        };
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut out = self.records.lock().unwrap();
        for rl in req.resource_logs {
            let resource = map(&rl.resource.unwrap_or_default().attributes);
            for sl in rl.scope_logs {
                for r in sl.log_records {
                    out.push(Rec {
                        body: text(&r.body),
                        time: r.time_unix_nano,
                        attrs: map(&r.attributes),
                        resource: resource.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

impl Collect {
    pub fn len(&self) -> usize {
        self.records.lock().unwrap().len()
    }

    pub fn bodies(&self) -> Vec<String> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.body.clone())
            .collect()
    }

    pub fn records(&self) -> Vec<Rec> {
        self.records.lock().unwrap().clone()
    }
}

/// A running receiver.
pub struct Running {
    pub sink: Arc<Collect>,
    pub registry: Registry,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<Result<(), kotel_filelog::Error>>,
}

impl Running {
    pub async fn stop(self) -> Arc<Collect> {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
        self.sink
    }

    /// A metric's value from the registry's text exposition.
    pub fn metric(&self, name: &str) -> f64 {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &self.registry).unwrap();
        s.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub async fn wait_len(&self, n: usize) {
        let sink = self.sink.clone();
        wait_until(&format!("{n} records"), DEADLINE, || sink.len() >= n).await;
        // Give a straggler (a duplicate) the chance to show up before the exact check.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub fn config(yaml: &str) -> FilelogConfig {
    serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

pub fn start(cfg: &FilelogConfig, storage: Option<PathBuf>, sink: Arc<Collect>) -> Running {
    let mut registry = Registry::default();
    let id: ComponentId = "filelog".parse().unwrap();
    let r = FilelogReceiver::build(&id, cfg, storage, sink.clone(), &mut registry).unwrap();
    let shutdown = Shutdown::new();
    let task = tokio::spawn(r.run(shutdown.clone()));
    Running {
        sink,
        registry,
        shutdown,
        task,
    }
}

/// A kubelet-style pod log directory: `<root>/<ns>_<pod>_<uid>/<container>/`.
pub fn pod_dir(root: &Path, ns: &str, pod: &str, uid: &str, container: &str) -> PathBuf {
    let d = root.join(format!("{ns}_{pod}_{uid}")).join(container);
    fs::create_dir_all(&d).unwrap();
    d
}

pub fn append(path: &Path, data: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(data.as_bytes()).unwrap();
}

pub fn cri(time_ns: u64, stream: &str, tag: &str, msg: &str) -> String {
    format!("{} {stream} {tag} {msg}\n", rfc3339(time_ns))
}

pub fn docker(time_ns: u64, stream: &str, msg: &str) -> String {
    format!(
        "{}\n",
        serde_json::json!({"log": format!("{msg}\n"), "stream": stream, "time": rfc3339(time_ns)})
    )
}

/// `2024-01-01T00:00:00.000000001Z` style, from nanoseconds after 2024-01-01.
pub fn rfc3339(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    format!("2024-01-01T{h:02}:{m:02}:{s:02}.{:09}Z", ns % 1_000_000_000)
}

pub const T0: u64 = 1_704_067_200_000_000_000;

/// Gzips `path` to `path.gz` and removes it, as the kubelet does with rotated logs.
pub fn gzip(path: &Path) {
    let data = fs::read(path).unwrap();
    let gz = PathBuf::from(format!("{}.gz", path.display()));
    let mut enc =
        flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
    enc.write_all(&data).unwrap();
    enc.finish().unwrap();
    fs::remove_file(path).unwrap();
}

/// Counts of each body; asserts none is missing or repeated.
pub fn assert_exactly_once(got: &[String], want: &[String]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for g in got {
        *counts.entry(g.as_str()).or_default() += 1;
    }
    let missing: Vec<_> = want
        .iter()
        .filter(|w| !counts.contains_key(w.as_str()))
        .collect();
    let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let extra: Vec<_> = counts
        .keys()
        .filter(|k| !want.iter().any(|w| w == *k))
        .collect();
    assert!(
        missing.is_empty() && dups.is_empty() && extra.is_empty() && got.len() == want.len(),
        "got {} want {}; missing {} (first {:?}), duplicated {} (first {:?}), unexpected {} (first {:?})",
        got.len(),
        want.len(),
        missing.len(),
        missing.first(),
        dups.len(),
        dups.first(),
        extra.len(),
        extra.first()
    );
}
