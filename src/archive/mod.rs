//! archive: where the CloudTrail logs live — a local directory (an S3 sync, [`local`]) or an S3
//! bucket ([`s3`]) — behind the two operations every stage needs: list one folder (sub-folders and
//! objects, like `ListObjectsV2` with a `/` delimiter) and get one object's bytes. Keys are
//! `/`-separated and relative to the archive's root (the directory, or the bucket). What the
//! names mean is [`layout`]; which folders to list is the plan's business, what the bytes say the
//! scan's.

pub mod inventory;
pub mod layout;
pub mod local;
pub mod s3;
pub mod throttle;

use crate::aws::Aws;
use crate::config::Logs;
use std::future::Future;

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
pub enum ArchiveError {
    #[error("cannot list {location}: {msg}")]
    List { location: String, msg: String },
}

/// An object's bytes and, where the archive keeps it, CloudTrail's signature of it (S3 user
/// metadata `x-amz-meta-signature`, set on digest files). `Err` is why it could not be read.
pub type Got = Result<(Vec<u8>, Option<String>), String>;

pub trait Archive: Sync {
    /// What the user gave, for messages (`/data/logs`, `s3://bucket/prefix`).
    fn describe(&self) -> String;
    /// Lists the folder `prefix` (empty, or ending with `/`). A folder that does not exist is empty.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Listing, ArchiveError>> + Send;
    /// The whole body of one object, with its signature metadata where there is one.
    fn get(&self, key: &str) -> impl Future<Output = Got> + Send;
    /// Where the search for the trail folders starts: empty, or the prefix (ending with `/`)
    /// given with `s3://bucket/prefix`.
    fn start(&self) -> &str {
        ""
    }
    /// The S3 bucket the archive is, where it is one (what a digest's `digestS3Bucket` must say).
    fn bucket(&self) -> Option<&str> {
        None
    }
    /// How many times the store answered `SlowDown` so far (the scan backs off on them).
    fn slowdowns(&self) -> u64 {
        0
    }
    /// The same archive for a scan worker on a thread and runtime of its own: connections of its
    /// own, so that they live and are driven where they are used; counts, backoff and credentials
    /// shared. What cannot be per runtime runs on `home`, the runtime that outlives the scan.
    fn for_worker(&self, home: &tokio::runtime::Handle) -> Self
    where
        Self: Sized;
}

/// The archive of a run: a local directory or an S3 bucket (with the prefix the logs sit under).
#[derive(Debug, Clone)]
pub enum AnyArchive {
    Local(local::LocalArchive),
    S3 {
        bucket: s3::S3Archive,
        prefix: String,
        /// The bucket's S3 Inventory report, when folders are listed from it (`--s3-inventory`).
        listed: Option<std::sync::Arc<inventory::Inventory>>,
    },
}

impl Archive for AnyArchive {
    fn describe(&self) -> String {
        match self {
            AnyArchive::Local(a) => a.describe(),
            AnyArchive::S3 { bucket, .. } => bucket.describe(),
        }
    }
    async fn list(&self, prefix: &str) -> Result<Listing, ArchiveError> {
        match self {
            AnyArchive::Local(a) => a.list(prefix).await,
            AnyArchive::S3 {
                listed: Some(inv), ..
            } if !inv.too_recent(prefix) => Ok(inv.list(prefix)),
            AnyArchive::S3 { bucket, .. } => bucket.list(prefix).await,
        }
    }
    async fn get(&self, key: &str) -> Got {
        match self {
            AnyArchive::Local(a) => a.get(key).await,
            AnyArchive::S3 { bucket, .. } => bucket.get(key).await,
        }
    }
    fn start(&self) -> &str {
        match self {
            AnyArchive::Local(_) => "",
            AnyArchive::S3 { prefix, .. } => prefix,
        }
    }
    fn bucket(&self) -> Option<&str> {
        match self {
            AnyArchive::Local(_) => None,
            AnyArchive::S3 { bucket, .. } => bucket.bucket(),
        }
    }
    fn slowdowns(&self) -> u64 {
        match self {
            AnyArchive::Local(_) => 0,
            AnyArchive::S3 { bucket, .. } => bucket.slowdowns(),
        }
    }
    fn for_worker(&self, home: &tokio::runtime::Handle) -> AnyArchive {
        match self {
            AnyArchive::Local(a) => AnyArchive::Local(a.for_worker(home)),
            AnyArchive::S3 {
                bucket,
                prefix,
                listed,
            } => AnyArchive::S3 {
                bucket: bucket.for_worker(home),
                prefix: prefix.clone(),
                listed: listed.clone(),
            },
        }
    }
}

/// Opens the archive `--logs` names (resolved: never `auto`). An S3 archive needs the AWS
/// configuration, and its bucket is found in its own region.
/// With `listing` (`--s3-inventory s3://...manifest.json`), an S3 archive's folders are listed
/// from that S3 Inventory report.
pub async fn open(
    logs: &Logs,
    aws: Option<&Aws>,
    listing: Option<&str>,
) -> anyhow::Result<AnyArchive> {
    match (logs, aws) {
        (Logs::Local(_), _) if listing.is_some() => {
            anyhow::bail!("--s3-inventory lists an s3:// archive; --logs {logs} is a directory")
        }
        (Logs::Local(dir), _) => {
            logs.check()?;
            Ok(AnyArchive::Local(local::LocalArchive { root: dir.clone() }))
        }
        (Logs::S3 { bucket, prefix }, Some(aws)) => {
            let archive = s3::S3Archive::connect(aws, bucket).await?;
            let listed = match listing {
                None => None,
                Some(url) => Some(std::sync::Arc::new(
                    read_inventory(aws, url, bucket, prefix)
                        .await
                        .map_err(|e| anyhow::anyhow!("--s3-inventory {url}: {e}"))?,
                )),
            };
            Ok(AnyArchive::S3 {
                bucket: archive,
                prefix: prefix.clone(),
                listed,
            })
        }
        (Logs::S3 { .. }, None) => anyhow::bail!("--logs {logs} needs the AWS configuration"),
        (Logs::Auto, _) => anyhow::bail!("--logs auto is resolved from the trails first"),
    }
}

/// The S3 Inventory report of `bucket` whose manifest is at `url` (`s3://dest/.../manifest.json`).
async fn read_inventory(
    aws: &Aws,
    url: &str,
    bucket: &str,
    prefix: &str,
) -> Result<inventory::Inventory, String> {
    let (dest, key) = url
        .strip_prefix("s3://")
        .and_then(|r| r.split_once('/'))
        .filter(|(b, k)| !b.is_empty() && k.ends_with("manifest.json"))
        .ok_or("expected s3://bucket/.../manifest.json")?;
    let store = s3::S3Archive::connect(aws, dest)
        .await
        .map_err(|e| e.to_string())?;
    let (manifest, _) = store.get_with_signature(key).await?;
    let store = &store;
    inventory::read(&manifest, bucket, prefix, |k| async move {
        store.get_with_signature(&k).await.map(|(b, _)| b)
    })
    .await
}
