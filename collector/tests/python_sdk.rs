//! The OpenTelemetry Python SDK's OTLP exporters (gRPC and HTTP protobuf, from PyPI) send traces,
//! logs and metrics through kotelcol to a capture sink; everything arrives.
//!
//! Needs `python3` with the `venv` module and access to PyPI: the test creates a virtualenv under
//! the target directory (reused by later runs) and installs the SDK into it. Set
//! `KOTEL_PYTHON_VENV` to use another virtualenv.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Collector, Sink, config};
use kotel_pipeline::Payload;
use kotel_pipeline::proto::common::v1::any_value::Value;

const PACKAGES: &[&str] = &[
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-grpc",
    "opentelemetry-exporter-otlp-proto-http",
];

fn venv() -> PathBuf {
    let dir = std::env::var_os("KOTEL_PYTHON_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kotel-pyvenv"));
    let python = dir.join("bin/python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http, opentelemetry.sdk"])
            .status()
            .is_ok_and(|s| s.success());
    if !ready {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .status()
            .expect("python3 is needed for this test");
        assert!(ok.success(), "python3 -m venv failed");
        let ok = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PACKAGES)
            .status()
            .unwrap();
        assert!(ok.success(), "pip install {PACKAGES:?} failed");
    }
    python
}

fn strings(ps: &[Payload], service: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let is_svc = |attrs: &[kotel_pipeline::proto::common::v1::KeyValue]| {
        attrs.iter().any(|kv| {
            kv.key == "service.name"
                && kv.value.as_ref().and_then(|v| v.value.as_ref())
                    == Some(&Value::StringValue(service.to_string()))
        })
    };
    let (mut spans, mut logs, mut metrics) = (Vec::new(), Vec::new(), Vec::new());
    for p in ps {
        match p {
            Payload::Traces(r) => {
                for rs in &r.resource_spans {
                    if is_svc(&rs.resource.as_ref().unwrap().attributes) {
                        spans.extend(
                            rs.scope_spans
                                .iter()
                                .flat_map(|s| &s.spans)
                                .map(|s| s.name.clone()),
                        );
                    }
                }
            }
            Payload::Logs(r) => {
                for rl in &r.resource_logs {
                    if is_svc(&rl.resource.as_ref().unwrap().attributes) {
                        logs.extend(
                            rl.scope_logs
                                .iter()
                                .flat_map(|s| &s.log_records)
                                .filter_map(|l| match l.body.as_ref()?.value.as_ref()? {
                                    Value::StringValue(s) => Some(s.clone()),
                                    _ => None,
                                }),
                        );
                    }
                }
            }
            Payload::Metrics(r) => {
                for rm in &r.resource_metrics {
                    if is_svc(&rm.resource.as_ref().unwrap().attributes) {
                        metrics.extend(
                            rm.scope_metrics
                                .iter()
                                .flat_map(|s| &s.metrics)
                                .map(|m| m.name.clone()),
                        );
                    }
                }
            }
        }
    }
    spans.sort();
    logs.sort();
    (spans, logs, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_grpc_and_http() {
    let python = tokio::task::spawn_blocking(venv).await.unwrap();
    let (sink, sink_addr, _stop) = Sink::start().await;
    let collector = Collector::start(&config(sink_addr, "batch", "")).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/send_otlp.py");
    let grpc = collector.grpc.unwrap().to_string();
    let http = format!("http://{}", collector.http.unwrap());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(grpc)
            .arg(http)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for tag in ["grpc", "http"] {
        let svc = format!("py-{tag}");
        sink.wait_for(&format!("everything from {svc}"), |ps| {
            let (s, l, m) = strings(ps, &svc);
            s.len() >= 5 && l.len() >= 3 && !m.is_empty()
        })
        .await;
        let (spans, logs, metrics) = strings(&sink.received.lock().await, &svc);
        assert_eq!(
            spans,
            (0..5)
                .map(|i| format!("span-{tag}-{i}"))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            logs,
            (0..3).map(|i| format!("log-{tag}-{i}")).collect::<Vec<_>>()
        );
        assert!(metrics.contains(&format!("requests_{tag}")), "{metrics:?}");
    }
    collector.stop().await;
}
