//! The operator chain a file's lines go through: `container`, `json_parser`, `regex_parser`,
//! `move`, `add` and `remove`, in config order. A `container` parser first in the chain reads
//! the raw line bytes directly (the common, hot case); anywhere else it reads the body.

use std::borrow::Cow;
use std::sync::Arc;

use kotel_config::receivers::filelog as cfg;
use kotel_pipeline::proto::common::v1::{AnyValue, KeyValue, KeyValueList, any_value};
use kotel_pipeline::proto::logs::v1::LogRecord;

use crate::entry::{Entry, Field, FieldError, as_text, from_json, kv, string_value};
use crate::parsers::container::{self, ChunkAt, Format, Line, Recombine, Stream};
use crate::timefmt::Layout;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("operators[{index}] ({ty}): {source}")]
    Field {
        index: usize,
        ty: &'static str,
        source: FieldError,
    },
    #[error("operators[{index}] ({ty}): {reason}")]
    Invalid {
        index: usize,
        ty: &'static str,
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    Send,
    SendQuiet,
    Drop,
    DropQuiet,
}

impl OnError {
    fn parse(s: Option<&str>) -> Result<Self, String> {
        Ok(match s.unwrap_or("send") {
            "send" => Self::Send,
            "send_quiet" => Self::SendQuiet,
            "drop" => Self::Drop,
            "drop_quiet" => Self::DropQuiet,
            other => {
                return Err(format!(
                    "on_error {other:?} is not send, send_quiet, drop or drop_quiet"
                ));
            }
        })
    }

    fn sends(self) -> bool {
        matches!(self, Self::Send | Self::SendQuiet)
    }
}

/// Severity from a field: the standard level names, plus the operator's own `mapping`.
#[derive(Debug)]
struct Severity {
    from: Field,
    mapping: Vec<(String, i32)>,
}

const SEVERITY_NAMES: &[(&str, i32)] = &[
    ("trace", 1),
    ("trace2", 2),
    ("trace3", 3),
    ("trace4", 4),
    ("debug", 5),
    ("debug2", 6),
    ("debug3", 7),
    ("debug4", 8),
    ("info", 9),
    ("info2", 10),
    ("info3", 11),
    ("info4", 12),
    ("warn", 13),
    ("warn2", 14),
    ("warn3", 15),
    ("warn4", 16),
    ("error", 17),
    ("error2", 18),
    ("error3", 19),
    ("error4", 20),
    ("fatal", 21),
    ("fatal2", 22),
    ("fatal3", 23),
    ("fatal4", 24),
];

impl Severity {
    fn build(c: &cfg::SeverityConfig) -> Result<Self, String> {
        if c.preset
            .as_deref()
            .is_some_and(|p| p != "default" && p != "none")
        {
            return Err(format!(
                "severity preset {:?} is not supported (default, none)",
                c.preset
            ));
        }
        let mut mapping: Vec<(String, i32)> = Vec::new();
        if c.preset.as_deref() != Some("none") {
            mapping.extend(SEVERITY_NAMES.iter().map(|(n, v)| (n.to_string(), *v)));
            for (alias, v) in [
                ("warning", 13),
                ("err", 17),
                ("critical", 21),
                ("crit", 21),
                ("panic", 21),
                ("dpanic", 21),
                ("notice", 10),
                ("emerg", 21),
                ("alert", 21),
                ("emergency", 21),
            ] {
                mapping.push((alias.to_string(), v));
            }
        }
        for (level, values) in c.mapping.iter().flatten() {
            let number = SEVERITY_NAMES
                .iter()
                .find(|(n, _)| n == level)
                .map(|(_, v)| *v)
                .ok_or_else(|| format!("severity mapping key {level:?} is not a severity name"))?;
            let items: Vec<&serde_json::Value> = match values {
                serde_json::Value::Array(a) => a.iter().collect(),
                v => vec![v],
            };
            for item in items {
                let text = match item {
                    serde_json::Value::String(s) => s.to_lowercase(),
                    serde_json::Value::Number(n) => n.to_string(),
                    other => {
                        return Err(format!(
                            "severity mapping value {other} is not supported (strings and numbers)"
                        ));
                    }
                };
                mapping.insert(0, (text, number));
            }
        }
        let from = Field::parse(
            c.parse_from
                .as_deref()
                .unwrap_or("attributes.severity_field"),
        )
        .map_err(|e| e.to_string())?;
        Ok(Self { from, mapping })
    }

    fn apply(&self, e: &mut Entry) {
        let Some(text) = e.get(&self.from).and_then(as_text).map(Cow::into_owned) else {
            return;
        };
        let lower = text.to_lowercase();
        if let Some((_, n)) = self.mapping.iter().find(|(k, _)| *k == lower) {
            e.record.severity_number = *n;
        }
        e.record.severity_text = text;
    }
}

/// A parser's `timestamp` block: a field read with a layout into the record's time.
#[derive(Debug)]
struct Timestamp {
    from: Field,
    layout: Layout,
}

impl Timestamp {
    fn build(c: &cfg::TimestampConfig) -> Result<Self, String> {
        if c.location.as_deref().is_some_and(|l| l != "UTC") {
            return Err("timestamp location other than UTC is not supported by kotel".into());
        }
        let from = Field::parse(
            c.parse_from
                .as_deref()
                .ok_or("timestamp.parse_from is required")?,
        )
        .map_err(|e| e.to_string())?;
        let layout = Layout::build(
            c.layout_type.as_deref(),
            c.layout.as_deref().ok_or("timestamp.layout is required")?,
        )
        .map_err(|e| e.to_string())?;
        Ok(Self { from, layout })
    }

    fn apply(&self, e: &mut Entry) -> Result<(), String> {
        let v = e.get(&self.from).ok_or("timestamp: field not found")?;
        let t = match &v.value {
            Some(any_value::Value::IntValue(i)) => self.layout.parse_number(*i as f64),
            Some(any_value::Value::DoubleValue(d)) => self.layout.parse_number(*d),
            _ => as_text(v).and_then(|t| self.layout.parse(&t)),
        };
        e.record.time_unix_nano = t.ok_or("timestamp: value does not match the layout")?;
        Ok(())
    }
}

#[derive(Debug)]
struct ContainerOp {
    format: Option<Format>,
    cap: usize,
    on_error: OnError,
    from: Field,
    severity: Option<Severity>,
}

#[derive(Debug)]
enum Op {
    Container(ContainerOp),
    Json {
        from: Field,
        to: Field,
        on_error: OnError,
        timestamp: Option<Timestamp>,
        severity: Option<Severity>,
    },
    Regex {
        regex: regex::Regex,
        from: Field,
        to: Field,
        on_error: OnError,
        timestamp: Option<Timestamp>,
        severity: Option<Severity>,
    },
    Move {
        from: Field,
        to: Field,
        on_error: OnError,
    },
    Add {
        field: Field,
        value: AnyValue,
    },
    Remove {
        field: Field,
        on_error: OnError,
    },
}

/// Per-file state the chain keeps between lines.
#[derive(Debug, Default)]
pub struct FileCtx {
    /// `log.file.name`, `log.file.path` and the receiver's `attributes`, on every record.
    pub base_attrs: Vec<KeyValue>,
    /// The file's resource: the receiver's `resource` plus container path metadata.
    pub resource: Arc<Vec<KeyValue>>,
    pub recombine: Recombine,
    /// Observed time stamped on records made now.
    pub observed: u64,
}

/// Partial lines a file left unfinished when it was rotated away: the runtime reopened its log
/// between the chunks of one line, so the final chunks are in the file that took its path.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unfinished {
    /// Per stream: the chunks so far, with the first one's time and whether they are CRI's.
    slots: [Option<(Vec<u8>, u64, bool)>; 2],
}

impl FileCtx {
    /// Takes the partial lines still waiting for their final chunk (`None`: there are none).
    pub fn take_unfinished(&mut self) -> Option<Unfinished> {
        let mut u = Unfinished::default();
        for (stream, p) in self.recombine.take_all() {
            u.slots[stream.index()] = Some((p.message, p.time_unix_nano, p.tagged));
        }
        u.slots.iter().any(Option::is_some).then_some(u)
    }

    /// Continues `u`'s lines with this file's chunks, read from its start.
    pub fn inherit(&mut self, u: &Unfinished) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            if let Some((message, time_unix_nano, tagged)) = &u.slots[stream.index()] {
                let at = ChunkAt {
                    offset: 0,
                    time_unix_nano: *time_unix_nano,
                    tagged: *tagged,
                };
                self.recombine.seed(stream, message.clone(), at);
            }
        }
    }
}

/// Counters the chain bumps; the receiver adds them to its metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChainStats {
    pub parse_errors: u64,
    pub dropped: u64,
}

#[derive(Debug)]
pub struct Chain {
    ops: Vec<Op>,
    /// ops[0] is a container parser reading the body: parse raw bytes before making a body.
    container_first: bool,
    container_meta: bool,
    nop: bool,
    preserve_leading: bool,
    preserve_trailing: bool,
    static_attrs: Vec<KeyValue>,
    static_resource: Vec<KeyValue>,
    include_file_name: bool,
    include_file_path: bool,
    include_file_name_resolved: bool,
    include_file_path_resolved: bool,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0b' | b'\x0c')
}

impl Chain {
    pub fn build(c: &cfg::FilelogConfig) -> Result<Self, BuildError> {
        let mut ops = Vec::with_capacity(c.operators.len());
        let mut container_meta = false;
        let mut containers = 0;
        for (index, op) in c.operators.iter().enumerate() {
            let ty = op_type(op);
            let field = |s: Option<&str>, default: Field| match s {
                None => Ok(default),
                Some(s) => {
                    Field::parse(s).map_err(|source| BuildError::Field { index, ty, source })
                }
            };
            let invalid = |reason: String| BuildError::Invalid { index, ty, reason };
            let (condition, output) = op_common(op);
            if condition.is_some() {
                return Err(invalid(
                    "`if` expressions are not supported by kotel".into(),
                ));
            }
            if let Some(out) = output {
                let next_id = c.operators.get(index + 1).and_then(|n| op_id(n));
                if Some(out.as_str()) != next_id {
                    return Err(invalid(format!(
                        "output {out} must name the next operator's id: kotel runs operators in order"
                    )));
                }
            }
            let severity = |s: &Option<cfg::SeverityConfig>| {
                s.as_ref().map(Severity::build).transpose().map_err(invalid)
            };
            let timestamp = |t: &Option<cfg::TimestampConfig>| {
                t.as_ref()
                    .map(Timestamp::build)
                    .transpose()
                    .map_err(invalid)
            };
            ops.push(match op {
                cfg::Operator::Container(p) => {
                    containers += 1;
                    if containers > 1 {
                        return Err(invalid("only one container parser per receiver".into()));
                    }
                    let format = match p.format.as_deref() {
                        None | Some("") => None,
                        Some(f) => Some(Format::parse(f).ok_or_else(|| {
                            invalid(format!("format {f:?} is not docker, crio or containerd"))
                        })?),
                    };
                    if p.parse_to.as_deref().is_some_and(|t| t != "attributes") {
                        return Err(invalid("parse_to must be attributes".into()));
                    }
                    container_meta |= p.add_metadata_from_filepath;
                    let cap = if p.max_log_size == 0 {
                        c.max_log_size
                    } else {
                        p.max_log_size
                    };
                    Op::Container(ContainerOp {
                        format,
                        cap: usize::try_from(cap).unwrap_or(usize::MAX),
                        on_error: OnError::parse(p.on_error.as_deref()).map_err(invalid)?,
                        from: field(p.parse_from.as_deref(), Field::body())?,
                        severity: None,
                    })
                }
                cfg::Operator::JsonParser(p) => Op::Json {
                    from: field(p.parse_from.as_deref(), Field::body())?,
                    to: field(p.parse_to.as_deref(), Field::attributes())?,
                    on_error: OnError::parse(p.on_error.as_deref()).map_err(invalid)?,
                    timestamp: timestamp(&p.timestamp)?,
                    severity: severity(&p.severity)?,
                },
                cfg::Operator::RegexParser(p) => {
                    let regex =
                        regex::Regex::new(&p.regex).map_err(|e| invalid(format!("regex: {e}")))?;
                    Op::Regex {
                        regex,
                        from: field(p.parse_from.as_deref(), Field::body())?,
                        to: field(p.parse_to.as_deref(), Field::attributes())?,
                        on_error: OnError::parse(p.on_error.as_deref()).map_err(invalid)?,
                        timestamp: timestamp(&p.timestamp)?,
                        severity: severity(&p.severity)?,
                    }
                }
                cfg::Operator::Move(m) => Op::Move {
                    from: field(Some(&m.from), Field::body())?,
                    to: field(Some(&m.to), Field::body())?,
                    on_error: OnError::parse(m.on_error.as_deref()).map_err(invalid)?,
                },
                cfg::Operator::Add(a) => {
                    if a.value.as_str().is_some_and(|s| s.starts_with("EXPR(")) {
                        return Err(invalid("EXPR() values are not supported by kotel".into()));
                    }
                    Op::Add {
                        field: field(Some(&a.field), Field::body())?,
                        value: from_json(&a.value),
                    }
                }
                cfg::Operator::Remove(r) => Op::Remove {
                    field: field(Some(&r.field), Field::body())?,
                    on_error: OnError::parse(r.on_error.as_deref()).map_err(invalid)?,
                },
            });
        }
        let container_first =
            matches!(ops.first(), Some(Op::Container(c)) if c.from == Field::body());
        Ok(Self {
            ops,
            container_first,
            container_meta,
            nop: c.encoding == "nop",
            preserve_leading: c.preserve_leading_whitespaces,
            preserve_trailing: c.preserve_trailing_whitespaces,
            static_attrs: c
                .attributes
                .iter()
                .map(|(k, v)| kv(k.clone(), from_json(v)))
                .collect(),
            static_resource: c
                .resource
                .iter()
                .map(|(k, v)| kv(k.clone(), from_json(v)))
                .collect(),
            include_file_name: c.include_file_name,
            include_file_path: c.include_file_path,
            include_file_name_resolved: c.include_file_name_resolved,
            include_file_path_resolved: c.include_file_path_resolved,
        })
    }

    /// State for a newly found file.
    pub fn file_ctx(&self, path: &std::path::Path) -> FileCtx {
        let path_str = path.to_string_lossy();
        let mut base_attrs = Vec::with_capacity(2 + self.static_attrs.len());
        if self.include_file_name {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            base_attrs.push(kv("log.file.name", string_value(name)));
        }
        if self.include_file_path {
            base_attrs.push(kv("log.file.path", string_value(path_str.as_ref())));
        }
        if self.include_file_name_resolved || self.include_file_path_resolved {
            // Symlinks (as under /var/log/containers) resolved once, when the file is found.
            let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            if self.include_file_name_resolved {
                let name = resolved
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default();
                base_attrs.push(kv("log.file.name_resolved", string_value(name)));
            }
            if self.include_file_path_resolved {
                let p = resolved.to_string_lossy();
                base_attrs.push(kv("log.file.path_resolved", string_value(p.as_ref())));
            }
        }
        base_attrs.extend(self.static_attrs.iter().cloned());
        let mut resource = self.static_resource.clone();
        if self.container_meta {
            resource.extend(container::metadata_from_path(&path_str));
        }
        FileCtx {
            base_attrs,
            resource: Arc::new(resource),
            ..Default::default()
        }
    }

    fn decode(&self, b: Cow<'_, [u8]>) -> AnyValue {
        if self.nop {
            return AnyValue {
                value: Some(any_value::Value::BytesValue(b.into_owned())),
            };
        }
        let s = match b {
            Cow::Borrowed(b) => match std::str::from_utf8(b) {
                Ok(s) => s.to_owned(),
                Err(_) => String::from_utf8_lossy(b).into_owned(),
            },
            Cow::Owned(v) => match String::from_utf8(v) {
                Ok(s) => s,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            },
        };
        string_value(s)
    }

    fn raw_entry(&self, token: &[u8], ctx: &FileCtx) -> Entry {
        Entry {
            record: LogRecord {
                observed_time_unix_nano: ctx.observed,
                body: Some(self.decode(Cow::Borrowed(token))),
                attributes: ctx.base_attrs.clone(),
                ..Default::default()
            },
            resource: ctx.resource.clone(),
        }
    }

    /// Runs one line (a token without its newline) starting at file `offset` through the
    /// chain, appending finished records to `out`.
    pub fn process(
        &self,
        token: &[u8],
        offset: u64,
        ctx: &mut FileCtx,
        out: &mut Vec<Entry>,
        stats: &mut ChainStats,
    ) {
        let mut t = token;
        // Container lines are taken as written: a partial chunk may end in a meaningful space.
        let trim = !self.container_first;
        if trim && !self.preserve_leading {
            while let [first, rest @ ..] = t {
                if !is_ws(*first) {
                    break;
                }
                t = rest;
            }
        }
        if trim && !self.preserve_trailing {
            while let [rest @ .., last] = t {
                if !is_ws(*last) {
                    break;
                }
                t = rest;
            }
        }
        if t.is_empty() {
            return;
        }
        if self.container_first {
            let Some(Op::Container(op)) = self.ops.first() else {
                unreachable!("container_first means ops[0] is a container parser")
            };
            match container::parse_line(op.format, t) {
                Ok(line) => self.container_line(op, line, None, offset, 1, ctx, out, stats),
                Err(e) => {
                    stats.parse_errors += 1;
                    if op.on_error == OnError::Send {
                        tracing::debug!(error = %e, "container parser");
                    }
                    if op.on_error.sends() {
                        let e = self.raw_entry(t, ctx);
                        self.run(1, e, offset, ctx, out, stats);
                    } else {
                        stats.dropped += 1;
                    }
                }
            }
            return;
        }
        let e = self.raw_entry(t, ctx);
        self.run(0, e, offset, ctx, out, stats);
    }

    #[allow(clippy::too_many_arguments)]
    fn container_line(
        &self,
        op: &ContainerOp,
        line: Line<'_>,
        base: Option<Entry>,
        offset: u64,
        next: usize,
        ctx: &mut FileCtx,
        out: &mut Vec<Entry>,
        stats: &mut ChainStats,
    ) {
        let stream = line.stream;
        // A line joined from chunks is upstream's recombined record: the first chunk's time
        // and tag (`P` for CRI). Chunks are joined per stream and keep their spaces (upstream
        // joins across streams and trims each chunk, which garbles interleaved or split words).
        let line = if line.is_partial() {
            let at = ChunkAt {
                offset,
                time_unix_nano: line.time_unix_nano,
                tagged: line.logtag.is_some(),
            };
            match ctx
                .recombine
                .push_partial(stream, &line.message, at, op.cap)
            {
                Some(full) => Line {
                    time_unix_nano: full.time_unix_nano,
                    message: Cow::Owned(full.message),
                    ..line
                },
                None => return,
            }
        } else {
            // A final CRI chunk loses its trailing whitespace, as upstream's tokenizer trims
            // every line (Docker's `log` keeps its newline).
            let last = if line.logtag.is_some() && !self.preserve_trailing {
                trim_end(line.message)
            } else {
                line.message
            };
            match ctx.recombine.finish(stream, last) {
                (message, None) => Line { message, ..line },
                (message, Some(first)) => Line {
                    time_unix_nano: first,
                    logtag: line.logtag.map(|_| "P"),
                    message,
                    ..line
                },
            }
        };
        self.container_record(op, line, base, offset, next, ctx, out, stats);
    }

    /// Makes the record of a whole container line (chunks already joined) and runs the rest
    /// of the chain on it.
    #[allow(clippy::too_many_arguments)]
    fn container_record(
        &self,
        op: &ContainerOp,
        line: Line<'_>,
        base: Option<Entry>,
        offset: u64,
        next: usize,
        ctx: &mut FileCtx,
        out: &mut Vec<Entry>,
        stats: &mut ChainStats,
    ) {
        let (stream, message) = (line.stream, line.message);
        let mut e = match base {
            Some(e) => e,
            None => Entry {
                record: LogRecord {
                    observed_time_unix_nano: ctx.observed,
                    attributes: {
                        let mut a = Vec::with_capacity(ctx.base_attrs.len() + 2);
                        a.extend(ctx.base_attrs.iter().cloned());
                        a
                    },
                    ..Default::default()
                },
                resource: ctx.resource.clone(),
            },
        };
        e.record.time_unix_nano = line.time_unix_nano;
        e.record.body = Some(self.decode(message));
        e.record
            .attributes
            .push(kv("log.iostream", string_value(stream.as_str())));
        if let Some(tag) = line.logtag {
            e.record.attributes.push(kv("logtag", string_value(tag)));
        }
        if let Some(s) = &op.severity {
            s.apply(&mut e);
        }
        self.run(next, e, offset, ctx, out, stats);
    }

    fn run(
        &self,
        start: usize,
        mut e: Entry,
        offset: u64,
        ctx: &mut FileCtx,
        out: &mut Vec<Entry>,
        stats: &mut ChainStats,
    ) {
        for (i, op) in self.ops.iter().enumerate().skip(start) {
            let res: Result<(), (OnError, String)> = match op {
                Op::Container(c) => {
                    let text = e.get(&c.from).and_then(as_text).map(Cow::into_owned);
                    let parsed = text
                        .as_deref()
                        .ok_or_else(|| "no text to parse".to_string())
                        .and_then(|t| {
                            container::parse_line(c.format, t.as_bytes())
                                .map(|l| Line {
                                    time_unix_nano: l.time_unix_nano,
                                    stream: l.stream,
                                    logtag: None,
                                    message: Cow::Owned(l.message.into_owned()),
                                    partial: l.partial,
                                })
                                .map_err(|e| e.to_string())
                                .map(|l| (l, crio_tag(t)))
                        });
                    match parsed {
                        Ok((mut line, tag)) => {
                            line.logtag = tag.as_deref();
                            self.container_line(c, line, Some(e), offset, i + 1, ctx, out, stats);
                            return;
                        }
                        Err(m) => Err((c.on_error, m)),
                    }
                }
                Op::Json {
                    from,
                    to,
                    on_error,
                    timestamp,
                    severity,
                } => parse_json(&mut e, from, to)
                    .and_then(|()| after_parse(&mut e, timestamp, severity))
                    .map_err(|m| (*on_error, m)),
                Op::Regex {
                    regex,
                    from,
                    to,
                    on_error,
                    timestamp,
                    severity,
                } => parse_regex(&mut e, regex, from, to)
                    .and_then(|()| after_parse(&mut e, timestamp, severity))
                    .map_err(|m| (*on_error, m)),
                Op::Move { from, to, on_error } => match e.take(from) {
                    Some(v) => {
                        e.set(to, v);
                        Ok(())
                    }
                    None => Err((*on_error, "move: field not found".to_string())),
                },
                Op::Add { field, value } => {
                    e.set(field, value.clone());
                    Ok(())
                }
                Op::Remove { field, on_error } => match e.take(field) {
                    Some(_) => Ok(()),
                    None => Err((*on_error, "remove: field not found".to_string())),
                },
            };
            if let Err((on_error, msg)) = res {
                stats.parse_errors += 1;
                if on_error == OnError::Send || on_error == OnError::Drop {
                    tracing::debug!(operator = i, error = %msg, "operator failed");
                }
                if !on_error.sends() {
                    stats.dropped += 1;
                    return;
                }
            }
        }
        out.push(e);
    }

    /// Earliest file offset a pending recombination still needs.
    pub fn pending_start(&self, ctx: &FileCtx) -> Option<u64> {
        ctx.recombine.pending_start()
    }

    /// Emits pending partial lines as they are (the final chunk never came in time).
    pub fn flush_pending(&self, ctx: &mut FileCtx, out: &mut Vec<Entry>, stats: &mut ChainStats) {
        let pending: Vec<_> = ctx.recombine.take_all().collect();
        for (stream, p) in pending {
            let Some(Op::Container(op)) = self.ops.iter().find(|o| matches!(o, Op::Container(_)))
            else {
                return;
            };
            let line = Line {
                time_unix_nano: p.time_unix_nano,
                stream,
                logtag: p.tagged.then_some("P"),
                message: Cow::Owned(p.message),
                partial: false,
            };
            let next = self
                .ops
                .iter()
                .position(|o| matches!(o, Op::Container(_)))
                .map_or(0, |i| i + 1);
            // As it is: through `container_line` it would be taken as a partial chunk again.
            self.container_record(op, line, None, p.start_offset, next, ctx, out, stats);
        }
    }
}

/// `m` without trailing whitespace.
fn trim_end(m: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    match m {
        Cow::Borrowed(b) => Cow::Borrowed(b.trim_ascii_end()),
        Cow::Owned(mut v) => {
            let keep = v.trim_ascii_end().len();
            v.truncate(keep);
            Cow::Owned(v)
        }
    }
}

/// The CRI log tag of a line parsed on the slow path (the parser borrows it from the text).
fn crio_tag(t: &str) -> Option<String> {
    if t.starts_with('{') {
        return None;
    }
    t.split(' ').nth(2).map(str::to_string)
}

/// A parser's embedded timestamp and severity steps.
fn after_parse(
    e: &mut Entry,
    timestamp: &Option<Timestamp>,
    severity: &Option<Severity>,
) -> Result<(), String> {
    if let Some(s) = severity {
        s.apply(e);
    }
    match timestamp {
        Some(t) => t.apply(e),
        None => Ok(()),
    }
}

fn set_parsed(e: &mut Entry, to: &Field, values: Vec<KeyValue>) {
    let v = AnyValue {
        value: Some(any_value::Value::KvlistValue(KeyValueList { values })),
    };
    e.set(to, v);
}

fn parse_json(e: &mut Entry, from: &Field, to: &Field) -> Result<(), String> {
    let text = e
        .get(from)
        .and_then(as_text)
        .ok_or_else(|| "json_parser: field not found or not text".to_string())?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|err| format!("json_parser: {err}"))?;
    let serde_json::Value::Object(map) = v else {
        return Err("json_parser: not a JSON object".into());
    };
    let values = map
        .iter()
        .map(|(k, v)| kv(k.clone(), from_json(v)))
        .collect();
    set_parsed(e, to, values);
    Ok(())
}

fn parse_regex(e: &mut Entry, re: &regex::Regex, from: &Field, to: &Field) -> Result<(), String> {
    let text = e
        .get(from)
        .and_then(as_text)
        .ok_or_else(|| "regex_parser: field not found or not text".to_string())?;
    let caps = re
        .captures(&text)
        .ok_or_else(|| "regex_parser: regex did not match".to_string())?;
    let values = re
        .capture_names()
        .flatten()
        .filter_map(|name| caps.name(name).map(|m| kv(name, string_value(m.as_str()))))
        .collect();
    drop(caps);
    set_parsed(e, to, values);
    Ok(())
}

fn op_type(op: &cfg::Operator) -> &'static str {
    match op {
        cfg::Operator::Container(_) => "container",
        cfg::Operator::JsonParser(_) => "json_parser",
        cfg::Operator::RegexParser(_) => "regex_parser",
        cfg::Operator::Move(_) => "move",
        cfg::Operator::Add(_) => "add",
        cfg::Operator::Remove(_) => "remove",
    }
}

fn op_id(op: &cfg::Operator) -> Option<&str> {
    match op {
        cfg::Operator::Container(p) => p.id.as_deref(),
        cfg::Operator::JsonParser(p) => p.id.as_deref(),
        cfg::Operator::RegexParser(p) => p.id.as_deref(),
        cfg::Operator::Move(p) => p.id.as_deref(),
        cfg::Operator::Add(p) => p.id.as_deref(),
        cfg::Operator::Remove(p) => p.id.as_deref(),
    }
    .or(Some(op_type(op)))
}

fn op_common(op: &cfg::Operator) -> (Option<&String>, Option<String>) {
    let (cond, out) = match op {
        cfg::Operator::Container(p) => (&p.condition, &p.output),
        cfg::Operator::JsonParser(p) => (&p.condition, &p.output),
        cfg::Operator::RegexParser(p) => (&p.condition, &p.output),
        cfg::Operator::Move(p) => (&p.condition, &p.output),
        cfg::Operator::Add(p) => (&p.condition, &p.output),
        cfg::Operator::Remove(p) => (&p.condition, &p.output),
    };
    let out = out.as_ref().map(|v| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) if a.len() == 1 => {
            a[0].as_str().map(str::to_string).unwrap_or_default()
        }
        other => other.to_string(),
    });
    (cond.as_ref(), out)
}

#[cfg(test)]
mod tests;
