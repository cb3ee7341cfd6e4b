//! tracking (live): `GetKeyLastUsage` for every key, paced per account and region to stay under
//! the API's quota (about 5 requests per second), with keytrail's own retries — every attempt
//! goes through the pacer, so retries cannot break the pace. A key whose call keeps failing, or
//! fails for a reason retrying cannot fix (AccessDenied, NotFound), keeps the reason in
//! `Key::error` and the run goes on.

use super::Tracked;
use crate::aws::Sessions;
use crate::inventory::journal::Journal;
use crate::inventory::live::instant;
use crate::inventory::{Inventory, Key, LastUsage, Source};
use crate::model::{KeyArn, Warnings};
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use futures::stream::{self, StreamExt};
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Spaces calls at least `interval` apart: at most `1/interval` calls per second, in any window.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    pub fn per_second(rate: f64) -> Pacer {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / rate.max(0.01)),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this caller's slot.
    pub async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// Attempts per key before its failure is recorded.
const MAX_ATTEMPTS: u32 = 8;

/// The tracking stage: asks `GetKeyLastUsage` for every key of a live inventory (a snapshot's keys
/// already carry the answers, and so do those an interrupted run's journal held), journaling each
/// answer as it comes, then classifies each key.
pub async fn track_inventory(
    mut inventory: Inventory,
    sessions: Option<&Sessions>,
    rate: f64,
    journal: Option<&Journal>,
    warnings: &mut Warnings,
) -> Tracked {
    if let (Source::Live, Some(sessions)) = (&inventory.source, sessions) {
        let answered = std::mem::take(&mut inventory.answered);
        let on_answer = |k: &Key| {
            if let Some(j) = journal {
                j.answered(k);
            }
        };
        ask(
            sessions,
            &mut inventory.keys,
            rate,
            &answered,
            &on_answer,
            warnings,
        )
        .await;
    }
    Tracked::of(inventory)
}

/// `DescribeKey` and `GetKeyLastUsage` for every listed key, side by side: the paced asking
/// starts as soon as the keys are listed, and the metadata is fetched while it waits on the
/// pacers — so an organization's inventory takes about as long as its largest account-region's
/// paced asking.
pub async fn ask(
    sessions: &Sessions,
    keys: &mut [Key],
    rate: f64,
    answered: &BTreeSet<KeyArn>,
    on_answer: &(dyn Fn(&Key) + Sync),
    warnings: &mut Warnings,
) {
    // DescribeKey on a task of its own, so that its stream neither starves the pacers' timers
    // (tokio's cooperative budget is per task) nor shares their thread.
    let listed: Vec<Key> = keys.to_vec();
    let for_describe = sessions.clone();
    let describing =
        tokio::spawn(async move { crate::inventory::live::describe(&for_describe, &listed).await });
    track(sessions, keys, rate, answered, on_answer).await;
    let (described, w) = describing
        .await
        .expect("the DescribeKey task does not panic");
    warnings.extend(w);
    for key in keys.iter_mut() {
        if let Some(d) = described.get(&key.arn) {
            d.clone().fill(key);
        }
        if key.error.is_none() && key.creation.is_none() {
            key.error = Some("neither GetKeyLastUsage nor DescribeKey gave KeyCreationDate".into());
        }
    }
}

/// Fills `last_usage`, `tracking_start`, `creation` (or `error`) of every key but those
/// `answered` already, calling `on_answer` with each as it is answered. Calls for one account
/// and region are paced by one pacer and asked with that account's session; different
/// account/regions run side by side.
pub async fn track(
    sessions: &Sessions,
    keys: &mut [Key],
    rate: f64,
    answered: &BTreeSet<KeyArn>,
    on_answer: &(dyn Fn(&Key) + Sync),
) {
    let mut pacers: BTreeMap<(String, String), (Arc<Pacer>, usize)> = BTreeMap::new();
    let mut jobs: Vec<(usize, usize, Arc<Pacer>)> = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| !answered.contains(&k.arn))
        .map(|(i, k)| {
            let (p, queued) = pacers
                .entry((k.arn.account().to_string(), k.arn.region().to_string()))
                .or_insert_with(|| (Arc::new(Pacer::per_second(rate)), 0));
            *queued += 1;
            (*queued, i, p.clone())
        })
        .collect();
    // Round robin over the account-regions (every one's first key, then every one's second…):
    // the calls in flight are spread over all pacers, so every account-region is asked side by
    // side and an organization takes about as long as its largest account-region. In key order
    // the first few accounts would hold every slot while the rest waited.
    jobs.sort_by_key(|(rank, i, _)| (*rank, *i));
    let clients: BTreeMap<(String, String), aws_sdk_kms::Client> = pacers
        .keys()
        .map(|(a, r)| ((a.clone(), r.clone()), sessions.of(a).kms_no_retry(r)))
        .collect();
    // Enough in flight to keep every pacer busy even when the service is slow to answer.
    let in_flight = pacers.len() * 4;
    let keys_ro: &[Key] = keys;
    let count = std::sync::atomic::AtomicU64::new(0);
    let results: Vec<(usize, Key)> = stream::iter(jobs)
        .map(|(_, i, pacer)| {
            let arn = &keys_ro[i].arn;
            let client = clients[&(arn.account().to_string(), arn.region().to_string())].clone();
            let count = &count;
            async move {
                let r = last_usage(&client, keys_ro[i].arn.as_str(), &pacer).await;
                let mut key = keys_ro[i].clone();
                apply(&mut key, r);
                on_answer(&key);
                let n = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                crate::interrupt::kill_point("answered", n);
                (i, key)
            }
        })
        .buffer_unordered(in_flight.max(1))
        .collect()
        .await;
    for (i, key) in results {
        keys[i] = key;
    }
}

/// A key with `GetKeyLastUsage`'s answer, or the reason it failed.
fn apply(key: &mut Key, r: Result<Response, String>) {
    match r {
        Ok(resp) => {
            key.last_usage = resp.last_usage;
            key.tracking_start = resp.tracking_start;
            key.creation = resp.creation.or(key.creation);
            if key.tracking_start.is_none() {
                key.error = Some("GetKeyLastUsage answered without TrackingStartDate".into());
            }
        }
        Err(e) => key.error = Some(e),
    }
}

struct Response {
    last_usage: Option<LastUsage>,
    tracking_start: Option<crate::model::Instant>,
    creation: Option<crate::model::Instant>,
}

async fn last_usage(
    client: &aws_sdk_kms::Client,
    arn: &str,
    pacer: &Pacer,
) -> Result<Response, String> {
    let mut backoff = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        pacer.wait().await;
        match client.get_key_last_usage().key_id(arn).send().await {
            Ok(out) => {
                // `"KeyLastUsage": {}` (never used since tracking) arrives as Some(all None): a use
                // is a set timestamp.
                let last_usage = out.key_last_usage().and_then(|u| {
                    Some(LastUsage {
                        timestamp: u.timestamp().and_then(instant)?,
                        operation: u.operation().map(|o| o.as_str().to_string()),
                        event_id: u.cloud_trail_event_id().map(str::to_string),
                        kms_request_id: u.kms_request_id().map(str::to_string),
                    })
                });
                return Ok(Response {
                    last_usage,
                    tracking_start: out.tracking_start_date().and_then(instant),
                    creation: out.key_creation_date().and_then(instant),
                });
            }
            Err(e) => {
                let retryable = match &e {
                    SdkError::ServiceError(se) => {
                        let status = se.raw().status().as_u16();
                        status >= 500
                            || matches!(
                                se.err().code(),
                                Some(
                                    "ThrottlingException"
                                        | "DependencyTimeoutException"
                                        | "KMSInternalException"
                                )
                            )
                    }
                    SdkError::TimeoutError(_)
                    | SdkError::DispatchFailure(_)
                    | SdkError::ResponseError(_) => true,
                    _ => false,
                };
                if !retryable || attempt >= MAX_ATTEMPTS {
                    let why = crate::aws::explain(&e);
                    let tries = if attempt > 1 {
                        format!(" (after {attempt} attempts)")
                    } else {
                        String::new()
                    };
                    return Err(format!("{why}{tries}"));
                }
                // Full jitter, capped: the pacer keeps the rate; this keeps a struggling
                // service from being hit by the same key again at once.
                let jitter = rand_fraction(arn, attempt);
                tokio::time::sleep(backoff.mul_f64(0.5 + jitter / 2.0)).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                attempt += 1;
            }
        }
    }
}

/// A deterministic fraction in [0, 1) per key and attempt (no RNG dependency needed).
fn rand_fraction(arn: &str, attempt: u32) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in arn.bytes().chain(attempt.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pacer_never_lets_more_than_rate_calls_through_in_a_second() {
        let p = Arc::new(Pacer::per_second(5.0));
        let start = Instant::now();
        let times: Vec<Duration> = stream::iter(0..23)
            .map(|_| {
                let p = p.clone();
                async move {
                    p.wait().await;
                    start.elapsed()
                }
            })
            .buffer_unordered(23)
            .collect()
            .await;
        let mut times = times;
        times.sort();
        for w in times.windows(6) {
            assert!(
                w[5] - w[0] >= Duration::from_millis(1000),
                "6 calls within a second: {w:?}"
            );
        }
        assert!(
            times[22] <= Duration::from_millis(22 * 200 + 1),
            "no slower than the rate: {:?}",
            times[22]
        );
    }
}
