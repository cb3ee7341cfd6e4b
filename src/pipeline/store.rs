//! pipeline::store: where a distributed run keeps its state — the plan, the shards' results —
//! a local path or `s3://bucket/key`. In S3 keytrail writes only the keys it is given (one
//! PutObject each; an object appears whole or not at all), and reads them back with GetObject.

use crate::archive::s3::S3Archive;
use crate::aws::Aws;
use crate::config::Config;
use std::path::{Path, PathBuf};

/// A file's place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Local(PathBuf),
    S3 { bucket: String, key: String },
}

impl Place {
    /// `s3://bucket/key` or a local path.
    pub fn of(p: &Path) -> Result<Place, String> {
        let text = p.to_string_lossy();
        let Some(rest) = text.strip_prefix("s3://") else {
            return Ok(Place::Local(p.to_path_buf()));
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{text}: expected s3://bucket/key"));
        }
        Ok(Place::S3 {
            bucket: bucket.to_string(),
            key: key.trim_end_matches('/').to_string(),
        })
    }

    /// The place `name` inside this one (a folder, or a key prefix).
    pub fn join(&self, name: &str) -> Place {
        match self {
            Place::Local(p) => Place::Local(p.join(name)),
            Place::S3 { bucket, key } => Place::S3 {
                bucket: bucket.clone(),
                key: if key.is_empty() {
                    name.to_string()
                } else {
                    format!("{key}/{name}")
                },
            },
        }
    }

    pub fn is_s3(&self) -> bool {
        matches!(self, Place::S3 { .. })
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Local(p) => write!(f, "{}", p.display()),
            Place::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// Reads and writes places, with the AWS configuration when one is in S3.
pub struct Store {
    rt: tokio::runtime::Runtime,
    aws: Option<Aws>,
}

impl Store {
    /// A store for these places; AWS is configured (from `cfg`'s profile and region) only when
    /// one of them is in S3.
    pub fn for_places(places: &[&Place], cfg: &Config) -> anyhow::Result<Store> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let aws = places.iter().any(|p| p.is_s3()).then(|| {
            rt.block_on(crate::aws::load(
                cfg.profile.as_deref(),
                cfg.region.as_deref(),
            ))
        });
        Ok(Store { rt, aws })
    }

    fn bucket(&self, bucket: &str) -> Result<S3Archive, String> {
        let aws = self.aws.as_ref().ok_or("no AWS configuration")?;
        self.rt
            .block_on(S3Archive::connect(aws, bucket))
            .map_err(|e| e.to_string().replacen("--logs ", "", 1))
    }

    pub fn read(&self, place: &Place) -> Result<Vec<u8>, String> {
        match place {
            Place::Local(p) => {
                std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
            }
            Place::S3 { bucket, key } => {
                let b = self.bucket(bucket)?;
                self.rt
                    .block_on(b.get_with_signature(key))
                    .map(|(bytes, _)| bytes)
                    .map_err(|e| format!("cannot read s3://{bucket}/{key}: {e}"))
            }
        }
    }

    /// Writes `bytes` whole: a local file is written beside and renamed into place.
    pub fn write(&self, place: &Place, bytes: Vec<u8>) -> Result<(), String> {
        match place {
            Place::Local(p) => {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
                crate::checkpoint::write_atomically(p, &bytes)
                    .map_err(|e| format!("cannot write {}: {e}", p.display()))
            }
            Place::S3 { bucket, key } => {
                let b = self.bucket(bucket)?;
                self.rt.block_on(b.put(key, bytes))
            }
        }
    }
}

/// Where a report is written: a local directory (staged beside it and renamed into place), or an
/// S3 prefix — staged locally, then uploaded so that a reader never takes a half-written report
/// for a whole one: the old `summary.json` (the commit marker) is deleted first, the tables are
/// put, `summary.json` is put last, and only then are the old report's other objects deleted.
pub enum Output {
    Local(crate::report::Staging),
    S3 {
        staging: crate::report::Staging,
        local: PathBuf,
        bucket: String,
        prefix: String,
        store: Box<Store>,
        overwrite: bool,
    },
}

impl Output {
    /// Checks `out` can be written, before any work is done.
    pub fn create(out: &Path, overwrite: bool, cfg: &Config) -> anyhow::Result<Output> {
        let place = Place::of(out).map_err(anyhow::Error::msg)?;
        let Place::S3 { bucket, key } = place.clone() else {
            return Ok(Output::Local(crate::report::Staging::create(
                out, overwrite,
            )?));
        };
        let store = Store::for_places(&[&place], cfg)?;
        let prefix = if key.is_empty() {
            key
        } else {
            format!("{key}/")
        };
        let b = store.bucket(&bucket).map_err(anyhow::Error::msg)?;
        let there = store
            .rt
            .block_on(b.keys_under(&prefix))
            .map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            there.is_empty() || overwrite,
            "--out {place}: holds {} object(s) (choose another prefix, or pass --overwrite)",
            there.len()
        );
        let local = std::env::temp_dir().join(format!("keytrail-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&local);
        Ok(Output::S3 {
            staging: crate::report::Staging::create(&local, true)?,
            local,
            bucket,
            prefix,
            store: Box::new(store),
            overwrite,
        })
    }

    /// Where the report's files are written before the commit.
    pub fn path(&self) -> &Path {
        match self {
            Output::Local(s) | Output::S3 { staging: s, .. } => s.path(),
        }
    }

    /// Puts the finished report in place.
    pub fn commit(self) -> anyhow::Result<()> {
        let (staging, local, bucket, prefix, store, overwrite) = match self {
            Output::Local(s) => return Ok(s.commit()?),
            Output::S3 {
                staging,
                local,
                bucket,
                prefix,
                store,
                overwrite,
            } => (staging, local, bucket, prefix, store, overwrite),
        };
        staging.commit()?;
        let b = store.bucket(&bucket).map_err(anyhow::Error::msg)?;
        let rt = &store.rt;
        let old = rt
            .block_on(b.keys_under(&prefix))
            .map_err(anyhow::Error::msg)?;
        let marker = format!("{prefix}summary.json");
        if old.contains(&marker) {
            rt.block_on(b.delete(&marker)).map_err(anyhow::Error::msg)?;
        }
        let mut files = Vec::new();
        walk(&local, &mut files)?;
        files.sort();
        let key_of = |f: &Path| {
            let rel = f
                .strip_prefix(&local)
                .expect("under the report")
                .to_string_lossy()
                .replace('\\', "/");
            format!("{prefix}{rel}")
        };
        let (last, first): (Vec<&PathBuf>, Vec<&PathBuf>) =
            files.iter().partition(|f| key_of(f) == marker);
        let mut new = std::collections::BTreeSet::new();
        for f in first.into_iter().chain(last) {
            let key = key_of(f);
            let bytes = std::fs::read(f)?;
            rt.block_on(b.put(&key, bytes))
                .map_err(anyhow::Error::msg)?;
            new.insert(key);
        }
        if overwrite {
            for key in old.iter().filter(|k| !new.contains(*k)) {
                rt.block_on(b.delete(key)).map_err(anyhow::Error::msg)?;
            }
        }
        let _ = std::fs::remove_dir_all(&local);
        Ok(())
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}
