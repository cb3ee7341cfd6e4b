//! progress: what the user sees of a run while it goes — the scan's progress on stderr (bytes of
//! the planned objects, rate, time left) and the process's peak memory. The bar is hidden when
//! stderr is not a terminal and with `--quiet`, and draws no colour, so `NO_COLOR` and logs
//! captured by a batch system are left alone. Nothing here affects the report.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Progress {
    bar: Option<ProgressBar>,
    objects: u64,
    done: AtomicU64,
}

impl Progress {
    /// A bar over `objects` objects of `bytes` bytes in all; `show: false` draws nothing.
    pub fn scan(objects: u64, bytes: u64, show: bool) -> Progress {
        let target = ProgressDrawTarget::stderr();
        let bar = (show && !target.is_hidden()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(bytes), target);
            bar.set_style(
                ProgressStyle::with_template(
                    "scan [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}, {eta} left, {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            objects,
            done: AtomicU64::new(0),
        }
    }

    /// One more object of `bytes` is done.
    pub fn object(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
            bar.inc(bytes);
            bar.set_message(format!("{n}/{} objects", self.objects));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `VmHWM` of this process, in MiB.
/// User + system CPU seconds of this process so far.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return f64::NAN;
    }
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(u.ru_utime) + s(u.ru_stime)
}

pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
