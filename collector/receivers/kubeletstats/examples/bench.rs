//! CPU time and allocations per scrape (parse `/stats/summary` + convert to OTLP) for a node with
//! 110 pods of 3 containers each. Run: `cargo run --release -p kotel-kubeletstats --example bench`.
//!
//! Allocations are counted by `stats_alloc`'s instrumented global allocator (the crate holds the
//! `unsafe impl GlobalAlloc`, so this workspace's `unsafe_code = "forbid"` still holds here).
//! CPU time is this thread's, from `/proc/thread-self/schedstat`, falling back to wall time.

use std::alloc::System;
use std::time::Instant;

use kotel_config::receivers::kubeletstats::KubeletStatsConfig;
use kotel_kubeletstats::convert::Converter;
use kotel_kubeletstats::summary::Summary;
use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PODS: usize = 110;
const CONTAINERS: usize = 3;
const ROUNDS: usize = 200;
const S: u64 = 1_000_000_000;

fn main() {
    // Each document is 10 s after the previous one, so cpu.usage is computed on every scrape.
    let docs: Vec<String> = (0..ROUNDS as u64)
        .map(|i| summary(1_700_000_000 + i * 10, i).to_string())
        .collect();
    let config: KubeletStatsConfig = serde_json::from_value(json!({
        "metric_groups": ["node", "pod", "container", "volume"]
    }))
    .expect("bench config");
    let mut converter = Converter::from_config(&config);

    // Warm up on the first document, as a running receiver would be.
    let warm = Summary::from_slice(docs[0].as_bytes()).expect("summary");
    let warm_out = converter.convert(&warm, None, 1_700_000_000 * S);
    let resources = warm_out.resource_metrics.len();

    let region = Region::new(GLOBAL);
    let cpu_start = thread_cpu_nanos();
    let wall = Instant::now();
    let mut points = 0usize;
    for (i, doc) in docs.iter().enumerate().skip(1) {
        let s = Summary::from_slice(doc.as_bytes()).expect("summary");
        let out = converter.convert(&s, None, (1_700_000_000 + i as u64 * 10) * S);
        points += kotel_pipeline::Payload::Metrics(out).item_count();
    }
    let scrapes = (ROUNDS - 1) as f64;
    let cpu = thread_cpu_nanos()
        .zip(cpu_start)
        .map(|(end, start)| (end - start) as f64)
        .unwrap_or_else(|| wall.elapsed().as_nanos() as f64);
    let stats = region.change();

    let bytes = docs[1].len();
    println!("kubeletstats: {PODS} pods x {CONTAINERS} containers (+ node, 2 volumes per pod)");
    println!("  summary size          {:>10} bytes", bytes);
    println!("  resources per scrape  {:>10}", resources);
    println!("  points per scrape     {:>10}", points / (ROUNDS - 1));
    println!(
        "  cpu per scrape        {:>10.3} ms  (parse + convert, {} scrapes)",
        cpu / scrapes / 1e6,
        ROUNDS - 1
    );
    println!(
        "  allocations per scrape{:>10.0}",
        stats.allocations as f64 / scrapes
    );
    println!(
        "  bytes allocated/scrape{:>10.0}  ({:.1} KiB)",
        stats.bytes_allocated as f64 / scrapes,
        stats.bytes_allocated as f64 / scrapes / 1024.0
    );
}

fn thread_cpu_nanos() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn ts(secs: u64) -> String {
    // A fixed-format RFC 3339 time; the day does not matter, only the order of seconds.
    let day = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil(day as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn cpu(t: &str, round: u64, base: u64) -> Value {
    json!({"time": t, "usageNanoCores": 10_000_000 + base, "usageCoreNanoSeconds": base * 1_000_000_000 + round * 500_000_000})
}

fn memory(t: &str, base: u64) -> Value {
    json!({"time": t, "availableBytes": 1_000_000 + base, "usageBytes": 2_000_000 + base,
           "workingSetBytes": 1_500_000 + base, "rssBytes": 1_200_000 + base,
           "pageFaults": 1000 + base, "majorPageFaults": base})
}

fn fs(t: &str, base: u64) -> Value {
    json!({"time": t, "availableBytes": 9_000_000 + base, "capacityBytes": 10_000_000,
           "usedBytes": 1_000_000 - base, "inodesFree": 900 + base, "inodes": 1000, "inodesUsed": 100 - base % 100})
}

fn network(t: &str, base: u64) -> Value {
    json!({"time": t, "name": "eth0", "rxBytes": 1_000 + base, "rxErrors": 0, "txBytes": 2_000 + base, "txErrors": 0,
           "interfaces": [{"name": "eth0", "rxBytes": 1_000 + base, "rxErrors": 0, "txBytes": 2_000 + base, "txErrors": 0}]})
}

fn summary(secs: u64, round: u64) -> Value {
    let t = ts(secs);
    let start = ts(1_600_000_000);
    let pods: Vec<Value> = (0..PODS as u64)
        .map(|p| {
            let containers: Vec<Value> = (0..CONTAINERS as u64)
                .map(|c| {
                    let b = p * 10 + c;
                    json!({"name": format!("container-{c}"), "startTime": start,
                           "cpu": cpu(&t, round, b), "memory": memory(&t, b),
                           "rootfs": fs(&t, b), "logs": fs(&t, b)})
                })
                .collect();
            json!({
                "podRef": {"name": format!("pod-{p}"), "namespace": "bench", "uid": format!("00000000-0000-0000-0000-{p:012}")},
                "startTime": start,
                "containers": containers,
                "cpu": cpu(&t, round, p), "memory": memory(&t, p), "network": network(&t, p),
                "volume": [
                    {"time": t, "availableBytes": 1, "capacityBytes": 2, "usedBytes": 1, "inodesFree": 1, "inodes": 2, "inodesUsed": 1, "name": "data"},
                    {"time": t, "availableBytes": 1, "capacityBytes": 2, "usedBytes": 1, "inodesFree": 1, "inodes": 2, "inodesUsed": 1, "name": "kube-api-access"}
                ],
                "ephemeral-storage": fs(&t, p)
            })
        })
        .collect();
    json!({
        "node": {"nodeName": "bench-node", "startTime": start,
                 "systemContainers": [{"name": "kubelet", "startTime": start, "cpu": cpu(&t, round, 1), "memory": memory(&t, 1)}],
                 "cpu": cpu(&t, round, 100), "memory": memory(&t, 100), "network": network(&t, 100),
                 "fs": fs(&t, 100), "runtime": {"imageFs": fs(&t, 100)}, "rlimit": {"time": t, "maxpid": 4_194_304, "curproc": 900}},
        "pods": pods
    })
}
