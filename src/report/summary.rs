//! report::summary: the run as a value — verdict counts, the scan's counters, the digest check,
//! warnings — that serializes itself (`summary.json`) and renders itself (the printed summary).

use crate::correlate::{Correlated, KeyUsage, Verdict};
use crate::integrity::live::Evidence;
use crate::integrity::Checked;
use crate::inventory::accounts::{AccountRow, AccountStatus};
use crate::model::{iso, Instant, Warnings};
use crate::plan::Plan;
use crate::scan::ScanStats;
use std::collections::BTreeMap;

/// The digest check in `summary.json`: counts in `validate-logs`' vocabulary.
#[derive(Debug, Clone)]
pub struct IntegritySummary {
    pub digests: usize,
    pub signatures_verified: usize,
    pub signatures_unchecked: usize,
    /// Rows of `integrity/` per kind, informational ones (`chain_restart`) included.
    pub counts: BTreeMap<&'static str, usize>,
    /// The findings that fail: all but `chain_restart`.
    pub failures: usize,
}

impl IntegritySummary {
    pub fn of(c: &Checked) -> IntegritySummary {
        IntegritySummary {
            digests: c.digests,
            signatures_verified: c.signatures_verified,
            signatures_unchecked: c.signatures_unchecked,
            counts: c.counts(),
            failures: c.failures().count(),
        }
    }

    /// The findings that fail the run (exit 1) and weaken verdicts.
    pub fn findings(&self) -> usize {
        self.failures
    }
}

/// What `summary.json` says about the run.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The run itself: its arguments, archive, threads, time taken.
    pub run: RunFacts,
    pub keys: usize,
    pub verdicts: BTreeMap<&'static str, usize>,
    pub tracking: BTreeMap<&'static str, usize>,
    pub planned_prefixes: usize,
    /// Of them, the callers' folders read for the callers' copies of cross-account uses.
    pub caller_prefixes: usize,
    /// The watched days (`--watch-days`): failed attempts there count for every key.
    pub watch: Option<(Instant, Instant)>,
    pub stats: ScanStats,
    pub pre_tracking_events: usize,
    /// The digest check, when it ran.
    pub integrity: Option<IntegritySummary>,
    /// The process's peak resident memory (Linux `VmHWM`), when known.
    pub peak_rss_mib: Option<f64>,
    pub warnings: Vec<String>,
    /// Keys whose verdict is `inconclusive`, with the reason.
    pub attention: Vec<(String, String)>,
    /// Keys that callers still tried while they were disabled or pending deletion: (ARN, how
    /// many attempts, the last one).
    pub still_called: Vec<(String, i64, Option<Instant>)>,
    /// The accounts examined, and what became of each.
    pub accounts: Vec<AccountRow>,
    /// The regions whose keys were listed (live), or that the keys are in (snapshot).
    pub regions: Vec<String>,
}

/// What the pipeline knows of the run itself, for the summary.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    pub arguments: Vec<String>,
    /// The archive read (`--logs`, resolved when it was `auto`).
    pub logs: String,
    pub backfill: &'static str,
    pub since: Option<Instant>,
    pub threads: usize,
    pub elapsed_seconds: f64,
    /// Objects whose results came from the checkpoint of an interrupted run (`--resume`).
    pub resumed_objects: usize,
    /// Why the resume checkpoint could not be written, if it could not.
    pub checkpoint_error: Option<(String, String)>,
    /// The accounts of the inventory, with their keys counted.
    pub accounts: Vec<AccountRow>,
}

impl Summary {
    /// The summary of a finished run: the verdicts, the scan's counters, the digest check, and
    /// every warning — the evidence's own first, then the stages', then the run's.
    pub fn of_run(
        c: &Correlated,
        evidence: &Evidence,
        plan: &Plan,
        mut facts: RunFacts,
        warnings: Warnings,
    ) -> Summary {
        let mut s = Summary::new(
            &c.findings,
            c.events.len(),
            evidence.scan.stats.clone(),
            plan.prefixes.len(),
        );
        s.caller_prefixes = plan.callers.len();
        s.watch = plan.watch.map(|w| (w.start, w.end));
        s.accounts = std::mem::take(&mut facts.accounts);
        let regions: std::collections::BTreeSet<&String> =
            s.accounts.iter().flat_map(|a| &a.account.regions).collect();
        s.regions = regions.into_iter().cloned().collect();
        s.warnings.extend(warnings.into_vec());
        s.peak_rss_mib = crate::progress::peak_rss_mib();
        if let Some((path, e)) = facts.checkpoint_error.take() {
            s.warnings.push(format!(
                "the resume checkpoint {path} could not be written ({e}); a resumed run would scan again"
            ));
        }
        s.run = facts;
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
        let mut still_called = Vec::new();
        for f in findings {
            if f.unusable_attempts > 0 {
                still_called.push((
                    f.key.arn.to_string(),
                    f.unusable_attempts,
                    f.last_failed_attempt,
                ));
            }
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
            run: RunFacts::default(),
            keys: findings.len(),
            verdicts,
            tracking,
            planned_prefixes,
            caller_prefixes: 0,
            watch: None,
            accounts: Vec::new(),
            regions: Vec::new(),
            stats,
            pre_tracking_events: events,
            peak_rss_mib: None,
            integrity: None,
            warnings,
            attention,
            still_called,
        }
    }

    /// Evidence was incomplete somewhere: exit code 1.
    pub fn incomplete(&self) -> bool {
        self.stats.objects_unreadable > 0
            || self.verdicts.get("inconclusive").copied().unwrap_or(0) > 0
            || self.integrity.as_ref().is_some_and(|i| i.findings() > 0)
            || self.accounts_not_examined() > 0
    }

    /// Accounts whose keys were not examined: their role could not be assumed, or their keys
    /// could not be listed.
    pub fn accounts_not_examined(&self) -> usize {
        self.accounts
            .iter()
            .filter(|a| a.account.status == AccountStatus::Failed)
            .count()
    }

    fn mb_per_s(&self) -> f64 {
        if self.run.elapsed_seconds > 0.0 {
            self.stats.bytes_read as f64 / 1e6 / self.run.elapsed_seconds
        } else {
            0.0
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let s = &self.stats;
        serde_json::json!({
            "tool": "keytrail",
            "version": env!("CARGO_PKG_VERSION"),
            "arguments": self.run.arguments,
            "logs": self.run.logs,
            "backfill": self.run.backfill,
            "since": self.run.since.map(iso),
            "threads": self.run.threads,
            "keys": self.keys,
            "verdicts": self.verdicts,
            "tracking_status": self.tracking,
            "accounts": {
                "inventoried": self.accounts.iter().filter(|a| a.account.status == AccountStatus::Inventoried).count(),
                "skipped": self.accounts.iter().filter(|a| a.account.status == AccountStatus::Skipped).count(),
                "failed": self.accounts_not_examined(),
                "not_inventoried": self.accounts.iter().filter(|a| a.account.status != AccountStatus::Inventoried).map(|a| serde_json::json!({
                    "account_id": a.account.id, "account_name": a.account.name,
                    "status": a.account.status.as_str(), "reason": a.account.reason,
                })).collect::<Vec<_>>(),
            },
            "regions": self.regions,
            "planned_prefixes": self.planned_prefixes,
            "caller_prefixes": self.caller_prefixes,
            "watch": self.watch.map(|(from, until)| serde_json::json!({"from": iso(from), "until": iso(until)})),
            "objects": {
                "read": s.objects_read,
                "skipped": s.objects_skipped,
                "unreadable": s.objects_unreadable,
                "archived": s.objects_archived,
                "bytes_archived": s.bytes_archived,
                "bytes_read": s.bytes_read,
                "resumed_from_checkpoint": self.run.resumed_objects,
            },
            "records": s.records,
            "kms_records": s.kms_records,
            "malformed_records": s.malformed_records,
            "unattributable_kms_uses": s.unattributable_uses,
            "kms_events": self.pre_tracking_events,
            "elapsed_seconds": self.run.elapsed_seconds,
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
            "still_called_while_disabled": self.still_called.iter().map(|(k, n, t)| serde_json::json!({"key_arn": k, "attempts": n, "last_attempt": t.map(iso)})).collect::<Vec<_>>(),
        })
    }

    /// The summary printed at the end of a run.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let s = &self.stats;
        let _ = writeln!(
            o,
            "keytrail: {} keys; archive: {}",
            self.keys, self.run.logs
        );
        for (v, n) in &self.verdicts {
            let _ = writeln!(o, "  {v:<22} {n}");
        }
        if let Some((from, until)) = self.watch {
            let _ = writeln!(
                o,
                "watched {} to {} (--watch-days): failed attempts there count for every key",
                iso(from),
                iso(until)
            );
        }
        if !self.still_called.is_empty() {
            let _ = writeln!(
                o,
                "still called while disabled or pending deletion ({} keys; retiring them breaks a caller — see failed_attempts/):",
                self.still_called.len()
            );
            for (k, n, t) in self.still_called.iter().take(20) {
                let last = t.map(iso).unwrap_or_default();
                let _ = writeln!(o, "  {k}: {n} attempt(s), the last at {last}");
            }
            if self.still_called.len() > 20 {
                let _ = writeln!(
                    o,
                    "  … {} more in summary.json",
                    self.still_called.len() - 20
                );
            }
        }
        let count = |st: AccountStatus| {
            self.accounts
                .iter()
                .filter(|a| a.account.status == st)
                .count()
        };
        let _ = writeln!(
            o,
            "accounts: {} inventoried, {} skipped, {} failed; regions: {}",
            count(AccountStatus::Inventoried),
            count(AccountStatus::Skipped),
            count(AccountStatus::Failed),
            if self.regions.is_empty() {
                "none".to_string()
            } else {
                self.regions.join(", ")
            }
        );
        for a in self
            .accounts
            .iter()
            .filter(|a| a.account.status == AccountStatus::Failed)
        {
            let _ = writeln!(
                o,
                "  account {} not examined: {}",
                a.account.id,
                a.account.reason.as_deref().unwrap_or("failed")
            );
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
                match (i.findings(), found.is_empty()) {
                    (_, true) => "no findings".to_string(),
                    (0, false) =>
                        format!("no failing findings; {} (see integrity/)", found.join(", ")),
                    _ => format!("findings: {} (see integrity/)", found.join(", ")),
                }
            );
        }
        if self.run.resumed_objects > 0 {
            let _ = writeln!(
                o,
                "resumed: {} objects' results taken from the interrupted run's checkpoint",
                self.run.resumed_objects
            );
        }
        let _ = writeln!(
            o,
            "elapsed: {:.2} s, {:.1} MB/s (compressed)",
            self.run.elapsed_seconds,
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
