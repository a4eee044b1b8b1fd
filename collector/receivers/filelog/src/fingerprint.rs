//! File identity: the first `fingerprint_size` bytes of a file, never its name or inode.
//!
//! A file shorter than the size gets a shorter fingerprint that grows with the file; two
//! fingerprints name the same file when the older one is a prefix of the newer one.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// Shared bytes: cloning one (for a checkpoint snapshot) copies no data.
pub struct Fingerprint(Arc<[u8]>);

impl Fingerprint {
    /// Reads the first `size` bytes of `file` (fewer when the file is shorter).
    pub fn read(file: &File, size: usize) -> io::Result<Self> {
        let mut buf = vec![0u8; size];
        let mut filled = 0;
        while filled < size {
            match file.read_at(&mut buf[filled..], filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(filled);
        Ok(Self(buf.into()))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether this (newer) fingerprint continues `older`: same file, possibly grown.
    pub fn continues(&self, older: &Fingerprint) -> bool {
        !older.is_empty() && self.0.starts_with(&older.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn short_files_get_a_growing_prefix_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"hello").unwrap();
        let small = Fingerprint::read(&File::open(&path).unwrap(), 8).unwrap();
        assert_eq!(small.as_bytes(), b"hello");
        f.write_all(b" world").unwrap();
        let full = Fingerprint::read(&File::open(&path).unwrap(), 8).unwrap();
        assert_eq!(full.as_bytes(), b"hello wo");
        assert!(full.continues(&small));
        assert!(!small.continues(&full));
        assert!(!full.continues(&Fingerprint::from_bytes(Vec::new())));
    }
}
