//! Which files to read: `include` globs minus `exclude` globs (doublestar semantics: `*` stays
//! within one path segment, `**` crosses them), walked from each glob's literal prefix.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

#[derive(Debug, thiserror::Error)]
#[error("invalid glob {glob:?}: {source}")]
pub struct GlobError {
    pub glob: String,
    pub source: globset::Error,
}

/// A file that matched, with what the walk learned about it.
#[derive(Debug, Clone)]
pub struct Found {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
}

#[derive(Debug)]
pub struct Discovery {
    include: GlobSet,
    exclude: GlobSet,
    /// Where to start walking, and how deep (None: unbounded, for `**`).
    roots: Vec<(PathBuf, Option<usize>)>,
    exclude_older_than: Option<Duration>,
}

fn is_meta(segment: &str) -> bool {
    segment.contains(['*', '?', '[', '{', '\\'])
}

fn glob_set(globs: &[String]) -> Result<GlobSet, GlobError> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        let glob = GlobBuilder::new(g)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|source| GlobError {
                glob: g.clone(),
                source,
            })?;
        b.add(glob);
    }
    b.build().map_err(|source| GlobError {
        glob: globs.join(","),
        source,
    })
}

impl Discovery {
    pub fn new(
        include: &[String],
        exclude: &[String],
        exclude_older_than: Option<Duration>,
    ) -> Result<Self, GlobError> {
        let mut roots: Vec<(PathBuf, Option<usize>)> = Vec::new();
        for g in include {
            let segments: Vec<&str> = g.split('/').collect();
            let literal = segments.iter().take_while(|s| !is_meta(s)).count();
            let mut root: PathBuf = segments[..literal].join("/").into();
            if root.as_os_str().is_empty() {
                root = if g.starts_with('/') {
                    "/".into()
                } else {
                    ".".into()
                };
            }
            let rest = &segments[literal..];
            let depth = if rest.iter().any(|s| s.contains("**")) {
                None
            } else {
                Some(rest.len())
            };
            roots.push((root, depth));
        }
        // A root inside another root with unbounded depth is walked by that one already.
        roots.sort();
        roots.dedup();
        Ok(Self {
            include: glob_set(include)?,
            exclude: glob_set(exclude)?,
            roots,
            exclude_older_than,
        })
    }

    /// Every matching regular file (symlinks to files followed), sorted by path, no duplicates.
    pub fn scan(&self) -> Vec<Found> {
        let mut out = Vec::new();
        for (root, depth) in &self.roots {
            if depth == &Some(0) {
                self.consider(root, &mut out);
            } else {
                self.walk(root, *depth, &mut out);
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out.dedup_by(|a, b| a.path == b.path);
        out
    }

    fn walk(&self, dir: &Path, depth: Option<usize>, out: &mut Vec<Found>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(ft) = entry.file_type() else { continue };
            let path = entry.path();
            if ft.is_dir() {
                match depth {
                    Some(d) if d > 1 => self.walk(&path, Some(d - 1), out),
                    Some(_) => {}
                    None => self.walk(&path, None, out),
                }
            } else if (ft.is_file() || ft.is_symlink()) && depth.is_none_or(|d| d == 1) {
                self.consider(&path, out);
            }
        }
    }

    fn consider(&self, path: &Path, out: &mut Vec<Found>) {
        if !self.include.is_match(path) || self.exclude.is_match(path) {
            return;
        }
        let Ok(meta) = fs::metadata(path) else { return };
        if !meta.is_file() {
            return;
        }
        if let Some(max_age) = self.exclude_older_than {
            let old = meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .is_some_and(|age| age > max_age);
            if old {
                return;
            }
        }
        use std::os::unix::fs::MetadataExt;
        out.push(Found {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"x").unwrap();
    }

    #[test]
    fn pods_layout_include_and_exclude() {
        let d = tempfile::tempdir().unwrap();
        let pods = d.path().join("pods");
        touch(&pods.join("ns_a_1/app/0.log"));
        touch(&pods.join("ns_a_1/app/0.log.20240101-000000"));
        touch(&pods.join("ns_a_1/app/0.log.20240101-000000.gz"));
        touch(&pods.join("kotel_collector-x_2/otc/0.log"));
        touch(&pods.join("deep/er/x/1.log"));
        let inc = vec![format!("{}/*/*/*.log", pods.display())];
        let exc = vec![format!("{}/kotel_collector*_*/otc/*.log", pods.display())];
        let found: Vec<_> = Discovery::new(&inc, &exc, None)
            .unwrap()
            .scan()
            .into_iter()
            .map(|f| f.path.strip_prefix(&pods).unwrap().display().to_string())
            .collect();
        assert_eq!(found, vec!["ns_a_1/app/0.log".to_string()]);
        let inc = vec![format!("{}/**/*.log", pods.display())];
        let n = Discovery::new(&inc, &[], None).unwrap().scan().len();
        assert_eq!(n, 3);
    }

    #[test]
    fn a_literal_path_is_found() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("one.log");
        touch(&p);
        let found = Discovery::new(&[p.display().to_string()], &[], None)
            .unwrap()
            .scan();
        assert_eq!(found.len(), 1);
    }
}
