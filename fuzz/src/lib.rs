//! The fuzz targets' bodies: each takes arbitrary bytes and runs them through the parser the
//! programs run on untrusted input, exactly as they call it. A target passes when it returns:
//! errors are expected, panics, hangs and unbounded memory are the findings.
//!
//! `make fuzz` runs each under libFuzzer (fuzz/targets, nightly); `tests/replay.rs` runs the
//! committed corpus and every crashing input found through the same functions on stable, so a
//! fixed crash stays fixed.

use std::sync::OnceLock;

use bytes::Bytes;
use kotel_config::Signal;
use kotel_filelog::operators::Chain;

/// A target: arbitrary bytes in, nothing out.
pub type Target = fn(&[u8]);

/// Every target by name (the corpus directory name under `fuzz/corpus/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("otlp_http", otlp_http),
    ("container_line", container_line),
    ("filelog_operators", filelog_operators),
    ("kubelet_summary", kubelet_summary),
    ("collector_config", collector_config),
    ("operator_spec", operator_spec),
];

/// The OTLP/HTTP receiver's body decoding: the first byte picks the signal, the content
/// encoding (identity, gzip, zstd, deflate) and protobuf or JSON; the rest is the body, decoded
/// under a 1 MiB limit as the server does (a decompression bomb must stop at the limit).
/// An uncompressed protobuf body that decodes must also count to the same items without
/// decoding (how a request refused before decoding is counted).
pub fn otlp_http(data: &[u8]) {
    let Some((&head, body)) = data.split_first() else {
        return;
    };
    let signal = Signal::ALL[usize::from(head % 3)];
    let encoding = ["", "gzip", "zstd", "deflate"][usize::from((head / 3) % 4)];
    let json = head >= 128;
    let decoded = kotelcol::receivers::otlp::http::decode_request(
        signal,
        encoding,
        json,
        Bytes::copy_from_slice(body),
        1 << 20,
    );
    if let Ok(payload) = decoded
        && !json
        && encoding.is_empty()
    {
        assert_eq!(
            kotel_pipeline::wire::encoded_item_count(signal, body),
            Some(payload.item_count()),
            "items counted on the wire and decoded differ"
        );
    }
}

/// The container parser on lines: the first byte picks the format (auto, docker, cri-o,
/// containerd), the rest is split into lines and run through a filelog chain whose first
/// operator is the container parser, partial lines joined as the receiver does, then flushed.
pub fn container_line(data: &[u8]) {
    const CHAINS: &[&str] = &[
        "[{type: container}]",
        "[{type: container, format: docker}]",
        "[{type: container, format: crio}]",
        "[{type: container, format: containerd}]",
    ];
    static BUILT: OnceLock<Vec<Chain>> = OnceLock::new();
    run_chains(&BUILT, CHAINS, data);
}

/// The filelog operators users chain after the container parser: json_parser and regex_parser
/// with timestamp (several layouts) and severity parsing. The first byte picks the chain.
pub fn filelog_operators(data: &[u8]) {
    const CHAINS: &[&str] = &[
        r#"[{type: json_parser, timestamp: {parse_from: attributes.time, layout: "%Y-%m-%dT%H:%M:%S.%LZ"}, severity: {parse_from: attributes.level}}]"#,
        r#"[{type: json_parser, timestamp: {parse_from: attributes.ts, layout_type: epoch, layout: s.ns}}]"#,
        r#"[{type: regex_parser, regex: '^(?P<time>\S+) (?P<level>\w+) (?P<msg>.*)$', timestamp: {parse_from: attributes.time, layout_type: gotime, layout: "2006-01-02T15:04:05Z07:00"}, severity: {parse_from: attributes.level}}]"#,
        r#"[{type: container}, {type: json_parser, parse_from: body}, {type: regex_parser, parse_from: attributes.msg, regex: '(?P<k>\w+)=(?P<v>\w+)'}]"#,
    ];
    static BUILT: OnceLock<Vec<Chain>> = OnceLock::new();
    run_chains(&BUILT, CHAINS, data);
}

/// Runs `data` through one of the `operators` chains, picked by its first byte. The chains are
/// built once: a chain holds no per-file state (that is the FileCtx), and compiling the regexes
/// per input would spend the fuzzer's time there.
fn run_chains(built: &'static OnceLock<Vec<Chain>>, operators: &[&str], data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let chains = built.get_or_init(|| operators.iter().map(|o| chain(o)).collect());
    run_chain(&chains[usize::from(head) % chains.len()], rest);
}

fn chain(operators: &str) -> Chain {
    let cfg: kotel_config::receivers::filelog::FilelogConfig =
        serde_yaml_ng::from_str(&format!("{{include: [/x], operators: {operators}}}"))
            .expect("a valid target config");
    Chain::build(&cfg).expect("a valid target chain")
}

fn run_chain(chain: &Chain, text: &[u8]) {
    let mut ctx = chain.file_ctx(std::path::Path::new(
        "/var/log/pods/ns_pod_0000-11/app/0.log",
    ));
    let mut out = Vec::new();
    let mut stats = kotel_filelog::operators::ChainStats::default();
    let mut offset = 0u64;
    for line in text.split(|&b| b == b'\n') {
        chain.process(line, offset, &mut ctx, &mut out, &mut stats);
        offset += line.len() as u64 + 1;
        out.clear();
    }
    chain.flush_pending(&mut ctx, &mut out, &mut stats);
}

/// The kubelet's `/stats/summary` (and `/pods`, after a NUL byte) as the kubeletstats receiver
/// decodes and converts them into metrics, twice (the second scrape computes CPU rates).
pub fn kubelet_summary(data: &[u8]) {
    let (summary, pods) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(summary) = kotel_kubeletstats::summary::Summary::from_slice(summary) else {
        return;
    };
    let pods = pods.and_then(|p| kotel_kubeletstats::pods::PodMetadata::from_slice(p).ok());
    let config = kotel_config::receivers::kubeletstats::KubeletStatsConfig::default();
    let mut converter = kotel_kubeletstats::convert::Converter::from_config(&config);
    for now in [1_700_000_000_000_000_000, 1_700_000_010_000_000_000] {
        let _ = converter.convert(&summary, pods.as_ref(), now);
    }
}

/// kotel-config's parse and validation of an arbitrary YAML config (what kotelcol and the
/// operator both run on the user's `config`).
pub fn collector_config(data: &[u8]) {
    let _ = kotel_config::Config::from_yaml(&String::from_utf8_lossy(data));
}

/// The operator's validate and build on an arbitrary resource (YAML or JSON): one resource that
/// panics the operator would stop it reconciling every other.
pub fn operator_spec(data: &[u8]) {
    let Ok(mut doc) = serde_yaml_ng::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Some(obj) = doc.as_object_mut() else {
        return;
    };
    obj.insert("apiVersion".into(), "opentelemetry.io/v1beta1".into());
    obj.insert("kind".into(), "OpenTelemetryCollector".into());
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| serde_json::json!({}));
    if let Some(meta) = meta.as_object_mut() {
        meta.entry("name").or_insert_with(|| "fuzz".into());
        meta.entry("namespace").or_insert_with(|| "fuzz".into());
    }
    let Ok(cr) = serde_json::from_value::<kotel_operator::crd::OpenTelemetryCollector>(doc) else {
        return;
    };
    if let Ok(v) = kotel_operator::validate::validate(&cr, &Default::default()) {
        let _ = kotel_operator::build::children(&v);
    }
}
