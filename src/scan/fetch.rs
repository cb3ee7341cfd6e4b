//! scan::fetch: the planned objects' bytes, many in flight, handed to the decoders. One path for
//! every [`Archive`]: gets on tokio (for S3, enough in flight to hide its latency), decoding on
//! the rayon pool, memory bounded by the objects and bytes in flight ([`InFlight`]).

use super::record::KeyIndex;
use super::{finish, skip_reason, skipped, OnDone, Scanned};
use crate::archive::layout::ObjectRef;
use crate::archive::Archive;
use crate::config::DecodeLimits;
use futures::stream::{self, StreamExt};
use std::sync::Arc;

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

/// Scans `objects` of `archive` within the `in_flight` bounds; results in object order. Gets run
/// on tokio, decoding on the rayon `pool`, so network waits and CPU work overlap. An object's
/// share of the byte budget is taken before its get and given back once it is decoded, so bodies
/// waiting for a decoder count too. Objects finish in any order: a slow GET (a large object, a
/// retry waiting out its backoff) holds one slot, not the whole window behind it.
pub async fn scan<A: Archive>(
    archive: &A,
    objects: &[ObjectRef],
    index: Arc<KeyIndex>,
    pool: &rayon::ThreadPool,
    in_flight: InFlight,
    limits: DecodeLimits,
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
                        let fetched = archive.get(&obj.key).await.map(|(body, _)| body);
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
