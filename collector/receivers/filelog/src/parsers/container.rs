//! `container` parser: containerd / CRI-O lines (`<RFC3339Nano> <stdout|stderr> <P|F> <msg>`)
//! and Docker json-file lines, with the format detected per line (so per file), partial CRI
//! lines recombined per stream up to a cap, and k8s metadata taken from the kubelet file path.

use std::borrow::Cow;
use std::sync::LazyLock;

use kotel_pipeline::proto::common::v1::KeyValue;
use regex::Regex;
use serde::Deserialize;

use crate::entry::{kv, string_value};
use crate::timefmt::parse_rfc3339_nanos;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Docker,
    Crio,
    Containerd,
}

impl Format {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "docker" => Some(Self::Docker),
            "crio" => Some(Self::Crio),
            "containerd" => Some(Self::Containerd),
            _ => None,
        }
    }

    /// Docker lines are JSON; CRI-O writes a numeric UTC offset, containerd a `Z`.
    pub fn detect(line: &[u8]) -> Self {
        if line.first() == Some(&b'{') {
            return Self::Docker;
        }
        let time = line.split(|&b| b == b' ').next().unwrap_or_default();
        if time.last() == Some(&b'Z') {
            Self::Containerd
        } else {
            Self::Crio
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    fn parse(b: &[u8]) -> Option<Self> {
        match b {
            b"stdout" => Some(Self::Stdout),
            b"stderr" => Some(Self::Stderr),
            _ => None,
        }
    }
}

/// One parsed container log line.
#[derive(Debug, PartialEq)]
pub struct Line<'a> {
    pub time_unix_nano: u64,
    pub stream: Stream,
    /// CRI `logtag` (`F`, `P`, possibly with more `:`-separated tags); `None` for Docker.
    pub logtag: Option<&'a str>,
    pub message: Cow<'a, [u8]>,
    /// More of the same line follows: a CRI `P` chunk, or a Docker entry without its newline
    /// (Docker splits lines over 16 KiB the same way).
    pub partial: bool,
}

impl Line<'_> {
    pub fn is_partial(&self) -> bool {
        self.partial
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("not a {0:?} container log line: {1}")]
    Malformed(Format, &'static str),
}

#[derive(Deserialize)]
struct DockerLine<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
}

/// Parses one line in `format` (detected when `None`).
pub fn parse_line(format: Option<Format>, line: &[u8]) -> Result<Line<'_>, LineError> {
    let format = format.unwrap_or_else(|| Format::detect(line));
    match format {
        Format::Docker => parse_docker(line),
        f => parse_cri(f, line),
    }
}

fn parse_cri(f: Format, line: &[u8]) -> Result<Line<'_>, LineError> {
    let bad = |why| LineError::Malformed(f, why);
    let mut parts = line.splitn(4, |&b| b == b' ');
    let time = parts.next().ok_or(bad("empty"))?;
    let stream = parts.next().ok_or(bad("no stream"))?;
    let tag = parts.next().ok_or(bad("no log tag"))?;
    let message = parts.next().unwrap_or_default();
    let time_unix_nano = parse_rfc3339_nanos(time).ok_or(bad("bad timestamp"))?;
    let stream = Stream::parse(stream).ok_or(bad("stream is not stdout or stderr"))?;
    let logtag = std::str::from_utf8(tag).map_err(|_| bad("bad log tag"))?;
    if !(logtag.starts_with('P') || logtag.starts_with('F')) {
        return Err(bad("log tag is not P or F"));
    }
    Ok(Line {
        time_unix_nano,
        stream,
        logtag: Some(logtag),
        message: Cow::Borrowed(message),
        partial: logtag.starts_with('P'),
    })
}

fn parse_docker(line: &[u8]) -> Result<Line<'_>, LineError> {
    let bad = |why| LineError::Malformed(Format::Docker, why);
    let d: DockerLine<'_> = serde_json::from_slice(line).map_err(|_| bad("invalid JSON"))?;
    let time_unix_nano = parse_rfc3339_nanos(d.time.as_bytes()).ok_or(bad("bad time"))?;
    let stream = Stream::parse(d.stream.as_bytes()).ok_or(bad("bad stream"))?;
    // As upstream, the message keeps the newline Docker writes; one without it is a chunk of a
    // longer line.
    let partial = !d.log.ends_with('\n');
    let message = match d.log {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    };
    Ok(Line {
        time_unix_nano,
        stream,
        logtag: None,
        message,
        partial,
    })
}

static POD_PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^.*[/\\](?P<namespace>[^_]+)_(?P<pod_name>[^_]+)_(?P<uid>[a-f0-9\-]+)[/\\](?P<container_name>[^\._]+)[/\\](?P<restart_count>\d+)\.log$",
    )
    .expect("valid pod path regex")
});

/// k8s resource attributes from `/var/log/pods/<ns>_<pod>_<uid>/<container>/<restart>.log`;
/// empty when the path has another shape.
pub fn metadata_from_path(path: &str) -> Vec<KeyValue> {
    let Some(c) = POD_PATH.captures(path) else {
        return Vec::new();
    };
    [
        ("k8s.namespace.name", "namespace"),
        ("k8s.pod.name", "pod_name"),
        ("k8s.pod.uid", "uid"),
        ("k8s.container.name", "container_name"),
        ("k8s.container.restart_count", "restart_count"),
    ]
    .into_iter()
    .map(|(key, group)| kv(key, string_value(&c[group])))
    .collect()
}

/// Partial CRI chunks waiting for their final (`F`) chunk, one slot per stream.
#[derive(Debug, Default)]
pub struct Recombine {
    slots: [Option<Pending>; 2],
}

#[derive(Debug)]
pub struct Pending {
    pub message: Vec<u8>,
    /// File offset of the first chunk's line: nothing before it is safe to checkpoint.
    pub start_offset: u64,
    /// The first chunk's time: the joined record's (as upstream's recombine keeps the first
    /// entry).
    pub time_unix_nano: u64,
    /// CRI chunks carry a log tag (`P`); Docker's none.
    pub tagged: bool,
}

/// Where a partial chunk was read: its line's file offset, its time, whether it is CRI.
#[derive(Debug, Clone, Copy)]
pub struct ChunkAt {
    pub offset: u64,
    pub time_unix_nano: u64,
    pub tagged: bool,
}

impl Recombine {
    /// Adds a partial chunk; returns the combined line when it reached `cap` bytes.
    pub fn push_partial(
        &mut self,
        stream: Stream,
        chunk: &[u8],
        at: ChunkAt,
        cap: usize,
    ) -> Option<Pending> {
        let slot = &mut self.slots[stream.index()];
        let p = slot.get_or_insert_with(|| Pending {
            message: Vec::new(),
            start_offset: at.offset,
            time_unix_nano: at.time_unix_nano,
            tagged: at.tagged,
        });
        p.message.extend_from_slice(chunk);
        if cap > 0 && p.message.len() >= cap {
            return slot.take();
        }
        None
    }

    /// Completes a line with its final chunk: the whole message, and the first chunk's time
    /// when there were earlier chunks.
    pub fn finish<'a>(
        &mut self,
        stream: Stream,
        last: Cow<'a, [u8]>,
    ) -> (Cow<'a, [u8]>, Option<u64>) {
        match self.slots[stream.index()].take() {
            None => (last, None),
            Some(mut p) => {
                p.message.extend_from_slice(&last);
                (Cow::Owned(p.message), Some(p.time_unix_nano))
            }
        }
    }

    /// Earliest file offset still needed by a pending line.
    pub fn pending_start(&self) -> Option<u64> {
        self.slots.iter().flatten().map(|p| p.start_offset).min()
    }

    pub fn take_all(&mut self) -> impl Iterator<Item = (Stream, Pending)> + '_ {
        [Stream::Stdout, Stream::Stderr]
            .into_iter()
            .filter_map(|s| self.slots[s.index()].take().map(|p| (s, p)))
    }

    /// Starts `stream`'s pending line with `message` (chunks an earlier file left unfinished),
    /// needing this file from `start_offset` on.
    pub fn seed(&mut self, stream: Stream, message: Vec<u8>, at: ChunkAt) {
        self.slots[stream.index()] = Some(Pending {
            message,
            start_offset: at.offset,
            time_unix_nano: at.time_unix_nano,
            tagged: at.tagged,
        });
    }

    pub fn clear(&mut self) {
        self.slots = Default::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_line() {
        let l = parse_line(None, b"2023-06-22T10:27:25.813799277Z stdout F hello world").unwrap();
        assert_eq!(l.time_unix_nano, 1_687_429_645_813_799_277);
        assert_eq!(l.stream, Stream::Stdout);
        assert_eq!(l.logtag, Some("F"));
        assert_eq!(&*l.message, b"hello world");
        assert!(!l.is_partial());
    }

    #[test]
    fn crio_line_with_offset_and_empty_message() {
        assert_eq!(
            Format::detect(b"2024-04-13T07:59:37.505201169-05:00 stderr P x"),
            Format::Crio
        );
        let l = parse_line(None, b"2024-04-13T07:59:37.505201169-05:00 stderr P ").unwrap();
        assert!(l.is_partial());
        assert_eq!(&*l.message, b"");
        let l = parse_line(None, b"2024-04-13T07:59:37.505201169-05:00 stderr F").unwrap();
        assert_eq!(&*l.message, b"");
    }

    #[test]
    fn docker_line() {
        let l = parse_line(
            None,
            br#"{"log":"INFO: \"quoted\"\n","stream":"stderr","time":"2024-03-30T08:31:20.545192187Z"}"#,
        )
        .unwrap();
        assert_eq!(
            &*l.message, b"INFO: \"quoted\"\n",
            "the newline is kept, as upstream"
        );
        assert_eq!(l.stream, Stream::Stderr);
        assert_eq!(l.logtag, None);
        assert!(!l.is_partial());
        let chunk = parse_line(
            None,
            br#"{"log":"first 16 KiB","stream":"stdout","time":"2024-03-30T08:31:20Z"}"#,
        )
        .unwrap();
        assert!(chunk.is_partial(), "no newline: more of the line follows");
    }

    #[test]
    fn malformed_lines() {
        for line in [
            &b"garbage"[..],
            b"2023-06-22T10:27:25Z stdout",
            b"2023-06-22T10:27:25Z stdin F x",
            b"2023-06-22T10:27:25Z stdout X x",
            b"notatime stdout F x",
            b"{\"log\":1}",
            b"{broken",
        ] {
            assert!(
                parse_line(None, line).is_err(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        assert!(parse_line(Some(Format::Docker), b"2023-06-22T10:27:25Z stdout F x").is_err());
    }

    #[test]
    fn path_metadata() {
        let m = metadata_from_path(
            "/var/log/pods/kube-system_coredns-5d78c9869d-abcde_0f6a8b2c-1111-2222-3333-444455556666/coredns/3.log",
        );
        let got: Vec<_> = m
            .iter()
            .map(|kv| {
                (
                    kv.key.as_str(),
                    crate::entry::as_text(kv.value.as_ref().unwrap())
                        .unwrap()
                        .into_owned(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("k8s.namespace.name", "kube-system".to_string()),
                ("k8s.pod.name", "coredns-5d78c9869d-abcde".to_string()),
                (
                    "k8s.pod.uid",
                    "0f6a8b2c-1111-2222-3333-444455556666".to_string()
                ),
                ("k8s.container.name", "coredns".to_string()),
                ("k8s.container.restart_count", "3".to_string()),
            ]
        );
        assert!(metadata_from_path("/var/log/syslog").is_empty());
    }

    #[test]
    fn recombine_per_stream_with_cap() {
        let mut r = Recombine::default();
        let at = |offset, time_unix_nano| ChunkAt {
            offset,
            time_unix_nano,
            tagged: true,
        };
        assert!(
            r.push_partial(Stream::Stdout, b"ab", at(10, 100), 0)
                .is_none()
        );
        assert!(
            r.push_partial(Stream::Stdout, b"b", at(12, 101), 0)
                .is_none()
        );
        assert!(
            r.push_partial(Stream::Stderr, b"x", at(20, 200), 0)
                .is_none()
        );
        assert_eq!(r.pending_start(), Some(10));
        let (msg, first) = r.finish(Stream::Stdout, Cow::Borrowed(b"c"));
        assert_eq!((&*msg, first), (&b"abbc"[..], Some(100)));
        assert_eq!(r.pending_start(), Some(20));
        let full = r
            .push_partial(Stream::Stderr, b"yz", at(30, 300), 3)
            .unwrap();
        assert_eq!((full.message, full.time_unix_nano), (b"xyz".to_vec(), 200));
        assert_eq!(r.pending_start(), None);
        let (msg, first) = r.finish(Stream::Stdout, Cow::Borrowed(b"alone"));
        assert_eq!((&*msg, first), (&b"alone"[..], None));
    }
}
