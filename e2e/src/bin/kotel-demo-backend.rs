//! `make demo`'s backend: an OTLP/gRPC receiver that prints, every few seconds, per node, the log
//! records, metric points and spans a second that arrived, and one sample of each with its
//! Kubernetes attributes.
//!
//!     kotel-demo-backend [LISTEN_ADDR] [INTERVAL_SECONDS]     (default 127.0.0.1:14317, 5)

use std::collections::BTreeMap;
use std::time::Duration;

use kotel_e2e::backend::{Backend, Row};

/// The node a row came from: k8sattributes and kubeletstats both name it.
fn node_of(r: &Row) -> String {
    r.attr("k8s.node.name")
        .unwrap_or("(no k8s.node.name)")
        .to_string()
}

fn per_node(rows: &[Row]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in rows {
        *m.entry(node_of(r)).or_insert(0) += 1;
    }
    m
}

fn k8s_attrs(r: &Row) -> String {
    let all: BTreeMap<&String, &String> = r.resource.iter().chain(r.attributes.iter()).collect();
    all.into_iter()
        .filter(|(k, _)| k.starts_with("k8s.") || k.as_str() == "log.iostream")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn short(s: &str) -> String {
    // Whole characters only: a line cut inside a multi-byte char would not print.
    if s.chars().count() > 70 {
        format!("{}…", s.chars().take(70).collect::<String>())
    } else {
        s.to_string()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:14317".into());
    let every: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let backend = Backend::start(&listen).await?;
    println!(
        "OTLP backend on {} (gRPC); a summary every {every}s, Ctrl-C stops",
        backend.addr()
    );
    let mut seen = (0usize, 0usize, 0usize);
    let mut tick = tokio::time::interval(Duration::from_secs(every));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        let (logs, points, spans) = (backend.logs(), backend.points(), backend.spans());
        let new = (&logs[seen.0..], &points[seen.1..], &spans[seen.2..]);
        let (l, p, s) = (per_node(new.0), per_node(new.1), per_node(new.2));
        let mut nodes: Vec<&String> = l.keys().chain(p.keys()).chain(s.keys()).collect();
        nodes.sort();
        nodes.dedup();
        println!(
            "--- last {every}s ({} log records, {} metric points, {} spans in all)",
            logs.len(),
            points.len(),
            spans.len()
        );
        for n in nodes {
            let rate = |m: &BTreeMap<String, usize>| *m.get(n).unwrap_or(&0) as f64 / every as f64;
            println!(
                "  node {n}: {:.1} log records/s, {:.1} metric points/s, {:.1} spans/s",
                rate(&l),
                rate(&p),
                rate(&s)
            );
        }
        for (kind, rows) in [("log", new.0), ("metric", new.1), ("span", new.2)] {
            if let Some(r) = rows.last() {
                println!("  sample {kind}: {:?} {}", short(&r.text), k8s_attrs(r));
            }
        }
        seen = (logs.len(), points.len(), spans.len());
    }
}
