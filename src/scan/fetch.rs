//! scan::fetch: the planned objects' bytes, many in flight, decoded where they land. One path
//! for every [`Archive`]: thread per core — each worker a tokio runtime of its own that gets
//! objects and decodes each body on the same thread — memory bounded by the bytes in flight
//! ([`InFlight`]). How many gets each worker keeps in flight adapts ([`Window`]): it grows while
//! the worker waits for bodies — so S3's latency is hidden whatever it is — holds once it is
//! busy or the byte budget is nearly spent, and halves when S3 answers `SlowDown`.

use super::record::KeyIndex;
use super::{finish, skip_reason, skipped, OnDone, Scanned};
use crate::archive::layout::ObjectRef;
use crate::archive::Archive;
use crate::config::DecodeLimits;
use futures::stream::{FuturesUnordered, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The most objects in flight by default (`--concurrency`, shared among the scan's workers), a
/// cap the [`Window`]s grow to only while the workers wait for bodies: at 50 ms of latency, two
/// workers take ~3,500 small objects per second, ~175 in flight; a larger machine needs more.
pub const DEFAULT_CONCURRENCY: u64 = 512;

/// Compressed bytes in flight by default (`--max-in-flight-mib`).
pub const DEFAULT_IN_FLIGHT_MIB: u64 = 128;

/// What the S3 scan may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    /// The most objects fetched or being decoded at once (the [`Window`]'s cap).
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

impl ByteBudget {
    /// Whether less than an eighth of the budget is free.
    pub fn nearly_spent(&self) -> bool {
        (self.held.available_permits() as u64) * 8 < self.kib as u64
    }
}

/// How many gets one scan worker keeps in flight. It starts small and grows by one with each
/// object done — doubling per round trip, like TCP's slow start — while the worker had to wait
/// for that object's body (it is idle: the gets in flight do not cover the latency) and the byte
/// budget is not nearly spent; it holds while bodies are there as soon as it asks (it is busy
/// decoding), and halves when the archive answered `SlowDown` since the last object. Never
/// above the cap (`--concurrency` shared among the workers) nor below [`Window::FLOOR`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    limit: usize,
    cap: usize,
    slowdowns: u64,
    /// The largest limit reached.
    pub peak: usize,
}

impl Window {
    pub const START: usize = 16;
    pub const FLOOR: usize = 2;

    pub fn new(cap: usize) -> Window {
        let cap = cap.max(1);
        let limit = Window::START.min(cap);
        Window {
            limit,
            cap,
            slowdowns: 0,
            peak: limit,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// One object is done: whether the worker `waited` for it, the archive has answered
    /// `slowdowns` SlowDowns in all, and whether the byte budget is `nearly_spent`.
    pub fn done(&mut self, waited: bool, slowdowns: u64, nearly_spent: bool) {
        let floor = Window::FLOOR.min(self.cap);
        if slowdowns > self.slowdowns {
            self.slowdowns = slowdowns;
            self.limit = (self.limit / 2).max(floor);
        } else if waited && !nearly_spent {
            self.limit = (self.limit + 1).min(self.cap);
        }
        self.peak = self.peak.max(self.limit);
    }
}

fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

/// Scans `objects` of `archive` within the `in_flight` bounds; results in object order, and the
/// most gets the workers' windows allowed at once (the sum of their peaks). Thread per core:
/// `threads` workers — this thread on `rt`, the others on runtimes of their own — each takes the
/// next objects from one shared cursor, keeps its own [`Window`] of gets in flight over its own
/// connections ([`Archive::for_worker`]) and decodes each body where it lands, so a body never
/// changes threads (against handing bodies to decoder threads: −11% CPU per small object over
/// S3, more objects a second, the local scan faster too — tests/bench/README.md). Each object's
/// future goes into a heap task of its own, so an archive's `get` future is kept small (the
/// S3 path boxes its rare branches). An object's share of the byte budget is taken before its
/// get and given back once it is decoded. Objects finish in any order: a slow GET (a large
/// object, a retry waiting out its backoff) holds one slot, not the whole window behind it. What
/// cannot have a runtime per thread (the SDK's own connections, credentials) runs on `rt`, which
/// this thread keeps driving until every worker is done.
#[allow(clippy::too_many_arguments)]
pub fn scan<A: Archive>(
    rt: &tokio::runtime::Runtime,
    archive: &A,
    objects: &[ObjectRef],
    index: &KeyIndex,
    threads: usize,
    in_flight: InFlight,
    limits: DecodeLimits,
    on_done: OnDone<'_>,
) -> (Vec<Scanned>, usize) {
    let threads = threads.max(1);
    let shared = Shared {
        objects,
        next: AtomicUsize::new(0),
        index,
        budget: ByteBudget::new(in_flight.bytes),
        cap: (in_flight.objects / threads).max(1),
        limits,
        on_done,
    };
    let home = rt.handle();
    let (mut done, peak) = std::thread::scope(|s| {
        let others: Vec<_> = (1..threads)
            .map(|i| {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let shared = &shared;
                let spawned = std::thread::Builder::new()
                    .name(format!("keytrail-scan-{i}"))
                    .spawn_scoped(s, move || {
                        // Without a runtime this worker takes no object: the others take them all.
                        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                        else {
                            return;
                        };
                        let mine = archive.for_worker(home);
                        let out = rt.block_on(shared.work(&mine));
                        drop(mine);
                        let _ = tx.send(out);
                    });
                spawned.ok().map(|_| rx)
            })
            .collect();
        rt.block_on(async {
            let (mut done, mut peak) = shared.work(archive).await;
            // A worker that panicked sends nothing; the scope passes its panic on.
            for rx in others.into_iter().flatten() {
                if let Ok((more, p)) = rx.await {
                    done.extend(more);
                    peak += p;
                }
            }
            (done, peak)
        })
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    (done.into_iter().map(|(_, s)| s).collect(), peak)
}

/// What the scan's workers share.
struct Shared<'a> {
    objects: &'a [ObjectRef],
    /// The next object no worker has taken.
    next: AtomicUsize,
    index: &'a KeyIndex,
    budget: ByteBudget,
    /// Each worker's most gets in flight.
    cap: usize,
    limits: DecodeLimits,
    on_done: OnDone<'a>,
}

impl Shared<'_> {
    /// One worker: objects taken from the shared cursor, got and decoded on this thread, until
    /// none is left. Its results with their objects' places, and the most it kept in flight.
    async fn work<A: Archive>(&self, archive: &A) -> (Vec<(usize, Scanned)>, usize) {
        let one = |i: usize| async move {
            let obj = &self.objects[i];
            let scanned = match skip_reason(obj) {
                Some(reason) => skipped(obj, reason),
                None => {
                    let held = self.budget.take(obj.size).await;
                    let fetched = archive.get(&obj.key).await.map(|(body, _)| body);
                    let scanned = finish(obj, fetched, self.index, self.limits);
                    drop(held);
                    scanned
                }
            };
            (self.on_done)(obj, &scanned);
            (i, scanned)
        };
        let mut window = Window::new(self.cap);
        let mut pending = FuturesUnordered::new();
        let mut done = Vec::new();
        loop {
            while pending.len() < window.limit() {
                let i = self.next.fetch_add(1, Ordering::Relaxed);
                if i >= self.objects.len() {
                    break;
                }
                pending.push(one(i));
            }
            let (finished, waited) = Waited(pending.next(), false).await;
            let Some(finished) = finished else {
                break;
            };
            done.push(finished);
            window.done(waited, archive.slowdowns(), self.budget.nearly_spent());
        }
        (done, window.peak)
    }
}

/// A future's output, and whether it had to wait for it (was not ready when first asked).
struct Waited<F>(F, bool);

impl<F: std::future::Future + Unpin> std::future::Future for Waited<F> {
    type Output = (F::Output, bool);
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match std::pin::Pin::new(&mut self.0).poll(cx) {
            std::task::Poll::Ready(out) => std::task::Poll::Ready((out, self.1)),
            std::task::Poll::Pending => {
                self.1 = true;
                std::task::Poll::Pending
            }
        }
    }
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

    #[test]
    fn the_window_doubles_per_round_trip_while_the_worker_waits() {
        let mut w = Window::new(512);
        assert_eq!(w.limit(), Window::START);
        // Latency-bound: the worker waits for every body. One round trip = `limit` objects done.
        for _ in 0..3 {
            let before = w.limit();
            for _ in 0..before {
                w.done(true, 0, false);
            }
            assert_eq!(w.limit(), 2 * before);
        }
        // Busy: the bodies are there when asked for. It holds.
        let held = w.limit();
        for _ in 0..1000 {
            w.done(false, 0, false);
        }
        assert_eq!(w.limit(), held);
        // Memory nearly spent: it holds too.
        w.done(true, 0, true);
        assert_eq!(w.limit(), held);
        // Never past the cap.
        for _ in 0..10_000 {
            w.done(true, 0, false);
        }
        assert_eq!((w.limit(), w.peak), (512, 512));
    }

    #[test]
    fn the_window_halves_on_each_new_slowdown_and_keeps_a_floor() {
        let mut w = Window::new(512);
        for _ in 0..200 {
            w.done(true, 0, false);
        }
        assert_eq!(w.limit(), 216);
        w.done(true, 1, false);
        assert_eq!(w.limit(), 108);
        // The same count again is no new SlowDown: it grows again.
        w.done(true, 1, false);
        assert_eq!(w.limit(), 109);
        // Three more at once halve once (one object, one step).
        w.done(true, 4, false);
        assert_eq!(w.limit(), 54);
        for n in 5..20 {
            w.done(true, n, false);
        }
        assert_eq!(w.limit(), Window::FLOOR);
        // A cap below the floor is the cap.
        let mut one = Window::new(1);
        one.done(true, 1, false);
        assert_eq!(one.limit(), 1);
    }

    /// An archive whose gets take a few milliseconds; object `n`'s log holds `n % 7` S3 records.
    /// It records on which thread each get ran and whether through a worker's copy.
    struct Latent {
        worker: bool,
        gets: Arc<std::sync::Mutex<Vec<Get>>>,
    }

    /// The thread a get ran on, and whether through a worker's copy.
    type Get = (Option<String>, bool);

    impl Archive for Latent {
        fn describe(&self) -> String {
            "latent".into()
        }
        async fn list(
            &self,
            _: &str,
        ) -> Result<crate::archive::Listing, crate::archive::ArchiveError> {
            Ok(Default::default())
        }
        async fn get(&self, key: &str) -> crate::archive::Got {
            let me = std::thread::current().name().map(str::to_string);
            self.gets.lock().unwrap().push((me, self.worker));
            let n: u64 = key[key.len() - 24..key.len() - 8].parse().unwrap();
            tokio::time::sleep(Duration::from_millis(1 + n % 3)).await;
            let s3 = r#"{"eventTime":"2026-03-01T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"e"}"#;
            let json = format!(
                r#"{{"Records":[{}]}}"#,
                vec![s3; (n % 7) as usize].join(",")
            );
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, json.as_bytes()).unwrap();
            Ok((e.finish().unwrap(), None))
        }
        fn for_worker(&self, _: &tokio::runtime::Handle) -> Latent {
            Latent {
                worker: true,
                gets: self.gets.clone(),
            }
        }
    }

    #[test]
    fn every_object_is_scanned_once_by_workers_on_their_own_threads_in_object_order() {
        let objects: Vec<ObjectRef> = (0..400u64)
            .map(|n| {
                let mut o = crate::plan::tests::obj(
                    1,
                    &format!("111122223333_CloudTrail_us-east-1_20260301T0000Z_{n:016}.json.gz"),
                    100,
                );
                // One object skipped without a get.
                if n == 5 {
                    o.storage_class = Some("GLACIER".into());
                }
                o
            })
            .collect();
        let archive = Latent {
            worker: false,
            gets: Default::default(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let done = std::sync::Mutex::new(Vec::new());
        let index = KeyIndex::new(std::iter::empty::<(&crate::model::KeyArn, &[String])>());
        let (scanned, peak) = scan(
            &rt,
            &archive,
            &objects,
            &index,
            2,
            InFlight {
                objects: 64,
                bytes: 1 << 20,
            },
            DecodeLimits::default(),
            &|o, _| done.lock().unwrap().push(o.key.clone()),
        );
        // In object order, each its own object's result.
        assert_eq!(scanned.len(), objects.len());
        for (n, ((row, _, _), obj)) in scanned.iter().zip(&objects).enumerate() {
            assert_eq!(row.object, obj.key);
            let expected = if n == 5 { 0 } else { n as u64 % 7 };
            assert_eq!(row.records, expected, "{}", obj.key);
        }
        // Each reported done once; each got once but the skipped one.
        let mut reported = done.into_inner().unwrap();
        reported.sort();
        reported.dedup();
        assert_eq!(reported.len(), objects.len());
        let gets = archive.gets.lock().unwrap();
        assert_eq!(gets.len(), objects.len() - 1);
        // Two workers: this thread with the archive given, one of its own with a worker's copy.
        let me = std::thread::current().name().map(str::to_string);
        let theirs = Some("keytrail-scan-1".to_string());
        assert!(gets.iter().any(|g| *g == (me.clone(), false)), "{gets:?}");
        assert!(
            gets.iter().any(|g| *g == (theirs.clone(), true)),
            "{gets:?}"
        );
        assert!(gets
            .iter()
            .all(|g| *g == (me.clone(), false) || *g == (theirs.clone(), true)));
        // Each worker within its share of the cap.
        assert!(peak <= 64, "{peak}");
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
