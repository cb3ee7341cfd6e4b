//! scan::fetch: the planned objects' bytes, many in flight, handed to the decoders. One path for
//! every [`Archive`]: gets on tokio, decoding on threads of its own ([`Decoders`]), memory
//! bounded by the bytes in flight ([`InFlight`]). How many gets are in flight adapts
//! ([`Window`]): it grows while the decoders keep up — so S3's latency is hidden whatever it is —
//! holds once they are busy or the byte budget is nearly spent, and halves when S3 answers
//! `SlowDown`.

use super::record::KeyIndex;
use super::{finish, skip_reason, skipped, OnDone, Scanned};
use crate::archive::layout::ObjectRef;
use crate::archive::Archive;
use crate::config::DecodeLimits;
use futures::stream::{FuturesUnordered, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The most objects in flight by default (`--concurrency`), a cap the [`Window`] grows to only
/// while the decoders keep up: at 50 ms of latency, two decoder threads take ~3,000 small objects
/// per second, ~150 in flight; a larger machine needs more.
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

/// How many gets the scan keeps in flight. It starts small and grows by one with each object
/// done — doubling per round trip, like TCP's slow start — while fewer bodies wait for a decoder
/// than there are decoders and the byte budget is not nearly spent; it holds when they are
/// busy, drifts down when bodies pile up, and halves when the archive answered `SlowDown` since
/// the last object. Never above the cap (`--concurrency`) nor below [`Window::FLOOR`].
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

    /// One object is done: `waiting` bodies wait for one of `decoders`, the archive has answered
    /// `slowdowns` SlowDowns in all, and whether the byte budget is `nearly_spent`.
    pub fn done(&mut self, waiting: usize, decoders: usize, slowdowns: u64, nearly_spent: bool) {
        let floor = Window::FLOOR.min(self.cap);
        if slowdowns > self.slowdowns {
            self.slowdowns = slowdowns;
            self.limit = (self.limit / 2).max(floor);
        } else if waiting > 4 * decoders {
            self.limit = (self.limit - 1).max(floor);
        } else if waiting < decoders && !nearly_spent {
            self.limit = (self.limit + 1).min(self.cap);
        }
        self.peak = self.peak.max(self.limit);
    }
}

/// The scan's decoding threads, fed by a channel. Not rayon's pool: its idle workers spin
/// looking for work before they sleep, and over S3 the decoders wait for bodies between
/// objects — handing each small object to rayon cost 60–110 µs of CPU in spinning, to a
/// blocked thread ~20 µs (`get_path_bench`, issue 17). The threads end when this is dropped.
pub(crate) struct Decoders {
    jobs: Option<crossbeam_channel::Sender<Box<dyn FnOnce() + Send>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Decoders {
    fn start(threads: usize) -> Decoders {
        let (jobs, todo) = crossbeam_channel::unbounded::<Box<dyn FnOnce() + Send>>();
        let threads = (0..threads.max(1))
            .map(|i| {
                let todo = todo.clone();
                std::thread::Builder::new()
                    .name(format!("keytrail-decode-{i}"))
                    .spawn(move || todo.iter().for_each(|job| job()))
                    .expect("a decoder thread starts")
            })
            .collect();
        Decoders {
            jobs: Some(jobs),
            threads,
        }
    }

    fn len(&self) -> usize {
        self.threads.len()
    }

    fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        if let Some(jobs) = &self.jobs {
            jobs.send(Box::new(job))
                .expect("the decoders live as long as this");
        }
    }
}

impl Drop for Decoders {
    fn drop(&mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

/// Scans `objects` of `archive` within the `in_flight` bounds; results in object order, and the
/// most gets the [`Window`] kept in flight. Gets run on tokio, decoding on `threads` decoder
/// threads, so network waits and CPU work overlap. An object's share of the byte budget is taken
/// before its get and given back once it is decoded, so bodies waiting for a decoder count too. Objects
/// finish in any order: a slow GET (a large object, a retry waiting out its backoff) holds one
/// slot, not the whole window behind it.
pub async fn scan<A: Archive>(
    archive: &A,
    objects: &[ObjectRef],
    index: Arc<KeyIndex>,
    threads: usize,
    in_flight: InFlight,
    limits: DecodeLimits,
    on_done: OnDone<'_>,
) -> (Vec<Scanned>, usize) {
    let decoders = Decoders::start(threads);
    let budget = ByteBudget::new(in_flight.bytes);
    let waiting = Arc::new(AtomicUsize::new(0));
    let one = |i: usize, obj: ObjectRef| {
        let (index, budget, waiting) = (index.clone(), budget.clone(), waiting.clone());
        let decoders = &decoders;
        async move {
            let scanned = match skip_reason(&obj) {
                Some(reason) => skipped(&obj, reason),
                None => {
                    let held = budget.take(obj.size).await;
                    let fetched = archive.get(&obj.key).await.map(|(body, _)| body);
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    let decoded = obj.clone();
                    waiting.fetch_add(1, Ordering::Relaxed);
                    decoders.spawn(move || {
                        waiting.fetch_sub(1, Ordering::Relaxed);
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
    };
    let mut window = Window::new(in_flight.objects);
    let mut todo = objects.iter().cloned().enumerate();
    let mut pending = FuturesUnordered::new();
    let mut done = Vec::with_capacity(objects.len());
    loop {
        while pending.len() < window.limit() {
            match todo.next() {
                Some((i, obj)) => pending.push(one(i, obj)),
                None => break,
            }
        }
        let Some(finished) = pending.next().await else {
            break;
        };
        done.push(finished);
        window.done(
            waiting.load(Ordering::Relaxed),
            decoders.len(),
            archive.slowdowns(),
            budget.nearly_spent(),
        );
    }
    done.sort_unstable_by_key(|(i, _)| *i);
    (done.into_iter().map(|(_, s)| s).collect(), window.peak)
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
    fn the_window_doubles_per_round_trip_until_the_decoders_are_busy() {
        let mut w = Window::new(512);
        assert_eq!(w.limit(), Window::START);
        // Latency-bound: every body finds an idle decoder. One round trip = `limit` objects done.
        for _ in 0..3 {
            let before = w.limit();
            for _ in 0..before {
                w.done(0, 2, 0, false);
            }
            assert_eq!(w.limit(), 2 * before);
        }
        // Decoders busy (bodies queue, but not too many): it holds.
        let held = w.limit();
        for _ in 0..1000 {
            w.done(5, 2, 0, false);
        }
        assert_eq!(w.limit(), held);
        // Memory nearly spent: it holds too.
        w.done(0, 2, 0, true);
        assert_eq!(w.limit(), held);
        // Bodies pile up: it drifts down, one per object.
        w.done(9, 2, 0, false);
        assert_eq!(w.limit(), held - 1);
        // Never past the cap.
        for _ in 0..10_000 {
            w.done(0, 2, 0, false);
        }
        assert_eq!((w.limit(), w.peak), (512, 512));
    }

    #[test]
    fn the_window_halves_on_each_new_slowdown_and_keeps_a_floor() {
        let mut w = Window::new(512);
        for _ in 0..200 {
            w.done(0, 2, 0, false);
        }
        assert_eq!(w.limit(), 216);
        w.done(0, 2, 1, false);
        assert_eq!(w.limit(), 108);
        // The same count again is no new SlowDown: it grows again.
        w.done(0, 2, 1, false);
        assert_eq!(w.limit(), 109);
        // Three more at once halve once (one object, one step).
        w.done(0, 2, 4, false);
        assert_eq!(w.limit(), 54);
        for n in 5..20 {
            w.done(0, 2, n, false);
        }
        assert_eq!(w.limit(), Window::FLOOR);
        // A cap below the floor is the cap.
        let mut one = Window::new(1);
        one.done(0, 2, 1, false);
        assert_eq!(one.limit(), 1);
    }

    #[test]
    fn the_decoders_run_every_job_on_their_own_threads_and_end_when_dropped() {
        let names = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
        let ran = Arc::new(AtomicUsize::new(0));
        let decoders = Decoders::start(2);
        for _ in 0..200 {
            let (names, ran) = (names.clone(), ran.clone());
            decoders.spawn(move || {
                let me = std::thread::current().name().map(str::to_string);
                names.lock().unwrap().insert(me);
                ran.fetch_add(1, Ordering::Relaxed);
            });
        }
        drop(decoders);
        // Dropping waits for the queue to drain and the threads to end.
        assert_eq!(ran.load(Ordering::Relaxed), 200);
        let names = names.lock().unwrap();
        assert!(!names.is_empty() && names.len() <= 2, "{names:?}");
        assert!(names.iter().all(|n| n
            .as_deref()
            .is_some_and(|n| n.starts_with("keytrail-decode-"))));
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
