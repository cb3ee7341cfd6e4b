//! archive::throttle: S3 answers `503 SlowDown` when one prefix gets more requests than it takes
//! (about 5,500 GETs per second per prefix; each account/region/day folder is a prefix). The
//! prefix that said so is backed off — its next GETs wait, exponentially longer while it keeps
//! saying so, with jitter — while other prefixes go on. Every SlowDown is counted, so the
//! scan can shrink how many GETs it keeps in flight (the scan stage's `fetch`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The folder of a key (up to its last `/`): the prefix S3 partitions and throttles by.
pub fn prefix_of(key: &str) -> &str {
    key.rfind('/').map_or("", |i| &key[..=i])
}

#[derive(Debug, Default)]
struct Backoff {
    /// SlowDowns in a row, without a success in between.
    strikes: u32,
    until: Option<Instant>,
}

/// The per-prefix backoff of one archive.
#[derive(Debug, Default)]
pub struct Throttle {
    prefixes: Mutex<HashMap<String, Backoff>>,
    slowdowns: AtomicU64,
}

/// The first wait after a SlowDown; it doubles with each SlowDown in a row, up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(100);
const MAX_WAIT: Duration = Duration::from_secs(20);

impl Throttle {
    /// Waits while `prefix` is backed off.
    pub async fn wait(&self, prefix: &str) {
        loop {
            let until = {
                let map = self.prefixes.lock().expect("not poisoned");
                map.get(prefix).and_then(|b| b.until)
            };
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }

    /// `prefix` answered SlowDown: it is backed off for a random time up to 100 ms × 2^strikes
    /// (at least half of it, so that a burst of GETs does not all come back at once).
    pub fn slowed(&self, prefix: &str) {
        self.slowdowns.fetch_add(1, Ordering::Relaxed);
        let mut map = self.prefixes.lock().expect("not poisoned");
        let b = map.entry(prefix.to_string()).or_default();
        let cap = FIRST_WAIT
            .saturating_mul(1u32 << b.strikes.min(10))
            .min(MAX_WAIT);
        b.strikes += 1;
        let wait = cap / 2 + jitter(cap / 2);
        let until = Instant::now() + wait;
        b.until = Some(b.until.map_or(until, |u| u.max(until)));
    }

    /// A GET of `prefix` succeeded: its strikes are forgiven (a wait already set still runs out).
    pub fn succeeded(&self, prefix: &str) {
        let mut map = self.prefixes.lock().expect("not poisoned");
        if let Some(b) = map.get_mut(prefix) {
            b.strikes = 0;
            if b.until.is_some_and(|u| u <= Instant::now()) {
                map.remove(prefix);
            }
        }
    }

    /// SlowDowns answered so far, over all prefixes.
    pub fn slowdowns(&self) -> u64 {
        self.slowdowns.load(Ordering::Relaxed)
    }
}

/// A random duration up to `max`.
pub fn jitter(max: Duration) -> Duration {
    use std::hash::{BuildHasher, RandomState};
    let ms = max.as_millis() as u64;
    Duration::from_millis(RandomState::new().hash_one(Instant::now()) % ms.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_throttled_by_its_folder() {
        assert_eq!(
            prefix_of("AWSLogs/111122223333/CloudTrail/us-east-1/2026/02/14/x.json.gz"),
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/02/14/"
        );
        assert_eq!(prefix_of("top.json.gz"), "");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slowed_prefix_waits_longer_each_time_and_others_do_not_wait() {
        let t = Throttle::default();
        let (a, b) = ("A/2026/02/14/", "A/2026/02/15/");
        let mut waits = Vec::new();
        for _ in 0..4 {
            t.slowed(a);
            let start = Instant::now();
            t.wait(a).await;
            waits.push(start.elapsed());
            let start = Instant::now();
            t.wait(b).await;
            assert_eq!(start.elapsed(), Duration::ZERO, "another prefix goes on");
        }
        // Strike k waits within [cap/2, cap), cap = 100 ms × 2^k.
        for (k, w) in waits.iter().enumerate() {
            let cap = FIRST_WAIT * (1 << k);
            assert!(
                *w >= cap / 2 && *w < cap,
                "strike {k}: {w:?} not in [{:?}, {cap:?})",
                cap / 2
            );
        }
        assert_eq!(t.slowdowns(), 4);
        // A success forgives the strikes: the next SlowDown waits as the first did.
        t.succeeded(a);
        t.slowed(a);
        let start = Instant::now();
        t.wait(a).await;
        assert!(start.elapsed() < FIRST_WAIT);
    }
}
