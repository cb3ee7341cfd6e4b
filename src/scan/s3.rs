//! s3: the archive in an S3 bucket. Listing is `ListObjectsV2` with a `/` delimiter on the
//! planned folders only (never the whole bucket); objects are fetched with `GetObject`, many at
//! a time on tokio, and each body is handed to the rayon pool to be decoded, so network waits
//! and CPU work overlap while memory stays bounded by the objects and bytes in flight
//! ([`InFlight`]).

use super::list::ObjectRef;
use super::record::KeyIndex;
use super::store::{Entry, Listing, Store, StoreError};
use super::{finish, skip_reason, skipped, OnDone, Scanned};
use crate::aws::Aws;
use aws_sdk_s3::error::DisplayErrorContext;
use futures::stream::{self, StreamExt};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

#[derive(Debug, thiserror::Error)]
#[error("--logs s3://{bucket}: {msg}")]
pub struct ConnectError {
    bucket: String,
    msg: String,
}

impl S3Store {
    /// Opens `bucket`, finding its region (`HeadBucket` says it, even when asked in the wrong
    /// region) so that every later call goes to the right place.
    pub async fn connect(aws: &Aws, bucket: &str) -> Result<S3Store, ConnectError> {
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
                            _ => format!("cannot open the bucket: {}", DisplayErrorContext(&e)),
                        }));
                    }
                }
            }
        };
        let client = match region {
            Some(r) if r != aws.region() => aws.s3(Some(&r)),
            _ => client,
        };
        Ok(S3Store {
            client,
            bucket: bucket.to_string(),
        })
    }

    /// The whole body of one object. The SDK retries requests that fail (throttling, 5xx,
    /// broken connections); a body that breaks after the response began — cut short of its
    /// Content-Length — is a transport fault too, so the whole GET is made again, with backoff,
    /// up to [`BODY_ATTEMPTS`] times. Only then is it an error.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, String> {
        self.get_with_signature(key).await.map(|(body, _)| body)
    }

    /// The body of one object and its `signature` user metadata (`x-amz-meta-signature`, where
    /// CloudTrail puts a digest's signature). Retried as [`S3Store::get`] describes.
    pub async fn get_with_signature(&self, key: &str) -> Result<(Vec<u8>, Option<String>), String> {
        let mut attempt = 1;
        loop {
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| format!("GetObject failed: {}", DisplayErrorContext(&e)))?;
            let expected = out.content_length().and_then(|n| usize::try_from(n).ok());
            let signature = out.metadata().and_then(|m| m.get("signature")).cloned();
            let broken = match out.body.collect().await {
                Err(e) => format!("reading the body failed: {e}"),
                Ok(b) => {
                    // One contiguous body; no second copy when it already is one.
                    let body = Vec::from(b.into_bytes());
                    match expected {
                        Some(n) if n != body.len() => {
                            format!("body of {} bytes, Content-Length {n}", body.len())
                        }
                        _ => return Ok((body, signature)),
                    }
                }
            };
            if attempt == BODY_ATTEMPTS {
                return Err(format!("{broken} ({BODY_ATTEMPTS} attempts)"));
            }
            backoff(attempt).await;
            attempt += 1;
        }
    }
}

/// How many times one object's GET is made when its body keeps breaking.
const BODY_ATTEMPTS: u32 = 6;

/// Full-jitter exponential backoff: a random wait up to 100 ms x 2^attempt (capped at 5 s).
async fn backoff(attempt: u32) {
    use std::hash::{BuildHasher, RandomState};
    let cap_ms = (100u64 << attempt.min(6)).min(5_000);
    let jitter = RandomState::new().hash_one(attempt) % cap_ms.max(1);
    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
}

impl Store for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    #[allow(clippy::manual_async_fn)]
    fn list(
        &self,
        prefix: &str,
    ) -> impl std::future::Future<Output = Result<Listing, StoreError>> + Send {
        let prefix = prefix.to_string();
        async move {
            let err = |msg: String| StoreError::List {
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
                let page = page.map_err(|e| err(DisplayErrorContext(&e).to_string()))?;
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

/// Objects in flight by default (`--concurrency`): on loopback, 32 left the scan waiting on
/// request latency (10 s vs 7.9 s at 64 on the large synth archive); beyond 64 nothing was
/// gained. Real S3 answers slower, so fewer would not do.
pub const DEFAULT_CONCURRENCY: u64 = 64;

/// Compressed bytes in flight by default (`--max-in-flight-mib`).
pub const DEFAULT_IN_FLIGHT_MIB: u64 = 128;

/// What the S3 scan may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    /// Objects fetched or being decoded.
    pub objects: usize,
    /// Their bytes as stored (compressed). An object larger than this waits until nothing else
    /// is held, then goes alone.
    pub bytes: u64,
}

/// A budget of bytes held at once, counted in KiB so that terabyte objects still fit a
/// semaphore's permits. Waiters are served in order (tokio's semaphore is fair), so a large
/// object is not starved by small ones.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    kib: u32,
    held: Arc<tokio::sync::Semaphore>,
}

impl ByteBudget {
    pub fn new(bytes: u64) -> ByteBudget {
        let kib = kib(bytes).clamp(1, tokio::sync::Semaphore::MAX_PERMITS as u32);
        ByteBudget {
            kib,
            held: Arc::new(tokio::sync::Semaphore::new(kib as usize)),
        }
    }

    /// Waits until `size` bytes fit (all of the budget, for an object larger than it); they are
    /// given back when the permit is dropped.
    pub async fn take(&self, size: u64) -> tokio::sync::OwnedSemaphorePermit {
        let share = kib(size).clamp(1, self.kib);
        self.held
            .clone()
            .acquire_many_owned(share)
            .await
            .expect("the semaphore is never closed")
    }
}

fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

/// Scans `objects` from S3 within the `in_flight` bounds; results in object order. An object's
/// share of the byte budget is taken before its GET and given back once it is decoded, so bodies
/// waiting for a decoder count too. Objects finish in any order: a slow GET (a large object, a
/// retry waiting out its backoff) holds one slot, not the whole window behind it.
pub async fn scan(
    store: &S3Store,
    objects: &[ObjectRef],
    index: Arc<KeyIndex>,
    pool: &rayon::ThreadPool,
    in_flight: InFlight,
    limits: super::decode::Limits,
    on_done: OnDone<'_>,
) -> Vec<Scanned> {
    let budget = ByteBudget::new(in_flight.bytes);
    let mut done: Vec<(usize, Scanned)> = stream::iter(objects.iter().cloned().enumerate())
        .map(|(i, obj)| {
            let index = index.clone();
            let budget = budget.clone();
            async move {
                let scanned = match skip_reason(&obj) {
                    Some(reason) => skipped(&obj, reason),
                    None => {
                        let held = budget.take(obj.size).await;
                        let fetched = store.get(&obj.key).await;
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        let decoded = obj.clone();
                        pool.spawn(move || {
                            let scanned = finish(&decoded, fetched, &index, limits);
                            drop(held);
                            let _ = tx.send(scanned);
                        });
                        rx.await.expect("the decoder always answers")
                    }
                };
                on_done(&obj, &scanned);
                (i, scanned)
            }
        })
        .buffer_unordered(in_flight.objects.max(1))
        .collect()
        .await;
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, scanned)| scanned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Whether `take(size)` is granted within a moment.
    async fn granted(budget: &ByteBudget, size: u64) -> Option<tokio::sync::OwnedSemaphorePermit> {
        tokio::time::timeout(Duration::from_millis(50), budget.take(size))
            .await
            .ok()
    }

    #[tokio::test]
    async fn the_byte_budget_holds_back_what_does_not_fit() {
        let budget = ByteBudget::new(100 << 10);
        let first = granted(&budget, 60 << 10).await.expect("fits");
        assert!(granted(&budget, 60 << 10).await.is_none(), "120 KiB > 100");
        let small = granted(&budget, 40 << 10).await.expect("100 KiB fits");
        drop(first);
        let second = granted(&budget, 60 << 10).await.expect("freed");
        drop((small, second));
        // Larger than the whole budget: it waits for everything else, then goes alone.
        let tiny = granted(&budget, 1).await.expect("fits");
        assert!(granted(&budget, 1 << 30).await.is_none());
        drop(tiny);
        let huge = granted(&budget, 1 << 30).await.expect("alone");
        // Even an empty object waits: its GET is a request in flight too.
        assert!(granted(&budget, 0).await.is_none());
        drop(huge);
    }
}
