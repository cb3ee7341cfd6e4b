//! Helpers shared by the integration tests.

use flate2::{read::GzDecoder, write::GzEncoder, Compression};
use polars::prelude::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn keytrail(args: &[&str]) -> Output {
    keytrail_with_env(args, &[])
}

pub fn keytrail_with_env(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keytrail"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("keytrail runs")
}

/// A command that succeeded and printed each of `lines` (somewhere in its stdout).
pub fn assert_prints(o: &Output, lines: &[&str]) {
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for line in lines {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The report's tables in `got` equal those in `expected`, row for row (the three main ones not
/// empty).
pub fn assert_same_tables(expected: &Path, got: &Path, what: &str) {
    for t in ["key_usage", "kms_events", "scan_manifest"] {
        let want = read_table(&expected.join(t));
        assert!(!want.is_empty(), "{what}: {t} is empty");
        assert_eq!(read_table(&got.join(t)), want, "{what}: table {t} differs");
    }
    // Dependents and failed attempts exist where the logs hold them: the same in both, or in
    // neither.
    for t in ["key_dependents", "failed_attempts"] {
        assert_eq!(
            expected.join(t).exists(),
            got.join(t).exists(),
            "{what}: {t}"
        );
        if expected.join(t).exists() {
            assert_eq!(
                read_table(&got.join(t)),
                read_table(&expected.join(t)),
                "{what}: table {t} differs"
            );
        }
    }
}

/// The names in `dir` (not recursive), sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Every file under `dir`, recursively, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Generates a synthetic archive into `dir` and returns its truth.
pub fn synth(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["synth", "--out", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = keytrail(&args);
    assert!(
        out.status.success(),
        "synth failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap()
}

/// Runs `keytrail run` and returns the exit code and the combined output.
pub fn run(usage: &Path, logs: &Path, out: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec![
        "run",
        "--usage",
        usage.to_str().unwrap(),
        "--logs",
        logs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = keytrail(&args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), text)
}

/// Reads every Parquet file under `dir` (recursively) as JSON rows; timestamps become ISO-8601
/// strings with milliseconds, dates `YYYY-MM-DD`.
pub fn read_table(dir: &Path) -> Vec<Value> {
    let mut files = Vec::new();
    collect_parquet(dir, &mut files);
    files.sort();
    let mut rows = Vec::new();
    for f in files {
        let df = ParquetReader::new(std::fs::File::open(&f).unwrap())
            .finish()
            .unwrap();
        for i in 0..df.height() {
            let mut row = serde_json::Map::new();
            for c in df.columns() {
                row.insert(c.name().to_string(), any_to_json(c.get(i).unwrap()));
            }
            rows.push(Value::Object(row));
        }
    }
    rows
}

fn collect_parquet(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect_parquet(&p, out);
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
}

fn any_to_json(v: AnyValue) -> Value {
    match v {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => json!(b),
        AnyValue::String(s) => json!(s),
        AnyValue::StringOwned(s) => json!(s.as_str()),
        AnyValue::Int64(n) => json!(n),
        AnyValue::Int32(n) => json!(n),
        AnyValue::Datetime(ms, TimeUnit::Milliseconds, _)
        | AnyValue::DatetimeOwned(ms, TimeUnit::Milliseconds, _) => {
            let t = chrono::DateTime::from_timestamp_millis(ms).unwrap();
            json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        }
        AnyValue::Date(d) => json!((chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
            + chrono::Duration::days(d as i64))
        .to_string()),
        AnyValue::List(s) => Value::Array(s.iter().map(any_to_json).collect()),
        other => panic!("unexpected Parquet value {other:?}"),
    }
}

/// Serves HTTP/1.1 on a free loopback port, on a runtime of its own (kept alive by the returned
/// value), answering each connection with the service `make` builds. Returns the endpoint URL.
pub fn serve<F, S, B>(make: F) -> (String, tokio::runtime::Runtime)
where
    F: Fn() -> S + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<B>,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = make();
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    (endpoint, rt)
}

/// The inflated bytes of a gzip file.
pub fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// `bytes` gzipped.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}
