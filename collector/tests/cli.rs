//! The kotelcol command line, run as the built binary: `validate` lists every problem and sets
//! the exit code, `components` lists what is built in, several `--config` files merge with the
//! later one winning, and `${env:VAR:-default}` expands.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use get::http_ok;

const BIN: &str = env!("CARGO_BIN_EXE_kotelcol");

/// An OTLP → debug config whose otlp exporter compression is `COMPRESSION`.
const GOOD: &str = r#"
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0"}
exporters:
  debug: {}
  otlp:
    endpoint: localhost:4317
    compression: COMPRESSION
service:
  telemetry:
    metrics: {address: "127.0.0.1:0"}
  pipelines:
    traces: {receivers: [otlp], exporters: [debug, otlp]}
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// GOOD with `compression`, written to `dir/name`.
fn good(dir: &Path, name: &str, compression: &str) -> PathBuf {
    write(dir, name, &GOOD.replace("COMPRESSION", compression))
}

/// A config file that adds a health_check extension on `endpoint`.
fn health_check(dir: &Path, endpoint: &str) -> PathBuf {
    write(
        dir,
        "health.yaml",
        &format!(
            "extensions:\n  health_check: {{endpoint: \"{endpoint}\"}}\n\
             service:\n  extensions: [health_check]\n"
        ),
    )
}

fn kotelcol(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("KOTEL_CLI_COMPRESSION");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// `--config FILE` for each of `files`.
fn config_args<'a>(files: &[&'a Path]) -> Vec<&'a str> {
    files
        .iter()
        .flat_map(|f| ["--config", f.to_str().unwrap()])
        .collect()
}

fn validate(files: &[&Path], env: &[(&str, &str)]) -> Output {
    let mut args = vec!["validate"];
    args.extend(config_args(files));
    kotelcol(&args, env)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_succeeds(out: &Output) {
    assert!(out.status.success(), "{}", stderr(out));
}

/// The command failed and its stderr names `what`.
fn assert_fails_naming(out: &Output, what: &str) {
    assert!(!out.status.success(), "{}", stderr(out));
    assert!(
        stderr(out).contains(what),
        "{what:?} missing from:\n{}",
        stderr(out)
    );
}

#[test]
fn validate_lists_every_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpointt: 0.0.0.0:4317
  zipkin: {}
exporters:
  debug: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
"#,
    );
    let out = validate(&[&bad], &[]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    for problem in [
        "receivers.otlp.protocols.grpc.endpointt",
        "unknown field",
        "zipkin",
        "batch",
    ] {
        assert!(err.contains(problem), "{problem:?} missing from:\n{err}");
    }
    let problems: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains("problem(s) found"))
        .collect();
    assert!(problems.len() >= 3, "{err}");
}

#[test]
fn validate_accepts_a_good_config() {
    let dir = tempfile::tempdir().unwrap();
    let good = good(dir.path(), "good.yaml", "gzip");
    let out = validate(&[&good], &[]);
    assert_succeeds(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
}

#[test]
fn validate_fails_on_a_missing_file() {
    let out = validate(&[Path::new("/nonexistent/kotelcol.yaml")], &[]);
    assert_fails_naming(&out, "/nonexistent/kotelcol.yaml");
}

#[test]
fn components_lists_what_is_built_in() {
    let out = kotelcol(&["components"], &[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // Upstream's shape: buildinfo, then per kind a list of {name, module, stability}.
    let doc: serde_json::Value = serde_yaml_ng::from_str(&text).expect("YAML");
    assert_eq!(doc["buildinfo"]["command"], "kotelcol", "{text}");
    assert_eq!(doc["connectors"], serde_json::json!([]), "{text}");
    assert_eq!(doc["receivers"][0]["stability"]["traces"], "Beta", "{text}");
    let has = |kind: &str, ty: &str| {
        doc[kind]
            .as_array()
            .is_some_and(|l| l.iter().any(|c| c["name"] == ty && c["module"].is_string()))
    };
    for (kind, ty) in [
        ("receivers", "otlp"),
        ("receivers", "filelog"),
        ("receivers", "kubeletstats"),
        ("processors", "k8sattributes"),
        ("processors", "batch"),
        ("processors", "memory_limiter"),
        ("exporters", "otlp"),
        ("exporters", "otlphttp"),
        ("exporters", "debug"),
        ("extensions", "health_check"),
        ("extensions", "file_storage"),
    ] {
        assert!(has(kind, ty), "{kind} {ty} missing from:\n{text}");
    }
}

#[test]
fn later_config_files_win() {
    let dir = tempfile::tempdir().unwrap();
    let base = good(dir.path(), "base.yaml", "brotli");
    let fix = write(
        dir.path(),
        "fix.yaml",
        "exporters:\n  otlp:\n    compression: zstd\n",
    );
    assert_succeeds(&validate(&[&base, &fix], &[]));
    let out = validate(&[&fix, &base], &[]);
    assert_fails_naming(&out, "exporters.otlp.compression");
}

#[test]
fn set_and_feature_gates_as_upstream_manifests_pass_them() {
    let dir = tempfile::tempdir().unwrap();
    let base = good(dir.path(), "base.yaml", "brotli");
    let base = base.to_str().unwrap();
    // --set fixes what the file gets wrong; it applies after every --config.
    let out = kotelcol(
        &[
            "validate",
            "--set=exporters::otlp::compression=zstd",
            "--config",
            base,
        ],
        &[],
    );
    assert_succeeds(&out);
    let out = kotelcol(
        &[
            "validate",
            "--config",
            base,
            "--set",
            "exporters::otlp::compression=snappyish",
        ],
        &[],
    );
    assert_fails_naming(&out, "exporters.otlp.compression");
    let out = kotelcol(&["validate", "--config", base, "--set", "novalue"], &[]);
    assert_fails_naming(&out, "--set");
    // Feature gates are accepted and named, not fatal.
    let out = kotelcol(
        &[
            "validate",
            "--set=exporters::otlp::compression=zstd",
            "--config",
            base,
            "--feature-gates=-component.UseLocalHostAsDefaultHost,+foo",
        ],
        &[],
    );
    assert_succeeds(&out);
    assert!(
        stderr(&out).contains("-component.UseLocalHostAsDefaultHost"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn inline_yaml_uses_upstreams_key_paths() {
    let dir = tempfile::tempdir().unwrap();
    let base = good(dir.path(), "base.yaml", "brotli");
    let base = base.to_str().unwrap();
    let fix = "yaml:exporters::otlp::compression: zstd";
    let out = kotelcol(&["validate", "--config", base, "--config", fix], &[]);
    assert_succeeds(&out);
    // --config is global: it may come before the subcommand too.
    let out = kotelcol(&["--config", fix, "--config", base, "validate"], &[]);
    assert_fails_naming(&out, "exporters.otlp.compression");
}

#[test]
fn env_and_default_configs() {
    let good = GOOD.replace("COMPRESSION", "gzip");
    let out = kotelcol(
        &["validate", "--config", "env:KOTEL_CLI_CONFIG"],
        &[("KOTEL_CLI_CONFIG", &good)],
    );
    assert_succeeds(&out);
    let out = kotelcol(&["validate", "--config", "env:KOTEL_CLI_UNSET_CONFIG"], &[]);
    assert_fails_naming(&out, "KOTEL_CLI_UNSET_CONFIG");
    // Without --config the embedded default is what runs; it must be valid.
    assert_succeeds(&kotelcol(&["validate"], &[]));
}

#[test]
fn env_references_expand_with_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let f = good(dir.path(), "env.yaml", "${env:KOTEL_CLI_COMPRESSION:-gzip}");
    let out = validate(&[&f], &[]);
    assert!(out.status.success(), "default not used: {}", stderr(&out));
    // The variable's value is used, and brotli is refused.
    let out = validate(&[&f], &[("KOTEL_CLI_COMPRESSION", "brotli")]);
    assert_fails_naming(&out, "brotli");
}

/// Kills the child if the test fails before its SIGTERM.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn runs_merged_configs_with_env_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let base = good(dir.path(), "base.yaml", "gzip");
    let health = health_check(dir.path(), "${env:KOTEL_CLI_HEALTH}");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new(BIN)
        .args(config_args(&[&base, &health]))
        .env("KOTEL_CLI_HEALTH", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Child(child);
    let url = format!("http://127.0.0.1:{port}/");
    let healthy = (0..200).any(|_| {
        let ok = http_ok(&url);
        if !ok {
            std::thread::sleep(Duration::from_millis(50));
        }
        ok
    });
    assert!(
        healthy,
        "health_check from the second file never answered 200"
    );
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

mod get {
    /// A plain HTTP/1.0 GET: whether the answer is 200.
    pub fn http_ok(url: &str) -> bool {
        use std::io::{Read, Write};
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let Ok(mut s) = std::net::TcpStream::connect(host) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
        let req = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
    }
}

#[test]
fn a_port_in_use_fails_the_run_with_its_component() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let base = good(dir.path(), "base.yaml", "gzip");
    let health = health_check(dir.path(), &format!("127.0.0.1:{port}"));
    let out = kotelcol(&config_args(&[&base, &health]), &[]);
    assert_fails_naming(&out, "extensions.health_check");
    // The last line, what a crash-looping pod shows in its status, names the address once.
    let what = format!("cannot listen on 127.0.0.1:{port}");
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert_eq!(last.matches(&what).count(), 1, "said once: {last}");
}

/// A config written for an older upstream collector (issue 14): accepted, each old name named.
#[test]
fn validate_accepts_an_old_upstream_config_and_names_what_is_deprecated() {
    let dir = tempfile::tempdir().unwrap();
    let old = write(
        dir.path(),
        "old.yaml",
        r#"
receivers:
  otlp:
    protocols:
      http:
        cors_allowed_origins: ["https://*.example.com"]
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 400
    ballast_size_mib: 100
exporters:
  logging:
    loglevel: debug
extensions:
  memory_ballast:
    size_mib: 64
service:
  extensions: [memory_ballast]
  pipelines:
    logs:
      receivers: [otlp]
      processors: [memory_limiter]
      exporters: [logging]
"#,
    );
    let out = validate(&[&old], &[]);
    assert_succeeds(&out);
    let err = stderr(&out);
    for old_name in [
        "cors_allowed_origins",
        "ballast_size_mib",
        "exporters.logging: the logging exporter is the debug exporter",
        "loglevel",
        "memory_ballast",
    ] {
        assert!(
            err.lines()
                .any(|l| l.starts_with("deprecated: ") && l.contains(old_name)),
            "{old_name:?} missing from:\n{err}"
        );
    }
}

/// `print-config` (issue 12): the merged, expanded config, with secrets redacted unless asked.
#[test]
fn print_config_shows_the_resolved_config_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "c.yaml",
        r#"
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "${env:KOTEL_TEST_ENDPOINT}"}
exporters:
  otlphttp:
    endpoint: http://backend:4318
    headers: {authorization: "Bearer s3cret"}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [otlphttp]}
"#,
    );
    let env = [("KOTEL_TEST_ENDPOINT", "0.0.0.0:14317")];
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "print-config",
            "--config",
            file.to_str().unwrap(),
            "--set=processors::batch::timeout=2s",
        ];
        a.extend_from_slice(extra);
        a
    };
    let out = kotelcol(&args(&[]), &env);
    assert_succeeds(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    let doc: serde_json::Value = serde_yaml_ng::from_str(&text).expect("YAML");
    assert_eq!(
        doc["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"],
        "0.0.0.0:14317"
    );
    assert_eq!(
        doc["processors"]["batch"]["timeout"], "2s",
        "--set merged: {text}"
    );
    assert_eq!(
        doc["exporters"]["otlphttp"]["headers"]["authorization"],
        "[REDACTED]"
    );
    assert!(!text.contains("s3cret"), "{text}");
    let out = kotelcol(&args(&["--mode", "unredacted", "--format", "json"]), &env);
    assert_succeeds(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        doc["exporters"]["otlphttp"]["headers"]["authorization"],
        "Bearer s3cret"
    );
    // An invalid config is refused, not printed.
    let bad = write(dir.path(), "bad.yaml", "receivers: {zipkin: {}}\n");
    assert_fails_naming(
        &kotelcol(&["print-config", "--config", bad.to_str().unwrap()], &[]),
        "zipkin",
    );
}
