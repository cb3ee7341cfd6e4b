//! report.html, read twice: as a parser reads it, and as a reader sees it in headless Chromium
//! (driven by Selenium: `tests/browser/observe.py` reports what the page shows, this test
//! compares it with the Parquet tables and summary.json). Every key of `key_usage/` is listed
//! with its verdict and pre-tracking use count, the verdict counts are `summary.json`'s, each
//! verdict filter shows exactly its keys, each key's timeline marks as many uses as `key_usage`
//! counts, the coverage strips count the days `scan_manifest/` holds, no request leaves the file,
//! and hostile strings (an alias, a principal in a log record) arrive as text.

use crate::common::{gunzip, gzip, read_table, repo, run, synth};
use scraper::{Html, Selector};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const HOSTILE_ALIAS: &str = "alias/<script>alert(1)</script>";
const HOSTILE_PRINCIPAL: &str = "arn:aws:sts::111122223333:assumed-role/<img src=x onerror=alert(2)><script>alert(3)</script>/s";

/// `usage` with one more alias on the first key that has aliases: one that is markup.
fn with_hostile_alias(usage: &Path, to: &Path) {
    let text = std::fs::read_to_string(usage).unwrap();
    let mut lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let with_aliases = lines
        .iter_mut()
        .find(|l| l.get("Aliases").is_some_and(|a| a.is_array()))
        .expect("a key with aliases");
    with_aliases["Aliases"]
        .as_array_mut()
        .unwrap()
        .push(Value::from(HOSTILE_ALIAS));
    let lines: String = lines.iter().map(|l| l.to_string() + "\n").collect();
    std::fs::write(to, lines).unwrap();
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

#[test]
fn the_html_report_shows_every_key_as_key_usage_and_summary_json_say() {
    let tmp = tempfile::tempdir().unwrap();
    let hostile = HOSTILE_ALIAS;
    let usage_path = tmp.path().join("usage.jsonl");
    with_hostile_alias(&repo().join("samples/usage.jsonl"), &usage_path);
    let out = tmp.path().join("report");
    let (code, text) = run(&usage_path, &repo().join("samples/logs"), &out, &[]);
    assert_eq!(code, 1, "{text}");

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let doc = Html::parse_document(&html);
    let key_usage = read_table(&out.join("key_usage"));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();

    // Every key's timeline is drawn from this JSON when opened: its uses are listed there.
    let drawings: Value = serde_json::from_str(
        &doc.select(&sel("script#timelines[type='application/json']"))
            .next()
            .expect("the timelines' data")
            .text()
            .collect::<String>(),
    )
    .unwrap();

    // Every key, with its verdict and use count, and nothing else.
    let mut shown: BTreeMap<String, (String, i64, usize)> = BTreeMap::new();
    for tr in doc.select(&sel("#keys tbody.key")) {
        let arn = tr
            .select(&sel(".key-arn"))
            .next()
            .unwrap()
            .text()
            .collect::<String>();
        let verdict = tr
            .select(&sel(".verdict"))
            .next()
            .unwrap()
            .text()
            .collect::<String>();
        let uses: i64 = tr
            .select(&sel("td.uses"))
            .next()
            .unwrap()
            .text()
            .collect::<String>()
            .trim()
            .parse()
            .unwrap();
        // A key without any date has no timeline (and no uses).
        let marks = tr.select(&sel("details.timeline")).next().map_or(0, |d| {
            let i: usize = d.value().attr("data-i").unwrap().parse().unwrap();
            drawings[i]["uses"].as_array().map_or(0, Vec::len)
        });
        assert_eq!(tr.value().attr("data-verdict"), Some(verdict.as_str()));
        shown.insert(arn, (verdict, uses, marks));
    }
    let expected: BTreeMap<String, (String, i64, usize)> = key_usage
        .iter()
        .map(|r| {
            let n = r["pre_tracking_use_count"].as_i64().unwrap();
            (
                r["key_arn"].as_str().unwrap().to_string(),
                (r["verdict"].as_str().unwrap().to_string(), n, n as usize),
            )
        })
        .collect();
    assert_eq!(shown, expected);
    assert!(
        expected.values().any(|(_, n, _)| *n > 0),
        "some key has uses to draw"
    );

    // The run's warnings are summary.json's, in its order (the samples have some).
    let warnings: Vec<String> = doc
        .select(&sel("#warnings li"))
        .map(|li| li.text().collect::<String>())
        .collect();
    let want: Vec<&str> = summary["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(warnings, want);

    // The counts are summary.json's.
    let counts: BTreeMap<String, u64> = doc
        .select(&sel("#verdict-counts li"))
        .map(|li| {
            let n = li
                .select(&sel(".n"))
                .next()
                .unwrap()
                .text()
                .collect::<String>();
            (
                li.value().attr("data-verdict").unwrap().to_string(),
                n.parse().unwrap(),
            )
        })
        .collect();
    let expected: BTreeMap<String, u64> = verdict_counts(&summary);
    assert_eq!(counts, expected);

    // Self-contained: no element loads anything, no URL of another origin anywhere.
    for (tag, attr) in [
        ("script", "src"),
        ("link", "href"),
        ("img", "src"),
        ("iframe", "src"),
    ] {
        assert_eq!(
            doc.select(&sel(&format!("{tag}[{attr}]"))).count(),
            0,
            "{tag} {attr}"
        );
    }
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("url("));

    // The hostile alias is text: one script element that runs (the report's own; the other holds
    // the timelines' JSON), the alias shown as typed.
    assert_eq!(doc.select(&sel("script:not([type])")).count(), 1);
    assert_eq!(doc.select(&sel("script")).count(), 2);
    assert!(doc.root_element().text().any(|t| t.contains(hostile)));
    assert!(!html.contains("<script>alert"));
}

/// `summary.json`'s count of keys per verdict.
fn verdict_counts(summary: &Value) -> BTreeMap<String, u64> {
    summary["verdicts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

/// What `tests/browser/observe.py` saw of `report` in headless Chromium.
fn observe_in_chromium(report: &Path) -> Value {
    let out = std::process::Command::new("python3")
        .arg(repo().join("tests/browser/observe.py"))
        .arg(report)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "observe.py failed (tests/run installs chromium, chromium-driver and selenium): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Days of each class per (account, region) over its keys' backfill windows, worked out here
/// from the `scan_manifest/` and `key_usage/` tables: the worst of unreadable, archived, read,
/// no logs.
fn coverage_from_tables(out: &Path) -> BTreeMap<(String, String), [u32; 4]> {
    use chrono::NaiveDate;
    let day =
        |v: &Value| NaiveDate::parse_from_str(&v.as_str().unwrap()[..10], "%Y-%m-%d").unwrap();
    let mut spans: BTreeMap<(String, String), (NaiveDate, NaiveDate)> = BTreeMap::new();
    for k in read_table(&out.join("key_usage")) {
        if k["backfill_window_start"].is_null() {
            continue;
        }
        let (first, end) = (day(&k["backfill_window_start"]), &k["backfill_window_end"]);
        // The window's end is exclusive: its last day is the one before an end at midnight.
        let end_text = end.as_str().unwrap();
        let mut last = day(end);
        if end_text[11..]
            .trim_start_matches("00:00:00")
            .trim_matches(|c| c == '.' || c == '0' || c == 'Z')
            .is_empty()
        {
            last = last.pred_opt().unwrap();
        }
        let place = (
            k["account_id"].as_str().unwrap().to_string(),
            k["region"].as_str().unwrap().to_string(),
        );
        let span = spans.entry(place).or_insert((first, last));
        span.0 = span.0.min(first);
        span.1 = span.1.max(last);
    }
    let mut days: BTreeMap<(String, String, NaiveDate), [u32; 3]> = BTreeMap::new();
    for m in read_table(&out.join("scan_manifest")) {
        let d = days
            .entry((
                m["account_id"].as_str().unwrap().to_string(),
                m["region"].as_str().unwrap().to_string(),
                day(&m["delivery_date"]),
            ))
            .or_default();
        let archived = m["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("archived"));
        match (m["status"].as_str().unwrap(), archived) {
            ("read", _) => d[0] += 1,
            ("unreadable", _) => d[1] += 1,
            ("skipped", true) => d[2] += 1,
            _ => {}
        }
    }
    spans
        .into_iter()
        .map(|((account, region), (first, last))| {
            let mut counts = [0u32; 4];
            let mut d = first;
            while d <= last {
                let c = days
                    .get(&(account.clone(), region.clone(), d))
                    .copied()
                    .unwrap_or_default();
                let class = if c[1] > 0 {
                    2
                } else if c[2] > 0 {
                    3
                } else if c[0] > 0 {
                    0
                } else {
                    1
                };
                counts[class] += 1;
                d = d.succ_opt().unwrap();
            }
            ((account, region), counts)
        })
        .collect()
}

#[test]
fn in_a_real_browser_the_report_shows_filters_and_draws_what_the_tables_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    // The sample archive (seed 1), with its digest chain: a changed log is an integrity finding.
    synth(&data, &["--seed", "1", "--sign"]);
    let usage = tmp.path().join("usage.jsonl");
    with_hostile_alias(&data.join("usage.jsonl"), &usage);
    let logs = data.join("logs");
    let sigs = data.join("digest-signatures.json");
    let public = data.join("digest-public-key.der");
    let integrity = [
        "--digest-signatures",
        sigs.to_str().unwrap(),
        "--public-key",
        public.to_str().unwrap(),
    ];
    let base = tmp.path().join("base");
    let (code, text) = run(&usage, &logs, &base, &integrity);
    assert!(code <= 1, "{text}");

    // One pre-tracking use's principal becomes markup, in its log record.
    let events = read_table(&base.join("kms_events"));
    let event = events
        .iter()
        .find(|e| {
            e["caller_event_id"].is_null()
                && e["key_role"] == "key"
                && !e["principal_arn"].is_null()
        })
        .expect("a same-account use with a principal");
    let object = logs.join(event["log_object"].as_str().unwrap());
    let mut doc: Value = serde_json::from_slice(&gunzip(&object)).unwrap();
    let record = doc["Records"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["eventID"] == event["event_id"])
        .unwrap();
    record["userIdentity"]["arn"] = json!(HOSTILE_PRINCIPAL);
    std::fs::write(&object, gzip(&serde_json::to_vec(&doc).unwrap())).unwrap();

    let out = tmp.path().join("report");
    let (code, text) = run(&usage, &logs, &out, &integrity);
    assert!(code <= 2, "{text}");
    let seen = observe_in_chromium(&out.join("report.html"));
    let key_usage = read_table(&out.join("key_usage"));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();

    // Every key is shown, with its verdict and use count as key_usage has them.
    let shown: BTreeMap<String, (String, i64, bool)> = seen["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["arn"].as_str().unwrap().to_string(),
                (
                    r["verdict"].as_str().unwrap().to_string(),
                    r["uses"].as_str().unwrap().parse().unwrap(),
                    r["displayed"].as_bool().unwrap(),
                ),
            )
        })
        .collect();
    let expected: BTreeMap<String, (String, i64, bool)> = key_usage
        .iter()
        .map(|r| {
            (
                r["key_arn"].as_str().unwrap().to_string(),
                (
                    r["verdict"].as_str().unwrap().to_string(),
                    r["pre_tracking_use_count"].as_i64().unwrap(),
                    true,
                ),
            )
        })
        .collect();
    assert_eq!(shown, expected);

    // The counts are summary.json's.
    let counts: BTreeMap<String, u64> = seen["counts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().parse().unwrap()))
        .collect();
    let expected_counts: BTreeMap<String, u64> = verdict_counts(&summary);
    assert_eq!(counts, expected_counts);

    // Each verdict filter shows exactly that verdict's keys; "all" shows every key.
    let filtered = seen["filtered"].as_object().unwrap();
    assert_eq!(filtered.len(), expected_counts.len() + 1, "{filtered:?}");
    for (verdict, f) in filtered {
        let want: BTreeSet<String> = expected
            .iter()
            .filter(|(_, (v, _, _))| verdict == "all" || v == verdict)
            .map(|(arn, _)| arn.clone())
            .collect();
        assert!(!want.is_empty(), "{verdict}");
        assert_eq!(strings(&f["shown"]), want, "filter {verdict}");
    }
    // The keyboard moves the filter too (End: the last verdict).
    let last = filtered.keys().filter(|k| *k != "all").max().unwrap();
    assert_eq!(seen["keyboard_last_option"]["value"], json!(last));
    assert_eq!(
        seen["keyboard_last_option"]["shown"],
        json!(expected_counts[last.as_str()])
    );

    // Each key's timeline, opened, marks its pre-tracking uses; a key with integrity findings in
    // its days says so; the markup principal is a title's text.
    let timelines = seen["timelines"].as_object().unwrap();
    let (mut flagged, mut refused) = (0, 0);
    for k in &key_usage {
        let Some(t) = timelines.get(k["key_arn"].as_str().unwrap()) else {
            // No timeline only for a key without dates (GetKeyLastUsage failed), and no uses.
            assert!(k["key_creation_date"].is_null() && k["tracking_start_date"].is_null());
            assert_eq!(k["pre_tracking_use_count"], json!(0));
            continue;
        };
        assert_eq!(
            t["uses"].as_i64().unwrap(),
            k["pre_tracking_use_count"].as_i64().unwrap(),
            "{}",
            k["key_arn"]
        );
        // Its failed attempts are marked too (refused calls, never uses).
        assert_eq!(
            t["refused"].as_i64().unwrap(),
            k["failed_attempts"].as_i64().unwrap(),
            "{}",
            k["key_arn"]
        );
        refused += t["refused"].as_i64().unwrap();
        let says = t["label"].as_str().unwrap().contains("integrity finding");
        assert_eq!(
            says,
            k["integrity_failures"].as_i64().unwrap() > 0,
            "{}",
            k["key_arn"]
        );
        flagged += usize::from(says);
    }
    assert!(
        flagged > 0,
        "the changed log is a finding in some key's days"
    );
    assert!(refused > 0, "some key was tried and refused");
    let marked: Vec<&str> = timelines
        .values()
        .flat_map(|t| t["titles"].as_array().unwrap())
        .filter_map(|t| t.as_str())
        .filter(|t| t.contains(HOSTILE_PRINCIPAL))
        .collect();
    assert!(!marked.is_empty(), "the hostile principal is shown as text");

    // A key linked from "need attention" is shown with its timeline, though a filter hid it.
    let link = &seen["attention_link"];
    assert_eq!(link["arn"], link["linked"]);
    assert_eq!(link["displayed"], json!(true));
    assert_eq!(link["timeline_drawn"], json!(true));

    // The coverage strips count the days as scan_manifest and key_usage hold them.
    let coverage: BTreeMap<(String, String), [u32; 4]> = seen["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let n = |k: &str| c[k].as_u64().unwrap() as u32;
            (
                (
                    c["account"].as_str().unwrap().to_string(),
                    c["region"].as_str().unwrap().to_string(),
                ),
                [n("read"), n("nologs"), n("unreadable"), n("archived")],
            )
        })
        .collect();
    let want = coverage_from_tables(&out);
    assert_eq!(coverage, want);
    assert!(
        want.values().any(|c| c[1] > 0) && want.values().any(|c| c[2] > 0),
        "the sample archive has days without logs and days with unreadable objects"
    );

    // Nothing ran but the report's own script; nothing was fetched but the file itself.
    assert_eq!(seen["scripts"], json!(1));
    assert_eq!(seen["alert"], json!(false));
    assert_eq!(seen["console_errors"], json!([]));

    // It prints: without the controls, with every key (there are fewer than a page of them).
    assert_eq!(seen["print"]["controls_shown"], json!(false));
    assert_eq!(seen["print"]["keys_shown"], json!(key_usage.len()));
    assert!(
        seen["pdf_bytes"].as_u64().unwrap() > 10_000,
        "{}",
        seen["pdf_bytes"]
    );
    let url = format!("file://{}", out.join("report.html").display());
    assert_eq!(seen["requests"], json!([url]));
    assert!(seen["rows"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["text"].as_str().unwrap().contains(HOSTILE_ALIAS)));
}
