//! archive::s3: the archive in an S3 bucket. Listing is `ListObjectsV2` with a `/` delimiter on
//! the folders asked for only (never the whole bucket); a get is one `GetObject` — beneath the
//! SDK's orchestrator ([`direct`]) unless `KEYTRAIL_S3_GET=sdk` or the endpoint needs more than
//! SigV4 — its body read whole and checked against its Content-Length. keytrail retries gets
//! itself (not the SDK): a `SlowDown` backs off the object's prefix ([`super::throttle`]), other
//! faults the object. How many gets are in flight is the scan's business (`scan::fetch`).

mod direct;

use super::throttle::{prefix_of, Throttle};
use super::{Archive, ArchiveError, Entry, Got, Listing};
use crate::aws::Aws;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct S3Archive {
    /// For listing and the run's own state: the SDK's retries.
    client: aws_sdk_s3::Client,
    /// For getting objects: no SDK retries, keytrail's own per-prefix ones.
    gets: aws_sdk_s3::Client,
    /// The same gets beneath the SDK's orchestrator ([`direct`]), where the endpoint allows; or
    /// why not.
    direct: Result<Arc<direct::Direct>, String>,
    throttle: Arc<Throttle>,
    /// Where SDK-path gets run, when this is a scan worker's (the SDK's connections stay on the
    /// runtime that outlives the scan).
    home: Option<tokio::runtime::Handle>,
    /// GetObject requests made, retries included.
    requests: Arc<AtomicU64>,
    bucket: String,
}

/// What a failed GetObject calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `503 SlowDown` (or 429): the prefix is asked too often; back it off.
    SlowDown,
    /// A broken connection, a timeout, a 5xx, `RequestTimeout`: try the object again.
    Transient,
    /// Anything else (no such key, access denied, an archived object): the answer.
    Final,
}

/// What an S3 error answer calls for, by its HTTP status and error code.
fn classify(status: u16, code: Option<&str>) -> Fault {
    match (status, code) {
        (_, Some("SlowDown")) | (503 | 429, _) => Fault::SlowDown,
        (_, Some("RequestTimeout" | "InternalError")) => Fault::Transient,
        (s, _) if s >= 500 => Fault::Transient,
        _ => Fault::Final,
    }
}

fn fault_of<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Fault {
    match e {
        SdkError::ServiceError(se) => classify(se.raw().status().as_u16(), se.err().code()),
        SdkError::ConstructionFailure(_) => Fault::Final,
        _ => Fault::Transient,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("--logs s3://{bucket}: {msg}")]
pub struct ConnectError {
    bucket: String,
    msg: String,
}

impl S3Archive {
    /// Opens `bucket`, finding its region (`HeadBucket` says it, even when asked in the wrong
    /// region) so that every later call goes to the right place.
    pub async fn connect(aws: &Aws, bucket: &str) -> Result<S3Archive, ConnectError> {
        let client = aws.s3(None);
        let bad = |msg: String| ConnectError {
            bucket: bucket.to_string(),
            msg,
        };
        let region = match client.head_bucket().bucket(bucket).send().await {
            Ok(out) => out.bucket_region().map(str::to_string),
            Err(e) => {
                let from_header = e
                    .raw_response()
                    .and_then(|r| r.headers().get("x-amz-bucket-region"))
                    .map(str::to_string);
                match from_header {
                    Some(r) if r != aws.region() => Some(r),
                    _ => {
                        // HEAD answers carry no error body: the status is all there is.
                        let status = e.raw_response().map(|r| r.status().as_u16());
                        return Err(bad(match status {
                            Some(403) => "access denied (HeadBucket answered 403): keytrail needs \
                                s3:ListBucket and s3:GetObject on the archive"
                                .to_string(),
                            Some(404) => "no such bucket (HeadBucket answered 404)".to_string(),
                            _ => format!("cannot open the bucket: {}", crate::aws::explain(&e)),
                        }));
                    }
                }
            }
        };
        let client = match region {
            Some(r) if r != aws.region() => aws.s3(Some(&r)),
            _ => client,
        };
        let gets = aws_sdk_s3::Client::from_conf(
            client
                .config()
                .to_builder()
                .retry_config(aws_config::retry::RetryConfig::disabled())
                .build(),
        );
        // KEYTRAIL_S3_GET=sdk: every get through the SDK's orchestrator.
        let direct = match std::env::var("KEYTRAIL_S3_GET").as_deref() {
            Ok("sdk") => Err("KEYTRAIL_S3_GET=sdk".to_string()),
            _ => direct::Direct::new(&gets, aws.sdk.credentials_provider(), bucket)
                .await
                .map(Arc::new),
        };
        Ok(S3Archive {
            client,
            gets,
            direct,
            throttle: Arc::default(),
            home: None,
            requests: Arc::default(),
            bucket: bucket.to_string(),
        })
    }

    /// The body of one object and its `signature` user metadata (`x-amz-meta-signature`, where
    /// CloudTrail puts a digest's signature). A `SlowDown` backs off the object's prefix and
    /// tries again, up to [`SLOWDOWN_ATTEMPTS`] times; a transient fault (a broken connection, a
    /// 5xx, a body cut short of its Content-Length) waits with backoff and tries again, up to
    /// [`ATTEMPTS`] times. Only then, or on a final answer (no such key, access denied), is it an
    /// error.
    pub async fn get_with_signature(&self, key: &str) -> Result<(Vec<u8>, Option<String>), String> {
        let prefix = prefix_of(key);
        let (mut faults, mut slowdowns) = (0, 0);
        loop {
            self.throttle.wait(prefix).await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let attempt = match &self.direct {
                Ok(direct) => direct.get(key).await,
                // Boxed: the SDK's future is kilobytes, and this one is made per object.
                Err(_) => Box::pin(self.sdk_get(key)).await,
            };
            let fault = match attempt {
                Ok(got) => {
                    self.throttle.succeeded(prefix);
                    return Ok(got);
                }
                Err((Fault::Final, why)) => return Err(why),
                Err((Fault::SlowDown, why)) => {
                    self.throttle.slowed(prefix);
                    slowdowns += 1;
                    if slowdowns == SLOWDOWN_ATTEMPTS {
                        return Err(format!("{why} ({slowdowns} SlowDowns)"));
                    }
                    continue;
                }
                Err((Fault::Transient, why)) => why,
            };
            faults += 1;
            if faults == ATTEMPTS {
                return Err(format!("{fault} ({ATTEMPTS} attempts)"));
            }
            backoff(faults).await;
        }
    }
}

impl S3Archive {
    /// One GetObject attempt through the SDK, on the home runtime when this is a scan worker's.
    async fn sdk_get(&self, key: &str) -> direct::Attempt {
        let attempt = sdk_attempt(self.gets.clone(), self.bucket.clone(), key.to_string());
        match &self.home {
            None => attempt.await,
            Some(home) => home
                .spawn(attempt)
                .await
                .unwrap_or_else(|e| Err((Fault::Transient, format!("GetObject failed: {e}")))),
        }
    }
}

/// One GetObject attempt of `key` with `gets`, the SDK client without retries.
async fn sdk_attempt(gets: aws_sdk_s3::Client, bucket: String, key: String) -> direct::Attempt {
    let out = gets
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .map_err(|e| {
            let why = format!("GetObject failed: {}", crate::aws::explain(&e));
            (fault_of(&e), why)
        })?;
    let expected = out.content_length().and_then(|n| usize::try_from(n).ok());
    let signature = out.metadata().and_then(|m| m.get("signature")).cloned();
    let body = out
        .body
        .collect()
        .await
        .map_err(|e| (Fault::Transient, format!("reading the body failed: {e}")))?;
    // One contiguous body; no second copy when it already is one.
    whole(Vec::from(body.into_bytes()), expected, signature)
}

/// A body read to its end, and its signature metadata — unless it is shorter or longer than its
/// Content-Length said (a connection cut short): then a transient fault.
fn whole(body: Vec<u8>, expected: Option<usize>, signature: Option<String>) -> direct::Attempt {
    match expected {
        Some(n) if n != body.len() => Err((
            Fault::Transient,
            format!("body of {} bytes, Content-Length {n}", body.len()),
        )),
        _ => Ok((body, signature)),
    }
}

impl S3Archive {
    /// GetObject requests made so far, retries included.
    pub fn gets(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Which path the gets take: `direct`, or `SDK (why)`.
    pub fn get_path(&self) -> String {
        match &self.direct {
            Ok(_) => "direct".to_string(),
            Err(why) => format!("SDK ({why})"),
        }
    }
}

/// A distributed run's own state (its plan, the shards' results, the report) when it is kept in
/// S3 — never the archive, which keytrail only reads.
impl S3Archive {
    /// Writes `body` to `key` (one PutObject).
    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), String> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .map(drop)
            .map_err(|e| {
                format!(
                    "PutObject s3://{}/{key} failed: {}",
                    self.bucket,
                    crate::aws::explain(&e)
                )
            })
    }

    /// Deletes `key` (one DeleteObject).
    pub async fn delete(&self, key: &str) -> Result<(), String> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(drop)
            .map_err(|e| {
                format!(
                    "DeleteObject s3://{}/{key} failed: {}",
                    self.bucket,
                    crate::aws::explain(&e)
                )
            })
    }

    /// Every key under `prefix`, at any depth.
    pub async fn keys_under(&self, prefix: &str) -> Result<Vec<String>, String> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                format!(
                    "ListObjectsV2 s3://{}/{prefix} failed: {}",
                    self.bucket,
                    crate::aws::explain(&e)
                )
            })?;
            out.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        Ok(out)
    }
}

/// How many times one object's GET is made when it keeps failing in a transient way.
const ATTEMPTS: u32 = 10;

/// How many SlowDowns one object's GET takes before it is given up (the prefix's backoff grows to
/// 20 s between them).
const SLOWDOWN_ATTEMPTS: u32 = 16;

/// Full-jitter exponential backoff: a random wait up to 100 ms x 2^attempt (capped at 5 s).
async fn backoff(attempt: u32) {
    let cap_ms = (100u64 << attempt.min(6)).min(5_000);
    tokio::time::sleep(super::throttle::jitter(std::time::Duration::from_millis(
        cap_ms,
    )))
    .await;
}

impl Archive for S3Archive {
    fn describe(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    fn get(&self, key: &str) -> impl Future<Output = Got> + Send {
        self.get_with_signature(key)
    }

    fn bucket(&self) -> Option<&str> {
        Some(&self.bucket)
    }

    fn slowdowns(&self) -> u64 {
        self.throttle.slowdowns()
    }

    /// The same archive for a scan worker: the direct path's connections its own; the SDK
    /// path's gets (run on `home`), the counts and the backoff shared.
    fn for_worker(&self, home: &tokio::runtime::Handle) -> S3Archive {
        S3Archive {
            direct: match &self.direct {
                Ok(d) => Ok(Arc::new(d.for_worker(home))),
                Err(why) => Err(why.clone()),
            },
            home: Some(home.clone()),
            ..self.clone()
        }
    }

    #[allow(clippy::manual_async_fn)]
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Listing, ArchiveError>> + Send {
        let prefix = prefix.to_string();
        async move {
            let err = |msg: String| ArchiveError::List {
                location: format!("s3://{}/{prefix}", self.bucket),
                msg,
            };
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .delimiter("/")
                .into_paginator()
                .send();
            let mut out = Listing::default();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| err(crate::aws::explain(&e).to_string()))?;
                out.folders.extend(
                    page.common_prefixes()
                        .iter()
                        .filter_map(|p| p.prefix().map(str::to_string)),
                );
                for o in page.contents() {
                    let Some(key) = o.key() else { continue };
                    out.objects.push(Entry {
                        key: key.to_string(),
                        size: o.size().unwrap_or(0).max(0) as u64,
                        storage_class: o.storage_class().map(|c| c.as_str().to_string()),
                    });
                }
            }
            out.folders.sort();
            out.objects.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        }
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use futures::stream::{self, StreamExt};

    /// GETs every key of `keys`, 64 in flight, and prints the rate and the CPU per GET.
    async fn measure<'k, F, Fut>(label: &str, keys: &'k [String], get: F)
    where
        F: Fn(&'k str) -> Fut,
        Fut: std::future::Future<Output = Vec<u8>>,
    {
        let (t, c) = (std::time::Instant::now(), crate::progress::cpu_seconds());
        let bytes: usize = stream::iter(keys)
            .map(|k| get(k))
            .buffer_unordered(64)
            .map(|b| b.len())
            .fold(0, |a, n| async move { a + n })
            .await;
        let (wall, used) = (
            t.elapsed().as_secs_f64(),
            crate::progress::cpu_seconds() - c,
        );
        println!(
            "{label}: {} GETs, {:.1} MB, {:.0} objects/s, {:.1} µs CPU per GET",
            keys.len(),
            bytes as f64 / 1e6,
            keys.len() as f64 / wall,
            used * 1e6 / keys.len() as f64
        );
    }

    /// By hand, against a running S3 server (tests/bench/README.md, issue 17): the CPU of
    /// keytrail's GET paths alone — no decoding — per object, the direct one and the SDK's
    /// (`BENCH_DIRECT_ONLY=1`: the direct one only, for a profile), e.g. with s3s-fs pinned to core 1:
    /// `AWS_ENDPOINT_URL=http://127.0.0.1:9016 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=testsecret
    /// AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true BENCH_BUCKET=many-small BENCH_PREFIX=AWSLogs/111122223333/CloudTrail/eu-west-1/2026/03/
    /// taskset -c 0 cargo test --release --lib -- --ignored --nocapture get_path_bench`.
    #[test]
    #[ignore]
    fn get_path_bench() {
        // BENCH_WORKERS: the tokio worker threads (2, as the product runs; 0: one current-thread
        // runtime).
        let workers: usize = std::env::var("BENCH_WORKERS").map_or(2, |w| w.parse().unwrap());
        let rt = match workers {
            0 => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            n => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(n)
                .enable_all()
                .build()
                .unwrap(),
        };
        let bucket = std::env::var("BENCH_BUCKET").unwrap();
        let prefix = std::env::var("BENCH_PREFIX").unwrap();
        rt.block_on(async {
            let aws = crate::aws::load(None, None).await;
            let s3 = S3Archive::connect(&aws, &bucket).await.ok().unwrap();
            let mut keys = Vec::new();
            for day in s3.list(&prefix).await.unwrap().folders {
                keys.extend(
                    s3.list(&day)
                        .await
                        .unwrap()
                        .objects
                        .into_iter()
                        .map(|e| e.key),
                );
            }
            let sdk = &S3Archive {
                direct: Err("the reference".into()),
                ..s3.clone()
            };
            let s3 = &s3;
            assert_eq!(s3.get_path(), "direct");
            for round in 0..3 {
                measure(&format!("direct {round}"), &keys, |k| async move {
                    s3.get_with_signature(k).await.unwrap().0
                })
                .await;
                if std::env::var("BENCH_DIRECT_ONLY").is_ok() {
                    continue;
                }
                measure(&format!("sdk {round}"), &keys, |k| async move {
                    sdk.get_with_signature(k).await.unwrap().0
                })
                .await;
            }
        });
    }
}
