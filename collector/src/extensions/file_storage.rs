//! `file_storage`: a directory where components keep state across restarts (filelog
//! checkpoints). Each component gets its own subdirectory, named as upstream names its files:
//! `<kind>_<type>_<name>`.

use std::path::PathBuf;

use kotel_config::ComponentId;
use kotel_config::extensions::file_storage::FileStorageConfig;

#[derive(Debug, thiserror::Error)]
pub enum FileStorageError {
    #[error(
        "extensions.{id}: directory {dir} does not exist; create it or set create_directory: true"
    )]
    Missing { id: ComponentId, dir: String },
    #[error("extensions.{id}: cannot create {dir}: {source}")]
    Create {
        id: ComponentId,
        dir: String,
        source: std::io::Error,
    },
    #[error("extensions.{id}: {dir} is not a directory")]
    NotADirectory { id: ComponentId, dir: String },
}

/// Checks (or creates) the extension's directory.
pub fn resolve(id: &ComponentId, cfg: &FileStorageConfig) -> Result<PathBuf, FileStorageError> {
    let dir = PathBuf::from(&cfg.directory);
    if !dir.exists() {
        if !cfg.create_directory {
            return Err(FileStorageError::Missing {
                id: id.clone(),
                dir: cfg.directory.clone(),
            });
        }
        std::fs::create_dir_all(&dir).map_err(|source| FileStorageError::Create {
            id: id.clone(),
            dir: cfg.directory.clone(),
            source,
        })?;
    }
    if !dir.is_dir() {
        return Err(FileStorageError::NotADirectory {
            id: id.clone(),
            dir: cfg.directory.clone(),
        });
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories() {
        let tmp = tempfile::tempdir().unwrap();
        let id: ComponentId = "file_storage".parse().unwrap();
        let mut cfg = FileStorageConfig {
            directory: tmp.path().join("x").display().to_string(),
            ..Default::default()
        };
        assert!(matches!(
            resolve(&id, &cfg),
            Err(FileStorageError::Missing { .. })
        ));
        cfg.create_directory = true;
        let dir = resolve(&id, &cfg).unwrap();
        let mut dirs = kotel_pipeline::StorageDirs::default();
        dirs.insert(id.clone(), dir, false);
        let fl: ComponentId = "filelog/pods".parse().unwrap();
        let kind = kotel_config::ComponentKind::Receiver;
        let got = dirs.component_dir("file_storage", kind, &fl).unwrap();
        assert!(got.ends_with("receiver_filelog_pods"), "{got:?}");
        assert_eq!(dirs.component_dir("file_storage/other", kind, &fl), None);
        // The extension's fsync setting reaches the components that write there.
        assert!(!dirs.fsync("file_storage"));
        dirs.insert(
            "file_storage/synced".parse().unwrap(),
            tmp.path().into(),
            true,
        );
        assert!(dirs.fsync("file_storage/synced"));
        assert!(!dirs.fsync("file_storage/other"));
    }
}
