//! archive::local: a local directory with the bucket's layout (an `aws s3 sync` of it). Listing
//! reads one directory; a get reads one file. Symlinked folders and files are what they point to.

use super::{Archive, ArchiveError, Entry, Got, Listing};
use std::future::Future;
use std::path::PathBuf;

/// A local directory with the bucket's layout.
#[derive(Debug, Clone)]
pub struct LocalArchive {
    pub root: PathBuf,
}

impl LocalArchive {
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// One file's bytes, or why it could not be read.
    pub fn read(&self, key: &str) -> Result<Vec<u8>, String> {
        std::fs::read(self.path_of(key)).map_err(|e| format!("cannot read: {e}"))
    }

    fn list_sync(&self, prefix: &str) -> Result<Listing, ArchiveError> {
        let dir = self.root.join(prefix);
        let err = |e: std::io::Error| ArchiveError::List {
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

impl Archive for LocalArchive {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }
    #[allow(clippy::manual_async_fn)]
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Listing, ArchiveError>> + Send {
        let r = self.list_sync(prefix);
        async move { r }
    }
    /// Read at once: a file in the page cache is a copy, cheaper than handing it to a thread.
    #[allow(clippy::manual_async_fn)]
    fn get(&self, key: &str) -> impl Future<Output = Got> + Send {
        let r = self.read(key).map(|bytes| (bytes, None));
        async move { r }
    }
    fn for_worker(&self, _: &tokio::runtime::Handle) -> LocalArchive {
        self.clone()
    }
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
        let store = LocalArchive {
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
