//! A run split across processes — `keytrail plan`, `scan --shard` for each shard (given its index
//! through the batch engines' environment variables), `merge` — gives the report a single `run`
//! gives, in every table, row for row, integrity findings included. A merge with a shard missing
//! or foreign writes nothing and names it; a shard run twice, or killed and run again, changes
//! nothing.

use crate::common::{keytrail, keytrail_with_env, read_table, run, synth};
use std::path::{Path, PathBuf};

const TABLES: [&str; 5] = [
    "key_usage",
    "kms_events",
    "scan_manifest",
    "integrity",
    "accounts",
];

/// Every table of a report (an absent one, e.g. `integrity/` of an unsigned archive, as empty).
fn tables(out: &Path) -> Vec<Vec<serde_json::Value>> {
    assert!(
        out.join("key_usage").exists(),
        "{} is a report",
        out.display()
    );
    TABLES
        .iter()
        .map(|t| {
            let dir = out.join(t);
            if dir.exists() {
                read_table(&dir)
            } else {
                Vec::new()
            }
        })
        .collect()
}

/// A signed organization-trail archive with every tampering kind: the digest check has findings
/// to agree on, and its chains cross any shard boundary.
fn archive(dir: &Path) -> (PathBuf, Vec<String>) {
    synth(
        dir,
        &[
            "--seed", "43", "--sign", "--org-id", "o-shard12345",
            "--tamper", "modify-log,delete-log,unlisted-log,delete-digest,bad-signature,modify-digest,move-digest,delete-first-digests",
        ],
    );
    let flags = vec![
        "--backfill".to_string(),
        "all".into(),
        "--digest-signatures".into(),
        dir.join("digest-signatures.json").to_string_lossy().into(),
        "--public-key".into(),
        dir.join("digest-public-key.der").to_string_lossy().into(),
    ];
    (dir.join("logs"), flags)
}

fn plan(data: &Path, logs: &Path, flags: &[String], plan: &Path, n: usize) {
    let mut args = vec![
        "plan".to_string(),
        "--usage".into(),
        data.join("usage.jsonl").to_string_lossy().into(),
        "--logs".into(),
        logs.to_string_lossy().into(),
        "--out".into(),
        plan.to_string_lossy().into(),
        "--shards".into(),
        n.to_string(),
    ];
    args.extend_from_slice(flags);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = keytrail(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("in {n} shard(s)")));
}

/// Shard `k` as a batch engine starts it: `--shard auto` with its index in `var`.
fn scan(
    plan: &Path,
    shards: &Path,
    var: &'static str,
    k: usize,
    env: &[(&'static str, String)],
) -> Option<i32> {
    let mut all = vec![(var, k.to_string())];
    all.extend_from_slice(env);
    let o = keytrail_with_env(
        &[
            "scan",
            "--plan",
            plan.to_str().unwrap(),
            "--shard",
            "auto",
            "--out",
            shards.to_str().unwrap(),
            "-q",
        ],
        &all,
    );
    o.status.code()
}

fn merge(plan: &Path, shards: &Path, out: &Path) -> (Option<i32>, String) {
    let o = keytrail(&[
        "merge",
        "--plan",
        plan.to_str().unwrap(),
        "--shards",
        shards.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn one_three_and_seven_shards_merge_into_the_report_of_a_single_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    let (logs, flags) = archive(&data);
    let single = tmp.path().join("single");
    let f: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (code, text) = run(&data.join("usage.jsonl"), &logs, &single, &f);
    assert_eq!(code, 1, "{text}");
    let want = tables(&single);
    assert!(
        !want[3].is_empty(),
        "the digest check has findings to agree on"
    );

    for (n, var) in [
        (1, "AWS_BATCH_JOB_ARRAY_INDEX"),
        (3, "JOB_COMPLETION_INDEX"),
        (7, "AWS_BATCH_JOB_ARRAY_INDEX"),
    ] {
        let p = tmp.path().join(format!("plan-{n}.json"));
        plan(&data, &logs, &flags, &p, n);
        let shards = tmp.path().join(format!("shards-{n}"));
        // Any order.
        for k in (0..n).rev() {
            assert_eq!(scan(&p, &shards, var, k, &[]), Some(0), "shard {k} of {n}");
        }
        let out = tmp.path().join(format!("merged-{n}"));
        let (code, err) = merge(&p, &shards, &out);
        assert_eq!(code, Some(1), "{err}");
        let got = tables(&out);
        for (t, (g, w)) in TABLES.iter().zip(got.iter().zip(&want)) {
            assert_eq!(g, w, "{n} shards: table {t} differs from the single run's");
        }
    }
}

#[test]
fn a_merge_refuses_missing_or_foreign_shards_and_reruns_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    let (logs, flags) = archive(&data);
    let p = tmp.path().join("plan.json");
    plan(&data, &logs, &flags, &p, 3);
    let shards = tmp.path().join("shards");
    for k in [0, 2] {
        assert_eq!(scan(&p, &shards, "JOB_COMPLETION_INDEX", k, &[]), Some(0));
    }
    // Shard 1 missing: exit 2, naming it, nothing written.
    let out = tmp.path().join("report");
    let (code, err) = merge(&p, &shards, &out);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("shard 1 missing"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!out.exists());

    // Shard 1 killed half-way, then run again: it resumes, and its result is what a clean run
    // writes; shard 0 run twice writes the same bytes.
    let killed = scan(
        &p,
        &shards,
        "JOB_COMPLETION_INDEX",
        1,
        &[("KEYTRAIL_KILL_AT", "scan:20".into())],
    );
    assert_eq!(killed, None, "killed");
    assert_eq!(scan(&p, &shards, "JOB_COMPLETION_INDEX", 1, &[]), Some(0));
    let file =
        |k: usize| std::fs::read(shards.join(format!("shard-{k:05}-of-00003.json"))).unwrap();
    let (first0, first1) = (file(0), file(1));
    assert_eq!(scan(&p, &shards, "JOB_COMPLETION_INDEX", 0, &[]), Some(0));
    assert_eq!(file(0), first0, "a shard run twice writes the same result");
    let clean = tmp.path().join("clean");
    assert_eq!(scan(&p, &clean, "JOB_COMPLETION_INDEX", 1, &[]), Some(0));
    assert_eq!(
        std::fs::read(clean.join("shard-00001-of-00003.json")).unwrap(),
        first1,
        "a resumed shard writes a clean run's result"
    );

    let (code, err) = merge(&p, &shards, &out);
    assert_eq!(code, Some(1), "{err}");
    let single = tmp.path().join("single");
    let f: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (code, text) = run(&data.join("usage.jsonl"), &logs, &single, &f);
    assert_eq!(code, 1, "{text}");
    assert_eq!(tables(&out), tables(&single));

    // A shard of another plan (one with the same shard count, planned without --backfill all)
    // is refused by name; so is a damaged one.
    let other = tmp.path().join("other.json");
    plan(&data, &logs, &flags[2..], &other, 3);
    let foreign = tmp.path().join("foreign");
    assert_eq!(
        scan(&other, &foreign, "JOB_COMPLETION_INDEX", 2, &[]),
        Some(0)
    );
    std::fs::copy(
        foreign.join("shard-00002-of-00003.json"),
        shards.join("shard-00002-of-00003.json"),
    )
    .unwrap();
    let mut damaged = file(0);
    let last = damaged.len() - 2;
    damaged[last] ^= 1;
    std::fs::write(shards.join("shard-00000-of-00003.json"), damaged).unwrap();
    let out2 = tmp.path().join("report2");
    let (code, err) = merge(&p, &shards, &out2);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("shard 2 is from another plan") && err.contains("shard 0 damaged"),
        "{err}"
    );
    assert!(!out2.exists());

    // --shard auto with neither variable set names both.
    let o = keytrail(&[
        "scan",
        "--plan",
        p.to_str().unwrap(),
        "--shard",
        "auto",
        "--out",
        shards.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("AWS_BATCH_JOB_ARRAY_INDEX") && err.contains("JOB_COMPLETION_INDEX"),
        "{err}"
    );
}

/// A plan names the archive's day folders, not its objects: each shard lists its own. A folder
/// that changed between planning and scanning (an object delivered late, one deleted) is read as
/// it is then, and the report says which folders changed — the tables are those of a single run
/// over the changed archive.
#[test]
fn a_plan_holds_folders_and_a_folder_changed_after_planning_is_read_and_said() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    synth(&data, &["--seed", "44"]);
    let logs = data.join("logs");
    let flags = vec!["--backfill".to_string(), "all".into()];
    let p = tmp.path().join("plan.json");
    plan(&data, &logs, &flags, &p, 2);
    let text = std::fs::read_to_string(&p).unwrap();
    let all = crate::common::files(&logs);
    let log_files: Vec<&PathBuf> = all
        .iter()
        .filter(|f| f.to_string_lossy().contains("/CloudTrail/"))
        .collect();
    assert!(log_files.len() > 50);
    for f in &log_files {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(!text.contains(name.as_ref()), "the plan names {name}");
    }
    // Two planned folders with at least two logs each, from the plan's own list of folders.
    let planned: serde_json::Value = serde_json::from_str(&text).unwrap();
    let busy: Vec<(String, PathBuf)> = planned["plan"]["days"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["objects"].as_u64().unwrap() >= 2)
        .take(2)
        .map(|f| {
            let (a, r, d) = (
                f["prefix"]["account"].as_str().unwrap(),
                f["prefix"]["region"].as_str().unwrap(),
                f["prefix"]["day"].as_str().unwrap(),
            );
            let dir = format!("/{a}/CloudTrail/{r}/{}/", d.replace('-', "/"));
            let file = log_files
                .iter()
                .find(|l| l.to_string_lossy().contains(&dir))
                .unwrap();
            (format!("{a}/{r}/{d}"), (*file).clone())
        })
        .collect();
    assert_eq!(busy.len(), 2);
    // Delivered late: a copy under another name; deleted: one object of the other folder.
    let late = busy[0].1.with_file_name(
        busy[0]
            .1
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".json.gz", "")
            .rsplit_once('_')
            .map(|(head, _)| format!("{head}_LATE0000DELIVERY.json.gz"))
            .unwrap(),
    );
    std::fs::copy(&busy[0].1, &late).unwrap();
    std::fs::remove_file(&busy[1].1).unwrap();

    let shards = tmp.path().join("shards");
    for k in 0..2 {
        assert_eq!(scan(&p, &shards, "JOB_COMPLETION_INDEX", k, &[]), Some(0));
    }
    let out = tmp.path().join("merged");
    let (code, err) = merge(&p, &shards, &out);
    let single = tmp.path().join("single");
    let f: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (want_code, said) = run(&data.join("usage.jsonl"), &logs, &single, &f);
    assert_eq!(code, Some(want_code), "{err}\n{said}");
    assert_eq!(tables(&out), tables(&single));
    let manifest: Vec<String> = read_table(&out.join("scan_manifest"))
        .iter()
        .map(|r| r["object"].as_str().unwrap().to_string())
        .collect();
    let rel = |f: &Path| {
        f.strip_prefix(&logs)
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    assert!(manifest.contains(&rel(&late)));
    assert!(!manifest.contains(&rel(&busy[1].1)));
    let warnings = |dir: &Path| -> Vec<String> {
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
                .unwrap();
        s["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_string())
            .filter(|w| w.contains("changed between planning and scanning"))
            .collect()
    };
    let changed = warnings(&out);
    assert_eq!(changed.len(), 2, "{changed:?}");
    for (folder, _) in &busy {
        assert_eq!(
            changed
                .iter()
                .filter(|w| w.contains(folder.as_str()))
                .count(),
            1,
            "{folder}: {changed:?}"
        );
    }
    assert!(warnings(&single).is_empty());
}

/// PLAN and SHARDS in S3 (the test server, through a recording proxy), the archive too: the
/// merged report equals a single run's, and keytrail writes nothing outside the prefixes given.
#[test]
fn plan_and_shards_kept_in_s3_merge_into_the_same_report_and_nothing_else_is_written() {
    use crate::proxy::Recorder;
    use crate::s3::{rt, synth_in_moto};
    let (moto, tmp, data, _) = synth_in_moto(
        &["--seed", "44", "--org-id", "o-s3shard123"],
        "trail-logs",
        |_| None,
    );
    rt().block_on(async {
        moto.client()
            .create_bucket()
            .bucket("keytrail-state")
            .send()
            .await
            .unwrap();
    });
    let s3 = Recorder::start(&moto.endpoint);
    // moto behind the proxy.
    let env = crate::s3::offline_env("AWS_ENDPOINT_URL_S3", &s3.endpoint);
    let k = |args: &[&str], more: &[(&'static str, String)]| {
        let mut e = env.clone();
        e.extend_from_slice(more);
        let o = keytrail_with_env(args, &e);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let usage = data.join("usage.jsonl");
    let usage = usage.to_str().unwrap();
    let single = tmp.path().join("single");
    let (code, err) = k(
        &[
            "run",
            "--usage",
            usage,
            "--logs",
            "s3://trail-logs",
            "--out",
            single.to_str().unwrap(),
            "-q",
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{err}");
    let plan = "s3://keytrail-state/runs/r1/plan.json";
    let shards = "s3://keytrail-state/runs/r1/shards/";
    let (code, err) = k(
        &[
            "plan",
            "--usage",
            usage,
            "--logs",
            "s3://trail-logs",
            "--out",
            plan,
            "--shards",
            "3",
            "-q",
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    for i in 0..3 {
        let (code, err) = k(
            &[
                "scan", "--plan", plan, "--shard", "auto", "--out", shards, "-q",
            ],
            &[("AWS_BATCH_JOB_ARRAY_INDEX", i.to_string())],
        );
        assert_eq!(code, Some(0), "shard {i}: {err}");
    }
    // The report in S3 too; a second merge into it is refused without --overwrite.
    let report = "s3://keytrail-state/runs/r1/report/";
    let merge = |extra: &[&str]| {
        let mut args = vec![
            "merge", "--plan", plan, "--shards", shards, "--out", report, "-q",
        ];
        args.extend_from_slice(extra);
        k(&args, &[])
    };
    let (code, err) = merge(&[]);
    assert_eq!(code, Some(1), "{err}");
    let (code, err) = merge(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--overwrite"), "{err}");
    let (code, err) = merge(&["--overwrite"]);
    assert_eq!(code, Some(1), "{err}");
    let merged = tmp.path().join("merged");
    download(&moto.client(), "keytrail-state", "runs/r1/report/", &merged);
    assert!(merged.join("summary.json").exists());
    assert_eq!(tables(&merged), tables(&single));
    // Its own Athena DDL points where it was written.
    let ddl = std::fs::read_to_string(merged.join("athena/kms_events.sql")).unwrap();
    assert!(
        ddl.contains("LOCATION 's3://keytrail-state/runs/r1/report/kms_events/'"),
        "{ddl}"
    );
    assert!(!ddl.contains("REPORT-BUCKET"), "{ddl}");

    // Writes: the plan, three results, the report's objects twice and, before the second
    // report, the first one's commit marker deleted — all under the prefixes given.
    let writes: Vec<(String, String)> = s3
        .requests()
        .into_iter()
        .filter(|(m, _)| m != "GET" && m != "HEAD")
        .map(|(m, p)| (m, p.split('?').next().unwrap().to_string()))
        .collect();
    let puts = |under: &str| {
        writes
            .iter()
            .filter(|(m, p)| m == "PUT" && p.starts_with(under))
            .count()
    };
    assert_eq!(puts("/keytrail-state/runs/r1/plan.json"), 1);
    assert_eq!(puts("/keytrail-state/runs/r1/shards/"), 3);
    let report_objects = crate::common::files(&merged).len();
    assert_eq!(puts("/keytrail-state/runs/r1/report/"), 2 * report_objects);
    let deletes: Vec<&String> = writes
        .iter()
        .filter(|(m, _)| m == "DELETE")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        deletes,
        ["/keytrail-state/runs/r1/report/summary.json"],
        "{writes:?}"
    );
    assert_eq!(writes.len(), 1 + 3 + 2 * report_objects + 1, "{writes:?}");
    // summary.json is the last object of each report written.
    let report_puts: Vec<&String> = writes
        .iter()
        .filter(|(m, p)| m == "PUT" && p.starts_with("/keytrail-state/runs/r1/report/"))
        .map(|(_, p)| p)
        .collect();
    assert!(report_puts[report_objects - 1].ends_with("/summary.json"));
    assert!(report_puts[2 * report_objects - 1].ends_with("/summary.json"));
}

/// Every object under `prefix` of `bucket`, into `dir` (keyed by the rest of its key).
fn download(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str, dir: &Path) {
    crate::s3::rt().block_on(async {
        let listed = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .unwrap();
        for o in listed.contents() {
            let key = o.key().unwrap();
            let body = client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap();
            let bytes = body.body.collect().await.unwrap().into_bytes();
            let path = dir.join(key.strip_prefix(prefix).unwrap());
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    });
}

/// `run --out s3://...` writes the report a local run writes, with summary.json last.
#[test]
fn a_run_writes_its_report_to_s3() {
    use crate::s3::{rt, synth_in_moto};
    let (moto, tmp, data, _) = synth_in_moto(&["--seed", "45"], "trail-logs", |_| None);
    rt().block_on(async {
        moto.client()
            .create_bucket()
            .bucket("reports")
            .send()
            .await
            .unwrap();
    });
    let usage = data.join("usage.jsonl");
    let run = |out: &str| {
        let o = keytrail_with_env(
            &[
                "run",
                "--usage",
                usage.to_str().unwrap(),
                "--logs",
                "s3://trail-logs",
                "--out",
                out,
                "-q",
            ],
            &moto.env(),
        );
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let local = tmp.path().join("local");
    run(local.to_str().unwrap());
    run("s3://reports/keytrail/2026-11-29/");
    let got = tmp.path().join("got");
    download(&moto.client(), "reports", "keytrail/2026-11-29/", &got);
    assert_eq!(tables(&got), tables(&local));
    assert!(got.join("summary.json").exists() && got.join("athena/key_usage.sql").exists());
}
