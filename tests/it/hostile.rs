//! Hostile input inside a readable log object: records with wrong types, invalid UTF-8, absurd
//! nesting and a 10 MB field are skipped and counted as malformed, never a panic and never a
//! silent drop; the good record beside them is still found. Objects that are not CloudTrail logs
//! are skipped, or unreadable, with their reason. Expected counts are worked out here by hand
//! from a clean run's manifest plus what this test adds.

use crate::common::{gunzip, gzip, read_table, run, synth};
use serde_json::{json, Value};

/// A record as raw JSON bytes, with `field` replaced by `raw` (which need not be valid JSON text).
fn with_raw(record: &Value, field: &str, raw: &[u8]) -> Vec<u8> {
    let mut r = record.clone();
    r[field] = json!("@@HOLE@@");
    let text = serde_json::to_vec(&r).unwrap();
    let at = text.windows(10).position(|w| w == b"\"@@HOLE@@\"").unwrap();
    [&text[..at], raw, &text[at + 10..]].concat()
}

#[test]
fn hostile_records_are_counted_malformed_and_the_good_one_beside_them_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    synth(&data, &["--seed", "11"]);
    let usage = data.join("usage.jsonl");
    let logs = data.join("logs");
    let base = tmp.path().join("base");
    let (code, text) = run(&usage, &logs, &base, &["--backfill", "all"]);
    assert!(code <= 1, "{text}");

    // An object holding an attributed use: its record is the template of every hostile one.
    let events = read_table(&base.join("kms_events"));
    let event = events
        .iter()
        .find(|e| e["caller_event_id"].is_null() && e["key_role"] == "key")
        .expect("a same-account use");
    let object = event["log_object"].as_str().unwrap().to_string();
    let path = logs.join(&object);
    let doc: Value = serde_json::from_slice(&gunzip(&path)).unwrap();
    let records = doc["Records"].as_array().unwrap();
    let template = records
        .iter()
        .find(|r| r["eventID"] == event["event_id"])
        .unwrap()
        .clone();
    let manifest = read_table(&base.join("scan_manifest"));
    let before = manifest.iter().find(|r| r["object"] == object).unwrap();

    let mut good = template.clone();
    good["eventID"] = json!("hostile-control-0001");
    let deep = [vec![b'['; 100_000], vec![b']'; 100_000]].concat();
    let big = [b"\"".as_slice(), &vec![b'x'; 10 << 20], b"\""].concat();
    let mut hostile: Vec<Vec<u8>> = vec![
        // Wrong types: eventTime a number, resources an object, eventName an array.
        with_raw(&template, "eventTime", b"1735689600"),
        with_raw(
            &template,
            "resources",
            br#"{"ARN":"arn:aws:kms:us-east-1:111122223333:key/x"}"#,
        ),
        with_raw(&template, "eventName", br#"["Decrypt"]"#),
        // Invalid UTF-8 inside a string.
        with_raw(&template, "userAgent", b"\"aws-cli/\xff\xfe\xc3\""),
        // Absurd nesting: 100,000 arrays deep.
        with_raw(&template, "requestParameters", &deep),
        // A 10 MB field.
        with_raw(&template, "userAgent", &big),
    ];
    let malformed_added = hostile.len() as i64;
    // Not KMS: a non-KMS record nested absurdly deep and one with invalid UTF-8 are records, not
    // uses, and need no parse.
    let mut s3_call = template.clone();
    s3_call["eventSource"] = json!("s3.amazonaws.com");
    hostile.push(with_raw(&s3_call, "requestParameters", &deep));
    hostile.push(with_raw(&s3_call, "userAgent", b"\"\xff\""));

    let mut body = b"{\"Records\":[".to_vec();
    for r in records {
        body.extend(serde_json::to_vec(r).unwrap());
        body.push(b',');
    }
    for h in &hostile {
        body.extend(h);
        body.push(b',');
    }
    body.extend(serde_json::to_vec(&good).unwrap());
    body.extend(b"]}");
    std::fs::write(&path, gzip(&body)).unwrap();

    let out = tmp.path().join("hostile");
    let (code, text) = run(&usage, &logs, &out, &["--backfill", "all"]);
    assert!(code <= 1, "no crash: {text}");
    let manifest = read_table(&out.join("scan_manifest"));
    let after = manifest.iter().find(|r| r["object"] == object).unwrap();
    assert_eq!(after["status"], "read", "{after}");
    let n = |r: &Value, k: &str| r[k].as_i64().unwrap();
    assert_eq!(
        n(after, "records"),
        n(before, "records") + hostile.len() as i64 + 1
    );
    assert_eq!(
        n(after, "malformed_records"),
        n(before, "malformed_records") + malformed_added,
        "{after}"
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(
        summary["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("malformed record(s) were skipped")),
        "{summary}"
    );
    let events = read_table(&out.join("kms_events"));
    assert!(
        events
            .iter()
            .any(|e| e["event_id"] == "hostile-control-0001"),
        "the good record beside the hostile ones is a use"
    );
}

#[test]
fn objects_that_are_not_cloudtrail_logs_are_skipped_or_unreadable_with_their_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    synth(&data, &["--seed", "12"]);
    let logs = data.join("logs");
    let real = crate::common::files(&logs)
        .into_iter()
        .find(|p| {
            p.to_string_lossy().ends_with(".json.gz")
                && p.to_string_lossy().contains("/CloudTrail/")
        })
        .unwrap();
    let day = real.parent().unwrap();
    let name = real.file_name().unwrap().to_string_lossy().to_string();
    let log_name = |tag: &str| format!("{}{tag}.json.gz", &name[..name.len() - 24]);
    let cases: Vec<(String, Vec<u8>, &str, &str)> = vec![
        // Shares the folder but is not a log by name: skipped, before it is read.
        (
            "notes.txt".into(),
            b"hello".to_vec(),
            "skipped",
            "not a CloudTrail log file",
        ),
        (
            "ConfigWritabilityCheckFile".into(),
            Vec::new(),
            "skipped",
            "AWS Config write-check file, not a log",
        ),
        // Named as a log but not one inside: unreadable, so the days it covers are not trusted.
        (
            log_name("NOTGZIPNOTGZIP00"),
            b"plain text".to_vec(),
            "unreadable",
            "gzip",
        ),
        (
            log_name("NOTJSONNOTJSON00"),
            gzip(b"\x00\x01binary"),
            "unreadable",
            "JSON",
        ),
        (
            log_name("NORECORDSNORECS0"),
            gzip(br#"{"configurationItems":[]}"#),
            "unreadable",
            "Records",
        ),
    ];
    for (file, bytes, _, _) in &cases {
        std::fs::write(day.join(file), bytes).unwrap();
    }
    let out = tmp.path().join("report");
    let (code, text) = run(
        &data.join("usage.jsonl"),
        &logs,
        &out,
        &["--backfill", "all"],
    );
    assert!(code <= 1, "{text}");
    let manifest = read_table(&out.join("scan_manifest"));
    for (file, _, status, reason) in &cases {
        let row = manifest
            .iter()
            .find(|r| r["object"].as_str().unwrap().ends_with(&format!("/{file}")))
            .unwrap_or_else(|| panic!("{file} has a manifest row"));
        assert_eq!(row["status"], *status, "{row}");
        assert!(
            row["reason"].as_str().unwrap().contains(reason),
            "{file}: {row}"
        );
    }
}
