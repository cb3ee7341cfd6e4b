//! bench: how close the scan is to the hardware's floor, measured in one run on the same files
//! and threads: (a) the floor — read and inflate every planned log object and nothing else, with
//! flate2 (zlib-rs) and with the product's inflate (libdeflate, streaming fallback); (b) the
//! full scan (inflate, find, parse, attribute) with one thread and with all; with `--s3-logs`,
//! (c) the same scan fetching the objects from S3 (a loopback server, to compare). It prints
//! each phase's wall and CPU time, throughput in compressed and uncompressed MB/s and peak RSS,
//! then the ratio scan / floor and the speed-up from threads. Figures, not assertions: this
//! machine class is shared and noisy, so compare ratios from one run.

use crate::archive::layout::ObjectRef;
use crate::archive::local::LocalArchive;
use crate::archive::Archive;
use crate::config::{BackfillScope, DecodeLimits};
use crate::scan::fetch::{InFlight, DEFAULT_CONCURRENCY, DEFAULT_IN_FLIGHT_MIB};
use crate::scan::record::KeyIndex;
use crate::scan::{ScanResult, ScanStats};
use crate::{inventory, plan, scan, tracking};
use rayon::prelude::*;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The stats of a scan of `objects` in `archive`, through the product's scan path with its
/// default bounds.
fn scan_stats<A: Archive>(
    rt: &tokio::runtime::Runtime,
    archive: &A,
    objects: &[ObjectRef],
    index: &Arc<KeyIndex>,
    pool: &rayon::ThreadPool,
    limits: DecodeLimits,
) -> (ScanStats, usize) {
    let in_flight = InFlight {
        objects: DEFAULT_CONCURRENCY as usize,
        bytes: DEFAULT_IN_FLIGHT_MIB << 20,
    };
    let (done, peak) = scan::fetch::scan(
        rt,
        archive,
        objects,
        index,
        pool.current_num_threads(),
        in_flight,
        limits,
        &|_, _| {},
    );
    (ScanResult::of(done).stats, peak)
}

/// What a phase measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    FloorFlate2,
    Floor,
    /// The scan on one thread, the speed-up's baseline (only when there are more threads).
    ScanOneThread,
    Scan,
    ScanHashed,
    ScanS3,
}

/// One measured phase.
#[derive(Debug, Clone)]
pub struct Phase {
    pub role: Role,
    pub name: String,
    pub seconds: f64,
    /// CPU time of this process (user + system, all threads) during the phase.
    pub cpu_seconds: f64,
    pub peak_rss_mib: Option<f64>,
    /// What else the phase measured (S3: requests per object, the most gets in flight).
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Bench {
    pub objects: usize,
    pub gzip_bytes: u64,
    pub json_bytes: u64,
    pub threads: usize,
    pub phases: Vec<Phase>,
}

/// Resets the kernel's peak-RSS mark for this process (Linux `clear_refs` 5), so each phase's
/// peak is its own.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn inflate_flate2(bytes: &[u8]) -> usize {
    let mut out = Vec::with_capacity(bytes.len() * 8);
    // A broken object counts as nothing inflated.
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap_or(0)
}

fn timed(role: Role, name: &str, phases: &mut Vec<Phase>, f: impl FnOnce()) {
    reset_peak();
    let (t, cpu) = (Instant::now(), crate::progress::cpu_seconds());
    f();
    phases.push(Phase {
        role,
        name: name.to_string(),
        seconds: t.elapsed().as_secs_f64(),
        cpu_seconds: crate::progress::cpu_seconds() - cpu,
        peak_rss_mib: crate::progress::peak_rss_mib(),
        note: None,
    });
}

/// Benchmarks the archive at `logs` for the keys of `usage`, planning as `run --backfill all`;
/// with `s3_logs` (the same archive in a bucket), also the scan over S3.
pub fn run(
    usage: &Path,
    logs: &Path,
    threads: usize,
    s3_logs: Option<&str>,
) -> anyhow::Result<Bench> {
    let s3_logs = s3_logs
        .map(|s| match crate::config::Logs::parse(s) {
            Ok(crate::config::Logs::S3 { bucket, prefix }) => Ok((bucket, prefix)),
            Ok(_) => Err(anyhow::anyhow!(
                "--s3-logs {s}: expected s3://bucket[/prefix]"
            )),
            Err(e) => Err(anyhow::anyhow!(e)),
        })
        .transpose()?;
    let keys = tracking::track(inventory::read_snapshot(usage)?);
    let store = LocalArchive {
        root: logs.to_path_buf(),
    };
    // The product's runtime, so that the phases measure what a run does.
    let rt = crate::pipeline::io_runtime()?;
    let objects = rt.block_on(planned_logs(&store, &keys))?;
    let index = std::sync::Arc::new(KeyIndex::new(
        keys.iter().map(|k| (&k.arn, k.aliases.as_slice())),
    ));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let read = |o: &ObjectRef| store.read(&o.key).unwrap_or_default();
    // Warm the page cache so that every phase reads from memory alike.
    let gzip_bytes: u64 = pool.install(|| objects.par_iter().map(|o| read(o).len() as u64).sum());
    let mut phases = Vec::new();
    let on = thread_count(pool.current_num_threads());
    let json_bytes = floors(&pool, &objects, &read, &mut phases);
    if pool.current_num_threads() > 1 {
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
        timed(Role::ScanOneThread, "scan: 1 thread", &mut phases, || {
            scan_stats(&rt, &store, &objects, &index, &one, DecodeLimits::default());
        });
    }
    let mut local = ScanStats::default();
    timed(Role::Scan, &format!("scan: {on}"), &mut phases, || {
        (local, _) = scan_stats(
            &rt,
            &store,
            &objects,
            &index,
            &pool,
            DecodeLimits::default(),
        );
    });
    let hashing = DecodeLimits {
        hash: true,
        ..Default::default()
    };
    timed(
        Role::ScanHashed,
        &format!("scan + SHA-256 (integrity): {on}"),
        &mut phases,
        || {
            scan_stats(&rt, &store, &objects, &index, &pool, hashing);
        },
    );
    if let Some((bucket, prefix)) = s3_logs {
        let over_s3 = Over {
            rt: &rt,
            objects: &objects,
            index: &index,
            pool: &pool,
        };
        phases.push(over_s3.s3(&bucket, &prefix, &local)?);
    }
    Ok(Bench {
        objects: objects.len(),
        gzip_bytes,
        json_bytes,
        threads: pool.current_num_threads(),
        phases,
    })
}

/// The floor: read and inflate every object and nothing else, with flate2 and with libdeflate.
/// Returns the bytes inflated.
fn floors(
    pool: &rayon::ThreadPool,
    objects: &[ObjectRef],
    read: &(dyn Fn(&ObjectRef) -> Vec<u8> + Sync),
    phases: &mut Vec<Phase>,
) -> u64 {
    let on = thread_count(pool.current_num_threads());
    let mut json_bytes = 0;
    timed(
        Role::FloorFlate2,
        &format!("floor: read + inflate, flate2 (zlib-rs), {on}"),
        phases,
        || {
            json_bytes = pool.install(|| {
                objects
                    .par_iter()
                    .map(|o| inflate_flate2(&read(o)) as u64)
                    .sum()
            });
        },
    );
    timed(
        Role::Floor,
        &format!("floor: read + inflate, libdeflate (product), {on}"),
        phases,
        || {
            pool.install(|| {
                objects
                    .par_iter()
                    .map(|o| scan::decode::inflated_len(&read(o)).unwrap_or(0))
                    .sum::<u64>()
            });
        },
    );
    json_bytes
}

/// The objects `run --backfill all` would read for `keys`, but those it would skip by name.
async fn planned_logs(
    store: &LocalArchive,
    keys: &[tracking::TrackedKey],
) -> anyhow::Result<Vec<ObjectRef>> {
    let folders = plan::list::discover(store, "").await?;
    let starts = plan::list::archive_starts(store, &folders).await?;
    let plan = plan::plan(keys, &starts, BackfillScope::All, None);
    let objects = plan::list::list(store, &folders, &plan.prefixes).await?;
    Ok(objects
        .into_iter()
        .filter(|o| scan::skip_reason(o).is_none())
        .collect())
}

/// What a phase over another archive scans, and on what.
struct Over<'a> {
    rt: &'a tokio::runtime::Runtime,
    objects: &'a [ObjectRef],
    index: &'a Arc<KeyIndex>,
    pool: &'a rayon::ThreadPool,
}

impl Over<'_> {
    /// The scan of the same objects in `s3://bucket/prefix`; it must give the `local` totals.
    fn s3(&self, bucket: &str, prefix: &str, local: &ScanStats) -> anyhow::Result<Phase> {
        let aws = self.rt.block_on(crate::aws::load(None, None));
        let archive = self
            .rt
            .block_on(crate::archive::s3::S3Archive::connect(&aws, bucket))?;
        let in_s3: Vec<ObjectRef> = self
            .objects
            .iter()
            .map(|o| ObjectRef {
                key: format!("{prefix}{}", o.key),
                ..o.clone()
            })
            .collect();
        let mut phases = Vec::new();
        let mut over_s3 = ScanStats::default();
        let mut peak = 0;
        let on = thread_count(self.pool.current_num_threads());
        timed(
            Role::ScanS3,
            &format!("scan over s3://{bucket}: {on}"),
            &mut phases,
            || {
                (over_s3, peak) = scan_stats(
                    self.rt,
                    &archive,
                    &in_s3,
                    self.index,
                    self.pool,
                    DecodeLimits::default(),
                );
            },
        );
        anyhow::ensure!(
            over_s3 == *local,
            "s3://{bucket}/{prefix} did not scan like the local archive (is it the same?): \
             {over_s3:?} vs {local:?}"
        );
        let mut phase = phases.pop().expect("one phase was timed");
        phase.note = Some(format!(
            "{:.3} GetObject requests per object, at most {peak} in flight, {} SlowDowns, GET path: {}",
            archive.gets() as f64 / in_s3.len().max(1) as f64,
            archive.slowdowns(),
            archive.get_path()
        ));
        Ok(phase)
    }
}

/// "1 thread", "2 threads".
fn thread_count(n: usize) -> String {
    if n == 1 {
        "1 thread".to_string()
    } else {
        format!("{n} threads")
    }
}

impl Bench {
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "objects: {} ({:.1} MB gzip, {:.1} MB JSON), {}",
            self.objects,
            self.gzip_bytes as f64 / 1e6,
            self.json_bytes as f64 / 1e6,
            thread_count(self.threads)
        );
        for p in &self.phases {
            let _ = writeln!(
                o,
                "{:<52} {:>7.2} s {:>7.2} CPU s {:>8.1} MB/s gzip {:>8.1} MB/s JSON {:>7.0} objects/s {:>5.0} µs CPU/object  peak RSS {}",
                p.name,
                p.seconds,
                p.cpu_seconds,
                self.gzip_bytes as f64 / 1e6 / p.seconds,
                self.json_bytes as f64 / 1e6 / p.seconds,
                self.objects as f64 / p.seconds,
                p.cpu_seconds * 1e6 / self.objects.max(1) as f64,
                p.peak_rss_mib
                    .map_or("n/a".to_string(), |m| format!("{m:.0} MiB"))
            );
            if let Some(note) = &p.note {
                let _ = writeln!(o, "    {note}");
            }
        }
        let phase = |r: Role| self.phases.iter().find(|p| p.role == r);
        let t = |r: Role| phase(r).map_or(f64::NAN, |p| p.seconds);
        let cpu = |r: Role| phase(r).map_or(f64::NAN, |p| p.cpu_seconds);
        use Role::*;
        let _ = writeln!(
            o,
            "libdeflate vs flate2 floor: {:.2}x faster",
            t(FloorFlate2) / t(Floor)
        );
        let _ = writeln!(o, "scan / floor (libdeflate): {:.2}x", t(Scan) / t(Floor));
        // CPU time is steadier than wall time on a shared machine.
        let _ = writeln!(
            o,
            "scan / floor (libdeflate), CPU time: {:.2}x",
            cpu(Scan) / cpu(Floor)
        );
        let _ = writeln!(
            o,
            "scan / floor (flate2):     {:.2}x",
            t(Scan) / t(FloorFlate2)
        );
        if phase(ScanOneThread).is_some() {
            let _ = writeln!(
                o,
                "scan speed-up, {} vs 1: {:.2}x",
                thread_count(self.threads),
                t(ScanOneThread) / t(Scan)
            );
        }
        let _ = writeln!(
            o,
            "integrity cost (scan + SHA-256 / scan): {:.2}x",
            t(ScanHashed) / t(Scan)
        );
        if phase(ScanS3).is_some() {
            let _ = writeln!(o, "s3:// throughput / local: {:.2}x", t(Scan) / t(ScanS3));
            // On loopback the server's work shares these cores; keytrail's own cost is this.
            let _ = writeln!(
                o,
                "keytrail CPU, s3:// / local: {:.2}x",
                cpu(ScanS3) / cpu(Scan)
            );
        }
        o
    }
}
