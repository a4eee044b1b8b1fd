//! Command line: `kotelcol [--config URI]... [--set KEY=VALUE]... [--feature-gates GATES]`,
//! `kotelcol validate --config URI`, `kotelcol print-config --config URI`, `kotelcol components`.
//!
//! A config URI is a path, `file:<path>`, `env:<VAR>` (the variable holds YAML) or
//! `yaml:<inline yaml>` (keys may be `a::b::c` paths), as upstream's confmap providers.

use clap::{Parser, Subcommand};
use kotel_config::expand::ProcessEnv;
use kotel_config::{Config, ConfigErrors};

#[derive(Debug, Parser)]
#[command(name = "kotelcol", version, about = "kotel's OpenTelemetry collector")]
pub struct Cli {
    /// Config to run; repeat to merge several (later ones win). Without it, an embedded
    /// default runs: OTLP on localhost:4317/4318 → debug exporter.
    #[arg(long = "config", global = true, value_name = "URI")]
    pub config: Vec<String>,
    /// Set one config value, as upstream: `--set=processors::batch::timeout=2s` (the value is
    /// YAML). Applied after every --config, in order.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Upstream's feature gates (`-component.UseLocalHostAsDefaultHost`, …). kotel has none:
    /// they are accepted and named in a warning, so manifests that pass them keep running.
    #[arg(long = "feature-gates", global = true, value_name = "GATES")]
    pub feature_gates: Vec<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The config URIs to load: every `--config`, then every `--set` as an inline YAML one.
    pub fn config_uris(&self) -> Result<Vec<String>, LoadError> {
        let mut uris = self.config.clone();
        for kv in &self.set {
            let (key, value) = kv
                .split_once('=')
                .ok_or_else(|| LoadError::Set { arg: kv.clone() })?;
            if key.trim().is_empty() {
                return Err(LoadError::Set { arg: kv.clone() });
            }
            uris.push(format!("yaml:{}: {value}", key.trim()));
        }
        Ok(uris)
    }

    /// The feature gates given, for a warning (kotel implements none).
    pub fn ignored_feature_gates(&self) -> Vec<&str> {
        self.feature_gates
            .iter()
            .flat_map(|g| g.split(','))
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .collect()
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a config and list every problem; exits non-zero when there is one.
    Validate,
    /// List the components built into this kotelcol, in upstream's YAML shape.
    Components,
    /// Print the config as it runs: every --config and --set merged, `${…}` expanded, checked.
    PrintConfig {
        /// `redacted` (default) replaces secrets (header values, passwords, tokens, private
        /// keys) with `[REDACTED]`, as upstream; `unredacted` prints them.
        #[arg(long, default_value = "redacted", value_parser = ["redacted", "unredacted"])]
        mode: String,
        /// `yaml` or `json`.
        #[arg(long, default_value = "yaml", value_parser = ["yaml", "json"])]
        format: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read config {uri}: {source}")]
    Read { uri: String, source: std::io::Error },
    #[error("config {uri}: environment variable {var} is not set")]
    Env { uri: String, var: String },
    #[error("invalid config:\n{0}")]
    Invalid(ConfigErrors),
    #[error("--set {arg:?}: want KEY=VALUE, keys joined by :: (processors::batch::timeout=2s)")]
    Set { arg: String },
}

fn read(uri: &str) -> Result<Vec<String>, LoadError> {
    if let Some(inline) = uri.strip_prefix("yaml:") {
        return Ok(inline_yaml(inline));
    }
    if let Some(var) = uri.strip_prefix("env:") {
        return std::env::var(var)
            .map(|v| vec![v])
            .map_err(|_| LoadError::Env {
                uri: uri.into(),
                var: var.into(),
            });
    }
    let path = uri.strip_prefix("file:").unwrap_or(uri);
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        uri: uri.into(),
        source,
    })?;
    Ok(vec![text])
}

/// Loads and validates the configs named on the command line (or the embedded default).
pub fn load(uris: &[String]) -> Result<Config, LoadError> {
    let texts = texts(uris)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    Config::load(&refs, &ProcessEnv, false).map_err(LoadError::Invalid)
}

/// `print-config`: the resolved config, checked, as YAML or JSON, secrets redacted unless asked.
pub fn print_config(uris: &[String], redacted: bool, json: bool) -> Result<String, LoadError> {
    let texts = texts(uris)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut resolved = Config::resolve(&refs, &ProcessEnv, false).map_err(LoadError::Invalid)?;
    Config::from_value(resolved.clone()).map_err(LoadError::Invalid)?;
    if redacted {
        redact(&mut resolved, false);
    }
    Ok(if json {
        serde_json::to_string_pretty(&resolved).expect("a JSON value serializes") + "\n"
    } else {
        serde_yaml_ng::to_string(&resolved).expect("a JSON value serializes")
    })
}

/// Keys whose values are secrets (upstream's opaque strings): replaced in place. Every value
/// under a `headers` map is one (authorization headers live there).
const SECRET_KEYS: &[&str] = &[
    "password",
    "token",
    "bearer_token",
    "key_pem",
    "client_secret",
];

fn redact(v: &mut serde_json::Value, secret: bool) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                redact(
                    child,
                    secret || k == "headers" || SECRET_KEYS.contains(&k.as_str()),
                );
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| redact(i, secret)),
        serde_json::Value::Null => {}
        other if secret => *other = "[REDACTED]".into(),
        _ => {}
    }
}

fn texts(uris: &[String]) -> Result<Vec<String>, LoadError> {
    Ok(if uris.is_empty() {
        vec![crate::DEFAULT_CONFIG.to_string()]
    } else {
        let mut texts = Vec::new();
        for uri in uris {
            texts.extend(read(uri)?);
        }
        texts
    })
}

/// An inline `yaml:` config as upstream reads it: a key `a::b::c` means `c` inside `b` inside
/// `a` (`yaml:exporters::debug::verbosity: detailed`). Each top-level entry becomes its own
/// document, merged in order, so several entries may share a prefix. Block-style keys only.
fn inline_yaml(text: &str) -> Vec<String> {
    let mut entries: Vec<String> = Vec::new();
    for line in text.lines() {
        let top = !line.starts_with([' ', '\t', '#']) && !line.trim().is_empty();
        match entries.last_mut() {
            Some(e) if !top => {
                e.push_str(line);
                e.push('\n');
            }
            _ => entries.push(format!("{line}\n")),
        }
    }
    entries.iter().map(|e| nest_key_paths(e)).collect()
}

/// Rewrites `a::b: v` keys as nested maps, re-indenting what is under them.
fn nest_key_paths(text: &str) -> String {
    let mut out = String::new();
    // (indent of a rewritten key, extra indent of the lines under it)
    let mut open: Vec<(usize, usize)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            out.push('\n');
            continue;
        }
        let indent = line.len() - trimmed.len();
        while open.last().is_some_and(|(i, _)| *i >= indent) {
            open.pop();
        }
        let pad = " ".repeat(indent + open.iter().map(|(_, e)| e).sum::<usize>());
        let key_end = trimmed
            .find(": ")
            .or_else(|| trimmed.strip_suffix(':').map(str::len));
        let (key, rest) = key_end.map_or((trimmed, ""), |e| trimmed.split_at(e));
        let plain = key_end.is_some() && !key.starts_with(['"', '\'', '-', '{', '[']);
        if !plain || !key.contains("::") {
            out.push_str(&format!("{pad}{trimmed}\n"));
            continue;
        }
        let parts: Vec<&str> = key.split("::").collect();
        let last = parts.len() - 1;
        for (depth, part) in parts.iter().enumerate() {
            let tail = if depth == last { rest } else { ":" };
            out.push_str(&format!("{pad}{}{part}{tail}\n", "  ".repeat(depth)));
        }
        open.push((indent, 2 * last));
    }
    out
}

/// The `components` listing.
/// The built-in components as upstream's `components` command lists them (YAML: `buildinfo`,
/// then each kind with `name`, `module` and per-signal `stability`), so scripts that read
/// upstream's output read kotel's. The module is the Rust crate that implements the component.
pub fn components() -> String {
    use std::fmt::Write;
    let version = env!("CARGO_PKG_VERSION");
    let mut out = format!(
        "buildinfo:\n  command: kotelcol\n  description: kotel's OpenTelemetry collector\n  version: {version}\n"
    );
    for section in [
        "receivers",
        "processors",
        "exporters",
        "connectors",
        "extensions",
    ] {
        let entries: Vec<_> = kotel_config::components()
            .into_iter()
            .filter(|(kind, ..)| kind.section() == section)
            .collect();
        if entries.is_empty() {
            let _ = writeln!(out, "{section}: []");
            continue;
        }
        let _ = writeln!(out, "{section}:");
        for (_, ty, signals) in entries {
            let _ = writeln!(
                out,
                "  - name: {ty}\n    module: {} {version}",
                module_of(ty)
            );
            let _ = writeln!(out, "    stability:");
            if signals.is_empty() {
                let _ = writeln!(out, "      extension: Beta");
            }
            for s in signals {
                let _ = writeln!(out, "      {}: Beta", s.as_str());
            }
        }
    }
    out.push_str("providers:\n");
    for scheme in ["env", "file", "yaml"] {
        let _ = writeln!(out, "  - scheme: {scheme}\n    module: kotelcol {version}");
    }
    out
}

/// The crate a component type lives in.
fn module_of(ty: &str) -> &'static str {
    match ty {
        "filelog" => "kotel-filelog",
        "kubeletstats" => "kotel-kubeletstats",
        "k8sattributes" => "kotel-k8sattributes",
        _ => "kotelcol",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_yaml_nests_key_paths() {
        assert_eq!(
            inline_yaml("exporters::debug::verbosity: detailed"),
            vec!["exporters:\n  debug:\n    verbosity: detailed\n"]
        );
        assert_eq!(
            inline_yaml("a::b:\n  c: 1\n  d::e: 2\nf: 3"),
            vec!["a:\n  b:\n    c: 1\n    d:\n      e: 2\n", "f: 3\n"]
        );
        // Values and quoted keys keep their colons.
        assert_eq!(
            inline_yaml("x: {endpoint: \"[::1]:4317\"}"),
            vec!["x: {endpoint: \"[::1]:4317\"}\n"]
        );
    }
}
