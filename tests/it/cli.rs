//! The command line's contract: bad input gives one clear line and exit 2, and leaves nothing
//! behind; a good run exits 0 or 1 and replaces nothing it should not.

use crate::common::{assert_prints, entries, keytrail, run, synth};
use std::path::Path;

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
    // A key ARN with a four-digit account: the error names the line and the ARN.
    let bad_arn = work.join("bad-arn.jsonl");
    let arn = first
        .split("\"Arn\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let account = arn.split(':').nth(4).unwrap();
    let broken = arn.replace(account, "1111");
    std::fs::write(
        &bad_arn,
        format!("{first}\n{}\n", first.replace(arn, &broken)),
    )
    .unwrap();
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
            "malformed key ARN",
            vec![&bad_arn, &logs, &out],
            "line 2: `arn:aws:kms:",
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
            ["a-file", "bad-arn.jsonl", "bad.jsonl"],
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
        [
            "accounts",
            "athena",
            "failed_attempts",
            "key_dependents",
            "key_usage",
            "kms_events",
            "report.html",
            "scan_manifest",
            "summary.json"
        ]
    );
    assert_eq!(
        entries(&work),
        ["a-file", "bad-arn.jsonl", "bad.jsonl", "report"],
        "no staging directory left"
    );
}

/// Missing credentials, or no region to inventory: one line naming what to set, exit 2 — never
/// the SDK's debug structure. Nothing listens at the endpoint: nothing may be reached.
#[test]
fn missing_credentials_or_region_say_what_to_set_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let base = [
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9".to_string()),
        ("AWS_CONFIG_FILE", "/nonexistent".to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".to_string()),
    ];
    let keytrail_clean = |args: &[&str], env: &[(&str, String)]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_keytrail"));
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap());
        for (k, v) in base.iter().chain(env) {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let region = [("AWS_REGION", "eu-west-1".to_string())];
    let logs = samples.join("logs");
    let usage = samples.join("usage.jsonl");
    // (arguments, environment, what the line must name)
    type Case<'a> = (Vec<&'a str>, &'a [(&'a str, String)], &'a str);
    let cases: [Case; 3] = [
        (
            vec!["run", "--usage", "aws", "--logs", logs.to_str().unwrap()],
            &region,
            "AWS_PROFILE",
        ),
        (
            vec![
                "run",
                "--usage",
                usage.to_str().unwrap(),
                "--logs",
                "s3://trail-archive",
            ],
            &region,
            "AWS_PROFILE",
        ),
        (vec!["inventory"], &[], "--regions"),
    ];
    for (mut args, env, names) in cases {
        let o_arg = out.to_str().unwrap();
        args.extend_from_slice(&["--out", o_arg]);
        let o = keytrail_clean(&args, env);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.contains(names), "{args:?}: {err}");
        assert!(
            !err.contains("DispatchFailure") && !err.contains("{"),
            "{err}"
        );
        assert!(!out.exists(), "nothing written");
    }
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
    let bench = |threads: &str| {
        keytrail(&[
            "bench",
            "--usage",
            data.join("usage.jsonl").to_str().unwrap(),
            "--logs",
            data.join("logs").to_str().unwrap(),
            "--threads",
            threads,
        ])
    };
    let o = bench("2");
    assert_prints(
        &o,
        &[
            "floor: read + inflate, libdeflate",
            "scan: 1 thread",
            "scan / floor (libdeflate)",
            "2 threads vs 1",
            "integrity cost (scan + SHA-256 / scan)",
        ],
    );
    // One thread: the scan is measured once, and there is no speed-up to print.
    let o = bench("1");
    assert_prints(&o, &["scan: 1 thread", "scan / floor (libdeflate)"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.matches("scan: 1 thread").count(), 1, "{text}");
    assert!(
        !text.contains("speed-up") && !text.contains("1 threads"),
        "{text}"
    );
}

/// SIGINT and SIGTERM stop a run with exit 130, removing the report being staged, and leave
/// `--out` as it was. The run is held mid-way by an S3 endpoint that accepts connections and
/// never answers.
#[test]
fn a_signal_stops_the_run_with_130_and_leaves_no_partial_report() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    synth(&data, &["--seed", "5"]);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let work = tmp.path().join(name);
        std::fs::create_dir(&work).unwrap();
        let out = work.join("report");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_keytrail"))
            .args(["run", "--usage", data.join("usage.jsonl").to_str().unwrap()])
            .args(["--logs", "s3://held-bucket", "--out", out.to_str().unwrap()])
            .env("AWS_ENDPOINT_URL_S3", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the report is being staged, then signal.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while entries(&work).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "no staging dir appeared"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(entries(&work)
            .iter()
            .any(|e| e.starts_with(".report.keytrail-tmp-")));
        std::thread::sleep(std::time::Duration::from_millis(300));
        // SAFETY: signalling a child process this test started and still owns.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let o = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "{name}: {stderr}");
        assert!(stderr.contains(&format!("stopped by {name}")), "{stderr}");
        // Held before the archive was listed: no checkpoint yet, so nothing at all remains
        // (the resume tests cover interruptions after the checkpoint exists).
        assert!(!stderr.contains("--resume"), "{stderr}");
        assert_eq!(
            entries(&work),
            Vec::<String>::new(),
            "{name} left something else"
        );
    }
}

/// A gzip bomb among the logs — a small object whose one record inflates to 256 MiB — is cut
/// off at `--max-inflated-mib`, recorded unreadable with that reason, and the run's memory stays
/// far below the bomb's size.
#[test]
fn a_gzip_bomb_is_unreadable_at_the_cap_and_memory_stays_bounded() {
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    synth(&data, &["--seed", "5"]);
    // Beside a real log object, under a log file name of the same day.
    let logs: Vec<_> = crate::common::files(&data.join("logs"))
        .into_iter()
        .filter(|p| {
            let p = p.to_string_lossy();
            p.contains("/CloudTrail/") && p.ends_with(".json.gz")
        })
        .collect();
    let real = &logs[logs.len() / 2];
    let name = real.file_name().unwrap().to_string_lossy().to_string();
    let bomb_name = format!("{}BOMBBOMBBOMBBOMB.json.gz", &name[..name.len() - 24]);
    let bomb_path = real.with_file_name(&bomb_name);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(br#"{"Records":[{"eventSource":"kms.amazonaws.com","x":""#)
        .unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..256 {
        gz.write_all(&chunk).unwrap();
    }
    gz.write_all(br#""}]}"#).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 4 << 20, "{} bytes", bomb.len());
    std::fs::write(&bomb_path, &bomb).unwrap();

    let out = tmp.path().join("report");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_keytrail"))
        .args(["run", "--usage", data.join("usage.jsonl").to_str().unwrap()])
        .args(["--logs", data.join("logs").to_str().unwrap()])
        .args(["--out", out.to_str().unwrap(), "--backfill", "all"])
        .args(["--max-inflated-mib", "64"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1), "unreadable objects make exit 1");
    // The kernel's high-water mark of the process's own memory (VmHWM), which keytrail records;
    // wait4's ru_maxrss would also count this test process's pages, shared until the exec.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let peak_mib = summary["peak_rss_mib"]
        .as_f64()
        .expect("Linux reports VmHWM");
    assert!(
        peak_mib < 160.0,
        "peak RSS {peak_mib} MiB for a 256 MiB bomb"
    );

    let manifest = crate::common::read_table(&out.join("scan_manifest"));
    let row = manifest
        .iter()
        .find(|r| r["object"].as_str().unwrap().ends_with(&bomb_name))
        .expect("the bomb has its manifest row");
    assert_eq!(row["status"], "unreadable", "{row}");
    assert!(
        row["reason"]
            .as_str()
            .unwrap()
            .contains("inflates to more than 64 MiB"),
        "{row}"
    );
}

/// The report, its staging and the checkpoint are created with the user's umask (never wider),
/// and credentials from the environment appear in no output: not on stdout/stderr of a failing
/// S3 run, not in any file of a finished one.
#[test]
fn output_follows_the_umask_and_no_credential_is_ever_printed_or_written() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    synth(&data, &["--seed", "5"]);
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY1";
    let key_id = "AKIAKEYTRAILTEST0001";
    let token = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN";
    // An S3 endpoint that refuses everything with 403 AccessDenied (not retried).
    let denier = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", denier.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut conn in denier.incoming().flatten() {
            let mut buf = [0u8; 8192];
            let _ = conn.read(&mut buf);
            let body = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
            let _ = write!(
                conn,
                "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let keytrail = |logs: &str, out: &Path| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_keytrail"));
        c.args(["run", "--usage", data.join("usage.jsonl").to_str().unwrap()])
            .args(["--logs", logs, "--out", out.to_str().unwrap()])
            .env("AWS_ENDPOINT_URL_S3", &endpoint)
            .env("AWS_ACCESS_KEY_ID", key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_SESSION_TOKEN", token)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        // SAFETY: umask is async-signal-safe and only changes the child's file-creation mask.
        unsafe {
            c.pre_exec(|| {
                libc::umask(0o027);
                Ok(())
            });
        }
        c.output().unwrap()
    };
    let leaks = |text: &str| [secret, key_id, token].iter().any(|s| text.contains(s));

    let failed = keytrail(
        "s3://no-such-endpoint-bucket",
        &tmp.path().join("s3-report"),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&failed.stdout),
        String::from_utf8_lossy(&failed.stderr)
    );
    assert_eq!(failed.status.code(), Some(2), "{text}");
    assert!(text.contains("access denied"), "{text}");
    assert!(!leaks(&text), "a credential was printed: {text}");

    let out = tmp.path().join("report");
    let done = keytrail(data.join("logs").to_str().unwrap(), &out);
    assert_eq!(done.status.code(), Some(1));
    let mut paths = crate::common::files(&out);
    assert!(paths.len() >= 4);
    paths.push(out.join("key_usage"));
    paths.push(out.clone());
    for p in paths {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode & 0o027,
            0,
            "{} has mode {mode:o} under umask 027",
            p.display()
        );
        if p.is_file() {
            assert!(!leaks(&String::from_utf8_lossy(
                &std::fs::read(&p).unwrap()
            )));
        }
    }
}
