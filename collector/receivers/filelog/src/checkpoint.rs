//! Checkpoints: each known file's fingerprint and the offset up to which its records were
//! accepted downstream, in one JSON file written atomically (temp file, fsync, rename, fsync
//! the directory). A file that cannot be read back is reported, set aside and replaced.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::fingerprint::Fingerprint;

const FILE_NAME: &str = "filelog-checkpoints.json";
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("creating checkpoint directory {dir}: {source}")]
    CreateDir { dir: PathBuf, source: io::Error },
    #[error("writing checkpoint {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// One file's saved position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub fingerprint: Fingerprint,
    pub offset: u64,
    /// Records ending at or before this were accepted (past `offset` while a partial line
    /// of one stream is open and the other stream's lines were sent).
    pub done: u64,
    pub path: String,
}

#[derive(Serialize, Deserialize)]
struct Record {
    fingerprint: String,
    offset: u64,
    #[serde(default)]
    done: u64,
    path: String,
}

#[derive(Serialize, Deserialize)]
struct Document {
    version: u32,
    files: Vec<Record>,
}

/// What loading found.
#[derive(Debug)]
pub enum Loaded {
    /// No checkpoint yet (first start).
    Empty,
    Files(Vec<Saved>),
    /// The checkpoint could not be read; it was moved aside to `moved_to`.
    Corrupt {
        reason: String,
        moved_to: PathBuf,
    },
}

#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    path: PathBuf,
    tmp: PathBuf,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        fs::create_dir_all(dir).map_err(|source| CheckpointError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            path: dir.join(FILE_NAME),
            tmp: dir.join(format!("{FILE_NAME}.tmp")),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load(&self) -> Loaded {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Empty,
            Err(e) => return self.set_aside(format!("unreadable: {e}")),
        };
        let doc: Document = match serde_json::from_slice(&bytes) {
            Ok(d) => d,
            Err(e) => return self.set_aside(format!("not valid JSON: {e}")),
        };
        if doc.version != VERSION {
            return self.set_aside(format!("unknown version {}", doc.version));
        }
        let mut files = Vec::with_capacity(doc.files.len());
        for r in doc.files {
            match STANDARD.decode(r.fingerprint.as_bytes()) {
                Ok(fp) if !fp.is_empty() => files.push(Saved {
                    fingerprint: Fingerprint::from_bytes(fp),
                    offset: r.offset,
                    done: r.done.max(r.offset),
                    path: r.path,
                }),
                _ => return self.set_aside(format!("bad fingerprint for {}", r.path)),
            }
        }
        Loaded::Files(files)
    }

    fn set_aside(&self, reason: String) -> Loaded {
        let moved_to = self.dir.join(format!("{FILE_NAME}.corrupt"));
        // Keep the bad file for inspection; if even that fails, the next save overwrites it.
        let _ = fs::rename(&self.path, &moved_to);
        Loaded::Corrupt { reason, moved_to }
    }

    pub fn save(&self, files: &[Saved]) -> Result<(), CheckpointError> {
        let doc = Document {
            version: VERSION,
            files: files
                .iter()
                .map(|s| Record {
                    fingerprint: STANDARD.encode(s.fingerprint.as_bytes()),
                    offset: s.offset,
                    done: s.done,
                    path: s.path.clone(),
                })
                .collect(),
        };
        let bytes = serde_json::to_vec(&doc).expect("checkpoint document serializes");
        let write = || -> io::Result<()> {
            let mut f = fs::File::create(&self.tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&self.tmp, &self.path)?;
            fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|source| CheckpointError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

/// Writes checkpoints on its own thread so reading never waits for an fsync: the poll loop
/// hands over a snapshot after every accepted batch; the thread writes the newest one it has.
pub struct Saver {
    shared: Arc<(Mutex<Slot>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Slot {
    latest: Option<Vec<Saved>>,
    stop: bool,
}

impl Saver {
    /// `on_result` is told about each write (to count failures).
    pub fn start(
        store: Store,
        on_result: impl Fn(Result<(), CheckpointError>) + Send + 'static,
    ) -> Self {
        let shared = Arc::new((Mutex::new(Slot::default()), Condvar::new()));
        let s2 = shared.clone();
        let thread = std::thread::Builder::new()
            .name("filelog-checkpoint".into())
            .spawn(move || {
                let (lock, cv) = &*s2;
                loop {
                    let (next, stop) = {
                        let mut slot = lock.lock().unwrap_or_else(|e| e.into_inner());
                        while slot.latest.is_none() && !slot.stop {
                            slot = cv.wait(slot).unwrap_or_else(|e| e.into_inner());
                        }
                        (slot.latest.take(), slot.stop)
                    };
                    if let Some(files) = next {
                        on_result(store.save(&files));
                    }
                    if stop {
                        return;
                    }
                }
            })
            .expect("spawning the checkpoint thread");
        Self {
            shared,
            thread: Some(thread),
        }
    }

    /// Queues `files` to be written, replacing an older snapshot not yet written.
    pub fn submit(&self, files: Vec<Saved>) {
        let (lock, cv) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).latest = Some(files);
        cv.notify_one();
    }

    /// Writes what is queued and stops the thread.
    pub fn finish(&mut self) {
        let (lock, cv) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        cv.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Saver {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(&d.path().join("state")).unwrap();
        assert!(matches!(store.load(), Loaded::Empty));
        let saved = vec![Saved {
            fingerprint: Fingerprint::from_bytes(b"2024-01-01T00:00:00Z stdout F a\n".to_vec()),
            offset: 33,
            done: 40,
            path: "/var/log/pods/a/b/0.log".into(),
        }];
        store.save(&saved).unwrap();
        match store.load() {
            Loaded::Files(f) => assert_eq!(f, saved),
            other => panic!("{other:?}"),
        }
        fs::write(store.path(), b"{\"version\":1,\"files\":[{\"fingerp").unwrap();
        match store.load() {
            Loaded::Corrupt { moved_to, .. } => assert!(moved_to.exists()),
            other => panic!("{other:?}"),
        }
        assert!(matches!(store.load(), Loaded::Empty));
    }
}
