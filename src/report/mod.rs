//! report: the stage that writes the report (the resume journal is `checkpoint`'s). Athena-ready Parquet (`key_usage/`, `kms_events/`
//! Hive-partitioned by `account_id=`/`region=`, `scan_manifest/`), `summary.json`, `report.html`
//! (the evidence report people read) and the human summary. Output goes to a staging directory beside `--out` and is renamed into place only when
//! complete, so a failed or interrupted run never leaves a half-written report.
//!
//! Every timestamp is written as Parquet INT64 `TIMESTAMP(MILLIS, isAdjustedToUTC=true)`, the form
//! Athena's engine reads as `timestamp`; dates as Parquet `DATE`.

mod accounts;
pub mod athena;
mod columns;
mod failed_attempts;
mod html;
mod integrity;
mod key_dependents;
mod key_usage;
mod kms_events;
mod scan_manifest;
mod staging;
mod summary;

pub use staging::Staging;
pub use summary::{IntegritySummary, RunFacts, Summary};

use crate::correlate::{Correlated, KeyUsage, Use};
use crate::dependents::Dependent;
use crate::integrity::live::Evidence;
use crate::inventory::Source;
use crate::scan::record::UseCopy;
use crate::tracking::Tracked;
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("--out {path}: {msg}")]
    Out { path: PathBuf, msg: String },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Parquet { path: PathBuf, source: PolarsError },
}

/// Writes the whole report into `dir` (the staging directory).
pub fn write(
    dir: &Path,
    c: &Correlated,
    evidence: &Evidence,
    summary: &Summary,
) -> Result<(), ReportError> {
    let (manifest, integrity) = (&evidence.scan.manifest, evidence.integrity.as_ref());
    write_parquet(
        &dir.join("key_usage"),
        "part-00000.parquet",
        key_usage::key_usage_frame(&c.findings),
    )?;
    crate::interrupt::kill_point("report", 0);
    let events_dir = dir.join("kms_events");
    mkdir(&events_dir)?;
    let mut partitions: BTreeMap<(&str, &str), Vec<&Use>> = BTreeMap::new();
    for u in &c.events {
        partitions
            .entry((u.key.account(), u.key.region()))
            .or_default()
            .push(u);
    }
    for ((account, region), uses) in partitions {
        let part = events_dir
            .join(format!("account_id={account}"))
            .join(format!("region={region}"));
        write_parquet(
            &part,
            "part-00000.parquet",
            kms_events::kms_events_frame(&uses),
        )?;
    }
    let mut dependents: BTreeMap<(&str, &str), Vec<(&KeyUsage, &Dependent)>> = BTreeMap::new();
    for k in &c.findings {
        for d in &k.dependents {
            dependents
                .entry((k.key.arn.account(), k.key.arn.region()))
                .or_default()
                .push((k, d));
        }
    }
    for ((account, region), rows) in dependents {
        let part = dir
            .join("key_dependents")
            .join(format!("account_id={account}"))
            .join(format!("region={region}"));
        write_parquet(
            &part,
            "part-00000.parquet",
            key_dependents::key_dependents_frame(&rows),
        )?;
    }
    let mut failed: BTreeMap<(&str, &str), Vec<&UseCopy>> = BTreeMap::new();
    for f in &c.failed {
        failed
            .entry((f.key.account(), f.key.region()))
            .or_default()
            .push(f);
    }
    for ((account, region), rows) in failed {
        let part = dir
            .join("failed_attempts")
            .join(format!("account_id={account}"))
            .join(format!("region={region}"));
        write_parquet(
            &part,
            "part-00000.parquet",
            failed_attempts::failed_attempts_frame(&rows),
        )?;
    }
    write_parquet(
        &dir.join("accounts"),
        "part-00000.parquet",
        accounts::accounts_frame(&summary.accounts),
    )?;
    write_parquet(
        &dir.join("scan_manifest"),
        "part-00000.parquet",
        scan_manifest::manifest_frame(manifest),
    )?;
    if let Some(c) = integrity {
        write_parquet(
            &dir.join("integrity"),
            "part-00000.parquet",
            integrity::integrity_frame(&c.findings),
        )?;
    }
    let path = dir.join("report.html");
    std::fs::write(&path, html::render(c, evidence, summary))
        .map_err(|source| ReportError::Io { path, source })?;
    let path = dir.join("summary.json");
    let text = serde_json::to_string_pretty(&summary.to_json()).expect("summary serialises");
    std::fs::write(&path, text + "\n").map_err(|source| ReportError::Io { path, source })
}

/// The usage snapshot of a live run (`usage.jsonl`), so that any run can be replayed offline: the
/// answers KMS gave, or — for a resumed run — the interrupted run's file as it was kept.
pub fn write_usage(dir: &Path, tracked: &Tracked) -> Result<(), ReportError> {
    let path = dir.join("usage.jsonl");
    let io = |source| ReportError::Io {
        path: path.clone(),
        source,
    };
    match &tracked.source {
        Source::Snapshot(_) => Ok(()),
        Source::Kept(kept) => std::fs::copy(kept, &path).map(drop).map_err(io),
        Source::Live => {
            crate::inventory::write_snapshot(&tracked.accounts, tracked.keys(), &path).map_err(io)
        }
    }
}

fn mkdir(p: &Path) -> Result<(), ReportError> {
    std::fs::create_dir_all(p).map_err(|source| ReportError::Io {
        path: p.to_path_buf(),
        source,
    })
}

fn write_parquet(dir: &Path, name: &str, df: PolarsResult<DataFrame>) -> Result<(), ReportError> {
    mkdir(dir)?;
    let path = dir.join(name);
    let perr = |source| ReportError::Parquet {
        path: path.clone(),
        source,
    };
    let mut df = df.map_err(perr)?;
    let file = std::fs::File::create(&path).map_err(|source| ReportError::Io {
        path: path.clone(),
        source,
    })?;
    ParquetWriter::new(file).finish(&mut df).map_err(perr)?;
    Ok(())
}
