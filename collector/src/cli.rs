//! Command line: `kotelcol [--config URI]...`, `kotelcol validate --config URI`,
//! `kotelcol components`.
//!
//! A config URI is a path, `file:<path>`, `env:<VAR>` (the variable holds YAML) or
//! `yaml:<inline yaml>`, as upstream's confmap providers.

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
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a config and list every problem; exits non-zero when there is one.
    Validate,
    /// List the components built into this kotelcol.
    Components,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read config {uri}: {source}")]
    Read { uri: String, source: std::io::Error },
    #[error("config {uri}: environment variable {var} is not set")]
    Env { uri: String, var: String },
    #[error("invalid config:\n{0}")]
    Invalid(ConfigErrors),
}

fn read(uri: &str) -> Result<String, LoadError> {
    if let Some(inline) = uri.strip_prefix("yaml:") {
        return Ok(inline.to_string());
    }
    if let Some(var) = uri.strip_prefix("env:") {
        return std::env::var(var).map_err(|_| LoadError::Env {
            uri: uri.into(),
            var: var.into(),
        });
    }
    let path = uri.strip_prefix("file:").unwrap_or(uri);
    std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        uri: uri.into(),
        source,
    })
}

/// Loads and validates the configs named on the command line (or the embedded default).
pub fn load(uris: &[String]) -> Result<Config, LoadError> {
    let texts = if uris.is_empty() {
        vec![crate::DEFAULT_CONFIG.to_string()]
    } else {
        uris.iter().map(|u| read(u)).collect::<Result<_, _>>()?
    };
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    Config::load(&refs, &ProcessEnv, false).map_err(LoadError::Invalid)
}

/// The `components` listing.
pub fn components() -> String {
    let mut out = String::new();
    for (kind, ty, signals) in kotel_config::components() {
        let signals: Vec<&str> = signals.iter().map(|s| s.as_str()).collect();
        out.push_str(&format!(
            "{:<10} {:<16} {}\n",
            kind.section(),
            ty,
            signals.join(",")
        ));
    }
    out
}
