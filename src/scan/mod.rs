//! scan: read the planned log objects in parallel and keep only what matters — the uses of
//! in-scope keys — while giving every object considered exactly one manifest row (read, skipped
//! and why, or unreadable and why). `list` finds objects, `fetch` gets bytes, `decode` turns bytes
//! into records, `record` holds the rules of what a use is.

pub mod decode;
pub mod fetch;
pub mod list;
pub mod record;

use chrono::NaiveDate;
use list::{check_log_name, ObjectRef};
use rayon::prelude::*;
use record::{KeyIndex, UseCopy};
use std::ops::AddAssign;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone, PartialEq)]
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
}

/// Counters of a scan, summed across workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanStats {
    pub objects_read: u64,
    pub objects_skipped: u64,
    pub objects_unreadable: u64,
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
        self.bytes_read += o.bytes_read;
        self.records += o.records;
        self.kms_records += o.kms_records;
        self.malformed_records += o.malformed_records;
        self.unattributable_uses += o.unattributable_uses;
        self.use_copies += o.use_copies;
    }
}

#[derive(Debug, Default)]
pub struct ScanOutput {
    /// In object-key order.
    pub manifest: Vec<ManifestRow>,
    pub uses: Vec<UseCopy>,
    pub stats: ScanStats,
}

/// Scans `objects` on the current rayon pool.
pub fn scan(objects: &[ObjectRef], index: &KeyIndex) -> ScanOutput {
    let results: Vec<(ManifestRow, Vec<UseCopy>, ScanStats)> =
        objects.par_iter().map(|obj| scan_one(obj, index)).collect();
    let mut out = ScanOutput::default();
    for (row, uses, stats) in results {
        out.manifest.push(row);
        out.uses.extend(uses);
        out.stats += stats;
    }
    out
}

fn scan_one(obj: &ObjectRef, index: &KeyIndex) -> (ManifestRow, Vec<UseCopy>, ScanStats) {
    let mut row = ManifestRow {
        object: obj.key.clone(),
        size_bytes: obj.size,
        status: ObjectStatus::Read,
        reason: None,
        records: 0,
        kms_records: 0,
        malformed_records: 0,
        unattributable_uses: 0,
        account_id: obj.prefix.account.clone(),
        region: obj.prefix.region.clone(),
        delivery_date: obj.prefix.day,
    };
    let mut stats = ScanStats::default();
    let name = obj.key.rsplit('/').next().unwrap_or_default();
    if let Err(reason) = check_log_name(name, &obj.prefix.account, &obj.prefix.region) {
        row.status = ObjectStatus::Skipped;
        row.reason = Some(reason);
        stats.objects_skipped = 1;
        return (row, Vec::new(), stats);
    }
    match fetch::fetch(obj).and_then(|bytes| decode::decode(&bytes, index, &obj.key)) {
        Ok(d) => {
            row.records = d.records;
            row.kms_records = d.kms_records;
            row.malformed_records = d.malformed_records;
            row.unattributable_uses = d.unattributable;
            stats.objects_read = 1;
            stats.bytes_read = obj.size;
            stats.records = d.records;
            stats.kms_records = d.kms_records;
            stats.malformed_records = d.malformed_records;
            stats.unattributable_uses = d.unattributable;
            stats.use_copies = d.uses.len() as u64;
            (row, d.uses, stats)
        }
        Err(reason) => {
            row.status = ObjectStatus::Unreadable;
            row.reason = Some(reason);
            stats.objects_unreadable = 1;
            (row, Vec::new(), stats)
        }
    }
}
