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
            // A symlinked folder or file (trees linked together) is what it points to; a dangling
            // link stays an object, whose read then fails and is recorded.
            let meta = match entry.file_type().map_err(err)?.is_symlink() {
                true => std::fs::metadata(entry.path()).or_else(|_| entry.metadata()),
                false => entry.metadata(),
            }
            .map_err(err)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinked_folders_and_files_are_listed_as_what_they_point_to() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("real/day")).unwrap();
        std::fs::write(root.join("real/day/a.json.gz"), b"12345").unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("linked")).unwrap();
        std::os::unix::fs::symlink(
            root.join("real/day/a.json.gz"),
            root.join("real/day/b.json.gz"),
        )
        .unwrap();
        std::os::unix::fs::symlink(root.join("nowhere"), root.join("real/day/c.json.gz")).unwrap();
        let store = LocalStore {
            root: root.to_path_buf(),
        };
        let top = store.list_sync("").unwrap();
        assert_eq!(top.folders, ["linked/", "real/"]);
        let day = store.list_sync("linked/day/").unwrap();
        let got: Vec<(&str, u64)> = day
            .objects
            .iter()
            .map(|e| (e.key.as_str(), e.size))
            .collect();
        assert_eq!(
            got[..2],
            [("linked/day/a.json.gz", 5), ("linked/day/b.json.gz", 5)]
        );
        // The dangling link is still an object: reading it fails, and that is recorded.
        assert_eq!(got[2].0, "linked/day/c.json.gz");
    }
}
