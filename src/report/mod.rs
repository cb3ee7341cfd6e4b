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

use crate::correlate::Correlated;
use crate::integrity::live::Evidence;
use crate::inventory::Source;
use crate::model::KeyArn;
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
    // kms_events/ exists even when no use was found (Athena's table has a location to read).
    mkdir(&dir.join("kms_events"))?;
    write_partitioned(
        dir,
        "kms_events",
        c.events.iter().map(|u| (&u.key, u)),
        kms_events::kms_events_frame,
    )?;
    write_partitioned(
        dir,
        "key_dependents",
        c.findings
            .iter()
            .flat_map(|k| k.dependents.iter().map(move |d| (&k.key.arn, (k, d)))),
        key_dependents::key_dependents_frame,
    )?;
    write_partitioned(
        dir,
        "failed_attempts",
        c.failed.iter().map(|f| (&f.key, f)),
        failed_attempts::failed_attempts_frame,
    )?;
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

/// `dir/table/`, one Hive partition (`account_id=…/region=…`) per account and region of the key
/// each row is about, in that order.
fn write_partitioned<'k, T>(
    dir: &Path,
    table: &str,
    rows: impl IntoIterator<Item = (&'k KeyArn, T)>,
    frame: impl Fn(&[T]) -> PolarsResult<DataFrame>,
) -> Result<(), ReportError> {
    let mut parts: BTreeMap<(&str, &str), Vec<T>> = BTreeMap::new();
    for (key, row) in rows {
        parts
            .entry((key.account(), key.region()))
            .or_default()
            .push(row);
    }
    for ((account, region), rows) in parts {
        let part = dir
            .join(table)
            .join(format!("account_id={account}"))
            .join(format!("region={region}"));
        write_parquet(&part, "part-00000.parquet", frame(&rows))?;
    }
    Ok(())
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
