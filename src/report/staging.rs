//! report::staging: the output directory, written beside `--out` and renamed into place only
//! when complete, so a failed or interrupted run never leaves a half-written report.

use super::ReportError;
use std::path::{Path, PathBuf};

/// A directory beside `--out` that becomes `--out` on `commit`, and is removed otherwise.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    out: PathBuf,
    overwrite: bool,
    committed: bool,
}

impl Staging {
    /// Checks `--out` can be written, before any work is done.
    pub fn create(out: &Path, overwrite: bool) -> Result<Staging, ReportError> {
        let bad = |msg: String| ReportError::Out {
            path: out.to_path_buf(),
            msg,
        };
        if out.exists() {
            if !out.is_dir() {
                return Err(bad("exists and is not a directory".into()));
            }
            let non_empty = std::fs::read_dir(out)
                .map_err(|e| bad(e.to_string()))?
                .next()
                .is_some();
            if non_empty && !overwrite {
                return Err(bad(
                    "exists and is not empty (choose another directory, or pass --overwrite)"
                        .into(),
                ));
            }
        }
        let name = out
            .file_name()
            .ok_or_else(|| bad("is not a directory name".into()))?;
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let stem = format!(".{}.keytrail-tmp-", name.to_string_lossy());
        remove_debris(&parent, &stem);
        let dir = parent.join(format!("{stem}{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| bad(format!("cannot create {}: {e}", dir.display())))?;
        crate::interrupt::staging(&dir);
        Ok(Staging {
            dir,
            out: out.to_path_buf(),
            overwrite,
            committed: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Moves the finished report into place (a signal waits until it is done).
    pub fn commit(mut self) -> Result<(), ReportError> {
        crate::interrupt::committing(|| self.move_into_place())?;
        self.committed = true;
        Ok(())
    }

    fn move_into_place(&self) -> Result<(), ReportError> {
        let bad = |msg: String| ReportError::Out {
            path: self.out.clone(),
            msg,
        };
        if self.out.exists() {
            let non_empty = std::fs::read_dir(&self.out)
                .map_err(|e| bad(e.to_string()))?
                .next()
                .is_some();
            if non_empty && !self.overwrite {
                return Err(bad(
                    "was created by someone else during the run; the report was not written".into(),
                ));
            }
            let mut old = self.dir.clone().into_os_string();
            old.push(".old");
            let old = PathBuf::from(old);
            std::fs::rename(&self.out, &old)
                .map_err(|e| bad(format!("cannot move the old report aside: {e}")))?;
            std::fs::rename(&self.dir, &self.out)
                .map_err(|e| bad(format!("cannot move the report into place: {e}")))?;
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&self.dir, &self.out)
                .map_err(|e| bad(format!("cannot move the report into place: {e}")))?;
        }
        Ok(())
    }
}

/// Removes the staging directories of runs that were killed (their process is gone).
fn remove_debris(parent: &Path, stem: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(stem))
            .and_then(|p| p.trim_end_matches(".old").parse::<u32>().ok());
        if pid.is_some_and(|pid| !crate::interrupt::alive(pid)) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
            crate::interrupt::unstaged();
        }
    }
}
