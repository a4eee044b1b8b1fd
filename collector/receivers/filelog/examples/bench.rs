//! `make bench` figures for the filelog receiver (see collector/bench/bench-filelog.sh):
//!
//! - `bench throughput <line-bytes> <lines>`: containerd-format lines of the given size in a
//!   pods tree, read from the beginning through the Helm preset (container parser) into a
//!   counting sink; prints records per CPU-second of this process (and per wall second).
//! - `bench rss <files>`: that many pod log files held open and read; prints peak RSS.

use std::fs;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kotel_config::receivers::filelog::FilelogConfig;
use kotel_filelog::FilelogReceiver;
use kotel_pipeline::{Consumer, Envelope, Refusal, Shutdown};

#[derive(Default)]
struct Count(AtomicU64);

#[async_trait::async_trait]
impl Consumer for Count {
    async fn offer(&self, data: Envelope) -> Result<(), Refusal> {
        self.0
            .fetch_add(data.payload.item_count() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// User + system CPU time of this process, from /proc (clock ticks of 10ms).
fn cpu_time() -> Duration {
    let stat = fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn status_kib(key: &str) -> u64 {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn config(root: &std::path::Path) -> FilelogConfig {
    serde_yaml_ng::from_str(&format!(
        "include: [{}/*/*/*.log]\nstart_at: beginning\nretry_on_failure: {{enabled: true}}\n\
         include_file_path: true\ninclude_file_name: false\n\
         operators:\n  - {{type: container, id: container-parser, max_log_size: 102400}}\n",
        root.display()
    ))
    .expect("bench config")
}

/// Writes `lines` containerd lines of exactly `size` bytes (newline included) over `files` pods.
fn generate(root: &std::path::Path, files: usize, lines: usize, size: usize) {
    let prefix_len = "2024-01-01T00:00:00.000000000Z stdout F ".len();
    let filler = "abcdefghijklmnopqrstuvwxyz0123456789 ".repeat(size / 37 + 1);
    for f in 0..files {
        let d = root.join(format!(
            "bench_pod-{f}_{f:08x}-0000-0000-0000-000000000000/app"
        ));
        fs::create_dir_all(&d).unwrap();
        let mut w = std::io::BufWriter::new(fs::File::create(d.join("0.log")).unwrap());
        for i in 0..lines / files {
            // Each file's content differs from its first byte: files are told apart by it.
            let head = format!(
                "2024-01-01T00:00:{:02}.{:09}Z stdout F {i} ",
                i % 60,
                f * 1000 + i % 1000
            );
            debug_assert_eq!(head.len() - format!("{i} ").len(), prefix_len);
            let body_len = size.saturating_sub(head.len() + 1);
            w.write_all(head.as_bytes()).unwrap();
            w.write_all(&filler.as_bytes()[..body_len]).unwrap();
            w.write_all(b"\n").unwrap();
        }
    }
}

async fn run_until(
    cfg: &FilelogConfig,
    want: u64,
    idle: Duration,
) -> (Duration, Duration, Duration) {
    let count = Arc::new(Count::default());
    let mut registry = prometheus_client::registry::Registry::default();
    let r = FilelogReceiver::build(
        &"filelog".parse().unwrap(),
        cfg,
        None,
        count.clone(),
        &mut registry,
    )
    .expect("build");
    let shutdown = Shutdown::new();
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let task = tokio::spawn(r.run(shutdown.clone()));
    while count.0.load(Ordering::Relaxed) < want {
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "records missing: {} of {want}",
            count.0.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (wall, cpu) = (t0.elapsed(), cpu_time() - cpu0);
    // Then idle: every poll still looks at every file.
    let idle_cpu0 = cpu_time();
    tokio::time::sleep(idle).await;
    let idle_cpu = cpu_time() - idle_cpu0;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(count.0.load(Ordering::Relaxed), want, "exact record count");
    (wall, cpu, idle_cpu)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    match args.get(1).map(String::as_str) {
        Some("throughput") => {
            let size: usize = args.get(2).map_or(100, |s| s.parse().unwrap());
            let lines: usize = args.get(3).map_or(1_000_000, |s| s.parse().unwrap());
            let files = 4;
            generate(&root, files, lines, size);
            let total = (lines / files * files) as u64;
            let (wall, cpu, _) = rt.block_on(run_until(&config(&root), total, Duration::ZERO));
            println!(
                "filelog+container {size:>4}-byte lines: {total} records, {:.0} records/CPU-s, {:.0} records/wall-s, {:.1} MB/CPU-s (cpu {:.2}s, wall {:.2}s)",
                total as f64 / cpu.as_secs_f64().max(0.01),
                total as f64 / wall.as_secs_f64(),
                (total as f64 * size as f64) / 1e6 / cpu.as_secs_f64().max(0.01),
                cpu.as_secs_f64(),
                wall.as_secs_f64()
            );
        }
        Some("rss") => {
            let files: usize = args.get(2).map_or(1000, |s| s.parse().unwrap());
            generate(&root, files, files * 20, 200);
            let mut cfg = config(&root);
            cfg.max_concurrent_files = files.max(1024);
            let before = status_kib("VmRSS:");
            let idle = Duration::from_secs(5);
            let (wall, _, idle_cpu) = rt.block_on(run_until(&cfg, (files * 20) as u64, idle));
            println!(
                "filelog {files} files open: peak RSS {:.1} MiB (process at start {:.1} MiB), all read in {:.2}s, idle CPU {:.1}% of a core (poll every 200ms)",
                status_kib("VmHWM:") as f64 / 1024.0,
                before as f64 / 1024.0,
                wall.as_secs_f64(),
                idle_cpu.as_secs_f64() / idle.as_secs_f64() * 100.0
            );
        }
        _ => {
            eprintln!("usage: bench throughput <line-bytes> <lines> | bench rss <files>");
            std::process::exit(2);
        }
    }
}
