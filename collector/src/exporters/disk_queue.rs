//! The persistent half of `sending_queue.storage`: each queued request is one file in the
//! exporter's directory under the `file_storage` extension.
//!
//! A request counts as queued only once its file is whole under its final name: it is written
//! to `<seq>.tmp` and renamed to `<seq>.req` (with the extension's `fsync`, both the file and the
//! directory are flushed first, so it survives power loss too). A SIGKILL at any moment leaves
//! each request either whole or absent: a stray `.tmp` was never acknowledged and is removed on
//! start. A file is removed once its request is sent or given up; one sent but not yet removed
//! is sent again after a restart (at-least-once, at most the requests in flight).
//!
//! File layout: magic `KQ1\n`, signal (1 byte), items (u64 LE), CRC-32 of the body (u32 LE),
//! then the OTLP protobuf body the exporter sends.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use kotel_pipeline::Signal;

const MAGIC: &[u8; 4] = b"KQ1\n";
const HEADER: usize = MAGIC.len() + 1 + 8 + 4;

/// A request on disk, known by its header until a worker reads its body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stored {
    pub seq: u64,
    pub signal: Signal,
    pub items: u64,
}

/// A file that is not a whole request (a damaged disk, a hand edit).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct Damaged {
    pub path: PathBuf,
    pub reason: String,
}

/// One exporter's queue directory.
#[derive(Debug)]
pub struct DiskQueue {
    dir: PathBuf,
    fsync: bool,
    next: AtomicU64,
}

impl DiskQueue {
    /// Opens (creating) `dir` and returns what an earlier run left queued, oldest first.
    /// Damaged files are set aside (`.damaged`) and reported.
    pub fn open(dir: &Path, fsync: bool) -> io::Result<(Self, Vec<Stored>, Vec<Damaged>)> {
        fs::create_dir_all(dir)?;
        let mut stored = Vec::new();
        let mut damaged = Vec::new();
        let mut last = 0;
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(seq) = seq_of(&path) else { continue };
            last = last.max(seq);
            match path.extension().and_then(|e| e.to_str()) {
                // Never renamed: never acknowledged to anyone.
                Some("tmp") => fs::remove_file(&path)?,
                Some("req") => match read_header(&path) {
                    Ok((signal, items, _)) => stored.push(Stored { seq, signal, items }),
                    Err(e) => damaged.push(set_aside(&path, e)),
                },
                _ => {}
            }
        }
        stored.sort_by_key(|s| s.seq);
        let queue = Self {
            dir: dir.to_path_buf(),
            fsync,
            next: AtomicU64::new(last + 1),
        };
        Ok((queue, stored, damaged))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes one request; when this returns it survives a SIGKILL.
    pub fn put(&self, signal: Signal, items: u64, body: &[u8]) -> io::Result<Stored> {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let tmp = self.path(seq, "tmp");
        let write = || -> io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            let mut header = [0u8; HEADER];
            header[..4].copy_from_slice(MAGIC);
            header[4] = signal_byte(signal);
            header[5..13].copy_from_slice(&items.to_le_bytes());
            header[13..17].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
            f.write_all(&header)?;
            f.write_all(body)?;
            if self.fsync {
                f.sync_data()?;
            }
            fs::rename(&tmp, self.path(seq, "req"))?;
            if self.fsync {
                fs::File::open(&self.dir)?.sync_all()?;
            }
            Ok(())
        };
        write().inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })?;
        Ok(Stored { seq, signal, items })
    }

    /// The body of a stored request, checked against its header. A damaged file is set aside.
    pub fn read(&self, seq: u64) -> Result<Bytes, Damaged> {
        let path = self.path(seq, "req");
        let check = || -> Result<Bytes, String> {
            let data = fs::read(&path).map_err(|e| e.to_string())?;
            let (_, _, crc) = parse_header(&data)?;
            let body = &data[HEADER..];
            if crc32fast::hash(body) != crc {
                return Err("the body does not match its checksum".into());
            }
            Ok(Bytes::from(data).slice(HEADER..))
        };
        check().map_err(|reason| set_aside(&path, reason))
    }

    /// Forgets a request that was sent or given up.
    pub fn remove(&self, seq: u64) -> io::Result<()> {
        match fs::remove_file(self.path(seq, "req")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn path(&self, seq: u64, ext: &str) -> PathBuf {
        self.dir.join(format!("{seq:020}.{ext}"))
    }
}

fn seq_of(path: &Path) -> Option<u64> {
    path.file_stem()?.to_str()?.parse().ok()
}

fn signal_byte(s: Signal) -> u8 {
    match s {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

fn parse_header(data: &[u8]) -> Result<(Signal, u64, u32), String> {
    if data.len() < HEADER || &data[..4] != MAGIC {
        return Err("not a kotel queue file (bad header)".into());
    }
    let signal = match data[4] {
        0 => Signal::Traces,
        1 => Signal::Metrics,
        2 => Signal::Logs,
        b => return Err(format!("unknown signal byte {b}")),
    };
    let items = u64::from_le_bytes(data[5..13].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(data[13..17].try_into().expect("4 bytes"));
    Ok((signal, items, crc))
}

fn read_header(path: &Path) -> Result<(Signal, u64, u32), String> {
    use std::io::Read;
    let mut header = Vec::with_capacity(HEADER);
    fs::File::open(path)
        .and_then(|f| f.take(HEADER as u64).read_to_end(&mut header))
        .map_err(|e| e.to_string())?;
    parse_header(&header)
}

/// Renames a damaged file out of the queue (kept for a person to look at) and says why.
fn set_aside(path: &Path, reason: String) -> Damaged {
    let _ = fs::rename(path, path.with_extension("damaged"));
    Damaged {
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_survive_a_reopen_in_order_and_removed_ones_do_not() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("q");
        let (q, old, damaged) = DiskQueue::open(&dir, true).unwrap();
        assert!(old.is_empty() && damaged.is_empty());
        let a = q.put(Signal::Traces, 3, b"first").unwrap();
        let b = q.put(Signal::Logs, 7, b"second").unwrap();
        let c = q.put(Signal::Metrics, 1, b"").unwrap();
        q.remove(b.seq).unwrap();
        q.remove(b.seq).unwrap(); // twice is fine
        drop(q);

        let (q, old, damaged) = DiskQueue::open(&dir, false).unwrap();
        assert!(damaged.is_empty());
        assert_eq!(old, vec![a, c]);
        assert_eq!(&q.read(a.seq).unwrap()[..], b"first");
        assert_eq!(&q.read(c.seq).unwrap()[..], b"");
        // New requests come after the old ones.
        assert!(q.put(Signal::Traces, 1, b"x").unwrap().seq > c.seq);
    }

    #[test]
    fn an_unfinished_write_is_removed_and_a_damaged_file_set_aside() {
        let tmp = tempfile::tempdir().unwrap();
        let (q, _, _) = DiskQueue::open(tmp.path(), false).unwrap();
        let good = q.put(Signal::Logs, 2, b"kept").unwrap();
        let flipped = q.put(Signal::Logs, 2, b"will be damaged").unwrap();
        // A write the process died in, and a file whose body changed after it was written.
        fs::write(q.path(90, "tmp"), b"KQ1\n half").unwrap();
        let mut data = fs::read(q.path(flipped.seq, "req")).unwrap();
        *data.last_mut().unwrap() ^= 1;
        fs::write(q.path(flipped.seq, "req"), data).unwrap();
        fs::write(q.path(91, "req"), b"garbage").unwrap();
        drop(q);

        let (q, old, damaged) = DiskQueue::open(tmp.path(), false).unwrap();
        assert!(!q.path(90, "tmp").exists());
        assert_eq!(damaged.len(), 1, "{damaged:?}");
        assert!(damaged[0].reason.contains("bad header"), "{damaged:?}");
        assert!(q.path(91, "damaged").exists());
        // The flipped body passes the header scan and is caught when read.
        assert_eq!(old, vec![good, flipped]);
        let err = q.read(flipped.seq).unwrap_err();
        assert!(err.reason.contains("checksum"), "{err}");
        assert!(q.path(flipped.seq, "damaged").exists());
        assert_eq!(&q.read(good.seq).unwrap()[..], b"kept");
    }
}
