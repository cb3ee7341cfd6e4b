//! integrity::coverage: the logs against the digests — every listed log of a planned day is in
//! the archive and hashes as listed, every log delivered inside the chain's period is listed —
//! and which planned days the chain covers from start to end.

use super::chain::Spans;
use super::digest::{folder_day, log_time, Digest};
use super::{Finding, Kind};
use crate::archive::layout::DayPrefix;
use crate::scan::{ManifestRow, ObjectStatus};
use chrono::{Duration, NaiveDate};
use std::collections::{BTreeSet, HashMap};

/// Findings about the logs of the `planned` days.
pub(super) fn logs(
    digests: &[Digest],
    manifest: &[ManifestRow],
    planned: &BTreeSet<DayPrefix>,
    spans: &Spans,
) -> Vec<Finding> {
    let is_planned = |a: &str, r: &str, d: NaiveDate| {
        planned.contains(&DayPrefix {
            account: a.to_string(),
            region: r.to_string(),
            day: d,
        })
    };
    let rows: HashMap<&str, &ManifestRow> =
        manifest.iter().map(|r| (r.object.as_str(), r)).collect();
    let mut listed: HashMap<&str, (&str, &Digest)> = HashMap::new();
    for d in digests {
        for (object, hash) in &d.logs {
            listed.insert(object.as_str(), (hash.as_str(), d));
        }
    }
    let mut log_findings = Vec::new();
    for (object, (hash, d)) in &listed {
        let Some(day) = folder_day(object) else {
            continue;
        };
        if !is_planned(&d.account, &d.region, day) {
            continue;
        }
        let finding = |kind, detail: String| Finding {
            kind,
            object: object.to_string(),
            account_id: d.account.clone(),
            region: d.region.clone(),
            days: vec![day],
            detail,
        };
        match rows.get(object) {
            None => log_findings.push(finding(
                Kind::LogMissing,
                format!("listed in digest {}, not in the archive", d.key),
            )),
            Some(r) => match &r.sha256 {
                Some(h) if h == hash => {}
                Some(h) => log_findings.push(finding(
                    Kind::LogModified,
                    format!("SHA-256 {h}, digest {} says {hash}", d.key),
                )),
                None => log_findings.push(finding(
                    Kind::LogModified,
                    format!(
                        "cannot be inflated to be hashed ({}); digest {} says {hash}",
                        r.reason.as_deref().unwrap_or("unreadable"),
                        d.key
                    ),
                )),
            },
        }
    }
    for r in manifest {
        let is_log = r.status != ObjectStatus::Skipped || r.archived;
        if !is_log || listed.contains_key(r.object.as_str()) {
            continue;
        }
        let Some(t) = log_time(&r.object) else {
            continue;
        };
        let inside = spans
            .get(&(r.account_id.clone(), r.region.clone()))
            .is_some_and(|s| s.iter().any(|(a, b)| *a <= t && t < *b));
        if inside {
            log_findings.push(Finding {
                kind: Kind::LogUnlisted,
                object: r.object.clone(),
                account_id: r.account_id.clone(),
                region: r.region.clone(),
                days: vec![r.delivery_date],
                detail: "delivered inside the period the digest chain covers, but in no digest"
                    .into(),
            });
        }
    }
    log_findings.sort_by(|a, b| a.object.cmp(&b.object));
    log_findings
}

/// The planned (account, region, day)s the chain spans from start to end.
pub(super) fn covered_days(
    planned: &BTreeSet<DayPrefix>,
    spans: &Spans,
) -> BTreeSet<(String, String, NaiveDate)> {
    let mut covered = BTreeSet::new();
    for p in planned {
        let Some(s) = spans.get(&(p.account.clone(), p.region.clone())) else {
            continue;
        };
        let day_start = p.day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let day_end = day_start + Duration::days(1);
        let mut cursor = day_start;
        let mut sorted = s.clone();
        sorted.sort();
        for (a, b) in sorted {
            if a <= cursor && b > cursor {
                cursor = b;
            }
        }
        if cursor >= day_end {
            covered.insert((p.account.clone(), p.region.clone(), p.day));
        }
    }
    covered
}
