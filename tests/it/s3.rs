//! The s3:// path, through the real AWS SDK over HTTP, against a real S3 implementation on
//! loopback (moto's server, started by the test): the same archive read from S3 and from a local
//! directory gives the same report, row for row.

use crate::common::{
    assert_prints, assert_same_tables, files, keytrail_with_env, read_table, synth,
};
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass;
use futures::stream::{self, StreamExt};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// moto's S3 server on a free loopback port, killed on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    /// The CA that signed the server's certificate, when it speaks HTTPS.
    pub ca: Option<std::path::PathBuf>,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::launch(None)
    }

    /// The server over HTTPS, its certificate (for 127.0.0.1) signed by a test CA made in `dir`
    /// (`trustme`) and written there as `ca.pem`.
    pub fn start_tls(dir: &Path) -> Moto {
        let made = Command::new("python3")
            .args([
                "-c",
                "import sys, trustme; d = sys.argv[1]; ca = trustme.CA(); \
                 c = ca.issue_cert('127.0.0.1', 'localhost'); \
                 ca.cert_pem.write_to_path(d + '/ca.pem'); \
                 c.private_key_pem.write_to_path(d + '/key.pem'); \
                 c.cert_chain_pems[0].write_to_path(d + '/cert.pem')",
                dir.to_str().unwrap(),
            ])
            .status()
            .expect("python3 runs (pip install -r tests/requirements.txt)");
        assert!(made.success(), "trustme made the test certificates");
        Moto::launch(Some(dir))
    }

    fn launch(tls: Option<&Path>) -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut args = vec![
            "-m".to_string(),
            "moto.server".into(),
            "-H".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ];
        if let Some(dir) = tls {
            for (flag, file) in [("-c", "cert.pem"), ("-k", "key.pem")] {
                args.push(flag.into());
                args.push(dir.join(file).to_string_lossy().into_owned());
            }
        }
        let child = Command::new("python3")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m moto.server starts (pip install -r tests/requirements.txt)");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            child,
            endpoint: format!(
                "{}://127.0.0.1:{port}",
                if tls.is_some() { "https" } else { "http" }
            ),
            ca: tls.map(|d| d.join("ca.pem")),
        }
    }

    /// The environment a keytrail process needs to reach this server, and nothing else.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        offline_env("AWS_ENDPOINT_URL_S3", &self.endpoint)
    }

    pub fn client(&self) -> aws_sdk_s3::Client {
        let mut conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .force_path_style(true);
        if let Some(ca) = &self.ca {
            use aws_smithy_http_client::tls;
            let trust = tls::TrustStore::empty().with_pem_certificate(std::fs::read(ca).unwrap());
            let client = aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(
                    tls::TlsContext::builder()
                        .with_trust_store(trust)
                        .build()
                        .unwrap(),
                )
                .build_https();
            conf = conf.http_client(client);
        }
        aws_sdk_s3::Client::from_conf(conf.build())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A keytrail process's environment for a server at `endpoint` (named by `variable`): test
/// credentials, a region, no profile files and no instance metadata — nothing else is reached.
pub fn offline_env(variable: &'static str, endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        (variable, endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_CONFIG_FILE", "/nonexistent".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// Uploads every file under `dir` to `bucket`, keyed by its path relative to `dir`; keys for
/// which `class` answers get that storage class.
pub async fn upload(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    dir: &Path,
    class: impl Fn(&str) -> Option<StorageClass>,
) {
    client.create_bucket().bucket(bucket).send().await.unwrap();
    let puts = files(dir).into_iter().map(|p| {
        let key = p
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let class = class(&key);
        async move {
            let body = ByteStream::from(std::fs::read(&p).unwrap());
            client
                .put_object()
                .bucket(bucket)
                .key(&key)
                .body(body)
                .set_storage_class(class)
                .send()
                .await
                .unwrap();
        }
    });
    stream::iter(puts)
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}

/// A fresh moto with the synth archive of `synth_args` uploaded to `bucket` (objects for which
/// `class` answers get that storage class): the server, the temporary directory, the synth
/// directory in it, and the truth.
pub fn synth_in_moto(
    synth_args: &[&str],
    bucket: &str,
    class: impl Fn(&str) -> Option<StorageClass>,
) -> (
    Moto,
    tempfile::TempDir,
    std::path::PathBuf,
    serde_json::Value,
) {
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    let truth = synth(&data, synth_args);
    rt().block_on(upload(&moto.client(), bucket, &data.join("logs"), class));
    (moto, tmp, data, truth)
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn run_with(
    env: &[(&str, String)],
    usage: &Path,
    logs: &str,
    out: &Path,
    extra: &[&str],
) -> (i32, String) {
    let mut args = vec![
        "run",
        "--usage",
        usage.to_str().unwrap(),
        "--logs",
        logs,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = keytrail_with_env(&args, env);
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn s3_archive_gives_the_same_report_as_the_local_directory() {
    let (moto, tmp, data, _) = synth_in_moto(
        &[
            "--seed",
            "2024",
            "--org-id",
            "o-exampleorg1",
            "--prefix",
            "trails/org",
        ],
        "org-trail-logs",
        |_| None,
    );

    let usage = data.join("usage.jsonl");
    let local = tmp.path().join("local");
    let (code, text) = run_with(
        &[],
        &usage,
        data.join("logs").to_str().unwrap(),
        &local,
        &[],
    );
    assert_eq!(code, 1, "{text}");
    let remote = tmp.path().join("remote");
    let (code, text) = run_with(
        &moto.env(),
        &usage,
        "s3://org-trail-logs/trails",
        &remote,
        // A byte budget that holds only a few objects at once.
        &["--concurrency", "8", "--max-in-flight-mib", "1"],
    );
    assert_eq!(code, 1, "{text}");

    assert_eq!(read_table(&local.join("key_usage")).len(), 36);
    assert_same_tables(&local, &remote, "local vs s3://");
}

/// Over HTTPS, as S3 is reached in earnest: the gets take the direct path on the SDK's TLS
/// connector and scan what the local copy scans (the bench refuses a scan that differs); the
/// server's certificate is verified — without its CA (`SSL_CERT_FILE`, which the SDK's native
/// roots read, for both paths) the bucket is not even opened, and the failure says why.
#[test]
fn over_https_the_gets_take_the_direct_path_and_the_certificate_is_verified() {
    let certs = tempfile::tempdir().unwrap();
    let moto = Moto::start_tls(certs.path());
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    synth(&data, &["--seed", "21"]);
    rt().block_on(upload(
        &moto.client(),
        "tls-logs",
        &data.join("logs"),
        |_| None,
    ));
    let bench = |trusted: bool| {
        let mut env = moto.env();
        if trusted {
            let ca = moto.ca.as_ref().unwrap();
            env.push(("SSL_CERT_FILE", ca.to_string_lossy().into_owned()));
        }
        bench_over_s3(&data, &data.join("logs"), "s3://tls-logs", &env)
    };
    assert!(moto.endpoint.starts_with("https://"));
    assert_prints(
        &bench(true),
        &[
            "scan over s3://tls-logs: 2 threads",
            "GET path: direct",
            "keytrail CPU, s3:// / local",
        ],
    );
    let o = bench(false);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert_eq!(
        err.trim(),
        "keytrail: error: --logs s3://tls-logs: cannot open the bucket: invalid peer \
         certificate: UnknownIssuer"
    );
}

/// `bench --s3-logs` scans the same objects over S3 and checks that they scan alike: it prints
/// the S3 phase for the bucket holding the archive, and refuses a bucket holding another.
/// `keytrail bench` on two threads with the synth archive `data`'s usage, the local copy `logs`
/// and the same archive at `s3_logs`.
fn bench_over_s3(
    data: &Path,
    logs: &Path,
    s3_logs: &str,
    env: &[(&str, String)],
) -> std::process::Output {
    keytrail_with_env(
        &[
            "bench",
            "--usage",
            data.join("usage.jsonl").to_str().unwrap(),
            "--logs",
            logs.to_str().unwrap(),
            "--threads",
            "2",
            "--s3-logs",
            s3_logs,
        ],
        env,
    )
}

#[test]
fn bench_measures_the_same_archive_over_s3() {
    let (moto, tmp, data, _) = synth_in_moto(&["--seed", "12"], "bench-logs", |_| None);
    let bench = |logs: &Path| bench_over_s3(&data, logs, "s3://bench-logs", &moto.env());
    assert_prints(
        &bench(&data.join("logs")),
        &[
            "scan over s3://bench-logs: 2 threads",
            "GET path: direct",
            "s3:// throughput / local",
            "keytrail CPU, s3:// / local",
        ],
    );
    let other = tmp.path().join("other");
    synth(&other, &["--seed", "13"]);
    let o = bench(&other.join("logs"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("did not scan like the local archive"), "{err}");
}

#[test]
fn archived_objects_are_skipped_and_weaken_the_verdicts_that_need_them() {
    // Every log of account 111122223333 in us-east-1 delivered on 2026-02-26 goes to Glacier.
    let frozen_day = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/02/26/";
    let (moto, tmp, data, truth) = synth_in_moto(&["--seed", "99"], "trail-logs", |k| {
        k.starts_with(frozen_day).then_some(StorageClass::Glacier)
    });
    let out = tmp.path().join("r");
    let (code, text) = run_with(
        &moto.env(),
        &data.join("usage.jsonl"),
        "s3://trail-logs",
        &out,
        &[],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("archived in GLACIER/DEEP_ARCHIVE"), "{text}");

    let manifest = read_table(&out.join("scan_manifest"));
    let frozen: Vec<_> = manifest
        .iter()
        .filter(|r| r["object"].as_str().unwrap().starts_with(frozen_day))
        .collect();
    assert!(!frozen.is_empty());
    for r in &frozen {
        assert_eq!(r["status"], "skipped");
        assert!(
            r["reason"]
                .as_str()
                .unwrap()
                .starts_with("archived: storage class GLACIER"),
            "{r}"
        );
    }
    // Keys of that account and region that the truth calls no_use_found, and whose window covers
    // the frozen day, are inconclusive now; everything else is as the truth says.
    let rows = read_table(&out.join("key_usage"));
    let mut weakened = 0;
    for want in truth["keys"].as_array().unwrap() {
        let got = rows
            .iter()
            .find(|r| r["key_arn"] == want["key_arn"])
            .unwrap();
        let covers = got["backfill_window_start"]
            .as_str()
            .is_some_and(|s| s < "2026-02-27")
            && got["backfill_window_end"]
                .as_str()
                .is_some_and(|e| e > "2026-02-26");
        let affected = want["key_arn"]
            .as_str()
            .unwrap()
            .contains(":us-east-1:111122223333:")
            && covers;
        if affected && want["verdict"] == "no_use_found" {
            weakened += 1;
            assert_eq!(got["verdict"], "inconclusive", "{}", want["key_arn"]);
            assert!(
                got["verdict_reason"].as_str().unwrap().contains("archived"),
                "{got}"
            );
        } else if !affected {
            assert_eq!(got["verdict"], want["verdict"], "{}", want["key_arn"]);
        }
    }
    assert!(weakened > 0, "the frozen day must matter to some key");
}

#[test]
fn a_fifth_of_s3_requests_failing_changes_nothing_in_the_report() {
    let (moto, tmp, data, _) = synth_in_moto(&["--seed", "515"], "trail-logs", |_| None);
    let usage = data.join("usage.jsonl");
    let clean = tmp.path().join("clean");
    let t = Instant::now();
    let (code, text) = run_with(&moto.env(), &usage, "s3://trail-logs", &clean, &[]);
    eprintln!("clean run: {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(code, 1, "{text}");

    let faulty = crate::proxy::Faulty::start(&moto.endpoint, 20);
    // moto behind the proxy.
    let env = offline_env("AWS_ENDPOINT_URL_S3", &faulty.endpoint);
    let hurt = tmp.path().join("hurt");
    let t = Instant::now();
    let (code, text) = run_with(&env, &usage, "s3://trail-logs", &hurt, &[]);
    eprintln!("faulty run: {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(code, 1, "{text}");

    let injected = faulty.injected();
    for (kind, n) in crate::proxy::FAULTS.iter().zip(injected) {
        assert!(
            n >= 5,
            "only {n} faults of kind {kind} injected: {injected:?}"
        );
    }
    assert_same_tables(&clean, &hurt, &format!("under faults ({injected:?})"));
}

/// S3 throttles per prefix (each account/region/day folder): here a proxy answers `SlowDown` to
/// any GetObject whose folder already has 2 in flight. keytrail backs the folder off and halves
/// its in-flight window: every object is read (the report is the unthrottled one) and the
/// SlowDowns stay fewer than half the objects (about a quarter when measured; 0.9 per object
/// without the window's halving). A scan that kept its window (16 and growing, all in one
/// folder at a time) or retried without waiting would draw many SlowDowns per object, and give
/// objects up as unreadable.
#[test]
fn a_folder_that_says_slow_down_is_backed_off_and_every_object_is_read() {
    let (moto, tmp, data, _) = synth_in_moto(&["--seed", "517"], "trail-logs", |_| None);
    let usage = data.join("usage.jsonl");
    let clean = tmp.path().join("clean");
    let (code, text) = run_with(&moto.env(), &usage, "s3://trail-logs", &clean, &[]);
    assert_eq!(code, 1, "{text}");

    let crowded = crate::proxy::Crowded::start(&moto.endpoint, 2);
    // moto behind the proxy.
    let env = offline_env("AWS_ENDPOINT_URL_S3", &crowded.endpoint);
    let slowed = tmp.path().join("slowed");
    let t = Instant::now();
    let (code, text) = run_with(&env, &usage, "s3://trail-logs", &slowed, &[]);
    let (slowdowns, gets) = crowded.counts();
    eprintln!(
        "throttled run: {:.1} s, {slowdowns} SlowDowns in {gets} GetObjects",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(code, 1, "{text}");
    assert_same_tables(&clean, &slowed, "throttled per folder");
    let read = gets - slowdowns;
    assert!(
        slowdowns > 0,
        "the proxy never throttled: the test shows nothing"
    );
    assert!(
        2 * slowdowns < read,
        "{slowdowns} SlowDowns for {read} objects read: the folders were not backed off"
    );
}

/// keytrail GETs the archive's objects beneath the SDK's orchestrator (`archive::s3::direct`), or
/// through the SDK with `KEYTRAIL_S3_GET=sdk`; the SDK is the reference. Behind a proxy that
/// refuses one object with S3's `403 AccessDenied`, both paths ask for the same paths — keys
/// under a prefix that needs percent-encoding (a space, `+`, `=`) — and read the answers alike:
/// the same report, and the refused object recorded once with S3's code and the message the
/// proxy wrote, not retried (a final answer).
#[test]
fn the_direct_and_the_sdk_get_paths_ask_the_same_and_read_the_answers_alike() {
    let prefix = "odd prefix+=";
    let (moto, tmp, data, _) =
        synth_in_moto(&["--seed", "518", "--prefix", prefix], "trail-logs", |_| {
            None
        });
    let refused = files(&data.join("logs"))
        .into_iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .find(|n| n.ends_with(".json.gz") && n.contains("_CloudTrail_"))
        .unwrap();
    let mut asked = Vec::new();
    for path in ["direct", "sdk"] {
        let proxy = crate::proxy::Denying::start(&moto.endpoint, &refused);
        let mut env = offline_env("AWS_ENDPOINT_URL_S3", &proxy.endpoint);
        if path == "sdk" {
            env.push(("KEYTRAIL_S3_GET", "sdk".to_string()));
        }
        let out = tmp.path().join(path);
        let logs = format!("s3://trail-logs/{prefix}");
        let (code, text) = run_with(&env, &data.join("usage.jsonl"), &logs, &out, &[]);
        assert!(code <= 1, "{path}: {text}");
        let gets = proxy.gets();
        let agents: std::collections::BTreeSet<bool> = gets
            .iter()
            .map(|(_, agent)| agent.starts_with("keytrail/"))
            .collect();
        assert_eq!(
            agents,
            [path == "direct"].into(),
            "{path}: who asked, by user-agent: {gets:?}"
        );
        assert_eq!(
            gets.iter().filter(|(p, _)| p.contains(&refused)).count(),
            1,
            "{path}: the refused object is asked for once"
        );
        let manifest = read_table(&out.join("scan_manifest"));
        let row = manifest
            .iter()
            .find(|r| r["object"].as_str().unwrap().ends_with(&refused))
            .unwrap();
        assert_eq!(row["status"], "unreadable", "{path}: {row}");
        assert_eq!(
            row["reason"], "GetObject failed: AccessDenied: injected by the test proxy",
            "{path}: {row}"
        );
        let mut paths: Vec<String> = gets.into_iter().map(|(p, _)| p).collect();
        paths.sort();
        assert!(
            paths.iter().all(|p| p.contains("odd%20prefix%2B%3D/")),
            "{paths:?}"
        );
        asked.push(paths);
    }
    assert_eq!(
        asked[0], asked[1],
        "the two paths asked for different objects"
    );
    assert_same_tables(
        &tmp.path().join("sdk"),
        &tmp.path().join("direct"),
        "direct vs SDK GETs",
    );
}

/// A slow GET holds one of the S3 scan's slots, not the whole window: with 4 objects in flight and
/// the answer to the first GetObject held back, the scan goes on fetching others — 12 are answered
/// before the held one is let go. A scan that waited for its objects in order would stop at 3 and
/// the proxy would let go only when its patience ran out.
#[test]
fn a_slow_get_does_not_hold_up_the_others() {
    let (moto, tmp, data, _) = synth_in_moto(&["--seed", "516"], "trail-logs", |_| None);
    let stalling =
        crate::proxy::Stalling::start(&moto.endpoint, 12, std::time::Duration::from_secs(30));
    // moto behind the proxy.
    let env = offline_env("AWS_ENDPOINT_URL_S3", &stalling.endpoint);
    let (code, text) = run_with(
        &env,
        &data.join("usage.jsonl"),
        "s3://trail-logs",
        &tmp.path().join("report"),
        &["--concurrency", "4"],
    );
    assert_eq!(code, 1, "{text}");
    assert_eq!(stalling.released(), Some("count"), "{text}");
}

/// The S3 Inventory report of `bucket`'s objects under `dir` (keys relative to it; those starting
/// with `frozen` in GLACIER), written the way AWS writes one into `dest` of moto: the data in
/// two files — gzip CSV without a header, every field quoted, keys URL-encoded (a space as `+`)
/// — or Parquet, and `manifest.json` naming them with their MD5. Made here from the files on
/// disk, not by keytrail. Returns the manifest's URL.
fn write_inventory(
    moto: &Moto,
    dest: &str,
    bucket: &str,
    dir: &Path,
    frozen: &str,
    csv: bool,
) -> String {
    use md5::Digest;
    let rows: Vec<(String, u64, &str)> = files(dir)
        .into_iter()
        .map(|p| {
            let key = p
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let class = if key.starts_with(frozen) {
                "GLACIER"
            } else {
                "STANDARD"
            };
            (key, std::fs::metadata(&p).unwrap().len(), class)
        })
        .collect();
    let half = rows.len() / 2;
    let data: Vec<(String, Vec<u8>)> = [&rows[..half], &rows[half..]]
        .iter()
        .enumerate()
        .map(|(n, part)| {
            if csv {
                let mut text = String::new();
                for (key, size, class) in part.iter() {
                    let enc: String = key
                        .bytes()
                        .map(|b| match b {
                            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                                (b as char).to_string()
                            }
                            b' ' => "+".to_string(),
                            _ => format!("%{b:02X}"),
                        })
                        .collect();
                    text.push_str(&format!("\"{bucket}\",\"{enc}\",\"{size}\",\"{class}\"\n"));
                }
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
                (
                    format!("{bucket}/cfg/data/part-{n}.csv.gz"),
                    gz.finish().unwrap(),
                )
            } else {
                use polars::prelude::*;
                let mut df = df!(
                    "bucket" => part.iter().map(|_| bucket).collect::<Vec<_>>(),
                    "key" => part.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
                    "size" => part.iter().map(|r| r.1 as i64).collect::<Vec<_>>(),
                    "storage_class" => part.iter().map(|r| r.2).collect::<Vec<_>>(),
                )
                .unwrap();
                let mut bytes = Vec::new();
                ParquetWriter::new(&mut bytes).finish(&mut df).unwrap();
                (format!("{bucket}/cfg/data/part-{n}.parquet"), bytes)
            }
        })
        .collect();
    let manifest = serde_json::json!({
        "sourceBucket": bucket,
        "destinationBucket": format!("arn:aws:s3:::{dest}"),
        "version": "2016-11-30",
        "creationTimestamp": "1796086800000",
        "fileFormat": if csv { "CSV" } else { "Parquet" },
        "fileSchema": if csv {
            "Bucket, Key, Size, StorageClass".to_string()
        } else {
            "message s3.inventory { required binary bucket (STRING); required binary key (STRING); optional int64 size; optional binary storage_class (STRING); }".to_string()
        },
        "files": data.iter().map(|(k, b)| serde_json::json!({
            "key": k, "size": b.len(), "MD5checksum": md5::Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect::<String>()
        })).collect::<Vec<_>>(),
    });
    let manifest_key = format!("{bucket}/cfg/2026-12-01T01-00Z/manifest.json");
    rt().block_on(async {
        let c = moto.client();
        let _ = c.create_bucket().bucket(dest).send().await;
        for (k, b) in data
            .into_iter()
            .chain([(manifest_key.clone(), manifest.to_string().into_bytes())])
        {
            c.put_object()
                .bucket(dest)
                .key(k)
                .body(ByteStream::from(b))
                .send()
                .await
                .unwrap();
        }
    });
    format!("s3://{dest}/{manifest_key}")
}

/// A sharded plan made from an inventory: the shards list their folders live (ListObjectsV2) and
/// find what the inventory said — no folder is said to have changed, and the merged report is
/// the listed run's.
fn sharded_from_inventory(
    moto: &Moto,
    tmp: &tempfile::TempDir,
    usage: &Path,
    inventory: &str,
    listed: &Path,
) {
    let plan = tmp.path().join("inventory-plan.json");
    let shards = tmp.path().join("inventory-shards");
    let merged = tmp.path().join("inventory-merged");
    let (p, s, m) = (
        plan.to_str().unwrap(),
        shards.to_str().unwrap(),
        merged.to_str().unwrap(),
    );
    let u = usage.to_str().unwrap();
    let env = moto.env();
    let o = keytrail_with_env(
        &[
            "plan",
            "--usage",
            u,
            "--logs",
            "s3://trail-logs",
            "--out",
            p,
            "--shards",
            "2",
            "--s3-inventory",
            inventory,
            "-q",
        ],
        &env,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for k in 0..2 {
        let shard = format!("{k}/2");
        let o = keytrail_with_env(
            &["scan", "--plan", p, "--shard", &shard, "--out", s, "-q"],
            &env,
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{err}");
        assert!(!err.contains("changed between"), "{err}");
    }
    let o = keytrail_with_env(
        &["merge", "--plan", p, "--shards", s, "--out", m, "-q"],
        &env,
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_same_tables(listed, &merged, "sharded, planned from an inventory");
    let summary = std::fs::read_to_string(merged.join("summary.json")).unwrap();
    assert!(!summary.contains("changed between"), "{summary}");
}

/// `--s3-inventory`: the folders are listed from the bucket's S3 Inventory report (CSV and
/// Parquet, as AWS writes them), not with ListObjectsV2, and the report is the listed run's —
/// archived objects included, their storage class read from the inventory. A data file whose MD5
/// is not the manifest's stops the run with a reason.
#[test]
fn an_s3_inventory_report_plans_the_same_run_without_listing_the_archive() {
    let frozen = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/02/26/";
    let (moto, tmp, data, _) = synth_in_moto(&["--seed", "518"], "trail-logs", |k| {
        k.starts_with(frozen).then_some(StorageClass::Glacier)
    });
    let usage = data.join("usage.jsonl");
    let listed = tmp.path().join("listed");
    let (code, text) = run_with(&moto.env(), &usage, "s3://trail-logs", &listed, &[]);
    assert_eq!(code, 1, "{text}");

    for csv in [true, false] {
        let format = if csv { "CSV" } else { "Parquet" };
        let dest = if csv {
            "inventory-csv"
        } else {
            "inventory-parquet"
        };
        let url = write_inventory(&moto, dest, "trail-logs", &data.join("logs"), frozen, csv);
        let recorder = crate::proxy::Recorder::start(&moto.endpoint);
        // moto behind the proxy.
        let env = offline_env("AWS_ENDPOINT_URL_S3", &recorder.endpoint);
        let out = tmp.path().join(format);
        let (code, text) = run_with(
            &env,
            &usage,
            "s3://trail-logs",
            &out,
            &["--s3-inventory", &url],
        );
        assert_eq!(code, 1, "{format}: {text}");
        assert_same_tables(&listed, &out, &format!("planned from a {format} inventory"));
        let lists: Vec<_> = recorder
            .requests()
            .into_iter()
            .filter(|(m, p)| {
                m == "GET" && p.starts_with("/trail-logs") && p.contains("list-type=2")
            })
            .collect();
        assert!(
            lists.is_empty(),
            "{format}: the archive was listed: {lists:?}"
        );
        assert!(
            recorder
                .requests()
                .iter()
                .any(|(_, p)| p.starts_with(&format!("/{dest}/"))),
            "{format}: the inventory was not read"
        );
        if csv {
            sharded_from_inventory(&moto, &tmp, &usage, &url, &listed);
        }
    }

    // A data file replaced after the manifest was written.
    let c = moto.client();
    rt().block_on(
        c.put_object()
            .bucket("inventory-csv")
            .key("trail-logs/cfg/data/part-0.csv.gz")
            .body(ByteStream::from_static(b"not the file"))
            .send(),
    )
    .unwrap();
    let url = "s3://inventory-csv/trail-logs/cfg/2026-12-01T01-00Z/manifest.json";
    let (code, text) = run_with(
        &moto.env(),
        &usage,
        "s3://trail-logs",
        &tmp.path().join("damaged"),
        &["--s3-inventory", url],
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("part-0.csv.gz: MD5") && text.contains("the manifest says"),
        "{text}"
    );
}
