//! Live mode through the real AWS SDK clients over HTTP on loopback: KMS from the protocol
//! stand-in (`fake_aws`), the archive from moto's S3 server. A live run must reproduce the
//! offline run row for row, survive throttling, a 500 and a denied key, hold the pace of
//! `GetKeyLastUsage`, call only read APIs, and leave a snapshot that replays offline.

use crate::common::{keytrail_with_env, read_table, run, synth};
use crate::fake_aws::{count_by_operation, FakeAws, FakeTrail, Faults};
use crate::proxy::Recorder;
use crate::s3::{rt, upload, Moto};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A synth archive in moto's S3 (bucket `trail-logs`), its keys and trail on the stand-in, and
/// the environment a keytrail process needs to reach both.
struct Live {
    moto: Moto,
    tmp: tempfile::TempDir,
    data: PathBuf,
    truth: Value,
    aws: FakeAws,
    env: Vec<(&'static str, String)>,
}

fn live(seed: &str, faults: impl FnOnce(&Value) -> Faults, trail: FakeTrail) -> Live {
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    let truth = synth(&data, &["--seed", seed]);
    let snapshot = std::fs::read_to_string(data.join("usage.jsonl")).unwrap();
    let aws = FakeAws::start(&snapshot, faults(&truth), vec![trail]);
    rt().block_on(upload(
        &moto.client(),
        "trail-logs",
        &data.join("logs"),
        |_| None,
    ));
    let mut env = moto.env();
    env.push(("AWS_ENDPOINT_URL_KMS", aws.endpoint.clone()));
    env.push(("AWS_ENDPOINT_URL_CLOUDTRAIL", aws.endpoint.clone()));
    env.push(("AWS_ENDPOINT_URL_ACCOUNT", aws.endpoint.clone()));
    env.push(("AWS_ENDPOINT_URL_STS", aws.endpoint.clone()));
    env.push(("AWS_ENDPOINT_URL_ORGANIZATIONS", aws.endpoint.clone()));
    Live {
        moto,
        tmp,
        data,
        truth,
        aws,
        env,
    }
}

impl Live {
    /// `keytrail run --usage aws` into `name`, over both regions from `s3://trail-logs` unless
    /// `extra` says `--regions` or `--logs`; exit code, output, report dir.
    fn run(&self, name: &str, extra: &[&str]) -> (Option<i32>, String, PathBuf) {
        self.run_with(name, extra, &[])
    }

    /// `run`, with more environment variables.
    fn run_with(
        &self,
        name: &str,
        extra: &[&str],
        more_env: &[(&'static str, String)],
    ) -> (Option<i32>, String, PathBuf) {
        let out = self.tmp.path().join(name);
        let mut args = vec!["run", "--usage", "aws"];
        if !extra.contains(&"--regions") {
            args.extend_from_slice(&["--regions", "us-east-1,eu-west-1"]);
        }
        if !extra.contains(&"--logs") {
            args.extend_from_slice(&["--logs", "s3://trail-logs"]);
        }
        // The synth keys are in two accounts: the base credentials' and one entered by its role.
        if !extra.contains(&"--accounts") {
            args.extend_from_slice(&["--accounts", "111122223333,044455556666"]);
        }
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", out.to_str().unwrap()]);
        let mut env = self.env.clone();
        env.extend_from_slice(more_env);
        let o = keytrail_with_env(&args, &env);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.code(), text, out)
    }
}

#[test]
fn live_run_equals_the_offline_run_and_survives_faults_at_the_quota() {
    let mut l = live(
        "808",
        |truth| Faults {
            throttle_first: 6,
            fail_once: Some(truth["keys"][3]["key_arn"].as_str().unwrap().to_string()),
        },
        FakeTrail::org("trail-logs", true, all_management()),
    );
    let errored = l.truth["errored_keys"][0].as_str().unwrap().to_string();
    // S3 goes through a recording proxy, to prove keytrail only reads.
    let s3 = Recorder::start(&l.moto.endpoint);
    l.env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL_S3");
    l.env.push(("AWS_ENDPOINT_URL_S3", s3.endpoint.clone()));
    let (code, text, live) = l.run("live", &[]);
    let (truth, data, tmp, kms) = (&l.truth, &l.data, &l.tmp, &l.aws);
    assert_eq!(code, Some(1), "{text}");
    // The trail validates its logs, but this (unsigned) archive holds no digests: said.
    assert!(
        text.contains("has log file validation enabled, but the archive holds no digest files"),
        "{text}"
    );

    let offline = tmp.path().join("offline");
    let (code, text) = run(&data.join("usage.jsonl"), &data.join("logs"), &offline, &[]);
    assert_eq!(code, 1, "{text}");
    let (a, b) = (
        read_table(&offline.join("key_usage")),
        read_table(&live.join("key_usage")),
    );
    assert_eq!(a.len(), truth["keys"].as_array().unwrap().len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            x, y,
            "key_usage differs between the offline and the live run"
        );
    }
    assert_eq!(a, b);
    let denied = b.iter().find(|r| r["key_arn"] == errored.as_str()).unwrap();
    assert_eq!(denied["tracking_status"], "error");
    assert!(
        denied["verdict_reason"]
            .as_str()
            .unwrap()
            .contains("AccessDeniedException"),
        "{denied}"
    );

    // The live run's snapshot replays offline to the same rows.
    let replay = tmp.path().join("replay");
    let (code, text) = run(&live.join("usage.jsonl"), &data.join("logs"), &replay, &[]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(read_table(&replay.join("key_usage")), b);

    // Only read APIs; every key asked, the throttled and failed attempts retried.
    let seen = kms.seen();
    let ops = count_by_operation(&seen);
    for op in ops.keys() {
        assert!(
            [
                "ListKeys",
                "ListAliases",
                "DescribeKey",
                "GetKeyLastUsage",
                "DescribeTrails",
                "GetEventSelectors",
                "GetCallerIdentity",
                "AssumeRole",
            ]
            .contains(&op.as_str()),
            "{op} called"
        );
    }
    let keys = truth["keys"].as_array().unwrap().len();
    assert_eq!(ops["DescribeKey"], keys);
    assert_eq!(
        ops["GetKeyLastUsage"],
        keys + 6 + 1,
        "each key once, plus a retry per injected fault"
    );

    let s3_requests = s3.requests();
    assert!(
        s3_requests
            .iter()
            .any(|(m, p)| m == "GET" && p.contains("list-type=2")),
        "ListObjectsV2 went through the proxy"
    );
    for (method, path) in &s3_requests {
        assert!(
            method == "GET" || method == "HEAD",
            "S3 write call: {method} {path}"
        );
    }

    // Pacing: no six GetKeyLastUsage requests for one account and region within a second.
    let mut by_scope: BTreeMap<(String, String), Vec<std::time::Instant>> = BTreeMap::new();
    for s in seen.iter().filter(|s| s.operation == "GetKeyLastUsage") {
        let account = s
            .key_id
            .as_deref()
            .unwrap()
            .split(':')
            .nth(4)
            .unwrap()
            .to_string();
        by_scope
            .entry((account, s.region.clone()))
            .or_default()
            .push(s.at);
    }
    assert_eq!(by_scope.len(), 4, "two accounts in two regions");
    for (scope, times) in by_scope {
        for w in times.windows(6) {
            let span = w[5] - w[0];
            assert!(
                span >= Duration::from_millis(950),
                "{scope:?}: 6 requests within {span:?}"
            );
        }
    }
}

fn all_management() -> Value {
    json!({"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": true, "DataResources": [], "ExcludeManagementEventSources": []}]})
}

/// A live run over an archive whose trail is `trail`; returns the truth, the key_usage rows and
/// the run's output.
fn run_with_trail(seed: &str, trail: FakeTrail, logs: &str) -> (Value, Vec<Value>, String) {
    let l = live(seed, |_| Faults::default(), trail);
    let (code, text, out) = l.run("r", &["--kms-rate", "50", "--logs", logs]);
    assert_eq!(code, Some(1), "{text}");
    (l.truth.clone(), read_table(&out.join("key_usage")), text)
}

/// Keys the truth calls `no_use_found` in `weakened` regions must be `inconclusive` with a reason
/// containing `says`; every other key keeps the truth's verdict.
fn check_weakened(
    truth: &serde_json::Value,
    rows: &[serde_json::Value],
    weakened: &[&str],
    says: &str,
) {
    let mut n = 0;
    for want in truth["keys"].as_array().unwrap() {
        let arn = want["key_arn"].as_str().unwrap();
        let got = rows.iter().find(|r| r["key_arn"] == arn).unwrap();
        let region = arn.split(':').nth(3).unwrap();
        if want["verdict"] == "no_use_found" && weakened.contains(&region) {
            n += 1;
            assert_eq!(got["verdict"], "inconclusive", "{arn}");
            assert!(
                got["verdict_reason"].as_str().unwrap().contains(says),
                "{arn}: {}",
                got["verdict_reason"]
            );
        } else {
            assert_eq!(
                got["verdict"], want["verdict"],
                "{arn}: {}",
                got["verdict_reason"]
            );
        }
    }
    assert!(n > 0, "some no_use_found key is affected");
}

#[test]
fn a_trail_that_excludes_kms_events_makes_no_use_found_inconclusive() {
    let selectors = json!({"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": true, "DataResources": [], "ExcludeManagementEventSources": ["kms.amazonaws.com"]}]});
    let (truth, rows, text) = run_with_trail(
        "515",
        FakeTrail::org("trail-logs", true, selectors),
        "s3://trail-logs",
    );
    check_weakened(
        &truth,
        &rows,
        &["us-east-1", "eu-west-1"],
        "exclude kms.amazonaws.com",
    );
    assert!(
        text.contains("may not log KMS calls"),
        "the summary warns: {text}"
    );
}

#[test]
fn a_single_region_trail_covers_only_its_home_region() {
    // --logs auto finds the archive from the trail itself.
    let (truth, rows, text) = run_with_trail(
        "516",
        FakeTrail::org("trail-logs", false, all_management()),
        "auto",
    );
    assert!(text.contains("archive: s3://trail-logs/"), "{text}");
    check_weakened(&truth, &rows, &["eu-west-1"], "logs only us-east-1");
}

/// Every record of a synth archive's readable log objects, by `eventID`.
fn records_by_event_id(logs: &std::path::Path) -> std::collections::HashMap<String, String> {
    use std::io::Read;
    let mut out = std::collections::HashMap::new();
    let mut stack = vec![logs.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let mut json = String::new();
            let bytes = std::fs::read(&p).unwrap();
            if flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut json)
                .is_err()
            {
                continue; // the corrupt objects
            }
            let Ok(doc) = serde_json::from_str::<Value>(&json) else {
                continue;
            };
            for r in doc["Records"].as_array().into_iter().flatten() {
                if let Some(id) = r["eventID"].as_str() {
                    out.insert(id.to_string(), r.to_string());
                }
            }
        }
    }
    out
}

#[test]
fn last_uses_missing_from_a_lagging_archive_are_joined_through_lookup_events() {
    let l = live(
        "4711",
        |_| Faults::default(),
        FakeTrail::org("trail-logs", true, all_management()),
    );
    l.aws.add_events(records_by_event_id(&l.data.join("logs")));
    // The archive lags: nothing delivered on or after 2026-03-18 has reached the bucket.
    rt().block_on(async {
        let c = l.moto.client();
        let mut listed = c
            .list_objects_v2()
            .bucket("trail-logs")
            .into_paginator()
            .send();
        let mut pages = Vec::new();
        while let Some(page) = listed.next().await {
            pages.push(page);
        }
        for page in pages {
            for o in page.unwrap().contents() {
                let k = o.key().unwrap();
                if k.contains("/2026/03/18/")
                    || k.contains("/2026/03/19/")
                    || k.contains("/2026/03/20/")
                {
                    c.delete_object()
                        .bucket("trail-logs")
                        .key(k)
                        .send()
                        .await
                        .unwrap();
                }
            }
        }
    });
    // Every enabled region: the stand-in's Account ListRegions says us-east-1 and eu-west-1.
    let (code, text, out) = l.run("r", &["--kms-rate", "50", "--regions", "all"]);
    assert_eq!(code, Some(1), "{text}");
    let mut listed: Vec<String> = l
        .aws
        .seen()
        .iter()
        .filter(|s| s.operation == "ListKeys")
        .map(|s| s.region.clone())
        .collect();
    // The regions are listed concurrently: their pages interleave.
    listed.sort();
    listed.dedup();
    assert_eq!(
        listed,
        ["eu-west-1", "us-east-1"],
        "ListKeys in the enabled regions only"
    );
    let rows = read_table(&out.join("key_usage"));
    assert_eq!(rows.len(), l.truth["keys"].as_array().unwrap().len());
    let mut looked_up = 0;
    for want in l.truth["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["verdict"] == "in_use")
    {
        let got = rows
            .iter()
            .find(|r| r["key_arn"] == want["key_arn"])
            .unwrap();
        assert_eq!(got["last_usage_event_found"], true, "{}", want["key_arn"]);
        let (g, w) = (
            got["last_usage_principal"].as_str().unwrap(),
            want["last_usage_principal"].as_str().unwrap(),
        );
        // Without the caller's own copy, a cross-account caller is known by its account.
        assert!(
            g == w || w.contains(&format!("::{g}:")),
            "{}: {g} vs {w}",
            want["key_arn"]
        );
        looked_up += usize::from(got["last_usage_time"].as_str().unwrap() >= "2026-03-18");
    }
    assert!(looked_up > 0, "some last use was only in the lagging days");
    let events = read_table(&out.join("kms_events"));
    assert!(events
        .iter()
        .any(|e| e["log_object"] == "cloudtrail:LookupEvents"));
    assert!(count_by_operation(&l.aws.seen())["LookupEvents"] >= looked_up);
}

/// The organization of the org tests: the synth's two key accounts, one whose role denies
/// AssumeRole, one SUSPENDED, one PENDING_CLOSURE, one ACTIVE without keys.
const ORG: [&str; 6] = [
    "111122223333",
    "044455556666",
    "033344445555",
    "022233334444",
    "066677778888",
    "055566667777",
];

fn set_org(l: &Live, session_seconds: Option<i64>) {
    let [a, b, denied, suspended, closing, empty] = ORG;
    let member =
        |id: &str, name: &str, state: &str| (id.to_string(), name.to_string(), state.to_string());
    l.aws.set_org(crate::fake_aws::Org {
        accounts: vec![
            member(a, "management", "ACTIVE"),
            member(b, "payments", "ACTIVE"),
            member(denied, "legacy", "ACTIVE"),
            member(suspended, "old", "SUSPENDED"),
            member(closing, "closing", "PENDING_CLOSURE"),
            member(empty, "sandbox", "ACTIVE"),
        ],
        deny_assume: vec![denied.to_string()],
        external_id: Some("kt-ext-7".into()),
        session_seconds,
    });
}

/// `--accounts org`: every ACTIVE account of the organization is entered through its role (with
/// the external id), paced per account and region, and the report equals the offline run's row
/// for row; the account whose role denies AssumeRole is `failed`, those not ACTIVE `skipped`,
/// one without keys `inventoried` with none. Sessions last 11 s here and each account-region's
/// keys take longer, so the SDK must refresh them during the run (KMS refuses an expired one). `keytrail inventory --accounts org` writes
/// one snapshot that replays offline to the same rows and accounts.
#[test]
fn an_organization_run_examines_every_active_account_and_names_those_it_could_not() {
    let l = live(
        "808",
        |_| Faults::default(),
        FakeTrail::org("trail-logs", true, all_management()),
    );
    let [a, b, denied, suspended, closing, empty] = ORG;
    set_org(&l, Some(11));
    let (code, text, out) = l.run(
        "org",
        &[
            "--accounts",
            "org",
            "--external-id",
            "kt-ext-7",
            "--account-concurrency",
            "3",
            // One GetKeyLastUsage a second: each account-region's keys outlast a session.
            "--kms-rate",
            "1",
        ],
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("account {denied} not examined")),
        "{text}"
    );

    let offline = l.tmp.path().join("offline");
    let (code, text) = run(
        &l.data.join("usage.jsonl"),
        &l.data.join("logs"),
        &offline,
        &[],
    );
    assert_eq!(code, 1, "{text}");
    let rows = read_table(&out.join("key_usage"));
    assert_eq!(read_table(&offline.join("key_usage")), rows);
    // And every key as the generator's truth says.
    let truth_keys = l.truth["keys"].as_array().unwrap();
    assert_eq!(rows.len(), truth_keys.len());
    for want in truth_keys {
        let got = rows
            .iter()
            .find(|r| r["key_arn"] == want["key_arn"])
            .unwrap_or_else(|| panic!("no row for {}", want["key_arn"]));
        for f in crate::truth::FIELDS {
            assert_eq!(got[f], want[f], "{} {f}", want["key_arn"]);
        }
    }
    // Only read APIs.
    for op in count_by_operation(&l.aws.seen()).keys() {
        assert!(
            op.starts_with("List")
                || op.starts_with("Describe")
                || op.starts_with("Get")
                || op == "AssumeRole",
            "{op} called"
        );
    }

    // The accounts table, worked out from the organization above and the generator's keys.
    let keys = l.truth["keys"].as_array().unwrap();
    let in_account = |id: &str| {
        keys.iter()
            .filter(|k| k["key_arn"].as_str().unwrap().split(':').nth(4) == Some(id))
            .count() as i64
    };
    let errored = |id: &str| {
        l.truth["errored_keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k.as_str().unwrap().split(':').nth(4) == Some(id))
            .count() as i64
    };
    assert!(in_account(a) > 0 && in_account(b) > 0);
    let table: BTreeMap<String, Value> = read_table(&out.join("accounts"))
        .into_iter()
        .map(|r| (r["account_id"].as_str().unwrap().to_string(), r))
        .collect();
    let both = json!(["eu-west-1", "us-east-1"]);
    let want = [
        (
            a,
            "management",
            "inventoried",
            both.clone(),
            in_account(a),
            errored(a),
        ),
        (
            b,
            "payments",
            "inventoried",
            both.clone(),
            in_account(b),
            errored(b),
        ),
        (denied, "legacy", "failed", json!([]), 0, 0),
        (suspended, "old", "skipped", json!([]), 0, 0),
        (closing, "closing", "skipped", json!([]), 0, 0),
        (empty, "sandbox", "inventoried", both.clone(), 0, 0),
    ];
    assert_eq!(table.len(), want.len(), "{table:?}");
    for (id, name, status, regions, n, failed) in want {
        let r = &table[id];
        assert_eq!(
            (
                &r["account_name"],
                &r["status"],
                &r["regions"],
                &r["keys"],
                &r["keys_failed"]
            ),
            (
                &json!(name),
                &json!(status),
                &regions,
                &json!(n),
                &json!(failed)
            ),
            "{id}: {r}"
        );
    }
    let reason = |id: &str| table[id]["reason"].as_str().unwrap_or_default().to_string();
    assert!(
        reason(denied).contains("AccessDenied"),
        "{}",
        reason(denied)
    );
    assert!(reason(denied).contains(&format!("arn:aws:iam::{denied}:role/keytrail-audit")));
    assert!(reason(suspended).contains("SUSPENDED"));
    assert!(reason(closing).contains("PENDING_CLOSURE"));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        (
            &summary["accounts"]["inventoried"],
            &summary["accounts"]["skipped"],
            &summary["accounts"]["failed"]
        ),
        (&json!(3), &json!(2), &json!(1))
    );
    assert_eq!(summary["regions"], both);

    // Each account's calls with its own credentials: the base account's with the base key, the
    // others' with sessions of their role — refreshed before they expired.
    let seen = l.aws.seen();
    for s in seen.iter().filter(|s| s.operation == "GetKeyLastUsage") {
        let owner = s.key_id.as_deref().unwrap().split(':').nth(4).unwrap();
        assert_eq!(s.account, owner, "{s:?}");
    }
    let sessions_of_b: std::collections::BTreeSet<&str> = seen
        .iter()
        .filter(|s| s.account == b && s.operation != "AssumeRole")
        .map(|s| s.access_key.as_str())
        .collect();
    assert!(
        sessions_of_b.len() >= 2,
        "the session of {b} was refreshed during the run: {sessions_of_b:?}"
    );
    let ops = count_by_operation(&seen);
    assert_eq!(
        ops["ListAccounts"], 4,
        "three pages of two and an empty one"
    );
    // Pacing per account and region holds across accounts.
    let mut by_scope: BTreeMap<(String, String), Vec<std::time::Instant>> = BTreeMap::new();
    for s in seen.iter().filter(|s| s.operation == "GetKeyLastUsage") {
        by_scope
            .entry((s.account.clone(), s.region.clone()))
            .or_default()
            .push(s.at);
    }
    for (scope, times) in by_scope {
        for w in times.windows(6) {
            assert!(
                w[5] - w[0] >= Duration::from_millis(950),
                "{scope:?}: {w:?}"
            );
        }
    }

    // `keytrail inventory --accounts org`: one snapshot, replayed offline to the same report.
    let snapshot = l.tmp.path().join("org-usage.jsonl");
    let o = keytrail_with_env(
        &[
            "inventory",
            "--out",
            snapshot.to_str().unwrap(),
            "--regions",
            "us-east-1,eu-west-1",
            "--accounts",
            "org",
            "--external-id",
            "kt-ext-7",
        ],
        &l.env,
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let replay = l.tmp.path().join("replay");
    let (code, text) = run(&snapshot, &l.data.join("logs"), &replay, &[]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(read_table(&replay.join("key_usage")), rows);
    assert_eq!(
        read_table(&replay.join("accounts")),
        read_table(&out.join("accounts"))
    );
}

/// A live organization run killed half-way resumes with `--resume` where it stopped: killed after
/// some accounts were listed, the resumed run lists only the others; killed after some keys were
/// answered, it asks only the others and lists nothing again. Either way the report equals an
/// uninterrupted run's.
#[test]
fn a_killed_organization_run_resumes_at_the_accounts_and_keys_not_done() {
    let l = live(
        "808",
        |_| Faults::default(),
        FakeTrail::org("trail-logs", true, all_management()),
    );
    set_org(&l, None);
    let args = [
        "--accounts",
        "org",
        "--external-id",
        "kt-ext-7",
        "--account-concurrency",
        "2",
    ];
    let (code, text, whole) = l.run("whole", &args);
    assert_eq!(code, Some(1), "{text}");
    let tables =
        |out: &PathBuf| ["key_usage", "accounts", "kms_events"].map(|t| read_table(&out.join(t)));
    let want = tables(&whole);
    let keys = want[0].len();
    let mut resume = args.to_vec();
    resume.push("--resume");

    let ops_during = |f: &dyn Fn()| {
        let before = l.aws.seen().len();
        f();
        count_by_operation(&l.aws.seen()[before..])
    };
    // Killed once 5 of the 6 accounts were examined (at least 2 of the 3 with keys to list).
    let (code, _, _) = l.run_with("cut", &args, &[("KEYTRAIL_KILL_AT", "examined:5".into())]);
    assert_eq!(code, None, "killed");
    let ops = ops_during(&|| {
        let (code, text, out) = l.run("cut", &resume);
        assert_eq!(code, Some(1), "{text}");
        assert_eq!(tables(&out), want);
    });
    // At most one account with keys is listed again — two regions, two pages of keys each, and
    // of aliases (7 a page) one page in each but two in account A's us-east-1 (seven aliases
    // and AWS's predefined one): 3 at most; a fresh run lists three accounts (7 pages).
    assert!(
        ops.get("ListAliases").copied().unwrap_or(0) <= 3
            && ops.get("ListKeys").copied().unwrap_or(0) <= 4,
        "only the accounts not examined are listed again: {ops:?}"
    );

    // Killed after 15 keys were answered.
    let (code, _, _) = l.run_with("cut2", &args, &[("KEYTRAIL_KILL_AT", "answered:15".into())]);
    assert_eq!(code, None, "killed");
    let ops = ops_during(&|| {
        let (code, text, out) = l.run("cut2", &resume);
        assert_eq!(code, Some(1), "{text}");
        assert_eq!(tables(&out), want);
    });
    assert_eq!(ops.get("ListKeys"), None, "{ops:?}");
    assert_eq!(ops["GetKeyLastUsage"], keys - 15, "{ops:?}");
    // DescribeKey (no quota to speak of) is asked again for every key.
    assert_eq!(ops["DescribeKey"], keys, "{ops:?}");
}

/// By hand (not in CI): `cargo test --release --test it -- --ignored --nocapture
/// organization_inventory_bench`. 200 accounts × 2 regions × 20 keys on the stand-in, paced at
/// 5 GetKeyLastUsage per second per account and region: the organization's `keytrail inventory`
/// against one account-region's alone, in one run. The bar: at most 1.5× (each account-region is
/// paced on its own and all run side by side).
#[test]
#[ignore]
fn organization_inventory_bench() {
    let (accounts, keys_per_region) = (200, 20);
    let regions = ["us-east-1", "eu-west-1"];
    let mut snapshot = String::new();
    let mut org = Vec::new();
    for a in 0..accounts {
        let account = format!("{:012}", 100_000_000_000u64 + a as u64);
        org.push((account.clone(), format!("member-{a}"), "ACTIVE".to_string()));
        for region in regions {
            for k in 0..keys_per_region {
                let id = format!("00000000-0000-4000-8000-{a:06}{k:06}");
                let arn = format!("arn:aws:kms:{region}:{account}:key/{id}");
                snapshot.push_str(
                    &json!({
                        "KeyId": arn, "Aliases": [], "KeyCreationDate": 1.7e9,
                        "TrackingStartDate": 1.772928e9, "KeyLastUsage": {},
                        "KeyMetadata": {"Arn": arn, "KeyId": id, "AWSAccountId": account,
                            "CreationDate": 1.7e9, "KeyState": "Enabled", "KeyManager": "CUSTOMER",
                            "MultiRegion": false},
                    })
                    .to_string(),
                );
                snapshot.push('\n');
            }
        }
    }
    let aws = FakeAws::start(&snapshot, Faults::default(), vec![]);
    aws.set_org(crate::fake_aws::Org {
        accounts: org.clone(),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let env = crate::s3::offline_env("AWS_ENDPOINT_URL", &aws.endpoint);
    let inventory = |name: &str, accounts: &str, regions: &str| {
        let out = tmp.path().join(name);
        let started = std::time::Instant::now();
        let o = keytrail_with_env(
            &[
                "inventory",
                "--out",
                out.to_str().unwrap(),
                "--regions",
                regions,
                "--accounts",
                accounts,
            ],
            &env,
        );
        let took = started.elapsed().as_secs_f64();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let lines = std::fs::read_to_string(&out).unwrap();
        (took, lines.lines().filter(|l| l.contains("KeyId")).count())
    };
    let (one, n1) = inventory("one", &org[0].0, "us-east-1");
    let (all, n) = inventory("all", "org", "us-east-1,eu-west-1");
    assert_eq!((n1, n), (keys_per_region, accounts * 2 * keys_per_region));
    let paced = (keys_per_region - 1) as f64 / 5.0;
    // Where the time went, from the stand-in's log.
    let seen = aws.seen();
    let org_start = seen
        .iter()
        .find(|s| s.operation == "ListAccounts")
        .unwrap()
        .at;
    let at = |op: &str, last: bool| {
        let t = seen
            .iter()
            .filter(|s| s.operation == op && s.at >= org_start)
            .map(|s| s.at);
        if last { t.max() } else { t.min() }.unwrap()
    };
    let org_start = seen
        .iter()
        .find(|s| s.operation == "ListAccounts")
        .unwrap()
        .at;
    let since = |t: std::time::Instant| (t - org_start).as_secs_f64();
    println!(
        "  from ListAccounts: AssumeRole {:.2}-{:.2} s, ListKeys {:.2}-{:.2} s, DescribeKey {:.2}-{:.2} s, GetKeyLastUsage {:.2}-{:.2} s",
        since(at("AssumeRole", false)), since(at("AssumeRole", true)),
        since(at("ListKeys", false)), since(at("ListKeys", true)),
        since(at("DescribeKey", false)), since(at("DescribeKey", true)),
        since(at("GetKeyLastUsage", false)), since(at("GetKeyLastUsage", true)),
    );
    println!(
        "  phases: listing {:.2} s (ListAccounts to the last DescribeKey), asking {:.2} s (first to last GetKeyLastUsage)",
        (at("DescribeKey", true) - org_start).as_secs_f64(),
        (at("GetKeyLastUsage", true) - at("GetKeyLastUsage", false)).as_secs_f64()
    );
    println!(
        "organization inventory: {accounts} accounts x 2 regions x {keys_per_region} keys = {n} keys in {all:.2} s; \
         one account-region alone: {one:.2} s (paced minimum {paced:.1} s); ratio {:.2}",
        all / one
    );
}
