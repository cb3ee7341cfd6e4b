//! scan: read the planned log objects in parallel and keep only what matters — the uses of
//! in-scope keys — while giving every object considered exactly one manifest row (read, skipped
//! and why, or unreadable and why). `fetch` gets bytes (from any `archive::Archive`), `decode`
//! turns bytes into records (with `split` finding record boundaries), `record` holds the rules of
//! what a use is. The result is a [`ScanResult`]: results of disjoint object sets merge.

pub mod aliases;
pub mod callers;
pub mod decode;
pub mod fetch;
pub mod record;
pub mod split;

use crate::archive::layout::{check_log_name, ObjectRef};
use crate::config::DecodeLimits;
use chrono::NaiveDate;
use record::{KeyIndex, UseCopy};
use std::ops::AddAssign;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectStatus {
    Read,
    Skipped,
    Unreadable,
}

impl ObjectStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectStatus::Read => "read",
            ObjectStatus::Skipped => "skipped",
            ObjectStatus::Unreadable => "unreadable",
        }
    }
}

/// One row of `scan_manifest/`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ManifestRow {
    pub object: String,
    pub size_bytes: u64,
    pub status: ObjectStatus,
    pub reason: Option<String>,
    pub records: u64,
    pub kms_records: u64,
    pub malformed_records: u64,
    /// Successful tracked KMS calls that name no key (they could be uses of any key here).
    pub unattributable_uses: u64,
    pub account_id: String,
    pub region: String,
    pub delivery_date: NaiveDate,
    /// Skipped because its storage class needs a restore first (its evidence is missing).
    pub archived: bool,
    /// Hex SHA-256 of the inflated bytes, when integrity is checked and the object inflates.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// Counters of a scan, summed across workers.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScanStats {
    pub objects_read: u64,
    pub objects_skipped: u64,
    pub objects_unreadable: u64,
    /// Objects skipped because they must be restored from GLACIER / DEEP_ARCHIVE first.
    pub objects_archived: u64,
    pub bytes_archived: u64,
    /// Bytes of the objects read (as stored, compressed).
    pub bytes_read: u64,
    pub records: u64,
    pub kms_records: u64,
    pub malformed_records: u64,
    /// Successful tracked KMS calls that named no key (e.g. symmetric Decrypt without resources).
    pub unattributable_uses: u64,
    pub use_copies: u64,
}

impl AddAssign for ScanStats {
    fn add_assign(&mut self, o: ScanStats) {
        self.objects_read += o.objects_read;
        self.objects_skipped += o.objects_skipped;
        self.objects_unreadable += o.objects_unreadable;
        self.objects_archived += o.objects_archived;
        self.bytes_archived += o.bytes_archived;
        self.bytes_read += o.bytes_read;
        self.records += o.records;
        self.kms_records += o.kms_records;
        self.malformed_records += o.malformed_records;
        self.unattributable_uses += o.unattributable_uses;
        self.use_copies += o.use_copies;
    }
}

/// What a scan found: one manifest row per object considered (with the SHA-256 of each log
/// read, when integrity is checked), the use copies read from them, and the counters. A value
/// that merges: the results of disjoint object sets combine, in any order, into the result of
/// their union (rows in object-key order, each object's uses together and in the order it held
/// them).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ScanResult {
    /// In object-key order.
    pub manifest: Vec<ManifestRow>,
    /// Grouped by object, in object-key order.
    pub uses: Vec<UseCopy>,
    /// Failed attempts to use the keys (copies with an `error_code`), as `uses` is ordered.
    pub failed: Vec<UseCopy>,
    /// The alias changes read (`CreateAlias`, `UpdateAlias`, `DeleteAlias`), as `uses` is
    /// ordered: what alias-only records are resolved by (`aliases::resolve`).
    pub alias_moves: Vec<UseCopy>,
    pub stats: ScanStats,
}

impl ScanResult {
    /// The result of these objects' results, in any order.
    pub fn of(results: impl IntoIterator<Item = Scanned>) -> ScanResult {
        let mut out = ScanResult::default();
        for (row, uses, stats) in results {
            out.manifest.push(row);
            out.uses.extend(uses);
            out.stats += stats;
        }
        out.settle();
        out
    }

    /// The result of the union of two disjoint object sets.
    pub fn merge(mut self, other: ScanResult) -> ScanResult {
        self.manifest.extend(other.manifest);
        self.uses.extend(other.uses);
        self.failed.extend(other.failed);
        self.alias_moves.extend(other.alias_moves);
        self.stats += other.stats;
        self.settle();
        self
    }

    /// Failed attempts and alias changes set apart from the uses, then object-key order.
    /// Stable, so an object's uses keep the order it held them in.
    fn settle(&mut self) {
        if self
            .uses
            .iter()
            .any(|u| u.error_code.is_some() || u.is_alias_move())
        {
            for u in std::mem::take(&mut self.uses) {
                match () {
                    _ if u.is_alias_move() => self.alias_moves.push(u),
                    _ if u.error_code.is_some() => self.failed.push(u),
                    _ => self.uses.push(u),
                }
            }
        }
        self.manifest.sort_by(|a, b| a.object.cmp(&b.object));
        for list in [&mut self.uses, &mut self.failed, &mut self.alias_moves] {
            list.sort_by(|a, b| a.log_object.cmp(&b.log_object));
        }
    }

    /// Everything kept from the logs in one list, as it travels between processes (shard
    /// bodies); `of`/`merge` set it apart again.
    pub fn kept(self) -> Vec<UseCopy> {
        let mut all = self.uses;
        all.extend(self.failed);
        all.extend(self.alias_moves);
        all
    }
}

/// The result of considering one object.
pub type Scanned = (ManifestRow, Vec<UseCopy>, ScanStats);

/// Storage classes whose objects must be restored before they can be read.
const ARCHIVED_CLASSES: [&str; 2] = ["GLACIER", "DEEP_ARCHIVE"];

/// Called with each object's result as soon as it exists (the resume journal).
pub type OnDone<'a> = &'a (dyn Fn(&ObjectRef, &Scanned) + Sync);

fn row(obj: &ObjectRef, status: ObjectStatus, reason: Option<String>) -> ManifestRow {
    ManifestRow {
        object: obj.key.clone(),
        size_bytes: obj.size,
        status,
        reason,
        records: 0,
        kms_records: 0,
        malformed_records: 0,
        unattributable_uses: 0,
        account_id: obj.prefix.account.clone(),
        region: obj.prefix.region.clone(),
        delivery_date: obj.prefix.day,
        archived: false,
        sha256: None,
    }
}

/// Why an object is not read at all, decided from its listing: not a log file by name, or in a
/// storage class that needs a restore.
pub fn skip_reason(obj: &ObjectRef) -> Option<String> {
    let name = obj.key.rsplit('/').next().unwrap_or_default();
    if let Err(reason) = check_log_name(name, &obj.prefix.account, &obj.prefix.region) {
        return Some(reason);
    }
    obj.storage_class
        .as_deref()
        .filter(|c| ARCHIVED_CLASSES.contains(c))
        .map(|c| format!("archived: storage class {c}; restore it before it can be read"))
}

pub fn skipped(obj: &ObjectRef, reason: String) -> Scanned {
    let archived = reason.starts_with("archived");
    let mut r = row(obj, ObjectStatus::Skipped, Some(reason));
    r.archived = archived;
    let stats = ScanStats {
        objects_skipped: 1,
        objects_archived: u64::from(archived),
        bytes_archived: if archived { obj.size } else { 0 },
        ..ScanStats::default()
    };
    (r, Vec::new(), stats)
}

/// Decodes a fetched object (or records why it could not be fetched).
pub fn finish(
    obj: &ObjectRef,
    fetched: Result<Vec<u8>, String>,
    index: &KeyIndex,
    limits: DecodeLimits,
) -> Scanned {
    let (decoded, hash) = match fetched {
        Ok(bytes) => decode::decode_object(&bytes, index, &obj.key, limits),
        Err(e) => (Err(e), None),
    };
    let sha256 = hash.map(|h| crate::model::hex(&h));
    match decoded {
        Ok(d) => {
            let mut r = row(obj, ObjectStatus::Read, None);
            r.sha256 = sha256;
            r.records = d.records;
            r.kms_records = d.kms_records;
            r.malformed_records = d.malformed_records;
            r.unattributable_uses = d.unattributable;
            let stats = ScanStats {
                objects_read: 1,
                bytes_read: obj.size,
                records: d.records,
                kms_records: d.kms_records,
                malformed_records: d.malformed_records,
                unattributable_uses: d.unattributable,
                use_copies: d
                    .uses
                    .iter()
                    .filter(|u| u.error_code.is_none() && !u.is_alias_move())
                    .count() as u64,
                ..ScanStats::default()
            };
            (r, d.uses, stats)
        }
        Err(reason) => {
            let stats = ScanStats {
                objects_unreadable: 1,
                ..ScanStats::default()
            };
            let mut r = row(obj, ObjectStatus::Unreadable, Some(reason));
            r.sha256 = sha256;
            (r, Vec::new(), stats)
        }
    }
}
