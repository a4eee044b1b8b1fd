//! `filelog` (new name `file_log`) receiver: tails files, usually container logs under
//! /var/log/pods, through a chain of stanza operators.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::ConfigError;
use crate::{duration, size};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilelogConfig {
    /// Globs of files to read (required), e.g. `/var/log/pods/*/*/*.log`.
    pub include: Vec<String>,
    /// Globs of files to skip.
    pub exclude: Vec<String>,
    /// Skip files whose modification time is older than this.
    #[serde(deserialize_with = "duration::de_opt")]
    pub exclude_older_than: Option<Duration>,
    /// Where to start a file that has no checkpoint: `end` (default) or `beginning`.
    pub start_at: StartAt,
    /// How often to look for new files and new data; default 200ms.
    #[serde(deserialize_with = "duration::de")]
    pub poll_interval: Duration,
    /// Bytes at the start of a file that identify it; default `1kb` (1000).
    #[serde(deserialize_with = "size::de")]
    pub fingerprint_size: u64,
    /// Longest entry; longer ones are split at this size. Default 1MiB.
    #[serde(deserialize_with = "size::de")]
    pub max_log_size: u64,
    /// Files read at once; more are read in batches. Default 1024.
    pub max_concurrent_files: usize,
    pub max_batches: usize,
    /// `utf-8` (default) or `nop` (bytes as they are).
    pub encoding: String,
    /// Add `log.file.name` (default true).
    pub include_file_name: bool,
    /// Add `log.file.path` (default false).
    pub include_file_path: bool,
    pub include_file_name_resolved: bool,
    pub include_file_path_resolved: bool,
    pub include_file_record_number: bool,
    /// Emit a trailing partial line after this long without new data; default 500ms.
    #[serde(deserialize_with = "duration::de")]
    pub force_flush_period: Duration,
    /// A `file_storage` extension id where offsets are checkpointed.
    pub storage: Option<String>,
    pub operators: Vec<Operator>,
    pub attributes: BTreeMap<String, Value>,
    pub resource: BTreeMap<String, Value>,
    pub multiline: Option<Multiline>,
    pub preserve_leading_whitespaces: bool,
    pub preserve_trailing_whitespaces: bool,
    pub retry_on_failure: FilelogRetry,
    pub delete_after_read: bool,
    /// `""` or `gzip`.
    pub compression: String,
}

impl Default for FilelogConfig {
    fn default() -> Self {
        Self {
            include: Vec::new(),
            exclude: Vec::new(),
            exclude_older_than: None,
            start_at: StartAt::End,
            poll_interval: Duration::from_millis(200),
            fingerprint_size: 1000,
            max_log_size: 1 << 20,
            max_concurrent_files: 1024,
            max_batches: 0,
            encoding: "utf-8".into(),
            include_file_name: true,
            include_file_path: false,
            include_file_name_resolved: false,
            include_file_path_resolved: false,
            include_file_record_number: false,
            force_flush_period: Duration::from_millis(500),
            storage: None,
            operators: Vec::new(),
            attributes: BTreeMap::new(),
            resource: BTreeMap::new(),
            multiline: None,
            preserve_leading_whitespaces: false,
            preserve_trailing_whitespaces: false,
            retry_on_failure: FilelogRetry::default(),
            delete_after_read: false,
            compression: String::new(),
        }
    }
}

impl FilelogConfig {
    pub(crate) fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.include.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.include"),
                "required: at least one glob",
            ));
        }
        if !matches!(self.encoding.as_str(), "utf-8" | "utf8" | "nop") {
            return Err(ConfigError::new(
                format!("{path}.encoding"),
                format!(
                    "{:?} is not supported (kotel reads utf-8 and nop)",
                    self.encoding
                ),
            ));
        }
        if self.max_concurrent_files < 1 {
            return Err(ConfigError::new(
                format!("{path}.max_concurrent_files"),
                "must be at least 1",
            ));
        }
        if self.fingerprint_size < 16 {
            return Err(ConfigError::new(
                format!("{path}.fingerprint_size"),
                "must be at least 16 bytes",
            ));
        }
        if !matches!(self.compression.as_str(), "" | "gzip") {
            return Err(ConfigError::new(
                format!("{path}.compression"),
                "must be \"\" or gzip",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    #[default]
    End,
    Beginning,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Multiline {
    pub line_start_pattern: Option<String>,
    pub line_end_pattern: Option<String>,
    pub omit_pattern: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilelogRetry {
    pub enabled: bool,
    #[serde(deserialize_with = "duration::de")]
    pub initial_interval: Duration,
    #[serde(deserialize_with = "duration::de")]
    pub max_interval: Duration,
    #[serde(deserialize_with = "duration::de")]
    pub max_elapsed_time: Duration,
}

impl Default for FilelogRetry {
    fn default() -> Self {
        Self {
            enabled: false,
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(30),
            max_elapsed_time: Duration::from_secs(300),
        }
    }
}

/// One stanza operator. Types kotel does not implement are config errors naming the type.
#[derive(Debug, Clone, PartialEq)]
pub enum Operator {
    Container(ContainerParser),
    JsonParser(JsonParser),
    RegexParser(RegexParser),
    Move(MoveOp),
    Add(AddOp),
    Remove(RemoveOp),
}

const OPERATOR_TYPES: &str = "container, json_parser, regex_parser, move, add, remove";

impl<'de> Deserialize<'de> for Operator {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = serde_json::Map::<String, Value>::deserialize(d)?;
        let ty = match map.remove("type") {
            Some(Value::String(t)) => t,
            _ => return Err(D::Error::custom("operator needs a `type`")),
        };
        fn inner<T: serde::de::DeserializeOwned, E: Error>(
            ty: &str,
            m: serde_json::Map<String, Value>,
        ) -> Result<T, E> {
            serde_path_to_error::deserialize(Value::Object(m)).map_err(|e| {
                let p = e.path().to_string();
                E::custom(format!("{ty} operator: {p}: {}", e.into_inner()))
            })
        }
        Ok(match ty.as_str() {
            "container" => Self::Container(inner(&ty, map)?),
            "json_parser" => Self::JsonParser(inner(&ty, map)?),
            "regex_parser" => Self::RegexParser(inner(&ty, map)?),
            "move" => Self::Move(inner(&ty, map)?),
            "add" => Self::Add(inner(&ty, map)?),
            "remove" => Self::Remove(inner(&ty, map)?),
            other => {
                return Err(D::Error::custom(format!(
                    "operator type {other:?} is not implemented by kotel (supported: {OPERATOR_TYPES})"
                )));
            }
        })
    }
}

/// `container`: parses containerd/CRI-O and Docker json-file lines, recombines partial lines and
/// adds k8s metadata from the file path.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerParser {
    pub id: Option<String>,
    pub output: Option<Value>,
    /// `docker`, `crio` or `containerd`; detected per file when unset.
    pub format: Option<String>,
    /// Add k8s.namespace.name, k8s.pod.name, k8s.pod.uid, k8s.container.name and
    /// k8s.container.restart_count from `/var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log`.
    pub add_metadata_from_filepath: bool,
    /// Cap on a recombined partial line; 0 means the receiver's `max_log_size`.
    #[serde(deserialize_with = "size::de")]
    pub max_log_size: u64,
    pub parse_from: Option<String>,
    pub parse_to: Option<String>,
    pub on_error: Option<String>,
    #[serde(rename = "if")]
    pub condition: Option<String>,
}

impl Default for ContainerParser {
    fn default() -> Self {
        Self {
            id: None,
            output: None,
            format: None,
            add_metadata_from_filepath: true,
            max_log_size: 0,
            parse_from: None,
            parse_to: None,
            on_error: None,
            condition: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampConfig {
    pub parse_from: Option<String>,
    /// `strptime` (default), `gotime` or `epoch`.
    pub layout_type: Option<String>,
    pub layout: Option<String>,
    pub location: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityConfig {
    pub parse_from: Option<String>,
    pub preset: Option<String>,
    pub mapping: Option<BTreeMap<String, Value>>,
    pub overwrite_text: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonParser {
    pub id: Option<String>,
    pub output: Option<Value>,
    pub parse_from: Option<String>,
    pub parse_to: Option<String>,
    pub on_error: Option<String>,
    #[serde(rename = "if")]
    pub condition: Option<String>,
    pub timestamp: Option<TimestampConfig>,
    pub severity: Option<SeverityConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegexParser {
    pub id: Option<String>,
    pub output: Option<Value>,
    pub regex: String,
    pub parse_from: Option<String>,
    pub parse_to: Option<String>,
    pub on_error: Option<String>,
    #[serde(rename = "if")]
    pub condition: Option<String>,
    pub timestamp: Option<TimestampConfig>,
    pub severity: Option<SeverityConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveOp {
    pub id: Option<String>,
    pub output: Option<Value>,
    pub from: String,
    pub to: String,
    pub on_error: Option<String>,
    #[serde(rename = "if")]
    pub condition: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddOp {
    pub id: Option<String>,
    pub output: Option<Value>,
    pub field: String,
    pub value: Value,
    pub on_error: Option<String>,
    #[serde(rename = "if")]
    pub condition: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveOp {
    pub id: Option<String>,
    pub output: Option<Value>,
    pub field: String,
    pub on_error: Option<String>,
    #[serde(rename = "if")]
    pub condition: Option<String>,
}
