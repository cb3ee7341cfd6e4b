//! A run on a synthetic archive made with a seed the samples do not use must reproduce the
//! generator's ground truth for every key, in both the single-account and the
//! organization-trail-with-prefix layouts, and give every considered object one manifest row.

use crate::common::{read_table, run, synth};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub const FIELDS: &[&str] = &[
    "tracking_status",
    "verdict",
    "pre_tracking_use_count",
    "pre_tracking_first_use",
    "pre_tracking_last_use",
    "pre_tracking_last_operation",
    "pre_tracking_last_event_id",
    "pre_tracking_principals",
    "last_usage_event_found",
    "last_usage_principal",
    "coverage_days_expected",
    "coverage_days_read",
    "unreadable_objects",
    "dependents",
    "dependent_services",
    "failed_attempts",
    "last_failed_attempt",
];

/// Synthesises an archive with `seed` and `layout` flags, runs keytrail with `run_flags`, and
/// compares the report with the part of the truth those flags select.
fn check_layout(seed: &str, layout: &[&str], run_flags: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    let mut args = vec!["--seed", seed];
    args.extend_from_slice(layout);
    let all_truth = synth(&data, &args);
    let truth = if run_flags.contains(&"all") {
        &all_truth["backfill_all"]
    } else if run_flags.contains(&"--watch-days") {
        &all_truth["watch"]
    } else {
        &all_truth
    };
    let out = tmp.path().join("report");
    let (code, text) = run(
        &data.join("usage.jsonl"),
        &data.join("logs"),
        &out,
        run_flags,
    );
    // The synth archive has corrupt objects by design: exit 1, "finished with incomplete evidence".
    assert_eq!(code, 1, "{text}");

    let rows: BTreeMap<String, Value> = read_table(&out.join("key_usage"))
        .into_iter()
        .map(|r| (r["key_arn"].as_str().unwrap().to_string(), r))
        .collect();
    let keys = truth["keys"].as_array().unwrap();
    assert_eq!(rows.len(), keys.len(), "one key_usage row per key");
    let mut mismatches = Vec::new();
    for want in keys {
        let arn = want["key_arn"].as_str().unwrap();
        let got = &rows[arn];
        for f in FIELDS {
            if got[f] != want[f] {
                mismatches.push(format!(
                    "{} {arn} {f}: got {} want {}",
                    want["scenario"], got[f], want[f]
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "seed {seed} {layout:?}: {} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );

    // Each use whose record named its key only through an alias is the use of the key the
    // alias pointed at then (an alias moved between two keys inside their windows), and says
    // how that was known.
    let mut got_alias: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for e in read_table(&out.join("kms_events")) {
        let by = e["resolved_by"].as_str().unwrap().to_string();
        if by.starts_with("alias") {
            got_alias
                .entry(e["key_arn"].as_str().unwrap().to_string())
                .or_default()
                .insert((e["event_id"].as_str().unwrap().to_string(), by));
        }
    }
    let mut kinds = BTreeSet::new();
    for want in keys {
        let arn = want["key_arn"].as_str().unwrap();
        let want_alias: BTreeSet<(String, String)> = want["alias_uses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
            .collect();
        kinds.extend(want_alias.iter().map(|(_, by)| by.clone()));
        let got = got_alias.remove(arn).unwrap_or_default();
        assert_eq!(
            got, want_alias,
            "{} {arn}: uses through an alias",
            want["scenario"]
        );
    }
    assert!(got_alias.is_empty(), "alias uses of no key: {got_alias:?}");
    assert_eq!(kinds.len(), 2, "both alias resolutions occur: {kinds:?}");

    // Every verdict occurs, so the comparison above exercised each path.
    let verdicts: BTreeSet<&str> = keys
        .iter()
        .map(|k| k["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts.len(), 5, "{verdicts:?}");

    // The manifest has exactly the objects of the planned prefixes, each once, with its status.
    let manifest = read_table(&out.join("scan_manifest"));
    let mut by_object: BTreeMap<String, &Value> = BTreeMap::new();
    for row in &manifest {
        let dup = by_object.insert(row["object"].as_str().unwrap().to_string(), row);
        assert!(dup.is_none(), "object listed twice: {}", row["object"]);
    }
    let expected = truth["objects"].as_array().unwrap();
    assert_eq!(
        manifest.len(),
        expected.len(),
        "manifest rows vs objects under the planned prefixes"
    );
    let mut unreadable = 0;
    for want in expected {
        let key = want["object"].as_str().unwrap();
        let row = by_object
            .get(key)
            .unwrap_or_else(|| panic!("no manifest row for {key}"));
        assert_eq!(row["status"], want["status"], "{key}");
        let reason = row["reason"].as_str().unwrap_or_default();
        let reason_says = match want["corruption"].as_str() {
            Some("TruncatedGzip") => "gzip",
            Some("InvalidJson") => "invalid JSON",
            Some("ZeroBytes") => "empty object",
            Some("NotGzip") => "not gzip",
            Some(other) => panic!("unknown corruption {other}"),
            None => "",
        };
        if !reason_says.is_empty() {
            unreadable += 1;
            assert!(
                reason.contains(reason_says),
                "{key}: reason `{reason}` should say `{reason_says}`"
            );
        }
    }
    assert_eq!(
        unreadable, 4,
        "all four corruption kinds are under planned prefixes"
    );
    // Digests, Insights and Config's write checks outside the day folders are never considered.
    assert!(manifest
        .iter()
        .all(|r| !r["object"].as_str().unwrap().contains("CloudTrail-Digest")));
}

#[test]
fn single_account_layout_reproduces_the_truth() {
    check_layout("4242", &[], &[]);
}

#[test]
fn org_trail_with_prefix_reproduces_the_truth() {
    check_layout(
        "777",
        &["--org-id", "o-exampleorg1", "--prefix", "audit/cloudtrail"],
        &[],
    );
}

/// A signed archive whose chain starts again after logging was off (the generator's gap): the
/// digest check runs (hashes and links; no signatures given) and the restart weakens nothing —
/// every verdict is still the truth's.
#[test]
fn a_signed_archive_with_a_restarted_chain_reproduces_the_truth() {
    check_layout("77", &["--sign"], &["--backfill", "all"]);
}

/// `--watch-days`: the last two days before the snapshot are read in every account and region,
/// and the keys disabled after their last use and still called there say so.
#[test]
fn watching_the_last_days_reproduces_the_truth() {
    check_layout(
        "2718",
        &[],
        &["--watch-days", "2", "--as-of", "2026-03-20T00:00:00Z"],
    );
}

#[test]
fn backfill_all_reproduces_the_truth() {
    check_layout("31337", &[], &["--backfill", "all", "--threads", "1"]);
}

/// Pruned work: a run whose keys are in one account and region, with a 30-day window, reads
/// only that account's and region's folders of the window's days (plus the delivery-slack day
/// and the days of each key's last use) — every object there, and nothing else. The expected
/// folders are worked out here from the snapshot, and the objects in them by walking the
/// archive.
#[test]
fn a_one_region_thirty_day_run_reads_only_its_prefixes() {
    use chrono::{Duration, NaiveDate};
    use std::collections::BTreeSet;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    crate::common::synth(&data, &["--seed", "31"]);
    let (account, region) = ("111122223333", "us-east-1");
    let lines: Vec<String> = std::fs::read_to_string(data.join("usage.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains(&format!("arn:aws:kms:{region}:{account}:key/")))
        .map(str::to_string)
        .collect();
    assert!(lines.len() >= 5);
    let usage = tmp.path().join("one-region.jsonl");
    std::fs::write(&usage, lines.join("\n") + "\n").unwrap();
    // Snapshot timestamps are epoch seconds or ISO-8601 strings.
    let day = |v: &serde_json::Value| -> Option<NaiveDate> {
        match v {
            serde_json::Value::Number(n) => {
                chrono::DateTime::from_timestamp(n.as_f64()? as i64, 0).map(|t| t.date_naive())
            }
            serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.naive_utc().date()),
            _ => None,
        }
    };
    let since = NaiveDate::from_ymd_opt(2026, 2, 6).unwrap();
    let mut days: BTreeSet<NaiveDate> = BTreeSet::new();
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        if !v["Error"].is_null() {
            continue; // GetKeyLastUsage failed: no window, nothing to join.
        }
        let (created, end) = (
            day(&v["KeyCreationDate"]).unwrap(),
            day(&v["TrackingStartDate"]).unwrap(),
        );
        // A key created at or after tracking start has no pre-tracking window.
        let created = if created < end {
            created.max(since)
        } else {
            end + Duration::days(1)
        };
        // The window (to tracking start, exclusive) and the slack day after it.
        let mut d = created;
        while d <= end {
            days.insert(d);
            d += Duration::days(1);
        }
        if let Some(t) = day(&v["KeyLastUsage"]["Timestamp"]) {
            days.extend([t, t + Duration::days(1)]);
        }
    }
    let window_days = days
        .iter()
        .filter(|d| **d < NaiveDate::from_ymd_opt(2026, 3, 9).unwrap())
        .count();
    assert!((28..=32).contains(&window_days), "{window_days}");

    let out = tmp.path().join("report");
    let (code, text) = crate::common::run(
        &usage,
        &data.join("logs"),
        &out,
        &["--backfill", "all", "--since", "2026-02-06"],
    );
    assert!(code <= 1, "{text}");
    let read: BTreeSet<String> = read_table(&out.join("scan_manifest"))
        .iter()
        .map(|r| r["object"].as_str().unwrap().to_string())
        .collect();
    let logs = data.join("logs");
    let want: BTreeSet<String> = crate::common::files(&logs)
        .into_iter()
        .map(|p| p.strip_prefix(&logs).unwrap().to_string_lossy().to_string())
        .filter(|k| {
            let parts: Vec<&str> = k.split('/').collect();
            let Some(i) = parts.iter().position(|p| *p == "CloudTrail") else {
                return false;
            };
            let date = parts.get(i + 2..i + 5).and_then(|ymd| {
                NaiveDate::from_ymd_opt(
                    ymd[0].parse().ok()?,
                    ymd[1].parse().ok()?,
                    ymd[2].parse().ok()?,
                )
            });
            parts[i - 1] == account
                && parts.get(i + 1) == Some(&region)
                && parts.len() == i + 6
                && date.is_some_and(|d| days.contains(&d))
        })
        .collect();
    let total = crate::common::files(&logs).len();
    // And the callers' folders: for each cross-account use in the planned logs (read here with
    // gzip and serde_json), the caller account's folder of this region on the event's day and
    // the day after, where the archive has that folder (777788889999 has none) — none of this
    // run's planned folders is a caller's.
    let keys: BTreeSet<String> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["KeyMetadata"]["Arn"]
                .as_str()
                .or(v["KeyArn"].as_str())
                .unwrap()
                .to_string()
        })
        .collect();
    let mut caller_days: BTreeSet<(String, NaiveDate)> = BTreeSet::new();
    for k in &want {
        for r in records(&logs.join(k)) {
            let caller = r["userIdentity"]["accountId"].as_str().unwrap_or(account);
            let names_key = r["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|x| keys.contains(x["ARN"].as_str().unwrap_or_default()));
            let name = r["eventName"].as_str().unwrap_or_default();
            if r["eventSource"] == "kms.amazonaws.com"
                && keytrail::model::TRACKED_OPERATIONS.contains(&name)
                && r["errorCode"].is_null()
                && r["recipientAccountId"] == account
                && caller != account
                && r["sharedEventID"].is_string()
                && names_key
            {
                let t = chrono::DateTime::parse_from_rfc3339(r["eventTime"].as_str().unwrap())
                    .unwrap()
                    .naive_utc()
                    .date();
                caller_days.extend([
                    (caller.to_string(), t),
                    (caller.to_string(), t + Duration::days(1)),
                ]);
            }
        }
    }
    assert!(
        !caller_days.is_empty(),
        "the synth archive has cross-account uses"
    );
    let callers: BTreeSet<String> = crate::common::files(&logs)
        .into_iter()
        .map(|p| p.strip_prefix(&logs).unwrap().to_string_lossy().to_string())
        .filter(|k| {
            let parts: Vec<&str> = k.split('/').collect();
            parts.len() == 8
                && parts[2] == "CloudTrail"
                && parts[3] == region
                && caller_days.iter().any(|(a, d)| {
                    parts[1] == a
                        && format!("{}/{}/{}", parts[4], parts[5], parts[6])
                            == d.format("%Y/%m/%d").to_string()
                })
        })
        .collect();
    assert!(!callers.is_empty(), "{caller_days:?}");
    let want: BTreeSet<String> = want.union(&callers).cloned().collect();
    assert!(
        want.len() * 3 < total,
        "{} of {total}: the run must be a small part",
        want.len()
    );
    let extra: Vec<&String> = read.difference(&want).collect();
    let missed: Vec<&String> = want.difference(&read).collect();
    assert!(
        extra.is_empty() && missed.is_empty(),
        "read but not planned: {extra:?}\nplanned but not read: {missed:?}"
    );
}

/// The records of a gzip'd CloudTrail log file.
fn records(path: &std::path::Path) -> Vec<serde_json::Value> {
    use std::io::Read;
    let mut json = String::new();
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    if flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_string(&mut json)
        .is_err()
    {
        return Vec::new(); // the archive's corrupt objects
    }
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    v["Records"].as_array().cloned().unwrap_or_default()
}

/// A key's row is the same whether it is the only key of the run or one of many: its uses come
/// from its owner's copies, and the caller's copies of its cross-account uses are read from the
/// callers' folders for it (not only when another key's folders happen to hold them). Checked
/// for every key with cross-account callers, against the full run and the generator's truth.
#[test]
fn a_key_alone_and_among_others_gets_the_same_row() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    let truth = synth(&data, &["--seed", "31"]);
    let logs = data.join("logs");
    let all = tmp.path().join("all");
    let (code, text) = run(&data.join("usage.jsonl"), &logs, &all, &[]);
    assert!(code <= 1, "{text}");
    let among: BTreeMap<String, Value> = read_table(&all.join("key_usage"))
        .into_iter()
        .map(|r| (r["key_arn"].as_str().unwrap().to_string(), r))
        .collect();
    let usage = std::fs::read_to_string(data.join("usage.jsonl")).unwrap();
    let crossed: Vec<&Value> = truth["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| {
            k["other_account_callers"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        })
        .collect();
    assert!(
        crossed.len() >= 2,
        "the archive has keys with cross-account callers"
    );
    let mut callers_read = 0;
    for want in crossed {
        let arn = want["key_arn"].as_str().unwrap();
        let id = arn.rsplit('/').next().unwrap();
        let line: Vec<&str> = usage.lines().filter(|l| l.contains(id)).collect();
        assert_eq!(line.len(), 1, "{arn}");
        let one = tmp.path().join(format!("{id}.jsonl"));
        std::fs::write(&one, format!("{}\n", line[0])).unwrap();
        let out = tmp.path().join(id);
        let (code, text) = run(&one, &logs, &out, &[]);
        assert!(code <= 1, "{text}");
        let alone = read_table(&out.join("key_usage"));
        assert_eq!(alone.len(), 1);
        assert_eq!(alone[0], among[arn], "{arn}: alone vs among the others");
        // Callers with a folder in the archive are named by ARN; 777788889999 has none.
        assert_eq!(
            alone[0]["pre_tracking_principals"], want["pre_tracking_principals"],
            "{arn}"
        );
        let summary: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        callers_read += summary["caller_prefixes"].as_u64().unwrap();
    }
    assert!(
        callers_read > 0,
        "some callers' folders were read for a key alone"
    );
}
