//! Config validation as a user meets it: good configs type, bad ones list every problem by path.

use kotel_config::{Config, ExporterConfig, ProcessorConfig, ReceiverConfig, Signal};

const NODE_AGENT: &str = r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
  file_log:
    include: [/var/log/pods/*/*/*.log]
    start_at: beginning
    include_file_path: true
    storage: file_storage
    operators:
      - type: container
        id: container-parser
        max_log_size: 102400
  kubelet_stats:
    collection_interval: 20s
    auth_type: serviceAccount
    endpoint: "${env:K8S_NODE_IP}:10250"
processors:
  memory_limiter:
    check_interval: 5s
    limit_percentage: 80
    spike_limit_percentage: 25
  batch:
  k8s_attributes:
    filter:
      node_from_env_var: K8S_NODE_NAME
    extract:
      metadata: [k8s.pod.name, k8s.deployment.name, k8s.node.name]
      labels:
        - tag_name: app
          key: app.kubernetes.io/name
          from: namespace
exporters:
  otlp_grpc:
    endpoint: backend:4317
  otlphttp/backup:
    endpoint: https://backend:4318
  debug:
    verbosity: detailed
extensions:
  health_check:
    endpoint: 0.0.0.0:13133
  file_storage:
    directory: /var/lib/otelcol
service:
  extensions: [health_check, file_storage]
  telemetry:
    metrics:
      address: 0.0.0.0:8889
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, k8s_attributes, batch]
      exporters: [otlp_grpc, debug]
    metrics/kubelet:
      receivers: [kubelet_stats, otlp]
      processors: [batch]
      exporters: [otlphttp/backup]
    logs:
      receivers: [file_log, otlp]
      processors: [k8s_attributes, batch]
      exporters: [otlp_grpc]
"#;

#[test]
fn a_node_agent_config_types_every_component() {
    let c = Config::from_yaml(NODE_AGENT).unwrap();
    assert!(matches!(
        c.receivers[&"file_log".parse().unwrap()],
        ReceiverConfig::Filelog(_)
    ));
    assert!(matches!(
        c.receivers[&"kubelet_stats".parse().unwrap()],
        ReceiverConfig::KubeletStats(_)
    ));
    assert!(matches!(
        c.processors[&"k8s_attributes".parse().unwrap()],
        ProcessorConfig::K8sAttributes(_)
    ));
    let ProcessorConfig::Batch(b) = &c.processors[&"batch".parse().unwrap()] else {
        panic!()
    };
    assert_eq!(
        b.send_batch_size, 8192,
        "`batch:` with no body takes the defaults"
    );
    let ExporterConfig::Otlp(o) = &c.exporters[&"otlp_grpc".parse().unwrap()] else {
        panic!()
    };
    assert_eq!(o.compression, "gzip");
    let ports: Vec<(String, u16)> = c
        .receiver_ports()
        .iter()
        .map(|p| (p.name(), p.port))
        .collect();
    assert_eq!(
        ports,
        vec![
            ("otlp-grpc".to_string(), 4317),
            ("otlp-http".to_string(), 4318)
        ]
    );
    assert_eq!(c.health_check(), Some((13133, "/".to_string())));
    assert_eq!(c.telemetry_metrics_port(), Some(8889));
    let sig = c.receiver_signals(&"otlp".parse().unwrap());
    assert_eq!(
        sig.into_iter().collect::<Vec<_>>(),
        vec![Signal::Traces, Signal::Metrics, Signal::Logs]
    );
}

fn errors(yaml: &str) -> Vec<String> {
    Config::from_yaml(yaml)
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn a_typo_is_reported_with_its_path() {
    let errs = errors(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpointt: 0.0.0.0:4317
exporters:
  debug:
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
"#,
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("receivers.otlp.protocols.grpc.endpointt: unknown field"),
        "{errs:?}"
    );
}

#[test]
fn every_problem_is_listed_at_once() {
    let errs = errors(
        r#"
receivers:
  otlp:
    protocols: {http: {}}
  jaeger: {}
processors:
  batch:
    send_batch_size: 100
    send_batch_max_size: 10
exporters:
  debug: {verbosity: loud}
connectors:
  spanmetrics: {}
service:
  extensions: [pprof]
  pipelines:
    traces:
      receivers: [otlp, zipkin]
      processors: [batch]
      exporters: [debug]
    metrics:
      receivers: [otlp]
      exporters: []
    spans:
      receivers: [otlp]
      exporters: [debug]
"#,
    );
    let want = [
        "receivers.jaeger: unknown type \"jaeger\"",
        "processors.batch.send_batch_max_size: must be greater",
        "exporters.debug.verbosity: unknown variant `loud`",
        "connectors.spanmetrics: kotel implements no connectors",
        "service.extensions[0]: references extension \"pprof\"",
        "service.pipelines.traces.receivers[1]: references receiver \"zipkin\" which is not configured",
        "service.pipelines.metrics.exporters: must have at least one exporter",
        "service.pipelines.spans: pipeline \"spans\": signal \"spans\"",
    ];
    for w in want {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "missing {w:?} in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), want.len(), "{errs:#?}");
}

#[test]
fn a_receiver_in_a_pipeline_of_the_wrong_signal_is_an_error() {
    let errs = errors(
        r#"
receivers:
  kubeletstats: {}
exporters:
  debug: {}
service:
  pipelines:
    logs: {receivers: [kubeletstats], exporters: [debug]}
"#,
    );
    assert_eq!(
        errs,
        vec![
            "service.pipelines.logs.receivers[0]: receiver \"kubeletstats\" does not support logs pipelines"
        ]
    );
}

#[test]
fn an_unimplemented_filelog_operator_is_named() {
    let errs = errors(
        r#"
receivers:
  filelog:
    include: [/x/*.log]
    operators:
      - type: container
      - type: router
exporters:
  debug: {}
service:
  pipelines:
    logs: {receivers: [filelog], exporters: [debug]}
"#,
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("receivers.filelog.operators[1]"),
        "{errs:?}"
    );
    assert!(
        errs[0].contains("\"router\" is not implemented"),
        "{errs:?}"
    );
}

#[test]
fn storage_must_name_an_enabled_file_storage() {
    let errs = errors(
        r#"
receivers:
  filelog:
    include: [/x/*.log]
    storage: file_storage
exporters:
  debug: {}
extensions:
  file_storage: {}
service:
  pipelines:
    logs: {receivers: [filelog], exporters: [debug]}
"#,
    );
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("receivers.filelog.storage:"),
        "{errs:?}"
    );
}

/// A persistent sending queue names its file_storage like filelog does; named and enabled, the
/// config is valid.
#[test]
fn a_sending_queue_storage_must_name_an_enabled_file_storage() {
    let yaml = r#"
receivers:
  otlp: {protocols: {grpc: {}}}
exporters:
  otlp:
    endpoint: backend:4317
    sending_queue: {storage: file_storage/queue}
extensions:
  file_storage/queue: {}
service:
  EXTENSIONS
  pipelines:
    traces: {receivers: [otlp], exporters: [otlp]}
"#;
    let errs = errors(&yaml.replace("EXTENSIONS", ""));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("exporters.otlp.sending_queue.storage:"),
        "{errs:?}"
    );
    let config = Config::from_yaml(&yaml.replace("EXTENSIONS", "extensions: [file_storage/queue]"))
        .expect("a persistent queue on an enabled file_storage is valid");
    let ExporterConfig::Otlp(otlp) =
        &config.exporters[&"otlp".parse::<kotel_config::ComponentId>().unwrap()]
    else {
        panic!("an otlp exporter");
    };
    assert_eq!(
        otlp.sending_queue.storage.as_deref(),
        Some("file_storage/queue")
    );
}

#[test]
fn an_exporter_may_name_only_an_enabled_client_authenticator() {
    let config = |extensions: &str, enabled: &str, authenticator: &str| {
        format!(
            r#"
extensions:
{extensions}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
exporters:
  otlp:
    endpoint: 127.0.0.1:4317
    auth:
      authenticator: {authenticator}
service:
  extensions: [{enabled}]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp]
"#
        )
    };
    let ok = config(
        "  bearertokenauth:\n    token: t",
        "bearertokenauth",
        "bearertokenauth",
    );
    Config::from_yaml(&ok).expect("a bearertokenauth in service.extensions");
    for (what, yaml) in [
        (
            "not enabled",
            config("  bearertokenauth:\n    token: t", "", "bearertokenauth"),
        ),
        (
            "not defined",
            config(
                "  basicauth:\n    client_auth: {username: u}",
                "basicauth",
                "basicauth/other",
            ),
        ),
        (
            "not an authenticator",
            config(
                "  file_storage:\n    directory: /tmp",
                "file_storage",
                "file_storage",
            ),
        ),
    ] {
        let errors = Config::from_yaml(&yaml).expect_err(what);
        let e = &errors.0[0];
        assert_eq!(e.kind, kotel_config::ErrorKind::Undefined, "{what}: {e}");
        assert!(
            e.to_string().contains("exporters.otlp.auth.authenticator"),
            "{what}: {e}"
        );
    }
    // A bearertokenauth needs a token from somewhere.
    let none = config(
        "  bearertokenauth:\n    scheme: Bearer",
        "bearertokenauth",
        "bearertokenauth",
    );
    let e = Config::from_yaml(&none).expect_err("no token").to_string();
    assert!(e.contains("no bearer token"), "{e}");
}

#[test]
fn several_files_merge_and_env_references_expand() {
    let base = "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: ${env:HOST}:${env:PORT:-4317}\nexporters:\n  debug: {}\n";
    let service = "service:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [debug]}\n";
    let env = |n: &str| (n == "HOST").then(|| "10.0.0.7".to_string());
    let c = Config::load(&[base, service], &env, false).unwrap();
    let ReceiverConfig::Otlp(o) = &c.receivers[&"otlp".parse().unwrap()] else {
        panic!()
    };
    assert_eq!(o.protocols.grpc.as_ref().unwrap().endpoint, "10.0.0.7:4317");
    assert!(o.protocols.http.is_none(), "an absent protocol stays off");
}

#[test]
fn the_operator_validates_without_the_pods_environment() {
    let yaml = "receivers:\n  kubeletstats:\n    endpoint: https://${env:K8S_NODE_NAME}:10250\nexporters:\n  debug: {}\nservice:\n  pipelines:\n    metrics: {receivers: [kubeletstats], exporters: [debug]}\n";
    let c = Config::load(&[yaml], &|_: &str| None, true).unwrap();
    let ReceiverConfig::KubeletStats(k) = &c.receivers[&"kubeletstats".parse().unwrap()] else {
        panic!()
    };
    assert_eq!(
        k.endpoint.as_deref(),
        Some("https://${env:K8S_NODE_NAME}:10250")
    );
}
