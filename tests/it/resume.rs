//! Killed runs resumed: a run killed with SIGKILL at any point and started again with `--resume`
//! gives the report an uninterrupted run gives, and scans only what the killed run had not
//! recorded. The kill points are set with `KEYTRAIL_KILL_AT` (the process sends itself SIGKILL
//! there, so the point is exact); the journal is read here independently of keytrail's reader.

use crate::common::{assert_same_tables, entries, keytrail_with_env, read_table, synth};
use crate::proxy::Recorder;
use crate::s3::synth_in_moto;
use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

fn run(
    env: &[(&str, String)],
    usage: &Path,
    logs: &str,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "run",
        "--usage",
        usage.to_str().unwrap(),
        "--logs",
        logs,
        "--out",
        out.to_str().unwrap(),
        "--backfill",
        "all",
    ];
    args.extend_from_slice(extra);
    keytrail_with_env(&args, env)
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The statuses of the whole lines of a journal (`<crc32 hex> <json>\n`), checked here by hand.
fn journal(work: &Path) -> Vec<String> {
    let path = work.join(".report.keytrail-checkpoint").join("journal");
    let bytes = std::fs::read(path).unwrap_or_default();
    let mut statuses = Vec::new();
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let Some(line) = line.strip_suffix(b"\n") else {
            break;
        };
        let (sum, json) = line.split_at(8);
        let mut crc = flate2::Crc::new();
        crc.update(&json[1..]);
        if format!("{:08x}", crc.sum()).as_bytes() != sum {
            break;
        }
        let v: Value = serde_json::from_slice(&json[1..]).unwrap();
        statuses.push(v["row"]["status"].as_str().unwrap().to_string());
    }
    statuses
}

fn summary(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn a_run_killed_anywhere_and_resumed_gives_the_uninterrupted_report() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    synth(&data, &["--seed", "7"]);
    let usage = data.join("usage.jsonl");
    let logs = data.join("logs");
    let logs = logs.to_str().unwrap();
    let base = tmp.path().join("base");
    let clean = run(&[], &usage, logs, &base, &[]);
    let objects = read_table(&base.join("scan_manifest")).len();
    assert!(objects > 100, "the archive is big enough to kill mid-scan");

    for (i, point) in ["start", "scan:1", "scan:300", "report", "commit"]
        .into_iter()
        .enumerate()
    {
        let work = tmp.path().join(format!("kill{i}"));
        std::fs::create_dir(&work).unwrap();
        let out = work.join("report");
        let killed = run(
            &[("KEYTRAIL_KILL_AT", point.to_string())],
            &usage,
            logs,
            &out,
            &["--threads", "2"],
        );
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "{point}: {}",
            text(&killed)
        );
        assert!(
            !out.exists(),
            "{point}: a killed run left a report in --out"
        );
        let recorded = journal(&work).len();
        match point {
            "start" => assert_eq!(recorded, 0),
            "report" | "commit" => assert_eq!(recorded, objects, "{point}"),
            scan => {
                let n: usize = scan[5..].parse().unwrap();
                assert!((n..objects).contains(&recorded), "{point}: {recorded}");
            }
        }

        let resumed = run(&[], &usage, logs, &out, &["--resume"]);
        assert_eq!(
            resumed.status.code(),
            clean.status.code(),
            "{point}: {}",
            text(&resumed)
        );
        assert_same_tables(&base, &out, point);
        let s = summary(&out);
        assert_eq!(
            s["objects"]["resumed_from_checkpoint"].as_u64(),
            Some(recorded as u64),
            "{point}: the resumed run scanned again what the killed one had recorded"
        );
        // The checkpoint and the killed run's staging directory are gone.
        assert_eq!(entries(&work), vec!["report".to_string()], "{point}");
    }
}

#[test]
fn a_resume_of_another_run_is_refused_and_a_run_without_resume_starts_afresh() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    synth(&data, &["--seed", "8"]);
    let usage = data.join("usage.jsonl");
    let logs = data.join("logs");
    let out = tmp.path().join("report");
    let kill = [("KEYTRAIL_KILL_AT", "scan:50".to_string())];
    let killed = run(&kill, &usage, logs.to_str().unwrap(), &out, &[]);
    assert_eq!(killed.status.signal(), Some(9));
    // Other limits would give other results for some objects: the checkpoint is not theirs.
    let other = run(
        &[],
        &usage,
        logs.to_str().unwrap(),
        &out,
        &["--resume", "--max-inflated-mib", "64"],
    );
    assert_eq!(other.status.code(), Some(2), "{}", text(&other));
    assert!(
        text(&other).contains("was made for other limits (--max-inflated-mib 2048)"),
        "{}",
        text(&other)
    );
    // Without --resume the checkpoint is dropped and every object is scanned.
    let fresh = run(&[], &usage, logs.to_str().unwrap(), &out, &[]);
    assert!(
        fresh.status.code().is_some_and(|c| c <= 1),
        "{}",
        text(&fresh)
    );
    assert_eq!(summary(&out)["objects"]["resumed_from_checkpoint"], 0);
}

/// Over S3: a run killed mid-scan and resumed GETs exactly the objects the journal did not hold.
#[test]
fn a_resumed_s3_run_fetches_only_what_the_killed_run_had_not_recorded() {
    let (moto, tmp, data, _) = synth_in_moto(&["--seed", "9"], "resume-logs", |_| None);
    let usage = data.join("usage.jsonl");
    let base = tmp.path().join("base");
    let clean = run(&moto.env(), &usage, "s3://resume-logs", &base, &[]);
    assert!(
        clean.status.code().is_some_and(|c| c <= 1),
        "{}",
        text(&clean)
    );

    let out = tmp.path().join("report");
    let mut env = moto.env();
    env.push(("KEYTRAIL_KILL_AT", "scan:200".to_string()));
    let killed = run(&env, &usage, "s3://resume-logs", &out, &[]);
    assert_eq!(killed.status.signal(), Some(9), "{}", text(&killed));
    let recorded = journal(tmp.path());
    assert!(recorded.len() >= 200, "{}", recorded.len());
    let fetched_before = recorded.iter().filter(|s| *s != "skipped").count();

    let recorder = Recorder::start(&moto.endpoint);
    // moto behind the proxy.
    let env = crate::s3::offline_env("AWS_ENDPOINT_URL_S3", &recorder.endpoint);
    let resumed = run(&env, &usage, "s3://resume-logs", &out, &["--resume"]);
    assert_eq!(
        resumed.status.code(),
        clean.status.code(),
        "{}",
        text(&resumed)
    );
    assert_same_tables(&base, &out, "s3");
    let fetched_in_all: usize = read_table(&out.join("scan_manifest"))
        .iter()
        .filter(|r| r["status"] != "skipped")
        .count();
    let gets = recorder
        .requests()
        .iter()
        .filter(|(m, p)| m == "GET" && p.contains("x-id=GetObject"))
        .count();
    assert_eq!(gets, fetched_in_all - fetched_before);
}
