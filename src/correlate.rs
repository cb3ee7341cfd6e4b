//! correlate: from use copies, the manifest and the plan to one finding per key. Pure.
//! It deduplicates (same `eventID` delivered twice; the two copies of a cross-account call joined
//! on `sharedEventID`), joins each key's `CloudTrailEventId` to its log record, measures how
//! complete the evidence of each backfill window is, and decides the verdict. A negative finding
//! is never stronger than its evidence.

use crate::dependents::{self, Dependent, Sighting};
use crate::integrity::live::Evidence;
use crate::integrity::Checked;
use crate::inventory::{Key, LastUsage};
use crate::model::{iso, Instant, KeyArn};
use crate::plan::{KeyPlan, Plan, Window};
use crate::scan::record::{KeyRole, UseCopy};
use crate::scan::{ManifestRow, ObjectStatus};
use crate::tracking::{TrackedKey, TrackingStatus};
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

/// One row of `key_usage/`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyUsage {
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
    /// Days of the backfill window, and of them the days with readable logs; `None` for a key
    /// without a backfill (nothing was measured).
    pub coverage_days_expected: Option<i64>,
    pub coverage_days_read: Option<i64>,
    pub unreadable_objects: i64,
    /// verified | partial | failed | not_checked (the digest check over the key's days).
    pub integrity_status: &'static str,
    /// Integrity findings (see `integrity/`) in the key's days.
    pub integrity_failures: i64,
    /// What its uses found in the logs (pre-tracking uses and the joined last use) name as
    /// depending on it (`key_dependents/`).
    pub dependents: Vec<Dependent>,
    /// Failed calls on the key found in the logs read (`DisabledException`, ...), and the last.
    pub failed_attempts: i64,
    pub last_failed_attempt: Option<Instant>,
    /// Of them, refused because the key was disabled or pending deletion (`DisabledException`,
    /// `KMSInvalidStateException`): someone still tries a key that retiring would break.
    pub unusable_attempts: i64,
    pub verdict: Verdict,
    pub verdict_reason: String,
}

#[derive(Debug, Default)]
pub struct Correlated {
    /// In key-ARN order.
    pub findings: Vec<KeyUsage>,
    /// The pre-tracking uses of backfilled keys and each key's joined last use, sorted.
    pub events: Vec<Use>,
    /// Failed attempts to use the keys, one per call, sorted (`failed_attempts/`).
    pub failed: Vec<UseCopy>,
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
    groups
        .into_values()
        // A use is counted from the key owner's copy: a caller's copy alone names the caller of a
        // call whose owner's copy this run did not read, and never adds a use — so a key's row
        // does not depend on which callers' folders happened to be read for other keys.
        .filter(|copies| copies.iter().any(|c| !c.is_caller_copy()))
        .map(merge)
        .collect()
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
    merged.source_ip = who.source_ip.clone().or_else(|| base.source_ip.clone());
    merged.user_agent = who.user_agent.clone().or_else(|| base.user_agent.clone());
    merged.encryption_context = base
        .encryption_context
        .clone()
        .or_else(|| who.encryption_context.clone());
    Use {
        merged,
        caller_event_id: caller.map(|c| c.event_id.clone()),
    }
}

/// The correlate stage: one [`KeyUsage`] per key (in ARN order) and the uses to report, from the
/// keys, the plan and the evidence.
pub fn correlate(keys: &[TrackedKey], plan: &Plan, evidence: &Evidence) -> Correlated {
    let days = DayIndex::of(&evidence.scan.manifest);
    let copies = evidence.scan.uses.iter().chain(&evidence.history);
    let uses = dedupe(copies.cloned().collect());
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
        let backfill = kp.window.filter(|_| kp.backfill).map(|w| {
            Backfill::of(w, key_uses, |d| {
                days.get(key.arn.account(), key.arn.region(), d)
            })
        });
        let integrity = evidence.integrity.as_ref().and_then(|c| {
            KeyIntegrity::of(
                key.arn.account(),
                key.arn.region(),
                kp,
                backfill.as_ref().map(|b| b.window),
                c,
            )
        });
        let last_use = key
            .last_usage
            .as_ref()
            .and_then(|lu| find_last_use(key_uses, lu));
        let (verdict, verdict_reason) = verdict(key, kp, backfill.as_ref(), integrity.as_ref());
        if let Some(b) = &backfill {
            events.extend(b.uses.iter().map(|u| (event_order(u), *u)));
        }
        events.extend(last_use.map(|u| (event_order(u), u)));
        out.findings.push(KeyUsage::new(
            key,
            backfill,
            integrity,
            last_use,
            verdict,
            verdict_reason,
        ));
    }
    out.findings.sort_by(|a, b| a.key.arn.cmp(&b.key.arn));
    out.events = events.into_values().cloned().collect();
    // A key's failed attempts are counted as its uses are: in its backfill window, from the logs
    // of its own account (a cross-account call refused before the key was reached is logged in
    // the caller's account only, which the run reads for other reasons or not at all — counting
    // those would make a key's row depend on the other keys of the run); and for every key in
    // the watched days (`--watch-days`), which are read in every account the archive holds, from
    // the callers' accounts too.
    let windows: HashMap<&KeyArn, Window> = plan
        .keys
        .iter()
        .filter(|p| p.backfill)
        .filter_map(|p| p.window.map(|w| (&p.arn, w)))
        .collect();
    let counted: Vec<UseCopy> = evidence
        .scan
        .failed
        .iter()
        .filter(|f| {
            let watched = plan.watch.is_some_and(|w| w.contains(f.event_time));
            let windowed = windows
                .get(&f.key)
                .is_some_and(|w| w.contains(f.event_time));
            (f.is_owner_copy() && windowed)
                || ((f.is_owner_copy() || f.is_caller_copy()) && watched)
        })
        .cloned()
        .collect();
    out.failed = failed_attempts(&counted);
    for k in &mut out.findings {
        let mine = out.failed.iter().filter(|f| f.key == k.key.arn);
        k.failed_attempts = mine.clone().count() as i64;
        k.unusable_attempts = mine
            .clone()
            .filter(|f| {
                matches!(
                    f.error_code.as_deref(),
                    Some("DisabledException" | "KMSInvalidStateException")
                )
            })
            .count() as i64;
        k.last_failed_attempt = mine.map(|f| f.event_time).max();
    }
    out
}

/// Failed attempts, one per (key, role, call): the owner's and the caller's copies of a
/// cross-account call share its `sharedEventID`; in (account, region, key, time, event) order.
fn failed_attempts(copies: &[UseCopy]) -> Vec<UseCopy> {
    let mut by: BTreeMap<(&str, &str, &str, Instant, KeyRole, &str), &UseCopy> = BTreeMap::new();
    for c in copies {
        let call = c.shared_event_id.as_deref().unwrap_or(&c.event_id);
        let slot = (
            c.key.account(),
            c.key.region(),
            c.key.as_str(),
            c.event_time,
            c.role,
            call,
        );
        // The owner's copy where both were read (its eventID is the one KMS keeps).
        match by.get(&slot) {
            Some(kept) if kept.is_owner_copy() || !c.is_owner_copy() => {}
            _ => {
                by.insert(slot, c);
            }
        }
    }
    by.into_values().cloned().collect()
}

fn event_order(u: &Use) -> (&str, &str, &str, Instant, &str, KeyRole) {
    (
        u.key.account(),
        u.key.region(),
        u.key.as_str(),
        u.event_time,
        u.event_id.as_str(),
        u.role,
    )
}

/// The manifest's evidence per (account, region, delivery day).
struct DayIndex<'m>(HashMap<(&'m str, &'m str, NaiveDate), DayEvidence>);

impl<'m> DayIndex<'m> {
    fn of(manifest: &'m [ManifestRow]) -> DayIndex<'m> {
        let mut days: HashMap<(&str, &str, NaiveDate), DayEvidence> = HashMap::new();
        for row in manifest {
            let e = days
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
        DayIndex(days)
    }

    fn get(&self, account: &str, region: &str, day: NaiveDate) -> DayEvidence {
        self.0
            .get(&(account, region, day))
            .copied()
            .unwrap_or_default()
    }
}

/// What the backfill of one key's window found: its uses and how complete the logs were.
#[derive(Debug)]
struct Backfill<'u> {
    window: Window,
    /// The uses inside the window.
    uses: Vec<&'u Use>,
    days_read: i64,
    /// Window days without a readable log object.
    missing_days: Vec<NaiveDate>,
    /// Whether the day after the window (where its last events may be filed) was read.
    slack_read: bool,
    /// In the window's days and its slack day.
    unreadable: u64,
    archived: u64,
    unattributable: u64,
}

impl<'u> Backfill<'u> {
    fn of(
        window: Window,
        uses: &[&'u Use],
        day: impl Fn(NaiveDate) -> DayEvidence,
    ) -> Backfill<'u> {
        let mut b = Backfill {
            window,
            uses: uses
                .iter()
                .copied()
                .filter(|u| window.contains(u.event_time))
                .collect(),
            days_read: 0,
            missing_days: Vec::new(),
            slack_read: false,
            unreadable: 0,
            archived: 0,
            unattributable: 0,
        };
        for d in window.days() {
            let e = day(d);
            if e.read > 0 {
                b.days_read += 1;
            } else {
                b.missing_days.push(d);
            }
            b.add(e);
        }
        let slack = day(window.slack_day());
        b.slack_read = slack.read > 0;
        b.add(slack);
        b
    }

    fn add(&mut self, e: DayEvidence) {
        self.unreadable += e.unreadable;
        self.archived += e.archived;
        self.unattributable += e.unattributable;
    }

    /// Distinct calls: a ReEncrypt from a key to itself is one use of it, in two roles.
    fn use_count(&self) -> i64 {
        let calls: BTreeSet<&str> = self.uses.iter().map(|u| u.event_id.as_str()).collect();
        calls.len() as i64
    }

    fn last_use(&self) -> Option<&'u Use> {
        self.uses
            .iter()
            .copied()
            .max_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)))
    }

    /// What keeps the logs read from being the whole evidence of the window.
    fn gaps(&self) -> Vec<Gap> {
        let mut gaps = Vec::new();
        if !self.missing_days.is_empty() {
            gaps.push(Gap::MissingDays {
                missing: self.missing_days.clone(),
                of: self.window.day_count(),
            });
        }
        if !self.slack_read {
            gaps.push(Gap::SlackDayUnread(self.window.slack_day()));
        }
        if self.unreadable > 0 {
            gaps.push(Gap::Unreadable(self.unreadable));
        }
        if self.archived > 0 {
            gaps.push(Gap::Archived(self.archived));
        }
        if self.unattributable > 0 {
            gaps.push(Gap::Unattributable(self.unattributable));
        }
        gaps
    }
}

/// Why a backfill that found no use cannot say "no use": the typed reasons of `inconclusive`.
#[derive(Debug, Clone, PartialEq)]
enum Gap {
    /// Known before any object was read (the plan's: window start, archive extent, trails).
    Planned(String),
    MissingDays {
        missing: Vec<NaiveDate>,
        of: i64,
    },
    SlackDayUnread(NaiveDate),
    Unreadable(u64),
    Archived(u64),
    Unattributable(u64),
    /// Findings of the digest check in the key's days, with their kinds.
    Integrity {
        findings: usize,
        kinds: Vec<&'static str>,
    },
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Gap::Planned(why) => f.write_str(why),
            Gap::MissingDays { missing, of } => write!(
                f,
                "no readable logs on {} of {of} days ({})",
                missing.len(),
                day_ranges(missing)
            ),
            Gap::SlackDayUnread(d) => write!(
                f,
                "no readable logs on {d}, the day after the window, where its last events may have been delivered"
            ),
            Gap::Unreadable(n) => write!(f, "{n} unreadable log object(s) in the window"),
            Gap::Archived(n) => write!(
                f,
                "{n} log object(s) in the window are archived (GLACIER/DEEP_ARCHIVE) and must be restored"
            ),
            Gap::Unattributable(n) => write!(
                f,
                "{n} successful KMS call(s) in the window's logs name no key and may be uses of it"
            ),
            Gap::Integrity { findings, kinds } => write!(
                f,
                "the digest chain reports {findings} integrity finding(s) in the window ({}); see integrity/",
                kinds.join(", ")
            ),
        }
    }
}

/// The digest check over one key's days: its window and slack day, else its join days.
#[derive(Debug)]
struct KeyIntegrity {
    /// verified | partial | failed.
    status: &'static str,
    findings: usize,
    kinds: Vec<&'static str>,
}

impl KeyIntegrity {
    fn of(
        account: &str,
        region: &str,
        kp: &KeyPlan,
        window: Option<Window>,
        c: &Checked,
    ) -> Option<KeyIntegrity> {
        let days: Vec<NaiveDate> = match (window, kp.join_days) {
            (Some(w), _) => w.days().chain([w.slack_day()]).collect(),
            (None, Some((a, b))) => crate::model::days(a, b).collect(),
            (None, None) => return None,
        };
        let found: Vec<&crate::integrity::Finding> = c
            .failures()
            .filter(|x| {
                x.account_id == account
                    && x.region == region
                    && x.days.iter().any(|d| days.contains(d))
            })
            .collect();
        let covered = days.iter().all(|d| {
            c.covered
                .contains(&(account.to_string(), region.to_string(), *d))
        });
        let kinds: BTreeSet<&'static str> = found.iter().map(|x| x.kind.as_str()).collect();
        Some(KeyIntegrity {
            status: if !found.is_empty() {
                "failed"
            } else if covered && c.signatures_unchecked == 0 {
                "verified"
            } else {
                "partial"
            },
            findings: found.len(),
            kinds: kinds.into_iter().collect(),
        })
    }
}

/// A key's verdict and its reason, decided here and nowhere else, from its tracking case, its
/// plan, what the backfill found, and the digest check over its days. A negative finding is
/// never stronger than its evidence.
fn verdict(
    key: &TrackedKey,
    kp: &KeyPlan,
    backfill: Option<&Backfill>,
    integrity: Option<&KeyIntegrity>,
) -> (Verdict, String) {
    let used = backfill.filter(|b| !b.uses.is_empty());
    match (key.status, used) {
        (TrackingStatus::Error, _) => (
            Verdict::Inconclusive,
            format!(
                "GetKeyLastUsage failed: {}",
                key.error.as_deref().unwrap_or("unknown error")
            ),
        ),
        (TrackingStatus::UsedSinceTracking, _) => {
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
        (TrackingStatus::UnusedSinceCreation, _) => (
            Verdict::NeverUsed,
            format!(
                "created {} at or after tracking start; no use since",
                key.creation.map(iso).unwrap_or_default()
            ),
        ),
        (TrackingStatus::UnknownBeforeTracking, Some(b)) => {
            let last = b.last_use().expect("a backfill with uses has a last one");
            (
                Verdict::UsedBeforeTracking,
                format!(
                    "{} use(s) before tracking start found in CloudTrail, the last {} at {}",
                    b.use_count(),
                    last.operation,
                    iso(last.event_time)
                ),
            )
        }
        (TrackingStatus::UnknownBeforeTracking, None) => {
            let mut gaps: Vec<Gap> = kp.gaps.iter().cloned().map(Gap::Planned).collect();
            gaps.extend(backfill.map(Backfill::gaps).unwrap_or_default());
            // The digest chain is weighed last: its findings are named when nothing else is.
            if let Some(i) = integrity.filter(|i| i.findings > 0 && gaps.is_empty()) {
                gaps.push(Gap::Integrity {
                    findings: i.findings,
                    kinds: i.kinds.clone(),
                });
            }
            match (gaps.as_slice(), backfill) {
                ([], Some(b)) => (
                    Verdict::NoUseFound,
                    format!(
                        "no use in CloudTrail from key creation {} to tracking start {}; all {} days read",
                        iso(b.window.start),
                        iso(b.window.end),
                        b.window.day_count()
                    ),
                ),
                _ => {
                    let gaps: Vec<String> = gaps.iter().map(Gap::to_string).collect();
                    (
                        Verdict::Inconclusive,
                        format!("no use found, but {}", gaps.join("; ")),
                    )
                }
            }
        }
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

impl KeyUsage {
    /// The `key_usage` row of a key, from what was found about it.
    fn new(
        key: &TrackedKey,
        backfill: Option<Backfill>,
        integrity: Option<KeyIntegrity>,
        last_use: Option<&Use>,
        verdict: Verdict,
        verdict_reason: String,
    ) -> KeyUsage {
        let last = backfill.as_ref().and_then(Backfill::last_use);
        let principals: BTreeSet<&str> = backfill
            .iter()
            .flat_map(|b| b.uses.iter().filter_map(|u| u.principal()))
            .collect();
        KeyUsage {
            key: key.key.clone(),
            status: key.status,
            last_usage_event_found: last_use.is_some(),
            last_usage_principal: last_use.and_then(|u| u.principal()).map(str::to_string),
            last_usage_source_ip: last_use.and_then(|u| u.source_ip.clone()),
            last_usage_user_agent: last_use.and_then(|u| u.user_agent.clone()),
            window: backfill.as_ref().map(|b| b.window),
            pre_tracking_use_count: backfill.as_ref().map_or(0, Backfill::use_count),
            pre_tracking_first_use: backfill
                .as_ref()
                .and_then(|b| b.uses.iter().map(|u| u.event_time).min()),
            pre_tracking_last_use: last.map(|u| u.event_time),
            pre_tracking_last_operation: last.map(|u| u.operation.clone()),
            pre_tracking_last_event_id: last.map(|u| u.event_id.clone()),
            pre_tracking_principals: principals.into_iter().map(str::to_string).collect(),
            coverage_days_expected: backfill.as_ref().map(|b| b.window.day_count()),
            coverage_days_read: backfill.as_ref().map(|b| b.days_read),
            unreadable_objects: backfill.as_ref().map_or(0, |b| b.unreadable as i64),
            integrity_status: integrity.as_ref().map_or("not_checked", |i| i.status),
            integrity_failures: integrity.as_ref().map_or(0, |i| i.findings as i64),
            dependents: dependents_of(backfill.as_ref(), last_use),
            failed_attempts: 0,
            last_failed_attempt: None,
            unusable_attempts: 0,
            verdict,
            verdict_reason,
        }
    }
}

/// The dependents named by a key's uses found in the logs: its pre-tracking uses and the joined
/// last use (once, when it is one of them).
fn dependents_of(backfill: Option<&Backfill>, last_use: Option<&Use>) -> Vec<Dependent> {
    let mut uses: Vec<&Use> = backfill.map_or(Vec::new(), |b| b.uses.clone());
    if let Some(l) = last_use {
        if !uses.iter().any(|u| u.event_id == l.event_id) {
            uses.push(l);
        }
    }
    dependents::gather(uses.into_iter().map(|u| Sighting {
        context: u.encryption_context.as_deref(),
        invoked_by: u.invoked_by.as_deref(),
        principal: u.principal(),
        time: u.event_time,
    }))
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
            error_code: None,
            error_message: None,
            resolved_by: Default::default(),
            via_alias: None,
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
        let mut caller = copy("caller-e", Some("s1"), B, Some(caller_arn), B, "ob");
        caller.source_ip = Some("198.51.100.7".into());
        caller.user_agent = Some("Boto3/1.34.0".into());
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
            // Where and how the caller called: from the caller's copy.
            assert_eq!(
                (u.source_ip.as_deref(), u.user_agent.as_deref()),
                (Some("198.51.100.7"), Some("Boto3/1.34.0"))
            );
            assert_eq!(u.log_object, "oa");
        }
        // Only the owner's copy read: the caller's account is all we know.
        let uses = dedupe(vec![owner]);
        assert_eq!(uses[0].principal(), Some(B));
        // Only the caller's copy read: it names a caller, it is no use of its own.
        assert!(dedupe(vec![caller]).is_empty());
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
        let key = crate::tracking::track(vec![key]).remove(0);
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
        let evidence = Evidence {
            scan: crate::scan::ScanResult {
                manifest: manifest.to_vec(),
                uses: copies,
                ..Default::default()
            },
            ..Evidence::default()
        };
        let c = correlate(&[key], &p, &evidence);
        let f = &c.findings[0];
        (
            f.verdict,
            f.verdict_reason.clone(),
            f.coverage_days_expected
                .expect("a backfilled key is measured"),
            f.coverage_days_read.expect("a backfilled key is measured"),
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
                // One use per call of which an owner's copy was read.
                let calls: BTreeSet<String> = v.iter().filter(|c| !c.is_caller_copy()).map(|c| c.shared_event_id.clone().unwrap_or(c.event_id.clone())).collect();
                prop_assert_eq!(once.len(), calls.len());
            }
        }
    }
}
