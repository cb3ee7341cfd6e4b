//! store: where log objects live — a local directory (an S3 sync) or an S3 bucket — behind the
//! two operations the scan needs: list one folder (sub-folders and objects, like
//! `ListObjectsV2` with a `/` delimiter) and get one object's bytes. Keys are `/`-separated and
//! relative to the store's root (the directory, or the bucket).

use std::path::PathBuf;

/// An object in a folder listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The full key, relative to the store's root.
    pub key: String,
    pub size: u64,
    /// The S3 storage class, where the store has one (`GLACIER`, `DEEP_ARCHIVE`, ...).
    pub storage_class: Option<String>,
}

/// One folder: its sub-folders (full keys with a trailing `/`) and its objects, both sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub folders: Vec<String>,
    pub objects: Vec<Entry>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot list {location}: {msg}")]
    List { location: String, msg: String },
}

pub trait Store: Sync {
    /// What the user gave, for messages (`/data/logs`, `s3://bucket/prefix`).
    fn describe(&self) -> String;
    /// Lists the folder `prefix` (empty, or ending with `/`). A folder that does not exist is empty.
    fn list(
        &self,
        prefix: &str,
    ) -> impl std::future::Future<Output = Result<Listing, StoreError>> + Send;
}

/// A local directory with the bucket's layout.
#[derive(Debug, Clone)]
pub struct LocalStore {
    pub root: PathBuf,
}

impl LocalStore {
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn list_sync(&self, prefix: &str) -> Result<Listing, StoreError> {
        let dir = self.root.join(prefix);
        let err = |e: std::io::Error| StoreError::List {
            location: dir.display().to_string(),
            msg: e.to_string(),
        };
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(Listing::default())
            }
            Err(e) => return Err(err(e)),
        };
        let mut out = Listing::default();
        for entry in rd {
            let entry = entry.map_err(err)?;
            let meta = entry.metadata().map_err(err)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if meta.is_dir() {
                out.folders.push(format!("{prefix}{name}/"));
            } else {
                out.objects.push(Entry {
                    key: format!("{prefix}{name}"),
                    size: meta.len(),
                    storage_class: None,
                });
            }
        }
        out.folders.sort();
        out.objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

impl Store for LocalStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }
    #[allow(clippy::manual_async_fn)]
    fn list(
        &self,
        prefix: &str,
    ) -> impl std::future::Future<Output = Result<Listing, StoreError>> + Send {
        let r = self.list_sync(prefix);
        async move { r }
    }
}

/// The last path segment of a folder key (`a/b/` → `b`).
pub fn folder_name(folder: &str) -> &str {
    folder
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
}
