//! Splits a file into lines from an offset: newline-terminated tokens (a trailing `\r` is part
//! of the newline), lines longer than `max_log_size` split into pieces of that size, and the
//! unterminated tail at end of file reported apart so the caller can wait for the rest.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// What comes next in the file.
#[derive(Debug, PartialEq)]
pub enum Next<'a> {
    /// A line (without newline) occupying file bytes `start..end` (`end` after the newline).
    Line {
        token: &'a [u8],
        start: u64,
        end: u64,
    },
    /// End of file; `tail` is an unterminated last line starting at `start` (maybe empty).
    Eof { tail: &'a [u8], start: u64 },
}

/// Reads `file` from `offset` through a caller-owned buffer.
pub struct LineReader<'a> {
    file: &'a File,
    buf: &'a mut Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[end]`.
    pos: u64,
    max_log_size: usize,
    eof: bool,
}

/// Buffer size needed for `max_log_size`: a whole maximal line plus room to read.
pub fn buffer_size(max_log_size: usize) -> usize {
    max_log_size + 256 * 1024
}

impl<'a> LineReader<'a> {
    pub fn new(file: &'a File, buf: &'a mut Vec<u8>, offset: u64, max_log_size: usize) -> Self {
        let need = buffer_size(max_log_size);
        if buf.len() < need {
            buf.resize(need, 0);
        }
        Self {
            file,
            buf,
            start: 0,
            end: 0,
            pos: offset,
            max_log_size: max_log_size.max(1),
            eof: false,
        }
    }

    /// File offset of the next unread byte of the line stream.
    pub fn offset(&self) -> u64 {
        self.pos - (self.end - self.start) as u64
    }

    pub fn next_line(&mut self) -> io::Result<Next<'_>> {
        loop {
            let window = &self.buf[self.start..self.end];
            let offset = self.pos - window.len() as u64;
            let limit = window.len().min(self.max_log_size + 1);
            if let Some(j) = memchr::memchr(b'\n', &window[..limit]) {
                let mut tok_end = self.start + j;
                if j > 0 && self.buf[tok_end - 1] == b'\r' {
                    tok_end -= 1;
                }
                let s = self.start;
                self.start += j + 1;
                let token = &self.buf[s..tok_end];
                return Ok(Next::Line {
                    token,
                    start: offset,
                    end: offset + j as u64 + 1,
                });
            }
            // One byte more than a piece, so a line of exactly max_log_size is not split.
            if window.len() > self.max_log_size {
                let s = self.start;
                self.start += self.max_log_size;
                return Ok(Next::Line {
                    token: &self.buf[s..s + self.max_log_size],
                    start: offset,
                    end: offset + self.max_log_size as u64,
                });
            }
            if self.eof {
                return Ok(Next::Eof {
                    tail: &self.buf[self.start..self.end],
                    start: offset,
                });
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            let n = loop {
                match self.file.read_at(&mut self.buf[self.end..], self.pos) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            if n == 0 {
                self.eof = true;
            }
            self.end += n;
            self.pos += n as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Lines = Vec<(String, u64, u64)>;

    fn lines(content: &[u8], offset: u64, max: usize) -> (Lines, (String, u64)) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, content).unwrap();
        let f = File::open(&p).unwrap();
        let mut buf = Vec::new();
        let mut r = LineReader::new(&f, &mut buf, offset, max);
        let mut out = Vec::new();
        loop {
            match r.next_line().unwrap() {
                Next::Line { token, start, end } => {
                    out.push((String::from_utf8_lossy(token).into_owned(), start, end))
                }
                Next::Eof { tail, start } => {
                    return (out, (String::from_utf8_lossy(tail).into_owned(), start));
                }
            }
        }
    }

    #[test]
    fn lines_offsets_crlf_and_tail() {
        let (l, tail) = lines(b"a\r\nbb\n\nccc", 0, 100);
        assert_eq!(
            l,
            vec![("a".into(), 0, 3), ("bb".into(), 3, 6), ("".into(), 6, 7)]
        );
        assert_eq!(tail, ("ccc".into(), 7));
        let (l, tail) = lines(b"a\r\nbb\n\nccc", 3, 100);
        assert_eq!(l.len(), 2);
        assert_eq!(tail.1, 7);
    }

    #[test]
    fn long_lines_are_split_at_max_log_size() {
        let (l, tail) = lines(b"abcdefgh\nxy\nabcd\n", 0, 4);
        let toks: Vec<_> = l.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(toks, vec!["abcd", "efgh", "xy", "abcd"]);
        assert_eq!(l[1], ("efgh".into(), 4, 9));
        assert_eq!(tail, ("".into(), 17));
    }

    #[test]
    fn big_files_cross_buffer_boundaries() {
        let mut content = Vec::new();
        for i in 0..100_000 {
            content.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let (l, tail) = lines(&content, 0, 64);
        assert_eq!(l.len(), 100_000);
        assert_eq!(l[99_999].0, "line 99999");
        assert_eq!(tail.1, content.len() as u64);
    }
}
