//! The command line's contract: bad input gives one clear line and exit 2, and leaves nothing
//! behind; a good run exits 0 or 1 and replaces nothing it should not.

use crate::common::{keytrail, run, synth};
use std::path::Path;

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn usage_errors_exit_2_with_one_clear_line_and_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    synth(&data, &["--seed", "5"]);
    let usage = data.join("usage.jsonl");
    let logs = data.join("logs");
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let out = work.join("report");

    let bad_usage = work.join("bad.jsonl");
    let good = std::fs::read_to_string(&usage).unwrap();
    let first = good.lines().next().unwrap();
    std::fs::write(&bad_usage, format!("{first}\n{{\"KeyId\": 42}}\n")).unwrap();
    let file_not_dir = work.join("a-file");
    std::fs::write(&file_not_dir, "x").unwrap();
    let no_logs = tmp.path().join("nope");
    let no_usage = tmp.path().join("nope.jsonl");
    let under_file = file_not_dir.join("report");

    let cases: Vec<(&str, Vec<&Path>, &str)> = vec![
        ("missing --logs", vec![&usage, &no_logs, &out], "--logs"),
        (
            "malformed --usage line",
            vec![&bad_usage, &logs, &out],
            "line 2",
        ),
        (
            "missing --usage",
            vec![&no_usage, &logs, &out],
            "nope.jsonl",
        ),
        (
            "unwritable --out (under a file)",
            vec![&usage, &logs, &under_file],
            "--out",
        ),
        (
            "--out is a file",
            vec![&usage, &logs, &file_not_dir],
            "not a directory",
        ),
    ];
    for (name, paths, says) in cases {
        let (code, text) = run(paths[0], paths[1], paths[2], &[]);
        assert_eq!(code, 2, "case {name}: {text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "case {name}: one line, got {text}");
        assert!(
            lines[0].starts_with("keytrail: error:") && lines[0].contains(says),
            "case {name}: {text}"
        );
        assert_eq!(
            entries(&work),
            ["a-file", "bad.jsonl"],
            "case {name}: nothing left behind"
        );
    }

    // A bad flag value is a usage error too.
    let o = keytrail(&[
        "run",
        "--usage",
        "u",
        "--logs",
        "l",
        "--out",
        "o",
        "--since",
        "last week",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--since"));

    // A finished run, then a second one into the same directory: refused unless --overwrite.
    let (code, text) = run(&usage, &logs, &out, &[]);
    assert_eq!(code, 1, "{text}");
    let (code, text) = run(&usage, &logs, &out, &[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("not empty"), "{text}");
    let (code, text) = run(&usage, &logs, &out, &["--overwrite"]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(
        entries(&out),
        ["key_usage", "kms_events", "scan_manifest", "summary.json"]
    );
    assert_eq!(
        entries(&work),
        ["a-file", "bad.jsonl", "report"],
        "no staging directory left"
    );
}

#[test]
fn clean_evidence_exits_0() {
    // Keep only keys whose verdict needs no backfill or has complete evidence: exit 0.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    let truth = synth(&data, &["--seed", "11"]);
    let clean: Vec<&str> = truth["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| {
            k["verdict"] != "inconclusive" && k["tracking_status"] != "unknown_before_tracking"
        })
        .map(|k| k["key_arn"].as_str().unwrap())
        .collect();
    let usage = std::fs::read_to_string(data.join("usage.jsonl")).unwrap();
    let kept: Vec<&str> = usage
        .lines()
        .filter(|l| clean.iter().any(|arn| l.contains(arn)))
        .collect();
    assert!(!kept.is_empty());
    let subset = tmp.path().join("subset.jsonl");
    std::fs::write(&subset, kept.join("\n")).unwrap();
    let (code, text) = run(&subset, &data.join("logs"), &tmp.path().join("r"), &[]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn bench_prints_its_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    synth(&data, &["--seed", "12"]);
    let o = keytrail(&[
        "bench",
        "--usage",
        data.join("usage.jsonl").to_str().unwrap(),
        "--logs",
        data.join("logs").to_str().unwrap(),
        "--threads",
        "2",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for line in [
        "floor: read + inflate, libdeflate",
        "scan: 1 thread",
        "scan / floor (libdeflate)",
        "2 threads vs 1",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
}
