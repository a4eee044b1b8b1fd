//! `filelog` (new name `file_log`) receiver: tails files, usually container logs under
//! /var/log/pods, through a chain of stanza operators.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::{ConfigError, check_regex};
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
    /// Longest entry; a longer line is split into pieces of this size, each its own record.
    /// Default 1MiB.
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
    /// Only `""` (plain files): `gzip` is a config error in kotel.
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
            return Err(ConfigError::unsupported(
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
        if !self.compression.is_empty() {
            return Err(ConfigError::unsupported(
                format!("{path}.compression"),
                format!(
                    "{:?} is not supported by kotel (plain files only; kubelet's rotated .gz files are not read)",
                    self.compression
                ),
            ));
        }
        if self.multiline.is_some() {
            return Err(ConfigError::unsupported(
                format!("{path}.multiline"),
                "not supported by kotel (container logs use the container parser's recombination)",
            ));
        }
        if self.include_file_record_number {
            return Err(ConfigError::unsupported(
                format!("{path}.include_file_record_number"),
                "not supported by kotel",
            ));
        }
        if self.max_batches != 0 {
            return Err(ConfigError::unsupported(
                format!("{path}.max_batches"),
                "not supported by kotel: every batch of files is read each poll (leave it 0)",
            ));
        }
        if self.delete_after_read {
            return Err(ConfigError::unsupported(
                format!("{path}.delete_after_read"),
                "not supported by kotel",
            ));
        }
        let mut containers = 0;
        for (i, op) in self.operators.iter().enumerate() {
            let op_path = format!("{path}.operators[{i}]");
            let next_id = self.operators.get(i + 1).map(Operator::id);
            op.validate(&op_path, next_id)?;
            if matches!(op, Operator::Container(_)) {
                containers += 1;
                if containers > 1 {
                    return Err(ConfigError::new(
                        op_path,
                        "only one container parser per receiver",
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Operator {
    /// The operator's type name, as written in `type:`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Container(_) => "container",
            Self::JsonParser(_) => "json_parser",
            Self::RegexParser(_) => "regex_parser",
            Self::Move(_) => "move",
            Self::Add(_) => "add",
            Self::Remove(_) => "remove",
        }
    }

    /// `id`, defaulting to the type name as upstream.
    pub fn id(&self) -> &str {
        let id = match self {
            Self::Container(p) => &p.id,
            Self::JsonParser(p) => &p.id,
            Self::RegexParser(p) => &p.id,
            Self::Move(p) => &p.id,
            Self::Add(p) => &p.id,
            Self::Remove(p) => &p.id,
        };
        id.as_deref().unwrap_or(self.type_name())
    }

    fn common(&self) -> (&Option<String>, &Option<Value>, &Option<String>) {
        match self {
            Self::Container(p) => (&p.condition, &p.output, &p.on_error),
            Self::JsonParser(p) => (&p.condition, &p.output, &p.on_error),
            Self::RegexParser(p) => (&p.condition, &p.output, &p.on_error),
            Self::Move(p) => (&p.condition, &p.output, &p.on_error),
            Self::Add(p) => (&p.condition, &p.output, &p.on_error),
            Self::Remove(p) => (&p.condition, &p.output, &p.on_error),
        }
    }

    /// What kotel runs: operators in order, no `if` expressions, upstream field syntax.
    pub(crate) fn validate(&self, path: &str, next_id: Option<&str>) -> Result<(), ConfigError> {
        let err = |key: &str, msg: String| {
            let p = if key.is_empty() {
                path.to_string()
            } else {
                format!("{path}.{key}")
            };
            Err(ConfigError::new(p, msg))
        };
        let (condition, output, on_error) = self.common();
        if condition.is_some() {
            return Err(ConfigError::unsupported(
                format!("{path}.if"),
                "`if` expressions are not supported by kotel",
            ));
        }
        if let Some(out) = output {
            let out = match out {
                Value::String(s) => Some(s.as_str()),
                Value::Array(a) if a.len() == 1 => a[0].as_str(),
                _ => None,
            };
            if out.is_none() || out != next_id {
                return err(
                    "output",
                    "must name the next operator's id: kotel runs operators in order".into(),
                );
            }
        }
        if let Some(o) = on_error
            && !matches!(o.as_str(), "send" | "send_quiet" | "drop" | "drop_quiet")
        {
            return err(
                "on_error",
                format!("{o:?} is not send, send_quiet, drop or drop_quiet"),
            );
        }
        let fields: Vec<(&str, Option<&str>)> = match self {
            Self::Container(p) => {
                if let Some(f) = p.format.as_deref()
                    && !matches!(f, "" | "docker" | "crio" | "containerd")
                {
                    return err("format", format!("{f:?} is not docker, crio or containerd"));
                }
                if p.parse_to.as_deref().is_some_and(|t| t != "attributes") {
                    return err("parse_to", "the container parser writes attributes".into());
                }
                vec![("parse_from", p.parse_from.as_deref())]
            }
            Self::JsonParser(p) => {
                check_timestamp(path, p.timestamp.as_ref())?;
                check_severity(path, p.severity.as_ref())?;
                vec![
                    ("parse_from", p.parse_from.as_deref()),
                    ("parse_to", p.parse_to.as_deref()),
                ]
            }
            Self::RegexParser(p) => {
                check_regex(format!("{path}.regex"), &p.regex)?;
                check_timestamp(path, p.timestamp.as_ref())?;
                check_severity(path, p.severity.as_ref())?;
                vec![
                    ("parse_from", p.parse_from.as_deref()),
                    ("parse_to", p.parse_to.as_deref()),
                ]
            }
            Self::Move(m) => vec![("from", Some(m.from.as_str())), ("to", Some(m.to.as_str()))],
            Self::Add(a) => {
                if a.value.as_str().is_some_and(|v| v.starts_with("EXPR(")) {
                    return Err(ConfigError::unsupported(
                        format!("{path}.value"),
                        "EXPR() values are not supported by kotel",
                    ));
                }
                vec![("field", Some(a.field.as_str()))]
            }
            Self::Remove(r) => vec![("field", Some(r.field.as_str()))],
        };
        for (key, field) in fields {
            if let Some(f) = field {
                check_field(&format!("{path}.{key}"), f)?;
            }
        }
        Ok(())
    }
}

/// A field is `body`, `attributes` or `resource`, then `.key` or `["dotted.key"]` parts.
fn check_field(path: &str, f: &str) -> Result<(), ConfigError> {
    let root = f.trim_start_matches('$');
    let ok = ["body", "attributes", "resource"].iter().any(|r| {
        root.strip_prefix(r)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
    });
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            path,
            format!("{f:?} must start with body, attributes or resource"),
        ))
    }
}

fn check_timestamp(path: &str, t: Option<&TimestampConfig>) -> Result<(), ConfigError> {
    let Some(t) = t else { return Ok(()) };
    let path = format!("{path}.timestamp");
    if let Some(f) = &t.parse_from {
        check_field(&format!("{path}.parse_from"), f)?;
    }
    if t.location.as_deref().is_some_and(|l| l != "UTC") {
        return Err(ConfigError::new(
            format!("{path}.location"),
            "only UTC is supported by kotel (write the zone in the layout, e.g. %z)",
        ));
    }
    if t.parse_from.is_none() {
        return Err(ConfigError::new(format!("{path}.parse_from"), "required"));
    }
    let layout_type = t.layout_type.as_deref().unwrap_or("strptime");
    let Some(layout) = t.layout.as_deref() else {
        return Err(ConfigError::new(format!("{path}.layout"), "required"));
    };
    match layout_type {
        "strptime" | "gotime" => Ok(()),
        "epoch" if matches!(layout, "s" | "ms" | "us" | "ns" | "s.ms" | "s.us" | "s.ns") => Ok(()),
        "epoch" => Err(ConfigError::new(
            format!("{path}.layout"),
            format!("{layout:?} is not an epoch layout (s, ms, us, ns, s.ms, s.us, s.ns)"),
        )),
        other => Err(ConfigError::new(
            format!("{path}.layout_type"),
            format!("{other:?} is not strptime, gotime or epoch"),
        )),
    }
}

fn check_severity(path: &str, s: Option<&SeverityConfig>) -> Result<(), ConfigError> {
    let Some(s) = s else { return Ok(()) };
    if let Some(p) = s.preset.as_deref()
        && !matches!(p, "default" | "none")
    {
        return Err(ConfigError::unsupported(
            format!("{path}.severity.preset"),
            format!("{p:?} is not supported by kotel (default, none)"),
        ));
    }
    if let Some(f) = &s.parse_from {
        check_field(&format!("{path}.severity.parse_from"), f)?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Result<(), ConfigError> {
        let c: FilelogConfig = serde_yaml_ng::from_str(yaml).expect("parses");
        c.validate("receivers.filelog")
    }

    #[test]
    fn the_helm_logs_collection_preset_is_valid() {
        check(
            r#"
include: [/var/log/pods/*/*/*.log]
exclude: [/var/log/pods/default_example-opentelemetry-collector*_*/opentelemetry-collector/*.log]
start_at: end
retry_on_failure: {enabled: true}
storage: file_storage
include_file_path: true
include_file_name: false
operators:
  - {type: container, id: container-parser, max_log_size: 102400}
"#,
        )
        .unwrap();
    }

    #[test]
    fn common_operator_chains_are_valid() {
        check(
            r#"
include: [/var/log/app/*.log]
operators:
  - type: regex_parser
    id: parse
    output: json
    regex: '^(?P<time>[^ ]+) (?P<msg>.*)$'
    timestamp: {parse_from: attributes.time, layout: '%Y-%m-%dT%H:%M:%S.%LZ'}
    severity: {parse_from: attributes.level}
  - {type: json_parser, id: json, parse_from: attributes.msg, on_error: send_quiet}
  - {type: move, from: attributes.msg, to: body}
  - type: add
    field: resource["service.name"]
    value: shop
  - {type: remove, field: attributes.time}
"#,
        )
        .unwrap();
    }

    #[test]
    fn what_kotel_does_not_run_is_named() {
        for (yaml, path, words) in [
            (
                "operators: [{type: add, field: body, value: x, if: 'body == 1'}]",
                "operators[0].if",
                "`if`",
            ),
            (
                "operators: [{type: container, output: nowhere}]",
                "operators[0].output",
                "next operator",
            ),
            (
                "operators: [{type: container, format: podman}]",
                "operators[0].format",
                "podman",
            ),
            (
                "operators: [{type: container}, {type: container}]",
                "operators[1]",
                "one container",
            ),
            (
                "operators: [{type: move, from: foo.bar, to: body}]",
                "operators[0].from",
                "body, attributes",
            ),
            (
                "operators: [{type: add, field: body, value: 'EXPR(1)'}]",
                "operators[0].value",
                "EXPR",
            ),
            (
                "operators: [{type: json_parser, on_error: explode}]",
                "operators[0].on_error",
                "explode",
            ),
            (
                "operators: [{type: json_parser, timestamp: {parse_from: body.t, layout_type: epoch, layout: m}}]",
                "operators[0].timestamp.layout",
                "epoch",
            ),
            (
                "operators: [{type: json_parser, timestamp: {parse_from: body.t, layout: '%Y', location: Europe/Paris}}]",
                "operators[0].timestamp.location",
                "UTC",
            ),
            ("compression: gzip", "compression", "gzip"),
            (
                "multiline: {line_start_pattern: '^x'}",
                "multiline",
                "not supported",
            ),
        ] {
            let e = check(&format!("include: [/x/*.log]\n{yaml}\n")).unwrap_err();
            assert_eq!(e.path, format!("receivers.filelog.{path}"), "{yaml}: {e}");
            assert!(e.message.contains(words), "{yaml}: {e}");
        }
    }
}
