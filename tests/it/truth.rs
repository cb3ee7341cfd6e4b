//! A run on a synthetic archive made with a seed the samples do not use must reproduce the
//! generator's ground truth for every key, in both the single-account and the
//! organization-trail-with-prefix layouts, and give every considered object one manifest row.

use crate::common::{read_table, run, synth};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const FIELDS: &[&str] = &[
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

#[test]
fn backfill_all_reproduces_the_truth() {
    check_layout("31337", &[], &["--backfill", "all", "--threads", "1"]);
}
