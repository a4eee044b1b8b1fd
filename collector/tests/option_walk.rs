//! One place decides what kotelcol accepts (issue 11): every option of every component that
//! kotel-config accepts builds a collector that starts, or fails only for a reason of the
//! environment, named; every option kotel cannot run is refused by kotel-config itself, with a
//! kind the operator turns into a status reason. `kotelcol validate` and the operator run exactly
//! this parse, so neither passes a config whose pods would crash-loop.

use kotel_config::{Config, ErrorKind};
use kotelcol::service::Service;
use serde_json::{Value, json};

/// A config with one component under test in a pipeline of `signal`, everything else minimal and
/// bound to loopback port 0.
fn with(section: &str, id: &str, body: Value, signal: &str) -> Value {
    let mut c = json!({
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}}}},
        "exporters": {"debug": {"verbosity": "basic"}},
        "service": {
            "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "error"}},
            "pipelines": {signal: {"receivers": ["otlp"], "exporters": ["debug"]}},
        },
    });
    c[section][id] = body;
    let list = &mut c["service"]["pipelines"][signal][section];
    match list.as_array_mut() {
        Some(a) if !a.iter().any(|v| v == id) => a.push(json!(id)),
        Some(_) => {}
        None => *list = json!([id]),
    }
    c
}

/// Options kotel-config accepts, one collector each: (what, section, id, body, signal).
fn accepted() -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    Value,
    &'static str,
)> {
    let dir = tempfile::tempdir().unwrap().keep();
    let logs = dir.join("pods");
    std::fs::create_dir_all(&logs).unwrap();
    let glob = format!("{}/*.log", logs.display());
    vec![
        (
            "otlp grpc+http",
            "receivers",
            "otlp/both",
            json!({"protocols": {"grpc": {"endpoint": "127.0.0.1:0", "max_recv_msg_size_mib": 8},
                              "http": {"endpoint": "127.0.0.1:0", "cors": {"allowed_origins": ["*"]}}}}),
            "traces",
        ),
        (
            "otlp grpc transport tcp",
            "receivers",
            "otlp/tcp",
            json!({"protocols": {"grpc": {"endpoint": "127.0.0.1:0", "transport": "tcp"}}}),
            "logs",
        ),
        (
            "filelog, container parser, every operator",
            "receivers",
            "filelog",
            json!({"include": [glob], "start_at": "beginning", "include_file_path": true,
            "operators": [
                {"type": "container", "id": "c"},
                {"type": "regex_parser", "regex": "^(?P<level>[A-Z]+) (?P<msg>.*)$", "on_error": "send_quiet", "parse_from": "body"},
                {"type": "json_parser", "parse_from": "attributes.msg", "on_error": "drop_quiet"},
                {"type": "move", "from": "attributes.level", "to": "attributes.severity"},
                {"type": "add", "field": "attributes.source", "value": "walk"},
                {"type": "remove", "field": "attributes.source"},
            ]}),
            "logs",
        ),
        (
            "batch with limits",
            "processors",
            "batch",
            json!({"send_batch_size": 100, "send_batch_max_size": 200, "timeout": "1s"}),
            "traces",
        ),
        (
            "memory_limiter by percentage",
            "processors",
            "memory_limiter",
            json!({"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 20}),
            "metrics",
        ),
        (
            "k8sattributes passthrough with exclude regexes",
            "processors",
            "k8s_attributes",
            json!({"passthrough": true, "exclude": {"pods": [{"name": "^jaeger-.*$"}]},
                "extract": {"labels": [{"tag_name": "app.$1", "key_regex": "app\\.kubernetes\\.io/(.*)"}]}}),
            "traces",
        ),
        (
            "otlp exporter, queue counted in items",
            "exporters",
            "otlp",
            json!({"endpoint": "127.0.0.1:1", "tls": {"insecure": true}, "compression": "zstd",
                "sending_queue": {"sizer": "items", "queue_size": 5000}}),
            "traces",
        ),
        (
            "otlp exporter, queue off",
            "exporters",
            "otlp/noq",
            json!({"endpoint": "127.0.0.1:1", "tls": {"insecure": true}, "sending_queue": {"enabled": false}}),
            "metrics",
        ),
        (
            "otlphttp exporter, json",
            "exporters",
            "otlphttp",
            json!({"endpoint": "http://127.0.0.1:1", "encoding": "json", "sending_queue": {"sizer": "requests"}}),
            "logs",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_option_builds_a_collector_that_starts() {
    for (what, section, id, body, signal) in accepted() {
        let raw = with(section, id, body, signal);
        let config = Config::from_value(raw.clone())
            .unwrap_or_else(|e| panic!("{what}: kotel-config refused it: {e}\n{raw:#}"));
        let service = Service::build(&config).await.unwrap_or_else(|e| {
            panic!("{what}: accepted by kotel-config, but the build failed: {e}")
        });
        let stop = tokio::time::sleep(std::time::Duration::from_millis(50));
        service
            .run(stop, std::time::Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("{what}: a component failed while running: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_failure_is_named_after_an_accepted_config() {
    // Valid text, wrong machine: the build names what is missing in the environment.
    let raw = with(
        "receivers",
        "kubeletstats",
        json!({"auth_type": "tls", "endpoint": "https://127.0.0.1:10250",
               "cert_file": "/nonexistent/c.crt", "key_file": "/nonexistent/c.key"}),
        "metrics",
    );
    let config = Config::from_value(raw).expect("the text is valid");
    let err = match Service::build(&config).await {
        Ok(_) => panic!("no such certificate on this machine"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("/nonexistent/c.crt"), "{err}");
}

/// Options upstream has and kotel cannot run, and values no collector runs: each is refused by
/// kotel-config (so by `kotelcol validate` and the operator), at its path, with its kind.
#[test]
fn options_kotel_cannot_run_are_refused_by_kotel_config_with_a_kind() {
    let cases: Vec<(&str, Value, &str, ErrorKind)> = vec![
        (
            "exporters",
            json!({"endpoint": "127.0.0.1:1", "sending_queue": {"sizer": "bytes"}}),
            "exporters.otlp.sending_queue.sizer",
            ErrorKind::Unsupported,
        ),
        (
            "processors",
            json!({"metadata_keys": ["tenant"]}),
            "processors.batch.metadata_keys",
            ErrorKind::Unsupported,
        ),
        (
            "receivers",
            json!({"protocols": {"grpc": {"endpoint": "/tmp/otlp.sock", "transport": "unix"}}}),
            "receivers.otlp/unix.protocols.grpc.transport",
            ErrorKind::Unsupported,
        ),
        (
            "processors",
            json!({"passthrough": true, "exclude": {"pods": [{"name": "(unclosed"}]}}),
            "processors.k8s_attributes.exclude.pods[0].name",
            ErrorKind::Invalid,
        ),
        (
            "processors",
            json!({"passthrough": true, "extract": {"labels": [{"key_regex": "[z-a]"}]}}),
            "processors.k8s_attributes.extract.key_regex",
            ErrorKind::Invalid,
        ),
        (
            "receivers",
            json!({"include": ["/var/log/pods/*/*/*.log"], "operators": [{"type": "regex_parser", "regex": "(?P<x"}]}),
            "receivers.filelog.operators[0].regex",
            ErrorKind::Invalid,
        ),
        (
            "receivers",
            json!({"endpoint": "localhost:1"}),
            "receivers.prometheus",
            ErrorKind::UnknownType,
        ),
    ];
    for (section, body, path, kind) in cases {
        let (id, signal) = match (section, path) {
            ("exporters", _) => ("otlp", "traces"),
            ("processors", p) if p.contains("batch") => ("batch", "traces"),
            ("processors", _) => ("k8s_attributes", "traces"),
            (_, p) if p.contains("otlp/unix") => ("otlp/unix", "traces"),
            (_, p) if p.contains("filelog") => ("filelog", "logs"),
            _ => ("prometheus", "metrics"),
        };
        let raw = with(section, id, body, signal);
        let errors = match Config::from_value(raw) {
            Ok(_) => panic!("{path}: accepted, but kotelcol cannot run it"),
            Err(e) => e,
        };
        let hit = errors.iter().find(|e| e.path.starts_with(path));
        let hit = hit.unwrap_or_else(|| panic!("{path}: not named in {errors}"));
        assert_eq!(hit.kind, kind, "{path}: {hit}");
    }
}

#[test]
fn a_reference_to_an_undefined_component_is_its_own_kind() {
    let mut raw = with("processors", "batch", json!({}), "traces");
    raw["service"]["pipelines"]["traces"]["exporters"] = json!(["otlp/missing"]);
    let errors = Config::from_value(raw).expect_err("otlp/missing is not defined");
    assert!(
        errors.iter().all(|e| e.kind == ErrorKind::Undefined),
        "{errors:?}"
    );
}
