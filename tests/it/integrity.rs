//! The digest check: a signed synth archive (a real hourly chain, RSA-signed) broken in each way
//! `validate-logs` knows — a modified log, a deleted log, an unlisted log, a deleted digest, a bad
//! signature, a moved digest, a day's first digests deleted with their logs — is reported exactly
//! so, once each, with nothing else reported; a chain that starts again after logging was off is a
//! restart, not a failure; the verdicts that
//! stand on tampered days are not `no_use_found`. Expected findings come from the generator
//! (what it tampered with, and which objects it wrote corrupt), and each logged hash is checked
//! against an independent gunzip + SHA-256 here.

use crate::common::{read_table, run, synth};
use serde_json::Value;
use sha2::Digest as _;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

const ALL_TAMPERS: &str = "modify-log,delete-log,unlisted-log,delete-digest,bad-signature,\
     modify-digest,move-digest,delete-first-digests";

fn signed(dir: &Path, seed: &str, tamper: Option<&str>) -> Value {
    let mut args = vec!["--seed", seed, "--sign"];
    if let Some(t) = tamper {
        args.extend(["--tamper", t]);
    }
    synth(dir, &args)
}

fn check(data: &Path, out: &Path, extra: &[&str]) -> (i32, String) {
    let sigs = data.join("digest-signatures.json");
    let key = data.join("digest-public-key.der");
    let mut args = vec![
        "--backfill",
        "all",
        "--digest-signatures",
        sigs.to_str().unwrap(),
        "--public-key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&data.join("usage.jsonl"), &data.join("logs"), out, &args)
}

/// (kind, object) of every failing row of `integrity/` (all but `chain_restart`), with
/// duplicates kept.
fn findings(out: &Path) -> Vec<(String, String)> {
    rows_of(out, |kind| kind != "chain_restart")
}

/// (kind, object) of the `chain_restart` rows.
fn restarts(out: &Path) -> Vec<(String, String)> {
    rows_of(out, |kind| kind == "chain_restart")
}

fn rows_of(out: &Path, kind: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = read_table(&out.join("integrity"))
        .iter()
        .filter(|r| kind(r["kind"].as_str().unwrap()))
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["object"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// (kind, object) of each finding the generator's tampering must cause, sorted.
fn tampered(truth: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = truth["integrity"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["object"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The restarts a `--backfill all` run must report: the generator's (its chains start again
/// after logging was off), where the run lists both digest folders — a folder is listed when its
/// day or the day before it is planned.
fn restarts_expected(truth: &Value) -> Vec<(String, String)> {
    let planned: BTreeSet<&str> = truth["backfill_all"]["planned_prefixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let listed = |folder: &str| {
        let (place, day) = folder.rsplit_once('/').unwrap();
        let day: chrono::NaiveDate = day.parse().unwrap();
        let before = format!("{place}/{}", day.pred_opt().unwrap());
        planned.contains(folder) || planned.contains(before.as_str())
    };
    let mut v: Vec<(String, String)> = truth["integrity"]["restarts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["folders"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| listed(f.as_str().unwrap()))
        })
        .map(|r| {
            (
                "chain_restart".to_string(),
                r["object"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The corrupt objects the generator wrote, which no digest can vouch for: each is `log_modified`
/// when its day is read.
fn corrupt(truth: &Value, manifest: &[Value]) -> Vec<(String, String)> {
    let read: BTreeSet<&str> = manifest
        .iter()
        .map(|r| r["object"].as_str().unwrap())
        .collect();
    truth["integrity"]["corrupt_objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .filter(|o| read.contains(o))
        .map(|o| ("log_modified".to_string(), o.to_string()))
        .collect()
}

#[test]
fn every_tampering_is_reported_once_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    let truth = signed(&data, "21", Some(ALL_TAMPERS));
    let out = tmp.path().join("report");
    let (code, text) = check(&data, &out, &[]);
    assert_eq!(code, 1, "{text}");
    let manifest = read_table(&out.join("scan_manifest"));
    let mut want = tampered(&truth);
    assert_eq!(want.len(), 10);
    let corrupt = corrupt(&truth, &manifest);
    assert!(!corrupt.is_empty(), "the corrupt objects' days are read");
    want.extend(corrupt);
    want.sort();
    assert_eq!(findings(&out), want);
    // Logging was off for days in one account and region: the chain starts again after, and
    // that is reported as a restart, not as a missing digest.
    let want_restarts = restarts_expected(&truth);
    assert_eq!(want_restarts.len(), 1, "{}", truth["integrity"]["restarts"]);
    assert_eq!(restarts(&out), want_restarts);

    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let counts = &summary["integrity"]["findings"];
    for kind in [
        "log_missing",
        "log_unlisted",
        "digest_moved",
        "digest_hash_mismatch",
    ] {
        assert_eq!(counts[kind], 1, "{kind}: {summary}");
    }
    // The deleted digest, the moved one's old key, and the later of a day's first two deleted.
    assert_eq!(counts["digest_missing"], 3, "{summary}");
    // The re-signed digest and the modified one.
    assert_eq!(counts["digest_bad_signature"], 2);
    assert_eq!(counts["public_key_not_found"], 0);
    assert!(
        summary["integrity"]["signatures_verified"]
            .as_u64()
            .unwrap()
            > 1000
    );
    assert_eq!(summary["integrity"]["signatures_not_verified"], 0);

    // Every hash the scan recorded is the SHA-256 of the gunzipped object.
    let logs = data.join("logs");
    let mut hashed = 0;
    for r in &manifest {
        let Some(h) = r["sha256"].as_str() else {
            continue;
        };
        let mut json = Vec::new();
        flate2::read::MultiGzDecoder::new(
            std::fs::File::open(logs.join(r["object"].as_str().unwrap())).unwrap(),
        )
        .read_to_end(&mut json)
        .unwrap();
        let want: String = sha2::Sha256::digest(&json)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(h, want, "{}", r["object"]);
        hashed += 1;
    }
    assert!(hashed > 300, "{hashed}");

    // The tables carry exactly the columns of their Athena DDL.
    for table in ["integrity", "key_usage", "scan_manifest"] {
        let ddl =
            std::fs::read_to_string(crate::common::repo().join(format!("queries/ddl/{table}.sql")))
                .unwrap();
        let ddl = &ddl[ddl.find("CREATE EXTERNAL TABLE").unwrap()..];
        let body = &ddl[ddl.find('(').unwrap() + 1..ddl.rfind(')').unwrap()];
        let want: BTreeSet<&str> = body
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        let rows = read_table(&out.join(table));
        let got: BTreeSet<&str> = rows[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(got, want, "{table}");
    }
}

#[test]
fn tampered_days_make_a_negative_verdict_inconclusive_and_clean_days_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let clean_data = tmp.path().join("clean");
    let truth = signed(&clean_data, "21", None);
    let clean = tmp.path().join("clean-report");
    let (code, text) = check(&clean_data, &clean, &[]);
    assert_eq!(code, 1, "{text}");
    let manifest = read_table(&clean.join("scan_manifest"));
    let mut only_corrupt = corrupt(&truth, &manifest);
    only_corrupt.sort();
    assert_eq!(
        findings(&clean),
        only_corrupt,
        "an untampered chain has no other finding"
    );
    assert_eq!(restarts(&clean), restarts_expected(&truth));

    let bad_data = tmp.path().join("tampered");
    signed(&bad_data, "21", Some(ALL_TAMPERS));
    let bad = tmp.path().join("tampered-report");
    let (code, text) = check(&bad_data, &bad, &[]);
    assert_eq!(code, 1, "{text}");

    let rows = |out: &Path| -> Vec<Value> { read_table(&out.join("key_usage")) };
    let (before, after) = (rows(&clean), rows(&bad));
    let mut weakened = 0;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b["key_arn"], a["key_arn"]);
        if a["integrity_status"] == "failed" {
            assert!(a["integrity_failures"].as_i64().unwrap() > 0);
            assert_ne!(a["verdict"], "no_use_found", "{a}");
        }
        if b["verdict"] == "no_use_found" && a["verdict"] != "no_use_found" {
            assert_eq!(a["verdict"], "inconclusive");
            assert!(
                a["verdict_reason"]
                    .as_str()
                    .unwrap()
                    .contains("integrity finding"),
                "{a}"
            );
            weakened += 1;
        }
        if b["integrity_status"] == "verified" {
            assert_eq!(b["integrity_failures"], 0);
        }
    }
    assert!(
        weakened > 0,
        "some no_use_found key stands on a tampered day"
    );
    assert!(before.iter().any(|r| r["integrity_status"] == "verified"));
    // Logging was off in account B, us-east-1, from the 14th to the 16th: a key whose window
    // spans those days has days outside any chain — partial, never failed, on the clean archive.
    let over_gap: Vec<&Value> = before
        .iter()
        .filter(|r| {
            r["key_arn"]
                .as_str()
                .unwrap()
                .contains(":us-east-1:044455556666:")
                && r["backfill_window_start"]
                    .as_str()
                    .is_some_and(|s| s < "2026-02-14")
                && r["backfill_window_end"]
                    .as_str()
                    .is_some_and(|e| e > "2026-02-17")
        })
        .collect();
    assert!(!over_gap.is_empty());
    for r in over_gap {
        assert_eq!(r["integrity_status"], "partial", "{r}");
        assert_eq!(r["integrity_failures"], 0, "{r}");
    }

    // Without the signatures (a plain S3 sync): hashes and chain are still checked, the
    // signatures are said not to be, and nothing verifies fully.
    let unsigned = tmp.path().join("unsigned-report");
    let (code, text) = run(
        &clean_data.join("usage.jsonl"),
        &clean_data.join("logs"),
        &unsigned,
        &["--backfill", "all"],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("signature(s) not verified"), "{text}");
    assert_eq!(findings(&unsigned), only_corrupt);
    assert!(rows(&unsigned)
        .iter()
        .all(|r| r["integrity_status"] != "verified"));

    // --verify-integrity off: no digest is read, nothing is hashed.
    let off = tmp.path().join("off-report");
    let (_, text) = check(&bad_data, &off, &["--verify-integrity", "off"]);
    assert!(!off.join("integrity").exists(), "{text}");
    assert!(rows(&off)
        .iter()
        .all(|r| r["integrity_status"] == "not_checked"));
}

/// Over S3: each digest's signature travels as object metadata (`x-amz-meta-signature`), and
/// the public key comes from CloudTrail `ListPublicKeys` (the test endpoint), matched by
/// fingerprint — no files needed. The archive holds the first twelve days (the tampering is in
/// them), so the expected findings are exactly the tampering.
#[test]
fn over_s3_signatures_come_from_metadata_and_keys_from_list_public_keys() {
    use crate::fake_aws::{count_by_operation, FakeAws, Faults};
    use crate::s3::{rt, Moto};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    let truth = signed(&data, "21", Some(ALL_TAMPERS));
    let signatures: std::collections::HashMap<String, String> = serde_json::from_str(
        &std::fs::read_to_string(data.join("digest-signatures.json")).unwrap(),
    )
    .unwrap();
    let logs = data.join("logs");
    // The first twelve days of every chain, and of account B in us-east-1 the days up to the
    // 18th, over its logging-off gap (the 14th to the 16th): its chain starts again on the 17th.
    let early = |key: &str| {
        let last = if key.contains("/044455556666/") && key.contains("/us-east-1/") {
            "18"
        } else {
            "12"
        };
        key.split('/')
            .collect::<Vec<_>>()
            .windows(3)
            .any(|w| w[0] == "2026" && w[1] == "02" && w[2] <= last)
    };
    let moto = Moto::start();
    let client = moto.client();
    rt().block_on(async {
        use futures::StreamExt;
        client
            .create_bucket()
            .bucket("org-trail-logs")
            .send()
            .await
            .unwrap();
        let puts = crate::common::files(&logs).into_iter().filter_map(|p| {
            let key = p.strip_prefix(&logs).unwrap().to_string_lossy().to_string();
            early(&key).then(|| {
                let client = client.clone();
                let sig = signatures.get(&key).cloned();
                async move {
                    client
                        .put_object()
                        .bucket("org-trail-logs")
                        .key(&key)
                        .body(std::fs::read(&p).unwrap().into())
                        // As CloudTrail writes them: the signature and its algorithm.
                        .set_metadata(sig.map(|s| {
                            [
                                ("signature".to_string(), s),
                                ("signature-algorithm".to_string(), "SHA256withRSA".into()),
                            ]
                            .into()
                        }))
                        .send()
                        .await
                        .unwrap();
                }
            })
        });
        futures::stream::iter(puts)
            .buffer_unordered(16)
            .collect::<Vec<()>>()
            .await;
    });
    let der = std::fs::read(data.join("digest-public-key.der")).unwrap();
    let fingerprint: String = sha2::Sha256::digest(&der)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let snapshot = std::fs::read_to_string(data.join("usage.jsonl")).unwrap();
    let fake = FakeAws::start(&snapshot, Faults::default(), vec![]);
    fake.add_public_key(&der, &fingerprint);
    let usage = data.join("usage.jsonl");
    // A run over the bucket with CloudTrail's keys from `cloudtrail`; exit code and output.
    let run_over = |cloudtrail: &str, out: &Path| {
        let mut env = moto.env();
        env.push(("AWS_ENDPOINT_URL_CLOUDTRAIL", cloudtrail.to_string()));
        let o = crate::common::keytrail_with_env(
            &[
                "run",
                "--usage",
                usage.to_str().unwrap(),
                "--logs",
                "s3://org-trail-logs",
                "--out",
                out.to_str().unwrap(),
                "--backfill",
                "all",
            ],
            &env,
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.code(), text)
    };
    let out = tmp.path().join("report");
    let (code, text) = run_over(&fake.endpoint, &out);
    assert_eq!(code, Some(1), "{text}");
    let mut want = tampered(&truth);
    want.sort();
    assert_eq!(findings(&out), want, "{text}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["integrity"]["signatures_not_verified"], 0,
        "{summary}"
    );
    assert!(
        summary["integrity"]["signatures_verified"]
            .as_u64()
            .unwrap()
            > 500
    );
    let ops = count_by_operation(&fake.seen());
    assert!(
        ops.get("ListPublicKeys").copied().unwrap_or(0) >= 1,
        "{ops:?}"
    );

    // The reference: `aws cloudtrail validate-logs` over the same bucket and keys. Its INVALID
    // digests and logs are keytrail's failing findings in the days keytrail read (but
    // `log_unlisted`, which the CLI does not look for), and its gaps are keytrail's restarts.
    let cli = |account: &str, region: &str, from: &str, to: &str| {
        validate_logs(&moto, &fake.endpoint, account, region, from, to)
    };
    let a = cli(
        "111122223333",
        "us-east-1",
        "2026-02-01T00:00:00Z",
        "2026-02-12T23:00:00Z",
    );
    assert_eq!(a.exit, Some(1), "{}", a.text);
    assert!(a.gaps.is_empty(), "{}", a.text);
    let read_days: BTreeSet<String> = read_table(&out.join("scan_manifest"))
        .iter()
        .filter(|r| r["account_id"] == "111122223333" && r["region"] == "us-east-1")
        .map(|r| r["delivery_date"].as_str().unwrap().to_string())
        .collect();
    // In account A, us-east-1, delivered on a day keytrail read (from the 2nd: the CLI's walk
    // starts a little before its start time).
    let compared = |object: &str| {
        let day = folder_date(object);
        object.contains("/111122223333/")
            && object.contains("/us-east-1/")
            && day.as_str() >= "2026-02-02"
            && read_days.contains(&day)
    };
    // A report's failing findings there, but log_unlisted (the CLI does not look for those).
    let invalid_in = |report: &Path| -> BTreeSet<String> {
        findings(report)
            .into_iter()
            .filter(|(kind, object)| kind != "log_unlisted" && compared(object))
            .map(|(_, object)| object)
            .collect()
    };
    let keytrail_invalid = invalid_in(&out);
    let cli_invalid: BTreeSet<String> = a.invalid.iter().filter(|o| compared(o)).cloned().collect();
    assert_eq!(keytrail_invalid, cli_invalid, "{}", a.text);
    assert!(keytrail_invalid.len() >= 8, "{keytrail_invalid:?}");
    // The same archive read locally (signatures and key from files) agrees with the CLI too.
    let local = tmp.path().join("report-local");
    let (code, text) = check(&data, &local, &[]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(invalid_in(&local), cli_invalid, "{}", a.text);
    let b = cli(
        "044455556666",
        "us-east-1",
        "2026-02-10T00:00:00Z",
        "2026-02-18T23:00:00Z",
    );
    assert_eq!(b.exit, Some(0), "{}", b.text);
    assert_eq!(b.gaps.len(), 1, "{}", b.text);
    let restarted: Vec<Value> = read_table(&out.join("integrity"))
        .into_iter()
        .filter(|r| r["kind"] == "chain_restart" && r["account_id"] == "044455556666")
        .collect();
    assert_eq!(restarted.len(), 1, "{restarted:?}");
    // The CLI's gap ends where the chain starts again.
    assert!(
        restarted[0]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("and {}", b.gaps[0].1)),
        "{restarted:?} vs {:?}",
        b.gaps
    );

    // The same bucket, but CloudTrail lists only a key of another fingerprint: no signature can
    // be checked, and every digest in the bucket says so once (`public_key_not_found`). A bad
    // signature is still caught, by the chain: the next digest names another
    // previousDigestSignature (`digest_hash_mismatch`; the modified digest has that finding
    // already). The other findings stand as before.
    let other = FakeAws::start(&snapshot, Faults::default(), vec![]);
    other.add_public_key(&der, "0123456789abcdef0123456789abcdef");
    let out = tmp.path().join("report-unknown-key");
    let (code, text) = run_over(&other.endpoint, &out);
    assert_eq!(code, Some(1), "{text}");
    let mut want: BTreeSet<(String, String)> = tampered(&truth)
        .into_iter()
        .map(|(kind, object)| match kind.as_str() {
            "digest_bad_signature" => ("digest_hash_mismatch".to_string(), object),
            _ => (kind, object),
        })
        .collect();
    let digests: Vec<(String, String)> = crate::common::files(&logs)
        .iter()
        .map(|p| p.strip_prefix(&logs).unwrap().to_string_lossy().to_string())
        .filter(|k| early(k) && k.contains("/CloudTrail-Digest/"))
        .map(|k| ("public_key_not_found".to_string(), k))
        .collect();
    assert!(digests.len() > 100, "{}", digests.len());
    want.extend(digests);
    let want: Vec<_> = want.into_iter().collect();
    let got = findings(&out);
    let missing: Vec<_> = want.iter().filter(|f| !got.contains(f)).collect();
    let extra: Vec<_> = got.iter().filter(|f| !want.contains(f)).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && got.len() == want.len(),
        "missing {missing:?}, not expected {extra:?}"
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["integrity"]["signatures_verified"], 0, "{summary}");
}

/// What `aws cloudtrail validate-logs` said.
struct Cli {
    exit: Option<i32>,
    /// The keys of the digests and logs it called INVALID.
    invalid: BTreeSet<String>,
    /// Its "No log files were delivered by CloudTrail between A and B" gaps.
    gaps: Vec<(String, String)>,
    text: String,
}

/// Runs the real AWS CLI's `validate-logs` (awscli from PyPI) on the chain of `account` in
/// `region` of the bucket `org-trail-logs` (the synth bucket, which its digests name) served by `moto`, with CloudTrail's public keys from
/// `cloudtrail` (the test endpoint), over `[from, to]`.
fn validate_logs(
    moto: &crate::s3::Moto,
    cloudtrail: &str,
    account: &str,
    region: &str,
    from: &str,
    to: &str,
) -> Cli {
    let tmp = tempfile::tempdir().unwrap();
    // Path-style addressing: the test S3 server is an IP address.
    let config = tmp.path().join("config");
    std::fs::write(&config, "[default]\ns3 =\n    addressing_style = path\n").unwrap();
    let trail = format!("arn:aws:cloudtrail:us-east-1:{account}:trail/org-trail");
    // `python3 -m awscli`: the module pip installed, whatever is on PATH.
    let mut cmd = std::process::Command::new("python3");
    cmd.args([
        "-m",
        "awscli",
        "cloudtrail",
        "validate-logs",
        "--trail-arn",
        &trail,
        "--s3-bucket",
        "org-trail-logs",
        "--account-id",
        account,
        "--start-time",
        from,
        "--end-time",
        to,
        "--region",
        region,
        "--verbose",
    ]);
    for (k, v) in moto.env() {
        cmd.env(k, v);
    }
    cmd.env("AWS_CONFIG_FILE", &config)
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", cloudtrail);
    let o = cmd
        .output()
        .expect("the AWS CLI runs (pip install -r tests/requirements.txt)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let mut invalid = BTreeSet::new();
    let mut gaps = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        if let [_, url, status] = fields[..] {
            if status.starts_with("INVALID") {
                let key = url.strip_prefix("s3://org-trail-logs/").unwrap_or(url);
                invalid.insert(key.to_string());
            }
        }
        if let Some(rest) = line.strip_prefix("No log files were delivered by CloudTrail between ")
        {
            let (a, b) = rest.split_once(" and ").unwrap();
            gaps.push((a.to_string(), b.to_string()));
        }
    }
    Cli {
        exit: o.status.code(),
        invalid,
        gaps,
        text,
    }
}

/// `YYYY-MM-DD` of an object's `.../YYYY/MM/DD/<name>` folder.
fn folder_date(key: &str) -> String {
    let parts: Vec<&str> = key.rsplit('/').collect();
    format!("{}-{}-{}", parts[3], parts[2], parts[1])
}
