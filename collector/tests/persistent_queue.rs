//! `sending_queue.storage`: what the collector acknowledged to a client survives the collector.
//! The kotelcol binary runs as a child process with its queue in a file_storage directory; a
//! real OTLP gRPC client sends numbered spans; the collector is SIGKILLed (no shutdown code
//! runs) or stopped with SIGTERM while the backend is down, started again, and every span it
//! acknowledged must reach the backend. Duplicates are allowed (at-least-once) but bounded by
//! what was in flight, and reported.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Process, Sink, spans_in, trace_request};
use kotel_pipeline::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use kotel_pipeline::proto::trace::v1::Span;

const SPANS_PER_REQUEST: u32 = 10;
const CONSUMERS: u32 = 2;

fn write_config(dir: &Path, sink: SocketAddr) -> std::path::PathBuf {
    let storage = dir.join("storage");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:0"}}
extensions:
  file_storage:
    directory: {storage}
    create_directory: true
exporters:
  otlp:
    endpoint: {sink}
    tls: {{insecure: true}}
    retry_on_failure: {{initial_interval: 20ms, max_interval: 100ms, max_elapsed_time: 0}}
    sending_queue:
      storage: file_storage
      num_consumers: {CONSUMERS}
      queue_size: 100000
service:
  extensions: [file_storage]
  telemetry:
    logs: {{level: info}}
    metrics: {{address: "127.0.0.1:0"}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlp]}}
"#,
            storage = storage.display()
        ),
    )
    .unwrap();
    config
}

/// Request `n`'s spans, named `n/i` so the sink can tell each one apart.
fn request(n: u32) -> kotel_pipeline::ExportTraceServiceRequest {
    let spans = (0..SPANS_PER_REQUEST)
        .map(|i| Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: format!("{n}/{i}"),
            ..Default::default()
        })
        .collect();
    trace_request(spans)
}

/// How often the sink saw each span name.
async fn seen(sink: &Sink) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for s in spans_in(&sink.received.lock().await) {
        *counts.entry(s.name.clone()).or_insert(0) += 1;
    }
    counts
}

/// Waits until every span of `acked` requests arrived; returns how many arrived more than once.
async fn every_acked_span_arrives(sink: &Sink, acked: &[u32]) -> u32 {
    let want: Vec<String> = acked
        .iter()
        .flat_map(|n| (0..SPANS_PER_REQUEST).map(move |i| format!("{n}/{i}")))
        .collect();
    kotel_testkit::wait_for(
        "every acknowledged span at the sink",
        kotel_testkit::LIVENESS,
        || async {
            let counts = seen(sink).await;
            want.iter().all(|w| counts.contains_key(w)).then_some(())
        },
    )
    .await;
    seen(sink).await.values().map(|c| c - 1).sum()
}

/// A collector with its queue on disk, its backend down, and the numbers of the requests it
/// acknowledged.
struct Outage {
    sink: Sink,
    _sink_stop: kotel_pipeline::Shutdown,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    kotelcol: Process,
    acked: Vec<u32>,
}

/// Starts the collector against a refusing backend and sends it `requests` requests.
async fn acknowledged_during_an_outage(requests: u32) -> Outage {
    let (sink, sink_addr, _sink_stop) = Sink::start().await;
    sink.refusing.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), sink_addr);
    let mut kotelcol = Process::spawn(&config, &[]);
    let addr = kotelcol.listening_addr();
    let mut client = TraceServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let acked: Vec<u32> = (0..requests).collect();
    for &n in &acked {
        client.export(request(n)).await.expect("accepted");
    }
    Outage {
        sink,
        _sink_stop,
        dir,
        config,
        kotelcol,
        acked,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_spans_survive_sigkill_during_a_backend_outage() {
    let o = acknowledged_during_an_outage(50).await;
    let (sink, config, acked) = (&o.sink, &o.config, &o.acked);
    // Retries against the down backend are under way.
    tokio::time::sleep(Duration::from_millis(300)).await;
    o.kotelcol.sigkill();
    assert!(seen(sink).await.is_empty(), "the backend was down");

    let mut kotelcol = Process::spawn(config, &[]);
    kotelcol.listening_addr();
    sink.refusing.store(false, Ordering::SeqCst);
    let duplicates = every_acked_span_arrives(sink, acked).await;
    // Nothing reached a down backend, so nothing can arrive twice.
    assert_eq!(duplicates, 0);
    // Sent requests leave the disk.
    kotel_testkit::wait_until(
        "the queue directory to empty",
        kotel_testkit::LIVENESS,
        || queued_files(o.dir.path()) == 0,
    )
    .await;
    let (exit, lines) = kotelcol.sigterm().await;
    assert!(exit.success(), "{lines:#?}");
    let recovered = lines
        .iter()
        .find(|l| l.contains("sending what an earlier run left queued"))
        .unwrap_or_else(|| panic!("no recovery logged: {lines:#?}"));
    assert!(recovered.contains("items=500"), "{recovered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_outage_keeps_the_queue_for_the_next_start() {
    let o = acknowledged_during_an_outage(20).await;
    let (sink, config, acked) = (&o.sink, &o.config, &o.acked);
    // A rollout: the in-memory queue would give these up (counted); this one keeps them.
    let (exit, lines) = o.kotelcol.sigterm().await;
    assert!(exit.success(), "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.contains("dropping data")),
        "{lines:#?}"
    );
    assert_eq!(queued_files(o.dir.path()), acked.len());

    let mut kotelcol = Process::spawn(config, &[]);
    kotelcol.listening_addr();
    sink.refusing.store(false, Ordering::SeqCst);
    assert_eq!(every_acked_span_arrives(sink, acked).await, 0);
}

/// SIGKILL at moments that fall anywhere in receiving, writing, sending and removing: three
/// collectors killed under load, then a fourth left to finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_acknowledged() {
    let (sink, sink_addr, _stop) = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), sink_addr);

    let mut acked = Vec::new();
    let mut next = 0u32;
    let mut in_flight_bound = 0;
    for run_for in [150u64, 400, 250] {
        let mut kotelcol = Process::spawn(&config, &[]);
        let addr = kotelcol.listening_addr();
        let client = TraceServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        // Several clients at once so the kill finds requests in every stage.
        let senders: Vec<_> = (0..4u32)
            .map(|k| {
                let mut client = client.clone();
                let first = next + k * 100_000;
                tokio::spawn(async move {
                    let mut ok = Vec::new();
                    for n in first.. {
                        match client.export(request(n)).await {
                            Ok(_) => ok.push(n),
                            Err(_) => break,
                        }
                    }
                    ok
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(run_for)).await;
        kotelcol.sigkill();
        for s in senders {
            acked.extend(s.await.unwrap());
        }
        next += 1_000_000;
        // A request the sink has but whose file was not removed yet is sent again.
        in_flight_bound += CONSUMERS * SPANS_PER_REQUEST;
    }
    assert!(acked.len() > 10, "the load ran: {} requests", acked.len());

    let mut kotelcol = Process::spawn(&config, &[]);
    kotelcol.listening_addr();
    let duplicates = every_acked_span_arrives(&sink, &acked).await;
    eprintln!(
        "{} requests acknowledged across 3 SIGKILLs; {duplicates} duplicate spans (bound {in_flight_bound})",
        acked.len()
    );
    assert!(duplicates <= in_flight_bound, "{duplicates} duplicates");
    drop(kotelcol);
}

fn queued_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir.join("storage/exporter_otlp__sending_queue")) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "req"))
        .count()
}

/// Filelog behind a persistent queue (issue 16.3): lines count as delivered once on disk, so
/// the checkpoint moves past them while the backend is down; a SIGKILL then loses none of them
/// and the restarted collector reads only what was written after (no line twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filelog_lines_queued_on_disk_survive_sigkill_without_being_read_again() {
    use kotel_pipeline::Payload;
    use kotel_pipeline::proto::common::v1::any_value::Value;

    let (sink, sink_addr, _stop) = Sink::start().await;
    sink.refusing.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let storage = dir.path().join("storage");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
receivers:
  filelog:
    include: [{log}]
    start_at: beginning
    poll_interval: 50ms
    storage: file_storage
  # kotelcol reports a receiver's address when it listens: the harness waits for that.
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}
extensions:
  file_storage: {{directory: {storage}, create_directory: true}}
exporters:
  otlp:
    endpoint: {sink_addr}
    tls: {{insecure: true}}
    retry_on_failure: {{initial_interval: 20ms, max_interval: 100ms, max_elapsed_time: 0}}
    sending_queue: {{storage: file_storage}}
service:
  extensions: [file_storage]
  telemetry:
    logs: {{level: info}}
    metrics: {{address: "127.0.0.1:0"}}
  pipelines:
    logs: {{receivers: [filelog, otlp], exporters: [otlp]}}
"#,
            log = log.display(),
            storage = storage.display()
        ),
    )
    .unwrap();
    let write_lines = |range: std::ops::Range<u32>| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        for i in range {
            writeln!(f, "line {i}").unwrap();
        }
    };
    write_lines(0..300);
    let checkpoint = storage.join("receiver_filelog_/filelog-checkpoints.json");
    let checkpointed_to_end = || {
        let len = std::fs::metadata(&log).unwrap().len();
        std::fs::read_to_string(&checkpoint)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|doc| doc["files"][0]["offset"] == len)
    };

    let mut kotelcol = Process::spawn(&config, &[]);
    kotelcol.listening_addr();
    // The backend is down, yet the checkpoint reaches the end: the lines are on disk.
    kotel_testkit::wait_until(
        "the checkpoint to pass every line",
        kotel_testkit::LIVENESS,
        checkpointed_to_end,
    )
    .await;
    kotelcol.sigkill();
    write_lines(300..500);

    let mut kotelcol = Process::spawn(&config, &[]);
    kotelcol.listening_addr();
    sink.refusing.store(false, Ordering::SeqCst);
    let bodies = |ps: &[Payload]| -> Vec<String> {
        ps.iter()
            .filter_map(|p| match p {
                Payload::Logs(r) => Some(r),
                _ => None,
            })
            .flat_map(|r| &r.resource_logs)
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
            .filter_map(|l| match l.body.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    };
    sink.wait_for("500 lines", |ps| bodies(ps).len() >= 500)
        .await;
    kotel_testkit::wait_until(
        "the checkpoint to pass the new lines",
        kotel_testkit::LIVENESS,
        checkpointed_to_end,
    )
    .await;
    let got = bodies(&sink.received.lock().await);
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for b in &got {
        *counts.entry(b.as_str()).or_default() += 1;
    }
    let missing: Vec<u32> = (0..500)
        .filter(|i| !counts.contains_key(format!("line {i}").as_str()))
        .collect();
    assert!(missing.is_empty(), "lines never delivered: {missing:?}");
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "lines delivered twice: {twice:?}");
    drop(kotelcol);
}
