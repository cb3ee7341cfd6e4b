//! archive::s3: the archive in an S3 bucket. Listing is `ListObjectsV2` with a `/` delimiter on
//! the folders asked for only (never the whole bucket); a get is one `GetObject`, its body read
//! whole and checked against its Content-Length, retried when it breaks. How many gets are in
//! flight is the scan's business (`scan::fetch`).

use super::{Archive, ArchiveError, Entry, Got, Listing};
use crate::aws::Aws;
use std::future::Future;

#[derive(Debug, Clone)]
pub struct S3Archive {
    client: aws_sdk_s3::Client,
    bucket: String,
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
        Ok(S3Archive {
            client,
            bucket: bucket.to_string(),
        })
    }

    /// The body of one object and its `signature` user metadata (`x-amz-meta-signature`, where
    /// CloudTrail puts a digest's signature). The SDK retries requests that fail (throttling, 5xx,
    /// broken connections); a body that breaks after the response began — cut short of its
    /// Content-Length — is a transport fault too, so the whole GET is made again, with backoff,
    /// up to [`BODY_ATTEMPTS`] times. Only then is it an error.
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
                .map_err(|e| format!("GetObject failed: {}", crate::aws::explain(&e)))?;
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

/// How many times one object's GET is made when its body keeps breaking.
const BODY_ATTEMPTS: u32 = 6;

/// Full-jitter exponential backoff: a random wait up to 100 ms x 2^attempt (capped at 5 s).
async fn backoff(attempt: u32) {
    use std::hash::{BuildHasher, RandomState};
    let cap_ms = (100u64 << attempt.min(6)).min(5_000);
    let jitter = RandomState::new().hash_one(attempt) % cap_ms.max(1);
    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
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
