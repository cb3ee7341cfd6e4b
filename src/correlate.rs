//! correlate: from use copies, the manifest and the plan to one finding per key. Pure.
//! It deduplicates (same `eventID` delivered twice; the two copies of a cross-account call joined
//! on `sharedEventID`), joins each key's `CloudTrailEventId` to its log record, measures how
//! complete the evidence of each backfill window is, and decides the verdict. A negative finding
//! is never stronger than its evidence.

use crate::integrity::Checked;
use crate::inventory::{Key, LastUsage};
use crate::model::{iso, Instant, KeyArn};
use crate::plan::{KeyPlan, Plan, Window};
use crate::scan::record::{KeyRole, UseCopy};
use crate::scan::{ManifestRow, ObjectStatus};
use crate::tracking::TrackingStatus;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    InUse,
    NeverUsed,
    UsedBeforeTracking,
    NoUseFound,
    Inconclusive,
}

impl Verdict {
    pub const ALL: [Verdict; 5] = [
        Verdict::InUse,
        Verdict::NeverUsed,
        Verdict::UsedBeforeTracking,
        Verdict::NoUseFound,
        Verdict::Inconclusive,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::InUse => "in_use",
            Verdict::NeverUsed => "never_used",
            Verdict::UsedBeforeTracking => "used_before_tracking",
            Verdict::NoUseFound => "no_use_found",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// One use after deduplication: a row of `kms_events/`.
#[derive(Debug, Clone, PartialEq)]
pub struct Use {
    /// The merged record: the key owner's copy where it was read, else the caller's (so
    /// `event_id` is the owner's `eventID` whenever it can be), with the caller's identity
    /// wherever the caller's copy was read.
    pub merged: UseCopy,
    /// The caller's copy's `eventID`, for a cross-account call whose caller copy was read.
    pub caller_event_id: Option<String>,
}

/// A use reads as its merged record.
impl std::ops::Deref for Use {
    type Target = UseCopy;
    fn deref(&self) -> &UseCopy {
        &self.merged
    }
}

impl Use {
    /// Who used the key: the caller's ARN; for a service acting on its own, the service; for the
    /// owner's copy of a cross-account call whose caller copy was not read, the caller's account.
    pub fn principal(&self) -> Option<&str> {
        self.principal_arn
            .as_deref()
            .or(self.invoked_by.as_deref())
            .or(self.principal_account.as_deref())
    }
}

/// One row of `key_usage/`.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub key: Key,
    pub status: TrackingStatus,
    pub last_usage_event_found: bool,
    pub last_usage_principal: Option<String>,
    pub last_usage_source_ip: Option<String>,
    pub last_usage_user_agent: Option<String>,
    pub window: Option<Window>,
    pub pre_tracking_use_count: i64,
    pub pre_tracking_first_use: Option<Instant>,
    pub pre_tracking_last_use: Option<Instant>,
    pub pre_tracking_last_operation: Option<String>,
    pub pre_tracking_last_event_id: Option<String>,
    pub pre_tracking_principals: Vec<String>,
    pub coverage_days_expected: i64,
    pub coverage_days_read: i64,
    pub unreadable_objects: i64,
    /// verified | partial | failed | not_checked (the digest check over the key's days).
    pub integrity_status: &'static str,
    /// Integrity findings (see `integrity/`) in the key's days.
    pub integrity_failures: i64,
    pub verdict: Verdict,
    pub verdict_reason: String,
}

#[derive(Debug, Default)]
pub struct Correlated {
    /// In key-ARN order.
    pub findings: Vec<Finding>,
    /// The pre-tracking uses of backfilled keys and each key's joined last use, sorted.
    pub events: Vec<Use>,
}

/// Evidence per (account, region, delivery day), from the manifest.
#[derive(Debug, Default, Clone, Copy)]
struct DayEvidence {
    read: u64,
    unreadable: u64,
    archived: u64,
    unattributable: u64,
}

/// Merges copies into uses: one per (key, role, call). Idempotent on its own output's identity,
/// independent of the order copies arrive in.
pub fn dedupe(mut copies: Vec<UseCopy>) -> Vec<Use> {
    copies.sort_by(|a, b| {
        (&a.key, a.role, &a.event_id, &a.log_object).cmp(&(
            &b.key,
            b.role,
            &b.event_id,
            &b.log_object,
        ))
    });
    copies.dedup_by(|b, a| a.key == b.key && a.role == b.role && a.event_id == b.event_id);
    let mut groups: BTreeMap<(KeyArn, KeyRole, String), Vec<UseCopy>> = BTreeMap::new();
    for c in copies {
        let call = c
            .shared_event_id
            .clone()
            .unwrap_or_else(|| c.event_id.clone());
        groups
            .entry((c.key.clone(), c.role, call))
            .or_default()
            .push(c);
    }
    groups.into_values().map(merge).collect()
}

fn merge(copies: Vec<UseCopy>) -> Use {
    let owner = copies.iter().find(|c| c.is_owner_copy());
    let caller = copies.iter().find(|c| !c.is_owner_copy());
    let base = owner.or(caller).expect("a group has at least one copy");
    // The caller's own copy knows who called; the owner's copy of a cross-account call only
    // knows the caller's account.
    let who = caller.unwrap_or(base);
    let mut merged = base.clone();
    merged.shared_event_id = base
        .shared_event_id
        .clone()
        .or_else(|| who.shared_event_id.clone());
    merged.principal_arn = who
        .principal_arn
        .clone()
        .or_else(|| base.principal_arn.clone());
    merged.principal_type = who.principal_type.clone();
    merged.principal_account = who
        .principal_account
        .clone()
        .or_else(|| base.principal_account.clone());
    merged.invoked_by = who.invoked_by.clone().or_else(|| base.invoked_by.clone());
    merged.encryption_context = base
        .encryption_context
        .clone()
        .or_else(|| who.encryption_context.clone());
    Use {
        merged,
        caller_event_id: caller.map(|c| c.event_id.clone()),
    }
}

pub fn correlate(
    keys: &[Key],
    plan: &Plan,
    copies: Vec<UseCopy>,
    manifest: &[ManifestRow],
    integrity: Option<&Checked>,
) -> Correlated {
    let mut evidence: HashMap<(&str, &str, NaiveDate), DayEvidence> = HashMap::new();
    for row in manifest {
        let e = evidence
            .entry((
                row.account_id.as_str(),
                row.region.as_str(),
                row.delivery_date,
            ))
            .or_default();
        match row.status {
            ObjectStatus::Read => e.read += 1,
            ObjectStatus::Unreadable => e.unreadable += 1,
            ObjectStatus::Skipped => {}
        }
        e.archived += u64::from(row.archived);
        e.unattributable += row.unattributable_uses;
    }
    let uses = dedupe(copies);
    let mut by_key: HashMap<&KeyArn, Vec<&Use>> = HashMap::new();
    for u in &uses {
        by_key.entry(&u.key).or_default().push(u);
    }
    let plans: HashMap<&KeyArn, &KeyPlan> = plan.keys.iter().map(|p| (&p.arn, p)).collect();
    let mut out = Correlated::default();
    // Sorted as the report wants them: by partition, key, time.
    let mut events: BTreeMap<(&str, &str, &str, Instant, &str, KeyRole), &Use> = BTreeMap::new();
    for key in keys {
        let kp = plans[&key.arn];
        let key_uses = by_key.get(&key.arn).map(Vec::as_slice).unwrap_or_default();
        let mut f = finding_for(key, kp, key_uses, |d| {
            evidence
                .get(&(key.arn.account(), key.arn.region(), d))
                .copied()
                .unwrap_or_default()
        });
        if let Some(c) = integrity {
            weigh_integrity(&mut f, kp, c);
        }
        let mut kept: Vec<&Use> = match f.window {
            Some(w) => key_uses
                .iter()
                .copied()
                .filter(|u| w.contains(u.event_time))
                .collect(),
            None => Vec::new(),
        };
        if let Some(u) = key
            .last_usage
            .as_ref()
            .and_then(|lu| find_last_use(key_uses, lu))
        {
            kept.push(u);
            f.last_usage_event_found = true;
            f.last_usage_principal = u.principal().map(str::to_string);
            f.last_usage_source_ip = u.source_ip.clone();
            f.last_usage_user_agent = u.user_agent.clone();
        }
        for u in kept {
            let sort_key = (
                u.key.account(),
                u.key.region(),
                u.key.as_str(),
                u.event_time,
                u.event_id.as_str(),
                u.role,
            );
            events.insert(sort_key, u);
        }
        out.findings.push(f);
    }
    out.findings.sort_by(|a, b| a.key.arn.cmp(&b.key.arn));
    out.events = events.into_values().cloned().collect();
    out
}

/// The digest check over the key's days (its window and slack day, else its join days): a
/// finding there makes a negative verdict inconclusive.
fn weigh_integrity(f: &mut Finding, kp: &KeyPlan, c: &Checked) {
    let days: Vec<NaiveDate> = match (f.window, kp.join_days) {
        (Some(w), _) => w.days().chain([w.slack_day()]).collect(),
        (None, Some((a, b))) => crate::model::days(a, b).collect(),
        (None, None) => return,
    };
    let (account, region) = (f.key.arn.account(), f.key.arn.region());
    let found: Vec<&crate::integrity::Finding> = c
        .findings
        .iter()
        .filter(|x| {
            x.account_id == account && x.region == region && x.days.iter().any(|d| days.contains(d))
        })
        .collect();
    let covered = days.iter().all(|d| {
        c.covered
            .contains(&(account.to_string(), region.to_string(), *d))
    });
    f.integrity_failures = found.len() as i64;
    f.integrity_status = if !found.is_empty() {
        "failed"
    } else if covered && c.signatures_unchecked == 0 {
        "verified"
    } else {
        "partial"
    };
    if !found.is_empty() && f.verdict == Verdict::NoUseFound {
        let kinds: BTreeSet<&str> = found.iter().map(|x| x.kind.as_str()).collect();
        f.verdict = Verdict::Inconclusive;
        f.verdict_reason = format!(
            "no use found, but the digest chain reports {} integrity finding(s) in the window ({}); see integrity/",
            found.len(),
            kinds.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
}

fn find_last_use<'u>(uses: &[&'u Use], lu: &LastUsage) -> Option<&'u Use> {
    let id = lu.event_id.as_deref()?;
    uses.iter()
        .find(|u| u.event_id == id)
        .or_else(|| {
            uses.iter()
                .find(|u| u.caller_event_id.as_deref() == Some(id))
        })
        .copied()
}

fn finding_for(
    key: &Key,
    kp: &KeyPlan,
    uses: &[&Use],
    day: impl Fn(NaiveDate) -> DayEvidence,
) -> Finding {
    let mut f = Finding {
        key: key.clone(),
        status: kp.status,
        last_usage_event_found: false,
        last_usage_principal: None,
        last_usage_source_ip: None,
        last_usage_user_agent: None,
        window: if kp.backfill { kp.window } else { None },
        pre_tracking_use_count: 0,
        pre_tracking_first_use: None,
        pre_tracking_last_use: None,
        pre_tracking_last_operation: None,
        pre_tracking_last_event_id: None,
        pre_tracking_principals: Vec::new(),
        coverage_days_expected: 0,
        coverage_days_read: 0,
        unreadable_objects: 0,
        integrity_status: "not_checked",
        integrity_failures: 0,
        verdict: Verdict::Inconclusive,
        verdict_reason: String::new(),
    };
    let mut gaps = Vec::new();
    if let Some(w) = f.window {
        let in_window: Vec<&&Use> = uses.iter().filter(|u| w.contains(u.event_time)).collect();
        // A ReEncrypt from a key to itself is one use of it, in two roles.
        let calls: BTreeSet<&str> = in_window.iter().map(|u| u.event_id.as_str()).collect();
        f.pre_tracking_use_count = calls.len() as i64;
        f.pre_tracking_first_use = in_window.iter().map(|u| u.event_time).min();
        if let Some(last) = in_window
            .iter()
            .max_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)))
        {
            f.pre_tracking_last_use = Some(last.event_time);
            f.pre_tracking_last_operation = Some(last.operation.clone());
            f.pre_tracking_last_event_id = Some(last.event_id.clone());
        }
        let principals: BTreeSet<&str> = in_window.iter().filter_map(|u| u.principal()).collect();
        f.pre_tracking_principals = principals.into_iter().map(str::to_string).collect();

        f.coverage_days_expected = w.day_count();
        let mut missing = Vec::new();
        let mut unattributable = 0;
        let mut archived = 0;
        for d in w.days() {
            let e = day(d);
            if e.read > 0 {
                f.coverage_days_read += 1;
            } else {
                missing.push(d);
            }
            f.unreadable_objects += e.unreadable as i64;
            unattributable += e.unattributable;
            archived += e.archived;
        }
        let slack = day(w.slack_day());
        f.unreadable_objects += slack.unreadable as i64;
        unattributable += slack.unattributable;
        archived += slack.archived;
        if !missing.is_empty() {
            gaps.push(format!(
                "no readable logs on {} of {} days ({})",
                missing.len(),
                f.coverage_days_expected,
                day_ranges(&missing)
            ));
        }
        if slack.read == 0 {
            gaps.push(format!(
                "no readable logs on {}, the day after the window, where its last events may have been delivered",
                w.slack_day()
            ));
        }
        if f.unreadable_objects > 0 {
            gaps.push(format!(
                "{} unreadable log object(s) in the window",
                f.unreadable_objects
            ));
        }
        if archived > 0 {
            gaps.push(format!(
                "{archived} log object(s) in the window are archived (GLACIER/DEEP_ARCHIVE) and must be restored"
            ));
        }
        if unattributable > 0 {
            gaps.push(format!(
                "{unattributable} successful KMS call(s) in the window's logs name no key and may be uses of it"
            ));
        }
    }
    let (verdict, reason) = match kp.status {
        TrackingStatus::Error => (
            Verdict::Inconclusive,
            format!(
                "GetKeyLastUsage failed: {}",
                key.error.as_deref().unwrap_or("unknown error")
            ),
        ),
        TrackingStatus::UsedSinceTracking => {
            let lu = key.last_usage.as_ref().expect("used keys have a last use");
            (
                Verdict::InUse,
                format!(
                    "last used {} at {} (GetKeyLastUsage)",
                    lu.operation
                        .as_deref()
                        .unwrap_or("(operation not reported)"),
                    iso(lu.timestamp)
                ),
            )
        }
        TrackingStatus::UnusedSinceCreation => (
            Verdict::NeverUsed,
            format!(
                "created {} at or after tracking start; no use since",
                key.creation.map(iso).unwrap_or_default()
            ),
        ),
        TrackingStatus::UnknownBeforeTracking if f.pre_tracking_use_count > 0 => (
            Verdict::UsedBeforeTracking,
            format!(
                "{} use(s) before tracking start found in CloudTrail, the last {} at {}",
                f.pre_tracking_use_count,
                f.pre_tracking_last_operation.as_deref().unwrap_or_default(),
                f.pre_tracking_last_use.map(iso).unwrap_or_default()
            ),
        ),
        TrackingStatus::UnknownBeforeTracking => {
            let mut limits = kp.limits.clone();
            limits.extend(gaps);
            match (limits.is_empty(), f.window) {
                (true, Some(w)) => (
                    Verdict::NoUseFound,
                    format!(
                        "no use in CloudTrail from key creation {} to tracking start {}; all {} days read",
                        iso(w.start),
                        iso(w.end),
                        f.coverage_days_expected
                    ),
                ),
                _ => (Verdict::Inconclusive, format!("no use found, but {}", limits.join("; "))),
            }
        }
    };
    f.verdict = verdict;
    f.verdict_reason = reason;
    f
}

/// `2026-03-01..2026-03-03, 2026-03-09`.
fn day_ranges(days: &[NaiveDate]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < days.len() {
        let mut j = i;
        while j + 1 < days.len() && days[j + 1] == days[j].succ_opt().expect("date in range") {
            j += 1;
        }
        out.push(if i == j {
            days[i].to_string()
        } else {
            format!("{}..{}", days[i], days[j])
        });
        i = j + 1;
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BackfillScope;
    use crate::inventory::parse_line;
    use crate::model::parse_iso;
    use crate::plan::{plan, ArchiveStarts};

    const A: &str = "111122223333";
    const B: &str = "444455556666";
    const K1: &str = "arn:aws:kms:us-east-1:111122223333:key/k1";

    fn copy(
        event_id: &str,
        shared: Option<&str>,
        recipient: &str,
        arn: Option<&str>,
        account: &str,
        object: &str,
    ) -> UseCopy {
        UseCopy {
            key: KeyArn::parse(K1).unwrap(),
            role: KeyRole::Key,
            event_id: event_id.into(),
            shared_event_id: shared.map(Into::into),
            event_time: parse_iso("2026-03-02T10:00:00Z").unwrap(),
            operation: "Decrypt".into(),
            principal_arn: arn.map(Into::into),
            principal_type: Some(
                if arn.is_some() {
                    "AssumedRole"
                } else {
                    "AWSAccount"
                }
                .into(),
            ),
            principal_account: Some(account.into()),
            invoked_by: None,
            source_ip: Some("10.0.0.1".into()),
            user_agent: Some("aws-cli".into()),
            encryption_context: None,
            recipient_account_id: Some(recipient.into()),
            log_object: object.into(),
        }
    }

    #[test]
    fn duplicate_delivery_is_one_use() {
        let c = copy(
            "e1",
            None,
            A,
            Some("arn:aws:iam::111122223333:role/app"),
            A,
            "o1",
        );
        let mut d = c.clone();
        d.log_object = "o2".into();
        let uses = dedupe(vec![d, c]);
        assert_eq!(uses.len(), 1);
        assert_eq!(uses[0].log_object, "o1");
        assert_eq!(uses[0].caller_event_id, None);
    }

    #[test]
    fn cross_account_copies_are_one_use_with_the_owner_event_id_and_the_caller_arn() {
        let caller_arn = "arn:aws:sts::444455556666:assumed-role/etl/s";
        let owner = copy("owner-e", Some("s1"), A, None, B, "oa");
        let caller = copy("caller-e", Some("s1"), B, Some(caller_arn), B, "ob");
        for input in [
            vec![owner.clone(), caller.clone()],
            vec![caller.clone(), owner.clone(), owner.clone()],
        ] {
            let uses = dedupe(input);
            assert_eq!(uses.len(), 1);
            let u = &uses[0];
            assert_eq!(
                (u.event_id.as_str(), u.caller_event_id.as_deref()),
                ("owner-e", Some("caller-e"))
            );
            assert_eq!(u.principal(), Some(caller_arn));
            assert_eq!(u.principal_type.as_deref(), Some("AssumedRole"));
            assert_eq!(u.log_object, "oa");
        }
        // Only the owner's copy read: the caller's account is all we know.
        let uses = dedupe(vec![owner]);
        assert_eq!(uses[0].principal(), Some(B));
        // Only the caller's copy read: its event id stands in.
        let uses = dedupe(vec![caller]);
        assert_eq!(
            (
                uses[0].event_id.as_str(),
                uses[0].caller_event_id.as_deref()
            ),
            ("caller-e", Some("caller-e"))
        );
    }

    #[test]
    fn service_principal_is_invoked_by() {
        let mut c = copy("e", None, A, None, A, "o");
        c.principal_account = None;
        c.invoked_by = Some("ec2.amazonaws.com".into());
        assert_eq!(dedupe(vec![c])[0].principal(), Some("ec2.amazonaws.com"));
    }

    fn row(day: &str, status: ObjectStatus) -> ManifestRow {
        ManifestRow {
            object: format!("o-{day}-{}", status.as_str()),
            size_bytes: 1,
            status,
            reason: None,
            records: 0,
            kms_records: 0,
            malformed_records: 0,
            unattributable_uses: 0,
            account_id: A.into(),
            region: "us-east-1".into(),
            delivery_date: day.parse().unwrap(),
            archived: false,
            sha256: None,
        }
    }

    /// Key created 2026-03-01T12:00Z, tracking from 2026-03-04T00:00Z: window days 03-01..03-03,
    /// slack day 03-04; archive from 2026-01-01 unless `archive` says otherwise.
    fn verdict_of(
        manifest: &[ManifestRow],
        copies: Vec<UseCopy>,
        archive: &str,
    ) -> (Verdict, String, i64, i64, i64) {
        let key = parse_line(&format!(
            r#"{{"KeyId":"{K1}","KeyLastUsage":{{}},"TrackingStartDate":"2026-03-04T00:00:00Z","KeyCreationDate":"2026-03-01T12:00:00Z"}}"#
        ))
        .unwrap();
        let starts: ArchiveStarts = [(
            (A.to_string(), "us-east-1".to_string()),
            archive.parse().unwrap(),
        )]
        .into();
        let p = plan(
            std::slice::from_ref(&key),
            &starts,
            BackfillScope::Unknown,
            None,
        );
        let c = correlate(&[key], &p, copies, manifest, None);
        let f = &c.findings[0];
        (
            f.verdict,
            f.verdict_reason.clone(),
            f.coverage_days_expected,
            f.coverage_days_read,
            f.unreadable_objects,
        )
    }

    #[test]
    fn verdicts_follow_the_evidence() {
        use ObjectStatus::*;
        let full: Vec<ManifestRow> = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
            .iter()
            .map(|d| row(d, Read))
            .collect();
        let (v, reason, exp, read, unr) = verdict_of(&full, vec![], "2026-01-01");
        assert_eq!(
            (v, exp, read, unr),
            (Verdict::NoUseFound, 3, 3, 0),
            "{reason}"
        );

        let mut with_bad = full.clone();
        with_bad.push(row("2026-03-04", Unreadable));
        let (v, reason, _, _, unr) = verdict_of(&with_bad, vec![], "2026-01-01");
        assert_eq!(
            (v, unr),
            (Verdict::Inconclusive, 1),
            "unreadable on the slack day counts: {reason}"
        );
        assert!(reason.contains("1 unreadable"), "{reason}");

        let gap: Vec<ManifestRow> = full
            .iter()
            .filter(|r| r.delivery_date.to_string() != "2026-03-02")
            .cloned()
            .collect();
        let (v, reason, _, read, _) = verdict_of(&gap, vec![], "2026-01-01");
        assert_eq!((v, read), (Verdict::Inconclusive, 2));
        assert!(reason.contains("1 of 3 days (2026-03-02)"), "{reason}");

        let no_slack = &full[..3];
        let (v, reason, ..) = verdict_of(no_slack, vec![], "2026-01-01");
        assert_eq!(v, Verdict::Inconclusive);
        assert!(reason.contains("2026-03-04, the day after"), "{reason}");

        let (v, reason, exp, ..) = verdict_of(&full[1..], vec![], "2026-03-02");
        assert_eq!((v, exp), (Verdict::Inconclusive, 2));
        assert!(
            reason.contains("starts 2026-03-02, after key creation"),
            "{reason}"
        );

        let mut archived = full.clone();
        archived.push(row("2026-03-02", Skipped));
        archived.last_mut().unwrap().archived = true;
        let (v, reason, _, read, unr) = verdict_of(&archived, vec![], "2026-01-01");
        assert_eq!((v, read, unr), (Verdict::Inconclusive, 3, 0), "{reason}");
        assert!(
            reason.contains("1 log object(s) in the window are archived"),
            "{reason}"
        );

        let mut unattributable = full.clone();
        unattributable[1].unattributable_uses = 2;
        let (v, reason, ..) = verdict_of(&unattributable, vec![], "2026-01-01");
        assert_eq!(v, Verdict::Inconclusive);
        assert!(reason.contains("2 successful KMS call(s)"), "{reason}");

        // A use wins over incomplete evidence; one after tracking start or before creation does not count.
        let mut used = copy(
            "e1",
            None,
            A,
            Some("arn:aws:iam::111122223333:user/u"),
            A,
            "o",
        );
        used.event_time = parse_iso("2026-03-03T23:59:59Z").unwrap();
        let mut late = copy("e2", None, A, None, A, "o");
        late.event_time = parse_iso("2026-03-04T00:00:00Z").unwrap();
        let mut early = copy("e3", None, A, None, A, "o");
        early.event_time = parse_iso("2026-03-01T11:59:59Z").unwrap();
        let (v, reason, ..) = verdict_of(
            &gap,
            vec![used.clone(), late.clone(), early.clone()],
            "2026-01-01",
        );
        assert_eq!(v, Verdict::UsedBeforeTracking, "{reason}");
        assert!(reason.starts_with("1 use(s)"), "{reason}");
        let (v, ..) = verdict_of(&full, vec![late, early], "2026-01-01");
        assert_eq!(v, Verdict::NoUseFound);
    }

    #[test]
    fn day_ranges_are_compact() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            day_ranges(&[
                d("2026-03-01"),
                d("2026-03-02"),
                d("2026-03-03"),
                d("2026-03-05")
            ]),
            "2026-03-01..2026-03-03, 2026-03-05"
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Copies drawn from a small pool of calls, so duplicates and cross-account pairs abound.
        fn copies() -> impl Strategy<Value = Vec<UseCopy>> {
            proptest::collection::vec((0u8..6, any::<bool>(), 0u8..3), 0..24).prop_map(|v| {
                v.into_iter()
                    .map(|(call, caller_side, obj)| {
                        // Calls 0..3 are cross-account (two copies), the others are not.
                        let cross = call < 3;
                        let caller_side = cross && caller_side;
                        let shared = cross.then(|| format!("s{call}"));
                        let (id, recipient) = match (cross, caller_side) {
                            (true, true) => (format!("c{call}"), B),
                            _ => (format!("e{call}"), A),
                        };
                        let arn =
                            caller_side.then_some("arn:aws:sts::444455556666:assumed-role/r/s");
                        copy(
                            &id,
                            shared.as_deref(),
                            recipient,
                            arn,
                            if cross { B } else { A },
                            &format!("o{obj}"),
                        )
                    })
                    .collect()
            })
        }

        proptest! {
            /// Deduplication does not depend on delivery order or on copies delivered again.
            #[test]
            fn dedupe_is_idempotent_and_order_independent(v in copies(), seed in any::<u64>()) {
                let once = dedupe(v.clone());
                let mut again = v.clone();
                again.extend(v.iter().cloned());
                let n = again.len().max(1);
                again.rotate_left((seed as usize) % n);
                again.reverse();
                prop_assert_eq!(dedupe(again), once.clone());
                let calls: BTreeSet<String> = v.iter().map(|c| c.shared_event_id.clone().unwrap_or(c.event_id.clone())).collect();
                prop_assert_eq!(once.len(), calls.len());
            }
        }
    }
}
