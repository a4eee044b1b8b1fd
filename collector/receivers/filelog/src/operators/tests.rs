use super::*;
use kotel_pipeline::proto::common::v1::any_value::Value;

fn config(yaml: &str) -> cfg::FilelogConfig {
    serde_yaml_ng::from_str(yaml).unwrap()
}

fn attr<'a>(e: &'a Entry, key: &str) -> Option<&'a str> {
    e.record
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match &kv.value {
            Some(AnyValue {
                value: Some(Value::StringValue(s)),
            }) => Some(s.as_str()),
            _ => None,
        })
}

fn res<'a>(e: &'a Entry, key: &str) -> Option<&'a str> {
    e.resource
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match &kv.value {
            Some(AnyValue {
                value: Some(Value::StringValue(s)),
            }) => Some(s.as_str()),
            _ => None,
        })
}

fn body(e: &Entry) -> &str {
    match &e.record.body {
        Some(AnyValue {
            value: Some(Value::StringValue(s)),
        }) => s,
        other => panic!("body {other:?}"),
    }
}

fn run(chain: &Chain, path: &str, lines: &[&str]) -> (Vec<Entry>, ChainStats, FileCtx) {
    let mut ctx = chain.file_ctx(std::path::Path::new(path));
    let mut out = Vec::new();
    let mut stats = ChainStats::default();
    let mut off = 0;
    for l in lines {
        chain.process(l.as_bytes(), off, &mut ctx, &mut out, &mut stats);
        off += l.len() as u64 + 1;
    }
    (out, stats, ctx)
}

const POD: &str =
    "/var/log/pods/default_web-7d4b9c_6f1c2d3e-aaaa-bbbb-cccc-1234567890ab/nginx/0.log";

#[test]
fn helm_preset_container_parser() {
    let c = config(
        "include: [/var/log/pods/*/*/*.log]\nstart_at: end\ninclude_file_path: true\ninclude_file_name: false\n\
         retry_on_failure: {enabled: true}\noperators:\n  - {type: container, id: container-parser, max_log_size: 102400}\n",
    );
    let chain = Chain::build(&c).unwrap();
    let (out, stats, ctx) = run(
        &chain,
        POD,
        &[
            "2024-01-01T00:00:00.000000001Z stdout F hello  ",
            "2024-01-01T00:00:00.000000002Z stderr P part one ",
            "2024-01-01T00:00:00.000000003Z stdout F interleaved",
            "2024-01-01T00:00:00.000000004Z stderr F and two",
            "not a container line",
            r#"{"log":"docker says hi\n","stream":"stdout","time":"2024-01-01T00:00:01Z"}"#,
            "2024-01-01T00:00:00.000000005Z stdout P pending",
        ],
    );
    let bodies: Vec<_> = out.iter().map(body).collect();
    assert_eq!(
        bodies,
        vec![
            "hello",
            "interleaved",
            "part one and two",
            "not a container line",
            "docker says hi\n"
        ],
        "as upstream: an F line without its trailing spaces, Docker's newline kept; \
         chunks joined per stream with their spaces (upstream differs, see the README)"
    );
    assert_eq!(out[0].record.time_unix_nano, 1_704_067_200_000_000_001);
    assert_eq!(attr(&out[0], "log.iostream"), Some("stdout"));
    assert_eq!(attr(&out[0], "logtag"), Some("F"));
    assert_eq!(attr(&out[2], "log.iostream"), Some("stderr"));
    // A joined line is upstream's recombined record: the first chunk's tag and time.
    assert_eq!(attr(&out[2], "logtag"), Some("P"));
    assert_eq!(out[2].record.time_unix_nano, 1_704_067_200_000_000_002);
    assert_eq!(attr(&out[0], "log.file.path"), Some(POD));
    assert_eq!(attr(&out[0], "log.file.name"), None);
    assert_eq!(res(&out[0], "k8s.namespace.name"), Some("default"));
    assert_eq!(res(&out[0], "k8s.pod.name"), Some("web-7d4b9c"));
    assert_eq!(
        res(&out[0], "k8s.pod.uid"),
        Some("6f1c2d3e-aaaa-bbbb-cccc-1234567890ab")
    );
    assert_eq!(res(&out[0], "k8s.container.name"), Some("nginx"));
    assert_eq!(res(&out[0], "k8s.container.restart_count"), Some("0"));
    assert_eq!(stats.parse_errors, 1);
    // The pending partial needs the file from its line on.
    let last_start: u64 = [
        "2024-01-01T00:00:00.000000001Z stdout F hello  ",
        "2024-01-01T00:00:00.000000002Z stderr P part one ",
        "2024-01-01T00:00:00.000000003Z stdout F interleaved",
        "2024-01-01T00:00:00.000000004Z stderr F and two",
        "not a container line",
        r#"{"log":"docker says hi\n","stream":"stdout","time":"2024-01-01T00:00:01Z"}"#,
    ]
    .iter()
    .map(|l| l.len() as u64 + 1)
    .sum();
    assert_eq!(chain.pending_start(&ctx), Some(last_start));
}

#[test]
fn partials_recombine_up_to_the_cap() {
    let c = config("include: [x]\noperators:\n  - {type: container, max_log_size: 10}\n");
    let chain = Chain::build(&c).unwrap();
    let (out, _, ctx) = run(
        &chain,
        "/x/0.log",
        &[
            "2024-01-01T00:00:00Z stdout P aaaa",
            "2024-01-01T00:00:00Z stdout P bbbb",
            "2024-01-01T00:00:00Z stdout P cccc",
            "2024-01-01T00:00:00Z stdout F d",
        ],
    );
    let bodies: Vec<_> = out.iter().map(body).collect();
    assert_eq!(bodies, vec!["aaaabbbbcccc", "d"]);
    assert_eq!(chain.pending_start(&ctx), None);
}

#[test]
fn json_regex_move_add_remove() {
    let c = config(
        r#"
include: [x]
include_file_name: false
operators:
  - type: regex_parser
    regex: '^(?P<level>[A-Z]+) (?P<msg>.*)$'
    severity: {parse_from: attributes.level}
  - {type: move, from: attributes.msg, to: body}
  - {type: json_parser, parse_to: attributes.parsed}
  - type: add
    field: resource["service.name"]
    value: shop
  - {type: remove, field: attributes.level}
  - {type: move, from: attributes.parsed.user, to: attributes.user, on_error: send_quiet}
"#,
    );
    let chain = Chain::build(&c).unwrap();
    let (out, stats, _) = run(
        &chain,
        "/x/app.log",
        &[r#"WARN {"user":"ann","n":2}"#, "ERROR plain"],
    );
    assert_eq!(out.len(), 2);
    assert_eq!(body(&out[0]), r#"{"user":"ann","n":2}"#);
    assert_eq!(attr(&out[0], "user"), Some("ann"));
    assert_eq!(attr(&out[0], "level"), None);
    assert_eq!(out[0].record.severity_number, 13);
    assert_eq!(out[0].record.severity_text, "WARN");
    assert_eq!(res(&out[0], "service.name"), Some("shop"));
    assert_eq!(out[1].record.severity_number, 17);
    // "plain" is not JSON and has no user: two failures, both sent on.
    assert_eq!(stats.parse_errors, 2);
    assert_eq!(stats.dropped, 0);
}

#[test]
fn on_error_drop_drops() {
    let c = config("include: [x]\noperators:\n  - {type: json_parser, on_error: drop_quiet}\n");
    let chain = Chain::build(&c).unwrap();
    let (out, stats, _) = run(&chain, "/x/a.log", &["{\"a\":1}", "nope"]);
    assert_eq!(out.len(), 1);
    assert_eq!(stats.dropped, 1);
}

#[test]
fn unsupported_settings_are_named() {
    for (yaml, want) in [
        (
            "operators: [{type: add, field: body, value: x, if: 'body == 1'}]",
            "`if`",
        ),
        ("operators: [{type: container, format: podman}]", "podman"),
        (
            "operators: [{type: move, from: nowhere, to: body}]",
            "nowhere",
        ),
        ("operators: [{type: regex_parser, regex: '('}]", "regex"),
        (
            "operators: [{type: container}, {type: container}]",
            "one container",
        ),
        (
            "operators: [{type: add, field: body, value: x, output: elsewhere}]",
            "output",
        ),
    ] {
        let c = config(&format!("include: [x]\n{yaml}\n"));
        let err = Chain::build(&c).unwrap_err().to_string();
        assert!(err.contains(want), "{err} should mention {want}");
    }
}

#[test]
fn invalid_utf8_is_replaced_and_nop_keeps_bytes() {
    let c = config("include: [x]\n");
    let chain = Chain::build(&c).unwrap();
    let mut ctx = chain.file_ctx(std::path::Path::new("/x/a.log"));
    let mut out = Vec::new();
    let mut stats = ChainStats::default();
    chain.process(b"caf\xe9 ok", 0, &mut ctx, &mut out, &mut stats);
    assert_eq!(body(&out[0]), "caf\u{fffd} ok");
    assert_eq!(attr(&out[0], "log.file.name"), Some("a.log"));
    let c = config("include: [x]\nencoding: nop\n");
    let chain = Chain::build(&c).unwrap();
    out.clear();
    chain.process(b"caf\xe9", 0, &mut ctx, &mut out, &mut stats);
    assert_eq!(
        out[0].record.body,
        Some(AnyValue {
            value: Some(Value::BytesValue(b"caf\xe9".to_vec()))
        })
    );
}

#[test]
fn parser_timestamps() {
    let c = config(
        r#"
include: [x]
operators:
  - type: json_parser
    timestamp: {parse_from: attributes.ts, layout_type: epoch, layout: s.ms}
  - type: regex_parser
    parse_from: attributes.when
    regex: '^(?P<t>.*)$'
    timestamp: {parse_from: attributes.t, layout: '%Y-%m-%d %H:%M:%S'}
    on_error: send_quiet
"#,
    );
    let chain = Chain::build(&c).unwrap();
    let (out, stats, _) = run(
        &chain,
        "/x/a.log",
        &[
            r#"{"ts": 1711787480.5}"#,
            r#"{"ts": 1, "when": "2024-03-30 08:31:20"}"#,
        ],
    );
    assert_eq!(out[0].record.time_unix_nano, 1_711_787_480_500_000_000);
    assert_eq!(out[1].record.time_unix_nano, 1_711_787_480_000_000_000);
    // The first line has no `when` for the regex parser.
    assert_eq!(stats.parse_errors, 1);
    let bad = config(
        "include: [x]\noperators: [{type: json_parser, timestamp: {parse_from: body.t, layout: '%Q'}}]\n",
    );
    assert!(Chain::build(&bad).unwrap_err().to_string().contains("%Q"));
}
