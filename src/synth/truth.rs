//! truth: what KMS would report for each synthetic key (the usage snapshot), and what a correct
//! keytrail run with default settings must conclude (the ground truth). Both come from the
//! generator's own calls and from where it put each delivered copy; nothing here parses logs or
//! calls keytrail's plan or correlate, so the truth is a second, independent implementation of
//! the rules in the README's "Tracking status and verdicts".

use super::{Calendar, Call, CopyKind, Obj, ObjKind, Scenario, SynthKey};
use crate::model::{day_of, days, start_of, Instant};
use chrono::{Duration, NaiveDate, SecondsFormat};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

fn iso(t: Instant) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn epoch(t: Instant) -> Value {
    json!(t.timestamp_millis() as f64 / 1000.0)
}

/// `TrackingStartDate` of a key: the later of "KMS began recording" and key creation.
fn tracking_start(k: &SynthKey, cal: &Calendar) -> Instant {
    k.created.max(cal.tracking_start)
}

/// Each key's calls, found once (so that the truth of 10,000 keys is not keys × calls): the calls
/// that used it and those that tried it and failed.
pub struct ByKey<'c> {
    used: Vec<Vec<&'c Call>>,
    tried: Vec<Vec<&'c Call>>,
}

impl<'c> ByKey<'c> {
    pub fn of(keys: &[SynthKey], calls: &'c [Call]) -> ByKey<'c> {
        let mut by = ByKey {
            used: vec![Vec::new(); keys.len()],
            tried: vec![Vec::new(); keys.len()],
        };
        for c in calls {
            let mut used: Vec<usize> = c.uses.iter().map(|(i, _)| *i).collect();
            used.sort_unstable();
            used.dedup();
            used.into_iter().for_each(|i| by.used[i].push(c));
            let mut tried: Vec<usize> = c.attempted.iter().map(|(i, _)| *i).collect();
            tried.sort_unstable();
            tried.dedup();
            tried.into_iter().for_each(|i| by.tried[i].push(c));
        }
        by
    }
}

/// The key's last use that KMS reported (tracked, successful, at or after its tracking start);
/// nothing when `GetKeyLastUsage` failed for the key.
fn last_use<'c>(ki: usize, k: &SynthKey, by: &ByKey<'c>, cal: &Calendar) -> Option<&'c Call> {
    if k.error.is_some() {
        return None;
    }
    by.used[ki]
        .iter()
        .copied()
        .filter(|c| c.time >= tracking_start(k, cal) && c.time < cal.snapshot_time)
        .max_by_key(|c| (c.time, c.id))
}

/// KMS's timestamp has sub-second precision; CloudTrail's `eventTime` is truncated to the second.
fn kms_time(c: &Call) -> Instant {
    c.time + Duration::milliseconds(123 + (c.id as i64 % 700))
}

/// The usage snapshot: one `GetKeyLastUsage` response per key, half with wire-form (epoch number)
/// timestamps and half with CLI-form (ISO-8601) ones, some keyed by bare id with `KeyMetadata`.
pub fn snapshot_lines(keys: &[SynthKey], calls: &[Call], cal: &Calendar) -> Vec<String> {
    let by = ByKey::of(keys, calls);
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let ts = |t: Instant| if i % 2 == 0 { epoch(t) } else { json!(iso(t)) };
            let meta = json!({
                "AWSAccountId": k.account, "KeyId": k.id, "Arn": k.arn, "CreationDate": ts(k.created),
                "Enabled": true, "KeyState": "Enabled", "KeyManager": k.manager, "KeySpec": "SYMMETRIC_DEFAULT",
                "KeyUsage": "ENCRYPT_DECRYPT", "Origin": "AWS_KMS", "MultiRegion": k.multi_region,
            });
            let key_id = if i % 3 == 0 { k.id.clone() } else { k.arn.clone() };
            let mut line = json!({"KeyId": key_id, "KeyMetadata": meta, "Aliases": k.aliases});
            let o = line.as_object_mut().expect("object");
            if let Some(err) = &k.error {
                o.insert("Error".into(), json!(err));
                return line.to_string();
            }
            let usage = match last_use(i, k, &by, cal) {
                Some(c) => json!({
                    "Operation": c.op, "Timestamp": ts(kms_time(c)),
                    "CloudTrailEventId": c.owner_event_id, "KmsRequestId": c.request_id,
                }),
                None => json!({}),
            };
            o.insert("KeyLastUsage".into(), usage);
            o.insert("TrackingStartDate".into(), ts(tracking_start(k, cal)));
            o.insert("KeyCreationDate".into(), ts(k.created));
            line.to_string()
        })
        .collect()
}

type Prefix = (String, String, NaiveDate);

/// What a run without `--since` must report, per key, plus the objects and prefixes it must
/// consider: with the default `--backfill unknown` at the top level, and with `--backfill all`
/// under `backfill_all`.
pub fn truth(keys: &[SynthKey], calls: &[Call], objects: &[Obj], cal: &Calendar) -> Value {
    let mut t = scope_truth(keys, calls, objects, cal, false, None);
    let all = scope_truth(keys, calls, objects, cal, true, None);
    let watch = scope_truth(keys, calls, objects, cal, false, Some(watch(cal)));
    let o = t.as_object_mut().expect("object");
    o.insert("backfill_all".into(), all);
    o.insert("watch".into(), watch);
    t
}

/// The days a run with `--watch-days 2 --as-of <snapshot time>` watches.
pub const WATCH_DAYS: i64 = 2;

fn watch(cal: &Calendar) -> (Instant, Instant) {
    (
        cal.snapshot_time - chrono::Duration::days(WATCH_DAYS),
        cal.snapshot_time,
    )
}

fn scope_truth(
    keys: &[SynthKey],
    calls: &[Call],
    objects: &[Obj],
    cal: &Calendar,
    all: bool,
    watch: Option<(Instant, Instant)>,
) -> Value {
    let by = ByKey::of(keys, calls);
    let mut scope = scope(keys, &by, objects, cal, all);
    scope.watch = watch;
    if let Some((from, until)) = watch {
        // The watched days and the day after, in every account and region of the keys.
        let places: BTreeSet<(String, String)> = keys
            .iter()
            .map(|k| (k.account.clone(), k.region.clone()))
            .collect();
        let mut day = from.date_naive();
        let last = (until - chrono::Duration::milliseconds(1)).date_naive();
        while day <= last.succ_opt().expect("date") {
            for (a, r) in &places {
                scope.planned.insert((a.clone(), r.clone(), day));
            }
            day = day.succ_opt().expect("date");
        }
    }
    let mut sight = seen(objects, calls, &scope.planned, None);
    // Then the callers' folders, for the caller copies of the cross-account uses seen.
    let (folders, wanted) = callers(objects, calls, &scope.planned, &sight);
    let more = seen(objects, calls, &folders, Some(&wanted));
    sight.copies.extend(more.copies);
    sight.considered.extend(more.considered);
    scope.planned.extend(folders);
    let out_keys: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| key_truth(i, k, calls, &by, cal, &scope, &sight))
        .collect();
    let planned = &scope.planned;
    let considered = &sight.considered;
    let scenario_check: Vec<&str> = keys
        .iter()
        .filter(|k| k.scenario == Scenario::Errored)
        .map(|k| k.arn.as_str())
        .collect();
    json!({
        "note": "ground truth of a run without --since; generated by keytrail synth",
        "backfill": if all { "all" } else { "unknown" },
        "watch": watch.map(|(from, until)| json!([iso(from), iso(until)])),
        "errored_keys": scenario_check,
        "keys": out_keys,
        "planned_prefixes": planned.iter().map(|(a, r, d)| format!("{a}/{r}/{d}")).collect::<Vec<_>>(),
        "objects": considered,
    })
}

/// The windows of the keys a run backfills (start, end, whether the window starts at creation)
/// and the day folders it must read.
struct Scope {
    planned: BTreeSet<Prefix>,
    windows: HashMap<usize, (Instant, Instant, bool)>,
    /// The watched days (`--watch-days`), where every key's failed attempts count.
    watch: Option<(Instant, Instant)>,
}

/// The tracking status of key `i`, from the generator's own record of it.
fn status(i: usize, k: &SynthKey, by: &ByKey, cal: &Calendar) -> &'static str {
    if k.error.is_some() {
        "error"
    } else if last_use(i, k, by, cal).is_some() {
        "used_since_tracking"
    } else if k.created >= tracking_start(k, cal) {
        "unused_since_creation"
    } else {
        "unknown_before_tracking"
    }
}

fn scope(keys: &[SynthKey], by: &ByKey, objects: &[Obj], cal: &Calendar, all: bool) -> Scope {
    let mut archive_start: BTreeMap<(String, String), NaiveDate> = BTreeMap::new();
    for o in objects {
        let e = archive_start
            .entry((o.account.clone(), o.region.clone()))
            .or_insert(o.day);
        *e = (*e).min(o.day);
    }
    // Windows and the day folders a run must read.
    let mut planned: BTreeSet<Prefix> = BTreeSet::new();
    let mut windows: HashMap<usize, (Instant, Instant, bool)> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        let p = |d: NaiveDate| (k.account.clone(), k.region.clone(), d);
        let backfilled = match status(i, k, by, cal) {
            "unknown_before_tracking" => true,
            "error" => false,
            _ => all,
        };
        if backfilled {
            let first = archive_start
                .get(&(k.account.clone(), k.region.clone()))
                .copied();
            let start = first.map_or(k.created, |d| k.created.max(start_of(d)));
            let end = tracking_start(k, cal);
            if start < end {
                windows.insert(i, (start, end, start == k.created));
                let last = day_of(end - Duration::milliseconds(1));
                for d in days(day_of(start), last.succ_opt().expect("in range")) {
                    planned.insert(p(d));
                }
            }
        }
        if let Some(c) = last_use(i, k, by, cal) {
            let d = day_of(kms_time(c));
            planned.insert(p(d));
            planned.insert(p(d.succ_opt().expect("in range")));
        }
    }
    Scope {
        planned,
        windows,
        watch: None,
    }
}

/// What a run sees of the planned folders: the call copies in readable logs, and per day folder
/// the objects read, unreadable, and the calls that name no key; and every object considered.
#[derive(Default)]
struct Seen {
    copies: HashSet<(usize, CopyKind)>,
    read_days: HashMap<Prefix, u64>,
    unreadable_days: HashMap<Prefix, u64>,
    unattributable_days: HashMap<Prefix, u64>,
    considered: Vec<Value>,
}

/// The callers' folders a run reads after the planned ones, and the calls whose caller copies it
/// keeps from them: for every cross-account use whose owner's copy was seen and caller's copy was
/// not, the caller account's folders of the call's region on the event's day and the day after
/// that are in the archive and were not planned.
fn callers(
    objects: &[Obj],
    calls: &[Call],
    planned: &BTreeSet<Prefix>,
    sight: &Seen,
) -> (BTreeSet<Prefix>, HashSet<usize>) {
    let archived: BTreeSet<&str> = objects.iter().map(|o| o.account.as_str()).collect();
    let mut folders = BTreeSet::new();
    let mut wanted = HashSet::new();
    for c in calls
        .iter()
        .filter(|c| !c.uses.is_empty() && c.cross_account())
    {
        if !sight.copies.contains(&(c.id, CopyKind::Owner))
            || sight.copies.contains(&(c.id, CopyKind::Caller))
        {
            continue;
        }
        let caller = c
            .caller
            .account()
            .expect("a cross-account call has a caller account");
        if !archived.contains(caller) {
            continue;
        }
        wanted.insert(c.id);
        let d = day_of(c.time);
        for d in [d, d.succ_opt().expect("in range")] {
            let p = (caller.to_string(), c.region.clone(), d);
            if !planned.contains(&p) {
                folders.insert(p);
            }
        }
    }
    (folders, wanted)
}

/// What reading the `planned` folders gives; of `only_callers_of`'s folders, only the caller
/// copies of those calls are kept.
fn seen(
    objects: &[Obj],
    calls: &[Call],
    planned: &BTreeSet<Prefix>,
    only_callers_of: Option<&HashSet<usize>>,
) -> Seen {
    let Seen {
        copies: mut seen,
        mut read_days,
        mut unreadable_days,
        mut unattributable_days,
        mut considered,
    } = Seen::default();
    for o in objects {
        let p = (o.account.clone(), o.region.clone(), o.day);
        if !planned.contains(&p) {
            continue;
        }
        let status = match o.kind {
            ObjKind::Log => "read",
            ObjKind::Stray => "skipped",
            ObjKind::Corrupt(_) => "unreadable",
        };
        considered.push(
            json!({"object": o.key, "status": status, "corruption": match o.kind {
            ObjKind::Corrupt(c) => json!(format!("{c:?}")), _ => Value::Null }}),
        );
        match o.kind {
            ObjKind::Log => {
                *read_days.entry(p.clone()).or_default() += 1;
                for (id, kind) in &o.copies {
                    let keep =
                        only_callers_of.is_none_or(|w| *kind == CopyKind::Caller && w.contains(id));
                    if keep {
                        seen.insert((*id, *kind));
                    }
                    if calls[*id].unattributable {
                        *unattributable_days.entry(p.clone()).or_default() += 1;
                    }
                }
            }
            ObjKind::Corrupt(_) => *unreadable_days.entry(p.clone()).or_default() += 1,
            ObjKind::Stray => {}
        }
    }
    Seen {
        copies: seen,
        read_days,
        unreadable_days,
        unattributable_days,
        considered,
    }
}

/// One use as a run reports it: (time, event id, operation, principal), if its owner's copy was
/// seen.
fn seen_use(
    c: &Call,
    seen: &HashSet<(usize, CopyKind)>,
) -> Option<(Instant, String, &'static str, String)> {
    // Counted from the owner's copy only; the caller's copy, where read, names the caller.
    if !seen.contains(&(c.id, CopyKind::Owner)) {
        return None;
    }
    let caller = seen.contains(&(c.id, CopyKind::Caller));
    let event_id = c.event_id(CopyKind::Owner);
    Some((c.time, event_id, c.op, principal_read(c, caller)))
}

/// For a call that names its key only through an alias: whether the alias's key at the time
/// comes from an alias record the generator wrote before it (`alias_at_event_time`; they are
/// never in unreadable objects) or from the inventory's aliases (`alias_today`).
fn alias_resolution(c: &Call, calls: &[Call]) -> Option<&'static str> {
    let alias = c.key_id_param.as_deref()?;
    let name = &alias[alias.find("alias/")?..];
    if c.resources != super::ResourceStyle::None {
        return None;
    }
    let changed_before = calls.iter().any(|m| {
        m.alias_name.as_deref() == Some(name)
            && m.owner_account == c.owner_account
            && m.region == c.region
            && m.time <= c.time
    });
    Some(match changed_before {
        true => "alias_at_event_time",
        false => "alias_today",
    })
}

/// Who a run sees made `c`: the caller's principal, except on the owner's copy of a cross-account
/// call whose caller's copy was not read (`caller_read`), which names only the caller's account.
fn principal_read(c: &Call, caller_read: bool) -> String {
    if c.cross_account() && !caller_read {
        c.caller.account().unwrap_or_default().to_string()
    } else {
        c.caller.principal()
    }
}

/// The key's account when a cross-account caller made the call.
fn other_account(c: &Call) -> Option<String> {
    c.caller
        .account()
        .filter(|_| c.cross_account())
        .map(str::to_string)
}

/// What the logs of a key's window (and its slack day) hold for a run.
#[derive(Default)]
struct WindowLogs {
    expected: i64,
    read: i64,
    missing: i64,
    slack_read: bool,
    unreadable: u64,
    unattributable: u64,
}

impl WindowLogs {
    fn of(k: &SynthKey, (start, end): (Instant, Instant), sight: &Seen) -> WindowLogs {
        let Seen {
            read_days,
            unreadable_days,
            unattributable_days,
            ..
        } = sight;
        let mut w = WindowLogs::default();
        let (expected, read, missing, unreadable, unattributable) = (
            &mut w.expected,
            &mut w.read,
            &mut w.missing,
            &mut w.unreadable,
            &mut w.unattributable,
        );
        let last = day_of(end - Duration::milliseconds(1));
        for d in days(day_of(start), last) {
            let p = (k.account.clone(), k.region.clone(), d);
            *expected += 1;
            if read_days.get(&p).copied().unwrap_or(0) > 0 {
                *read += 1;
            } else {
                *missing += 1;
            }
            *unreadable += unreadable_days.get(&p).copied().unwrap_or(0);
            *unattributable += unattributable_days.get(&p).copied().unwrap_or(0);
        }
        let slack = (
            k.account.clone(),
            k.region.clone(),
            last.succ_opt().expect("in range"),
        );
        w.slack_read = read_days.get(&slack).copied().unwrap_or(0) > 0;
        *unreadable += unreadable_days.get(&slack).copied().unwrap_or(0);
        *unattributable += unattributable_days.get(&slack).copied().unwrap_or(0);
        w
    }
}

/// The truth of key `i`.
fn key_truth(
    i: usize,
    k: &SynthKey,
    calls: &[Call],
    by: &ByKey,
    cal: &Calendar,
    scope: &Scope,
    sight: &Seen,
) -> Value {
    let seen = &sight.copies;
    let windows = &scope.windows;
    let seen_use = |c: &Call| seen_use(c, seen);
    let st = status(i, k, by, cal);
    let mut v =
        json!({"key_arn": k.arn, "scenario": format!("{:?}", k.scenario), "tracking_status": st});
    let o = v.as_object_mut().expect("object");
    let lu = last_use(i, k, by, cal);
    let lu_seen = lu.and_then(|c| {
        seen.contains(&(c.id, CopyKind::Owner))
            .then(|| seen_use(c))
            .flatten()
    });
    o.insert("last_usage_event_found".into(), json!(lu_seen.is_some()));
    o.insert(
        "last_usage_principal".into(),
        json!(lu_seen.as_ref().map(|u| u.3.clone())),
    );
    let mut uses: Vec<(Instant, String, &'static str, String)> = Vec::new();
    // Accounts other than the key's that called it, in the rows `kms_events` holds for it.
    let mut callers: BTreeSet<String> = BTreeSet::new();
    if lu_seen.is_some() {
        callers.extend(lu.and_then(other_account));
    }
    // What the uses found name as depending on the key (each role the key had in the call).
    let mut dependents: BTreeSet<(String, String)> = BTreeSet::new();
    let mut depend = |c: &Call| {
        for (j, role) in &c.uses {
            if *j == i {
                dependents.extend(super::records::dependents_of(c, role));
            }
        }
    };
    if lu_seen.is_some() {
        lu.into_iter().for_each(&mut depend);
    }
    let window = windows.get(&i).copied();
    let mut logs = WindowLogs::default();
    // The uses whose records name the key only through an alias: (event id, how it resolves).
    let mut alias_uses: BTreeSet<(String, &str)> = BTreeSet::new();
    if let Some((start, end, _)) = window {
        for &c in &by.used[i] {
            if c.time >= start && c.time < end {
                if let Some(u) = seen_use(c) {
                    if let Some(by) = alias_resolution(c, calls) {
                        alias_uses.insert((u.1.clone(), by));
                    }
                    uses.push(u);
                    callers.extend(other_account(c));
                    depend(c);
                }
            }
        }
        logs = WindowLogs::of(k, (start, end), sight);
    }
    let WindowLogs {
        expected,
        read,
        missing,
        slack_read,
        unreadable,
        unattributable,
    } = logs;
    uses.sort();
    let last = uses.last().cloned();
    let principals: BTreeSet<String> = uses.iter().map(|u| u.3.clone()).collect();
    let complete = window.is_some_and(|w| w.2)
        && missing == 0
        && slack_read
        && unreadable == 0
        && unattributable == 0;
    let verdict = match st {
        "error" => "inconclusive",
        "used_since_tracking" => "in_use",
        "unused_since_creation" => "never_used",
        _ if !uses.is_empty() => "used_before_tracking",
        _ if complete => "no_use_found",
        _ => "inconclusive",
    };
    o.insert("verdict".into(), json!(verdict));
    o.insert("pre_tracking_use_count".into(), json!(uses.len()));
    o.insert(
        "pre_tracking_first_use".into(),
        json!(uses.first().map(|u| iso(u.0))),
    );
    o.insert(
        "pre_tracking_last_use".into(),
        json!(last.as_ref().map(|u| iso(u.0))),
    );
    o.insert(
        "pre_tracking_last_operation".into(),
        json!(last.as_ref().map(|u| u.2)),
    );
    o.insert(
        "pre_tracking_last_event_id".into(),
        json!(last.as_ref().map(|u| u.1.clone())),
    );
    o.insert("pre_tracking_principals".into(), json!(principals));
    o.insert("other_account_callers".into(), json!(callers));
    // Not measured (NULL) for a key without a backfill window.
    let measured = |n: i64| window.map(|_| n);
    o.insert("coverage_days_expected".into(), json!(measured(expected)));
    o.insert("coverage_days_read".into(), json!(measured(read)));
    o.insert("unreadable_objects".into(), json!(unreadable));
    // Failed attempts on the key: one per call and role, in its backfill window from the owner's
    // copy read (a denied cross-account call is delivered to the caller's account only: not
    // counted there), and in the watched days from either copy.
    let mut failed: Vec<(Instant, String, String)> = Vec::new();
    for &c in &by.tried[i] {
        let (owner, caller) = (
            seen.contains(&(c.id, CopyKind::Owner)),
            seen.contains(&(c.id, CopyKind::Caller)),
        );
        let in_window = window.is_some_and(|(start, end, _)| c.time >= start && c.time < end);
        // The watched days are read in every archived account: the caller's copy counts too.
        let watched = scope
            .watch
            .is_some_and(|(start, end)| c.time >= start && c.time < end);
        if !((owner && in_window) || ((owner || caller) && watched)) {
            continue;
        }
        for _ in c.attempted.iter().filter(|(j, _)| *j == i) {
            let principal = principal_read(c, caller);
            let code = c.error_code.clone().unwrap_or_default();
            failed.push((c.time, principal, code));
        }
    }
    failed.sort();
    o.insert("failed_attempts".into(), json!(failed.len()));
    o.insert(
        "last_failed_attempt".into(),
        json!(failed.last().map(|f| iso(f.0))),
    );
    o.insert(
        "failed".into(),
        json!(failed
            .iter()
            .map(|(t, p, e)| json!({"time": iso(*t), "principal": p, "error_code": e}))
            .collect::<Vec<_>>()),
    );
    let services: BTreeSet<&str> = dependents.iter().map(|(s, _)| s.as_str()).collect();
    o.insert(
        "alias_uses".into(),
        json!(alias_uses
            .iter()
            .map(|(e, by)| json!([e, by]))
            .collect::<Vec<_>>()),
    );
    o.insert("dependents".into(), json!(dependents.len()));
    o.insert("dependent_services".into(), json!(services));
    o.insert(
        "dependent_resources".into(),
        json!(dependents
            .iter()
            .map(|(s, r)| json!([s, r]))
            .collect::<Vec<_>>()),
    );
    v
}
