//! report: the only stage that writes files. Athena-ready Parquet (`key_usage/`, `kms_events/`
//! Hive-partitioned by `account_id=`/`region=`, `scan_manifest/`), `summary.json`, and the human
//! summary. Output goes to a staging directory beside `--out` and is renamed into place only when
//! complete, so a failed or interrupted run never leaves a half-written report.
//!
//! Every timestamp is written as Parquet INT64 `TIMESTAMP(MILLIS, isAdjustedToUTC=true)`, the form
//! Athena's engine reads as `timestamp`; dates as Parquet `DATE`.

use crate::correlate::{Correlated, KeyUsage, Use, Verdict};
use crate::integrity::live::Evidence;
use crate::integrity::{Checked, Finding as IntegrityFinding};
use crate::inventory::Source;
use crate::model::Warnings;
use crate::model::{iso, Instant};
use crate::plan::Plan;
use crate::scan::{ManifestRow, ScanStats};
use crate::tracking::Tracked;
use chrono::NaiveDate;
use polars::chunked_array::builder::get_list_builder;
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

/// The digest check in `summary.json`: counts in `validate-logs`' vocabulary.
#[derive(Debug, Clone)]
pub struct IntegritySummary {
    pub digests: usize,
    pub signatures_verified: usize,
    pub signatures_unchecked: usize,
    pub counts: BTreeMap<&'static str, usize>,
}

impl IntegritySummary {
    pub fn of(c: &Checked) -> IntegritySummary {
        IntegritySummary {
            digests: c.digests,
            signatures_verified: c.signatures_verified,
            signatures_unchecked: c.signatures_unchecked,
            counts: c.counts(),
        }
    }

    pub fn findings(&self) -> usize {
        self.counts.values().sum()
    }
}

/// What `summary.json` says about the run.
#[derive(Debug, Clone)]
pub struct Summary {
    pub arguments: Vec<String>,
    /// The archive read (`--logs`, resolved when it was `auto`).
    pub logs: String,
    pub backfill: &'static str,
    pub since: Option<Instant>,
    pub threads: usize,
    pub keys: usize,
    pub verdicts: BTreeMap<&'static str, usize>,
    pub tracking: BTreeMap<&'static str, usize>,
    pub planned_prefixes: usize,
    pub stats: ScanStats,
    pub pre_tracking_events: usize,
    pub elapsed_seconds: f64,
    /// The digest check, when it ran.
    pub integrity: Option<IntegritySummary>,
    /// The process's peak resident memory (Linux `VmHWM`), when known.
    pub peak_rss_mib: Option<f64>,
    /// Objects whose results came from the checkpoint of an interrupted run (`--resume`).
    pub resumed_objects: usize,
    pub warnings: Vec<String>,
    /// Keys whose verdict is `inconclusive`, with the reason.
    pub attention: Vec<(String, String)>,
}

/// What the pipeline knows of the run itself, for the summary.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    pub arguments: Vec<String>,
    pub logs: String,
    pub backfill: &'static str,
    pub since: Option<Instant>,
    pub threads: usize,
    pub elapsed_seconds: f64,
    pub resumed_objects: usize,
    /// Why the resume checkpoint could not be written, if it could not.
    pub checkpoint_error: Option<(String, String)>,
}

impl Summary {
    /// The summary of a finished run: the verdicts, the scan's counters, the digest check, and
    /// every warning — the evidence's own first, then the stages', then the run's.
    pub fn of_run(
        c: &Correlated,
        evidence: &Evidence,
        plan: &Plan,
        facts: RunFacts,
        warnings: Warnings,
    ) -> Summary {
        let mut s = Summary::new(
            &c.findings,
            c.events.len(),
            evidence.scan.stats.clone(),
            plan.prefixes.len(),
        );
        s.warnings.extend(warnings.into_vec());
        s.arguments = facts.arguments;
        s.logs = facts.logs;
        s.backfill = facts.backfill;
        s.since = facts.since;
        s.threads = facts.threads;
        s.elapsed_seconds = facts.elapsed_seconds;
        s.resumed_objects = facts.resumed_objects;
        s.peak_rss_mib = crate::progress::peak_rss_mib();
        if let Some((path, e)) = facts.checkpoint_error {
            s.warnings.push(format!(
                "the resume checkpoint {path} could not be written ({e}); a resumed run would scan again"
            ));
        }
        s.integrity = evidence.integrity.as_ref().map(IntegritySummary::of);
        if let Some(i) = s.integrity.as_ref().filter(|i| i.findings() > 0) {
            s.warnings.push(format!(
                "{} log file integrity finding(s); see integrity/ — verdicts in the days concerned are not stronger than that",
                i.findings()
            ));
        }
        s
    }

    pub fn new(
        findings: &[KeyUsage],
        events: usize,
        stats: ScanStats,
        planned_prefixes: usize,
    ) -> Summary {
        let mut verdicts: BTreeMap<&'static str, usize> =
            Verdict::ALL.iter().map(|v| (v.as_str(), 0)).collect();
        let mut tracking = BTreeMap::new();
        let mut attention = Vec::new();
        for f in findings {
            *verdicts.entry(f.verdict.as_str()).or_default() += 1;
            *tracking.entry(f.status.as_str()).or_default() += 1;
            if f.verdict == Verdict::Inconclusive {
                attention.push((f.key.arn.to_string(), f.verdict_reason.clone()));
            }
        }
        let mut warnings = Vec::new();
        if stats.objects_unreadable > 0 {
            warnings.push(format!(
                "{} log object(s) could not be read; see scan_manifest (status = 'unreadable')",
                stats.objects_unreadable
            ));
        }
        if stats.objects_archived > 0 {
            warnings.push(format!(
                "{} log object(s) ({:.1} MB) are archived in GLACIER/DEEP_ARCHIVE and were not read; restore them and run again",
                stats.objects_archived,
                stats.bytes_archived as f64 / 1e6
            ));
        }
        if stats.malformed_records > 0 {
            warnings.push(format!(
                "{} malformed record(s) were skipped; see scan_manifest.malformed_records",
                stats.malformed_records
            ));
        }
        if stats.unattributable_uses > 0 {
            warnings.push(format!(
                "{} successful KMS call(s) name no key (no resources, no keyId); keys without other evidence in those days are inconclusive",
                stats.unattributable_uses
            ));
        }
        Summary {
            arguments: Vec::new(),
            logs: String::new(),
            backfill: "",
            since: None,
            threads: 0,
            keys: findings.len(),
            verdicts,
            tracking,
            planned_prefixes,
            stats,
            pre_tracking_events: events,
            elapsed_seconds: 0.0,
            resumed_objects: 0,
            peak_rss_mib: None,
            integrity: None,
            warnings,
            attention,
        }
    }

    /// Evidence was incomplete somewhere: exit code 1.
    pub fn incomplete(&self) -> bool {
        self.stats.objects_unreadable > 0
            || self.verdicts.get("inconclusive").copied().unwrap_or(0) > 0
            || self.integrity.as_ref().is_some_and(|i| i.findings() > 0)
    }

    fn mb_per_s(&self) -> f64 {
        if self.elapsed_seconds > 0.0 {
            self.stats.bytes_read as f64 / 1e6 / self.elapsed_seconds
        } else {
            0.0
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let s = &self.stats;
        serde_json::json!({
            "tool": "keytrail",
            "version": env!("CARGO_PKG_VERSION"),
            "arguments": self.arguments,
            "logs": self.logs,
            "backfill": self.backfill,
            "since": self.since.map(iso),
            "threads": self.threads,
            "keys": self.keys,
            "verdicts": self.verdicts,
            "tracking_status": self.tracking,
            "planned_prefixes": self.planned_prefixes,
            "objects": {
                "read": s.objects_read,
                "skipped": s.objects_skipped,
                "unreadable": s.objects_unreadable,
                "archived": s.objects_archived,
                "bytes_archived": s.bytes_archived,
                "bytes_read": s.bytes_read,
                "resumed_from_checkpoint": self.resumed_objects,
            },
            "records": s.records,
            "kms_records": s.kms_records,
            "malformed_records": s.malformed_records,
            "unattributable_kms_uses": s.unattributable_uses,
            "kms_events": self.pre_tracking_events,
            "elapsed_seconds": self.elapsed_seconds,
            "peak_rss_mib": self.peak_rss_mib,
            "integrity": self.integrity.as_ref().map(|i| serde_json::json!({
                "digests": i.digests,
                "signatures_verified": i.signatures_verified,
                "signatures_not_verified": i.signatures_unchecked,
                "findings": i.counts,
            })),
            "throughput_mb_per_s": self.mb_per_s(),
            "warnings": self.warnings,
            "inconclusive_keys": self.attention.iter().map(|(k, r)| serde_json::json!({"key_arn": k, "reason": r})).collect::<Vec<_>>(),
        })
    }

    /// The summary printed at the end of a run.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let s = &self.stats;
        let _ = writeln!(o, "keytrail: {} keys; archive: {}", self.keys, self.logs);
        for (v, n) in &self.verdicts {
            let _ = writeln!(o, "  {v:<22} {n}");
        }
        let _ = writeln!(
            o,
            "objects: {} read ({:.1} MB), {} skipped, {} unreadable; {} records, {} KMS records",
            s.objects_read,
            s.bytes_read as f64 / 1e6,
            s.objects_skipped,
            s.objects_unreadable,
            s.records,
            s.kms_records
        );
        if let Some(i) = &self.integrity {
            let found: Vec<String> = i
                .counts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            let _ = writeln!(
                o,
                "integrity: {} digests, {} signatures verified, {} not; {}",
                i.digests,
                i.signatures_verified,
                i.signatures_unchecked,
                if found.is_empty() {
                    "no findings".to_string()
                } else {
                    format!("findings: {} (see integrity/)", found.join(", "))
                }
            );
        }
        if self.resumed_objects > 0 {
            let _ = writeln!(
                o,
                "resumed: {} objects' results taken from the interrupted run's checkpoint",
                self.resumed_objects
            );
        }
        let _ = writeln!(
            o,
            "elapsed: {:.2} s, {:.1} MB/s (compressed)",
            self.elapsed_seconds,
            self.mb_per_s()
        );
        if !self.attention.is_empty() {
            let _ = writeln!(
                o,
                "needs attention ({} inconclusive):",
                self.attention.len()
            );
            for (k, r) in self.attention.iter().take(20) {
                let _ = writeln!(o, "  {k}: {r}");
            }
            if self.attention.len() > 20 {
                let _ = writeln!(o, "  … {} more in summary.json", self.attention.len() - 20);
            }
        }
        for w in &self.warnings {
            let _ = writeln!(o, "warning: {w}");
        }
        o
    }
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
        key_usage_frame(&c.findings),
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
        write_parquet(&part, "part-00000.parquet", kms_events_frame(&uses))?;
    }
    write_parquet(
        &dir.join("scan_manifest"),
        "part-00000.parquet",
        manifest_frame(manifest),
    )?;
    if let Some(c) = integrity {
        write_parquet(
            &dir.join("integrity"),
            "part-00000.parquet",
            integrity_frame(&c.findings),
        )?;
    }
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
        Source::Live => crate::inventory::write_snapshot(tracked.keys(), &path).map_err(io),
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

fn s(name: &str, v: Vec<Option<&str>>) -> Column {
    Column::new(name.into(), v)
}

fn ts(name: &str, v: Vec<Option<Instant>>) -> PolarsResult<Column> {
    let millis: Vec<Option<i64>> = v
        .into_iter()
        .map(|t| t.map(|t| t.timestamp_millis()))
        .collect();
    Ok(Series::new(name.into(), millis)
        .cast(&DataType::Datetime(
            TimeUnit::Milliseconds,
            Some(TimeZone::UTC),
        ))?
        .into())
}

fn date(name: &str, v: Vec<NaiveDate>) -> PolarsResult<Column> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid");
    let days: Vec<i32> = v
        .into_iter()
        .map(|d| (d - epoch).num_days() as i32)
        .collect();
    Ok(Series::new(name.into(), days).cast(&DataType::Date)?.into())
}

fn list(name: &str, v: Vec<&[String]>) -> Column {
    let total = v.iter().map(|l| l.len()).sum();
    let mut b = get_list_builder(&DataType::String, total, v.len(), name.into());
    for l in v {
        let items: Vec<&str> = l.iter().map(String::as_str).collect();
        b.append_series(&Series::new("".into(), items))
            .expect("string list");
    }
    b.finish().into_series().into()
}

fn key_usage_frame(f: &[KeyUsage]) -> PolarsResult<DataFrame> {
    let lu = |g: fn(&crate::inventory::LastUsage) -> Option<&str>| -> Vec<Option<&str>> {
        f.iter()
            .map(|x| x.key.last_usage.as_ref().and_then(g))
            .collect()
    };
    DataFrame::new(
        f.len(),
        vec![
            s(
                "key_arn",
                f.iter().map(|x| Some(x.key.arn.as_str())).collect(),
            ),
            s(
                "key_id",
                f.iter().map(|x| Some(x.key.arn.key_id())).collect(),
            ),
            s(
                "account_id",
                f.iter().map(|x| Some(x.key.arn.account())).collect(),
            ),
            s(
                "region",
                f.iter().map(|x| Some(x.key.arn.region())).collect(),
            ),
            list(
                "aliases",
                f.iter().map(|x| x.key.aliases.as_slice()).collect(),
            ),
            s(
                "key_state",
                f.iter().map(|x| x.key.key_state.as_deref()).collect(),
            ),
            s(
                "key_manager",
                f.iter().map(|x| x.key.key_manager.as_deref()).collect(),
            ),
            Column::new(
                "multi_region".into(),
                f.iter().map(multi_region).collect::<Vec<_>>(),
            ),
            ts(
                "key_creation_date",
                f.iter().map(|x| x.key.creation).collect(),
            )?,
            ts(
                "tracking_start_date",
                f.iter().map(|x| x.key.tracking_start).collect(),
            )?,
            s(
                "tracking_status",
                f.iter().map(|x| Some(x.status.as_str())).collect(),
            ),
            s("last_usage_operation", lu(|u| u.operation.as_deref())),
            ts(
                "last_usage_time",
                f.iter()
                    .map(|x| x.key.last_usage.as_ref().map(|u| u.timestamp))
                    .collect(),
            )?,
            s("last_usage_event_id", lu(|u| u.event_id.as_deref())),
            s(
                "last_usage_kms_request_id",
                lu(|u| u.kms_request_id.as_deref()),
            ),
            Column::new(
                "last_usage_event_found".into(),
                f.iter()
                    .map(|x| x.last_usage_event_found)
                    .collect::<Vec<_>>(),
            ),
            s(
                "last_usage_principal",
                f.iter()
                    .map(|x| x.last_usage_principal.as_deref())
                    .collect(),
            ),
            s(
                "last_usage_source_ip",
                f.iter()
                    .map(|x| x.last_usage_source_ip.as_deref())
                    .collect(),
            ),
            s(
                "last_usage_user_agent",
                f.iter()
                    .map(|x| x.last_usage_user_agent.as_deref())
                    .collect(),
            ),
            ts(
                "backfill_window_start",
                f.iter().map(|x| x.window.map(|w| w.start)).collect(),
            )?,
            ts(
                "backfill_window_end",
                f.iter().map(|x| x.window.map(|w| w.end)).collect(),
            )?,
            Column::new(
                "pre_tracking_use_count".into(),
                f.iter()
                    .map(|x| x.pre_tracking_use_count)
                    .collect::<Vec<i64>>(),
            ),
            ts(
                "pre_tracking_first_use",
                f.iter().map(|x| x.pre_tracking_first_use).collect(),
            )?,
            ts(
                "pre_tracking_last_use",
                f.iter().map(|x| x.pre_tracking_last_use).collect(),
            )?,
            s(
                "pre_tracking_last_operation",
                f.iter()
                    .map(|x| x.pre_tracking_last_operation.as_deref())
                    .collect(),
            ),
            s(
                "pre_tracking_last_event_id",
                f.iter()
                    .map(|x| x.pre_tracking_last_event_id.as_deref())
                    .collect(),
            ),
            list(
                "pre_tracking_principals",
                f.iter()
                    .map(|x| x.pre_tracking_principals.as_slice())
                    .collect(),
            ),
            Column::new(
                "coverage_days_expected".into(),
                f.iter()
                    .map(|x| x.coverage_days_expected)
                    .collect::<Vec<i64>>(),
            ),
            Column::new(
                "coverage_days_read".into(),
                f.iter().map(|x| x.coverage_days_read).collect::<Vec<i64>>(),
            ),
            Column::new(
                "unreadable_objects".into(),
                f.iter().map(|x| x.unreadable_objects).collect::<Vec<i64>>(),
            ),
            s(
                "verdict",
                f.iter().map(|x| Some(x.verdict.as_str())).collect(),
            ),
            s(
                "verdict_reason",
                f.iter().map(|x| Some(x.verdict_reason.as_str())).collect(),
            ),
            s(
                "integrity_status",
                f.iter().map(|x| Some(x.integrity_status)).collect(),
            ),
            Column::new(
                "integrity_failures".into(),
                f.iter().map(|x| x.integrity_failures).collect::<Vec<i64>>(),
            ),
        ],
    )
}

/// `multi_region` from `DescribeKey`, else from the key id (`mrk-` ids are multi-Region keys).
fn multi_region(f: &KeyUsage) -> bool {
    f.key
        .multi_region
        .unwrap_or_else(|| f.key.arn.key_id().starts_with("mrk-"))
}

/// One partition of `kms_events`; `account_id` and `region` are the partition folders.
fn kms_events_frame(u: &[&Use]) -> PolarsResult<DataFrame> {
    DataFrame::new(
        u.len(),
        vec![
            s("key_arn", u.iter().map(|x| Some(x.key.as_str())).collect()),
            s(
                "key_role",
                u.iter().map(|x| Some(x.role.as_str())).collect(),
            ),
            s(
                "event_id",
                u.iter().map(|x| Some(x.event_id.as_str())).collect(),
            ),
            s(
                "shared_event_id",
                u.iter().map(|x| x.shared_event_id.as_deref()).collect(),
            ),
            s(
                "caller_event_id",
                u.iter().map(|x| x.caller_event_id.as_deref()).collect(),
            ),
            ts("event_time", u.iter().map(|x| Some(x.event_time)).collect())?,
            s(
                "operation",
                u.iter().map(|x| Some(x.operation.as_str())).collect(),
            ),
            s(
                "principal_arn",
                u.iter().map(|x| x.principal_arn.as_deref()).collect(),
            ),
            s(
                "principal_type",
                u.iter().map(|x| x.principal_type.as_deref()).collect(),
            ),
            s(
                "principal_account",
                u.iter().map(|x| x.principal_account.as_deref()).collect(),
            ),
            s(
                "invoked_by",
                u.iter().map(|x| x.invoked_by.as_deref()).collect(),
            ),
            s(
                "source_ip",
                u.iter().map(|x| x.source_ip.as_deref()).collect(),
            ),
            s(
                "user_agent",
                u.iter().map(|x| x.user_agent.as_deref()).collect(),
            ),
            s(
                "encryption_context",
                u.iter().map(|x| x.encryption_context.as_deref()).collect(),
            ),
            s(
                "recipient_account_id",
                u.iter()
                    .map(|x| x.recipient_account_id.as_deref())
                    .collect(),
            ),
            s(
                "log_object",
                u.iter().map(|x| Some(x.log_object.as_str())).collect(),
            ),
        ],
    )
}

fn manifest_frame(m: &[ManifestRow]) -> PolarsResult<DataFrame> {
    let n = |g: fn(&ManifestRow) -> u64| -> Column {
        Column::new(
            "".into(),
            m.iter().map(|r| g(r) as i64).collect::<Vec<i64>>(),
        )
    };
    DataFrame::new(
        m.len(),
        vec![
            s(
                "object",
                m.iter().map(|r| Some(r.object.as_str())).collect(),
            ),
            n(|r| r.size_bytes).with_name("size_bytes".into()),
            s(
                "status",
                m.iter().map(|r| Some(r.status.as_str())).collect(),
            ),
            s("reason", m.iter().map(|r| r.reason.as_deref()).collect()),
            n(|r| r.records).with_name("records".into()),
            n(|r| r.kms_records).with_name("kms_records".into()),
            n(|r| r.malformed_records).with_name("malformed_records".into()),
            n(|r| r.unattributable_uses).with_name("unattributable_uses".into()),
            s(
                "account_id",
                m.iter().map(|r| Some(r.account_id.as_str())).collect(),
            ),
            s(
                "region",
                m.iter().map(|r| Some(r.region.as_str())).collect(),
            ),
            date("delivery_date", m.iter().map(|r| r.delivery_date).collect())?,
            s("sha256", m.iter().map(|r| r.sha256.as_deref()).collect()),
        ],
    )
}

fn integrity_frame(f: &[IntegrityFinding]) -> PolarsResult<DataFrame> {
    DataFrame::new(
        f.len(),
        vec![
            s(
                "object",
                f.iter().map(|x| Some(x.object.as_str())).collect(),
            ),
            s("kind", f.iter().map(|x| Some(x.kind.as_str())).collect()),
            s(
                "detail",
                f.iter().map(|x| Some(x.detail.as_str())).collect(),
            ),
            s(
                "account_id",
                f.iter().map(|x| Some(x.account_id.as_str())).collect(),
            ),
            s(
                "region",
                f.iter().map(|x| Some(x.region.as_str())).collect(),
            ),
            date(
                "first_day",
                f.iter()
                    .map(|x| x.days.first().copied().unwrap_or_default())
                    .collect(),
            )?,
            date(
                "last_day",
                f.iter()
                    .map(|x| x.days.last().copied().unwrap_or_default())
                    .collect(),
            )?,
        ],
    )
}
