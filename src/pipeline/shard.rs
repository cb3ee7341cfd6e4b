//! pipeline::shard: one run split across machines, for the engines users already have (AWS Batch
//! array jobs, Kubernetes Indexed Jobs). `plan` resolves the inventory, lists the archive and
//! writes an immutable plan with the archive's day folders assigned to N shards; `scan` lists and
//! reads one shard's folders anywhere, in any order, as often as it is retried; `merge` refuses
//! to report unless every shard's result is there, from this plan and intact, then does what
//! `run` does after its scan — the callers' folders, the digest check (over the whole plan:
//! chains stay whole however the folders were split), correlation and the report. `run` is plan +
//! every shard + merge in one process, and gives the same report.
//!
//! A plan holds folders, not objects: an organization's year is hundreds of millions of objects
//! (a plan naming each would be tens of GB for every shard to read), but only millions of
//! account/region/day folders. Each folder carries what planning found in it — how many objects,
//! their bytes, and a fingerprint of the listing — so the shard that lists it again can tell, and
//! say, when the folder changed in between. Digest files are listed by the merge, which checks them.
//!
//! Shards are balanced by bytes and keep each account/region/day folder together; the same
//! inputs give the same plan. A plan's identity is the SHA-256 of its file; a shard's result
//! names that identity and its index, and carries the SHA-256 of its body.

use super::store::{Place, Store};
use super::{finish, key_index, open_archive, Engines, Prepared, RunOutcome};
use crate::archive::layout::DayPrefix;
use crate::config::{BackfillScope, Config, Logs, Usage, VerifyMode};
use crate::inventory::{self, Inventory, Source};
use crate::model::{hex, Instant, Warnings};
use crate::plan::list::{list_days, Objects};
use crate::plan::{changes, DayListing, Plan};
use crate::scan::record::UseCopy;
use crate::scan::{ManifestRow, ScanResult, ScanStats};
use crate::trails::{Destination, Trail};
use crate::{checkpoint, integrity, tracking};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A plan as `keytrail plan` writes it: the run's settings, the inventory with its answers, the
/// archive's plan (without its objects and digests), its day folders as planning found them, and
/// each shard's folders.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShardedPlan {
    pub format: u32,
    /// The archive (`--logs`, resolved).
    pub logs: String,
    /// The keys with their `GetKeyLastUsage` answers, and the accounts, in the snapshot format.
    pub usage: String,
    /// The answers were asked live: the report carries them as `usage.jsonl`.
    pub live: bool,
    pub trails: Option<Vec<Trail>>,
    pub backfill: String,
    pub since: Option<Instant>,
    pub verify: String,
    pub digest_signatures: Option<PathBuf>,
    pub public_keys: Vec<PathBuf>,
    pub max_inflated: u64,
    /// Without objects or digests; its `days` are what planning found in each folder.
    pub plan: Plan,
    /// Indexes into `plan.days`, per shard.
    pub shards: Vec<Vec<u32>>,
}

impl ShardedPlan {
    pub const FORMAT: u32 = 2;
}

fn sha256(bytes: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

/// A plan read: the plan and its identity.
pub struct PlanFile {
    pub plan: ShardedPlan,
    pub sha256: String,
}

/// The `folders` in `n` shards: whole account/region/day folders, the largest first, each to the
/// shard with the fewest bytes so far (the lowest index on a tie).
pub fn assign(folders: &[DayListing], n: usize) -> Vec<Vec<u32>> {
    let n = n.max(1);
    let mut order: Vec<(u64, &DayPrefix, u32)> = folders
        .iter()
        .enumerate()
        .map(|(i, f)| (f.bytes, &f.prefix, i as u32))
        .collect();
    order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut shards: Vec<(u64, Vec<u32>)> = vec![(0, Vec::new()); n];
    for (bytes, _, i) in order {
        let (_, least) = shards
            .iter()
            .enumerate()
            .map(|(i, s)| (s.0, i))
            .min()
            .expect("at least one shard");
        shards[least].0 += bytes;
        shards[least].1.push(i);
    }
    shards
        .into_iter()
        .map(|(_, mut o)| {
            o.sort_unstable();
            o
        })
        .collect()
}

/// How many shards a plan has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Count {
    Shards(usize),
    /// As many as it takes for each to hold about this many GiB (at most 10,000, AWS Batch's
    /// largest array).
    PerGib(f64),
}

impl Count {
    /// For folders holding `bytes` in all.
    pub fn of(self, bytes: u64) -> usize {
        match self {
            Count::Shards(n) => n.max(1),
            Count::PerGib(g) => {
                ((bytes as f64 / (g * (1u64 << 30) as f64)).ceil() as usize).clamp(1, 10_000)
            }
        }
    }
}

/// `keytrail plan`: the stages before the scan, written to `path` with its shards.
pub fn plan(cfg: &Config, count: Count, path: &Path) -> anyhow::Result<(ShardedPlan, Estimate)> {
    cfg.logs.check()?;
    let place = Place::of(path).map_err(anyhow::Error::msg)?;
    let store = Store::for_places(&[&place], cfg)?;
    let journal = match &place {
        Place::Local(p) => checkpoint::dir_for(p),
        Place::S3 { .. } => {
            std::env::temp_dir().join(format!(".keytrail-plan-{}", std::process::id()))
        }
    };
    checkpoint::discard(&journal);
    let source = inventory::Source::of(&cfg.usage, &journal.join(checkpoint::USAGE), false);
    let live = source.is_live();
    let engines = Engines::start(cfg, live || !matches!(cfg.logs, Logs::Local(_)))?;
    let mut warnings = Warnings::default();
    let prepared = super::prepare(
        cfg,
        &engines,
        source,
        &journal,
        crate::plan::list::Objects::Tally,
        &mut warnings,
    )?;
    checkpoint::discard(&journal);
    for w in warnings.as_slice() {
        eprintln!("keytrail: warning: {w}");
    }
    let mut plan = prepared.plan;
    let shards = assign(
        &plan.days,
        count.of(plan.days.iter().map(|f| f.bytes).sum()),
    );
    // The shards list their own folders and the merge lists the digests: the plan stays the size
    // of the folders, not of the objects.
    let digests = plan.digests.len() as u64;
    plan.digests = Vec::new();
    let sharded = ShardedPlan {
        format: ShardedPlan::FORMAT,
        logs: prepared.dest.logs.to_string(),
        usage: inventory::snapshot_text(&prepared.tracked.accounts, prepared.tracked.keys()),
        live,
        trails: prepared.dest.trails,
        backfill: cfg.backfill.as_str().to_string(),
        since: cfg.since,
        verify: match cfg.integrity.mode {
            VerifyMode::Auto => "auto",
            VerifyMode::On => "on",
            VerifyMode::Off => "off",
        }
        .to_string(),
        digest_signatures: cfg.integrity.signatures.clone(),
        public_keys: cfg.integrity.public_keys.clone(),
        max_inflated: cfg.limits.max_inflated,
        plan,
        shards,
    };
    let text = serde_json::to_vec(&sharded).expect("a plan serializes");
    store
        .write(&place, text)
        .map_err(|e| anyhow::anyhow!("the plan: {e}"))?;
    let estimate = Estimate::of(&sharded, digests);
    Ok((sharded, estimate))
}

/// Reads a plan file; one of another format, or not a plan, is refused with a reason.
pub fn read_plan(path: &Path, base: &Config) -> anyhow::Result<PlanFile> {
    let place = Place::of(path).map_err(anyhow::Error::msg)?;
    let bytes = Store::for_places(&[&place], base)?
        .read(&place)
        .map_err(|e| anyhow::anyhow!("the plan: {e}"))?;
    #[derive(serde::Deserialize)]
    struct Format {
        format: u32,
    }
    let f: Format = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("{place} is not a keytrail plan: {e}"))?;
    anyhow::ensure!(
        f.format == ShardedPlan::FORMAT,
        "{}: a plan of format {} (this keytrail reads format {})",
        place,
        f.format,
        ShardedPlan::FORMAT
    );
    let plan: ShardedPlan = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("{place}: a damaged plan: {e}"))?;
    Ok(PlanFile {
        plan,
        sha256: sha256(&bytes),
    })
}

/// The run's settings, as the plan recorded them, with this process's own (`base`: where it
/// writes, threads, in-flight limits, progress).
pub fn config_of(p: &ShardedPlan, plan_path: &Path, base: &Config) -> anyhow::Result<Config> {
    let mut cfg = base.clone();
    cfg.logs = Logs::parse(&p.logs).map_err(anyhow::Error::msg)?;
    cfg.usage = if p.live {
        Usage::Aws
    } else {
        Usage::File(plan_path.to_path_buf())
    };
    cfg.backfill = match p.backfill.as_str() {
        "all" => BackfillScope::All,
        _ => BackfillScope::Unknown,
    };
    cfg.since = p.since;
    cfg.integrity.mode = match p.verify.as_str() {
        "on" => VerifyMode::On,
        "off" => VerifyMode::Off,
        _ => VerifyMode::Auto,
    };
    if cfg.integrity.signatures.is_none() {
        cfg.integrity.signatures = p.digest_signatures.clone();
    }
    if cfg.integrity.public_keys.is_empty() {
        cfg.integrity.public_keys = p.public_keys.clone();
    }
    cfg.limits.max_inflated = p.max_inflated;
    Ok(cfg)
}

/// The tracked keys the plan carries.
fn tracked_of(p: &ShardedPlan, plan_path: &Path) -> anyhow::Result<tracking::Tracked> {
    let (keys, accounts) = inventory::read_inventory_from(p.usage.as_bytes(), plan_path)?;
    let source = if p.live {
        Source::Live
    } else {
        Source::Snapshot(plan_path.to_path_buf())
    };
    Ok(tracking::Tracked::of(Inventory {
        keys,
        accounts,
        source,
        answered: Default::default(),
    }))
}

/// A shard's index from `K/N`, or from the batch engine's environment (`auto`).
pub fn shard_index(spec: &str, n: usize) -> Result<usize, String> {
    let k = if spec == "auto" {
        let from = |v: &str| std::env::var(v).ok().filter(|s| !s.trim().is_empty());
        let (name, value) = match (
            from("AWS_BATCH_JOB_ARRAY_INDEX"),
            from("JOB_COMPLETION_INDEX"),
        ) {
            (Some(v), _) => ("AWS_BATCH_JOB_ARRAY_INDEX", v),
            (None, Some(v)) => ("JOB_COMPLETION_INDEX", v),
            (None, None) => {
                return Err("--shard auto: neither AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch array job) nor JOB_COMPLETION_INDEX (Kubernetes Indexed Job) is set".into())
            }
        };
        value
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("--shard auto: {name}={value} is not a shard index"))?
    } else {
        let (k, of) = spec
            .split_once('/')
            .ok_or_else(|| format!("--shard {spec}: expected K/N (0-based K) or auto"))?;
        let k: usize = k
            .parse()
            .map_err(|_| format!("--shard {spec}: K is not a number"))?;
        let of: usize = of
            .parse()
            .map_err(|_| format!("--shard {spec}: N is not a number"))?;
        if of != n {
            return Err(format!("--shard {spec}: the plan has {n} shards, not {of}"));
        }
        k
    };
    if k >= n {
        return Err(format!(
            "shard index {k} is out of range: the plan has {n} shards (0..{})",
            n - 1
        ));
    }
    Ok(k)
}

/// The name of shard `k` of `n`'s result.
pub fn shard_name(k: usize, n: usize) -> String {
    format!("shard-{k:05}-of-{n:05}.json")
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ShardHead {
    format: u32,
    plan_sha256: String,
    shard: usize,
    shards: usize,
    body_sha256: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ShardBody {
    manifest: Vec<ManifestRow>,
    uses: Vec<UseCopy>,
    stats: ScanStats,
    /// The shard's folders that changed between planning and scanning ([`changes`]).
    changed: Vec<String>,
}

/// `keytrail scan`: shard `k` of the plan, its result written into `dir` (replacing an earlier
/// one). Resumable: an interrupted shard goes on from its checkpoint beside the result.
/// `file` is the plan read from `plan_path` (read once: a large plan is hundreds of MB).
pub fn scan(
    plan_path: &Path,
    file: &PlanFile,
    k: usize,
    dir: &Path,
    base: &Config,
) -> anyhow::Result<ScanStats> {
    let p = &file.plan;
    let n = p.shards.len();
    let dir = Place::of(dir).map_err(anyhow::Error::msg)?;
    let out = dir.join(&shard_name(k, n));
    let store = Store::for_places(&[&out], base)?;
    let mut cfg = config_of(p, plan_path, base)?;
    // The resume checkpoint: beside a local result, in the temporary folder for one in S3.
    cfg.out = match &out {
        Place::Local(p) => p.clone(),
        Place::S3 { .. } => std::env::temp_dir().join(format!(
            "keytrail-{}-{}",
            &file.sha256[..16],
            shard_name(k, n)
        )),
    };
    cfg.resume = true;
    let engines = Engines::start(&cfg, !matches!(cfg.logs, Logs::Local(_)))?;
    let archive = open_archive(&cfg, &engines, &cfg.logs)?;
    let mut tracked = tracked_of(p, plan_path)?;
    // A shard keeps no snapshot of its own: the plan holds the answers.
    tracked.source = Source::Snapshot(plan_path.to_path_buf());
    let index = key_index(&tracked);
    // The shard's folders, listed now: what they hold is what is read (and said, where it is
    // not what planning found).
    let planned: Vec<&DayListing> = p.shards[k]
        .iter()
        .map(|&i| &p.plan.days[i as usize])
        .collect();
    let prefixes: BTreeSet<DayPrefix> = planned.iter().map(|f| f.prefix.clone()).collect();
    let trails = p.plan.trail_folders();
    let (objects, found) = engines
        .rt
        .block_on(list_days(&archive, &trails, &prefixes, Objects::Keep))
        .map_err(|e| anyhow::anyhow!("listing shard {k}'s folders: {e}"))?;
    let changed = changes(&planned, &found);
    for c in &changed {
        eprintln!("keytrail: warning: {c}");
    }
    let scanner = checkpoint::Scanner::open(&cfg, &cfg.logs, &tracked, &p.plan)?;
    let mut result = scanner.scan(&engines.rt, &archive, &objects, &index, &cfg);
    let stats = result.stats.clone();
    let body = serde_json::to_vec(&ShardBody {
        manifest: std::mem::take(&mut result.manifest),
        // Failed attempts and alias changes travel with the uses; merging sets them apart.
        uses: result.kept(),
        stats: stats.clone(),
        changed,
    })
    .expect("a shard result serializes");
    let head = ShardHead {
        format: ShardedPlan::FORMAT,
        plan_sha256: file.sha256.clone(),
        shard: k,
        shards: n,
        body_sha256: sha256(&body),
    };
    let mut text = serde_json::to_vec(&head).expect("a head serializes");
    text.push(b'\n');
    text.extend_from_slice(&body);
    store.write(&out, text).map_err(anyhow::Error::msg)?;
    scanner.finish();
    Ok(stats)
}

/// Reads every shard's result of `file`'s plan from `dir`: all there, from this plan, intact —
/// or an error naming each that is not.
fn read_shards(
    file: &PlanFile,
    dir: &Place,
    store: &Store,
) -> anyhow::Result<(ScanResult, Warnings)> {
    let n = file.plan.shards.len();
    let mut wrong = Vec::new();
    let mut out = ScanResult::default();
    let mut warnings = Warnings::default();
    for k in 0..n {
        let path = dir.join(&shard_name(k, n));
        let Ok(bytes) = store.read(&path) else {
            wrong.push(format!("shard {k} missing ({path})"));
            continue;
        };
        let Some(nl) = bytes.iter().position(|b| *b == b'\n') else {
            wrong.push(format!("shard {k} damaged ({})", path));
            continue;
        };
        let head: Result<ShardHead, _> = serde_json::from_slice(&bytes[..nl]);
        let body = &bytes[nl + 1..];
        match head {
            Ok(h) if h.plan_sha256 != file.sha256 || h.shard != k || h.shards != n => {
                wrong.push(format!("shard {k} is from another plan ({})", path));
            }
            Ok(h) if h.body_sha256 != sha256(body) => {
                wrong.push(format!("shard {k} damaged: checksum mismatch ({})", path))
            }
            Ok(_) => match serde_json::from_slice::<ShardBody>(body) {
                Ok(b) => {
                    for c in b.changed {
                        warnings.push(c);
                    }
                    out = out.merge(ScanResult {
                        manifest: b.manifest,
                        uses: b.uses,
                        stats: b.stats,
                        ..ScanResult::default()
                    })
                }
                Err(e) => wrong.push(format!("shard {k} damaged: {e} ({})", path)),
            },
            Err(e) => wrong.push(format!("shard {k} damaged: {e} ({})", path)),
        }
    }
    anyhow::ensure!(
        wrong.is_empty(),
        "cannot merge: {} of {n} shard results are not usable: {}",
        wrong.len(),
        wrong.join("; ")
    );
    Ok((out, warnings))
}

/// `keytrail merge`: every shard's result, then the digest check, correlation and the report,
/// exactly as `run` does after its scan. Writes nothing unless every shard is there and intact.
pub fn merge(plan_path: &Path, dir: &Path, base: &Config) -> anyhow::Result<RunOutcome> {
    let started = std::time::Instant::now();
    let file = read_plan(plan_path, base)?;
    let dir = Place::of(dir).map_err(anyhow::Error::msg)?;
    let (scanned, warnings) = read_shards(&file, &dir, &Store::for_places(&[&dir], base)?)?;
    let mut p = file.plan;
    let cfg = config_of(&p, plan_path, base)?;
    let verify_with = integrity::live::VerifyWith::read(&cfg)?;
    let staging = super::store::Output::create(&cfg.out, cfg.overwrite, &cfg)?;
    let journal = checkpoint::dir_for(&cfg.out);
    checkpoint::discard(&journal);
    let engines = Engines::start(&cfg, p.live || !matches!(cfg.logs, Logs::Local(_)))?;
    let archive = open_archive(&cfg, &engines, &cfg.logs)?;
    if p.plan.hashes_logs() {
        // The digests of the planned days (and the day after each), listed now — the plan does
        // not carry them.
        let trails = p.plan.trail_folders();
        p.plan.digests = engines
            .rt
            .block_on(crate::plan::list::list_digests(
                &archive,
                &trails,
                &p.plan.prefixes,
            ))
            .map_err(|e| anyhow::anyhow!("listing the digest files: {e}"))?;
    }
    let tracked = tracked_of(&p, plan_path)?;
    let index = key_index(&tracked);
    let mut scan_as = tracked.clone();
    scan_as.source = Source::Snapshot(plan_path.to_path_buf());
    let scanner = checkpoint::Scanner::open(&cfg, &cfg.logs, &scan_as, &p.plan)?;
    let prepared = Prepared {
        tracked,
        dest: Destination {
            logs: cfg.logs.clone(),
            trails: p.trails,
        },
        archive,
        plan: p.plan,
        index,
    };
    finish(
        &cfg,
        &engines,
        prepared,
        scanned,
        scanner,
        verify_with,
        staging,
        warnings,
        started,
    )
}

/// What a plan will cost and take, before any object is read.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub objects: u64,
    pub bytes: u64,
    pub gets: u64,
    pub lists: u64,
    pub archived_objects: u64,
    pub archived_bytes: u64,
    pub shards: usize,
    pub largest_shard_bytes: u64,
    /// The longest shard's time, in seconds, and whether its objects (not its bytes) bound it.
    pub longest_shard_seconds: f64,
    pub objects_bound: bool,
    /// The archive is in S3 (GETs behind latency), not a local directory.
    pub s3: bool,
}

/// Prices used by the estimate (us-east-1 list prices, from FACTS and the pages named in the
/// README, as of 2026-11-29): S3 Standard GET and LIST per 1,000 requests; Glacier Flexible
/// Retrieval restores, Standard tier per 1,000 requests and per GB (Bulk is free).
const GET_PER_1000: f64 = 0.0004;
const LIST_PER_1000: f64 = 0.005;
const RESTORE_STANDARD_PER_1000: f64 = 0.05;
const RESTORE_STANDARD_PER_GB: f64 = 0.01;
/// keytrail's measured scan rate of gzip bytes with two threads (README, Performance): the low
/// end of 300–345 MB/s on the development machine; the estimate says it is this machine's.
const SCAN_MB_PER_S: f64 = 300.0;
/// keytrail's measured rate of small objects with two threads (tests/bench/README.md, issue 17,
/// the `many-small` archive): ~2,700 objects/s over S3 at 50 ms of round trip (the adaptive window
/// of GETs; the CPU of the request path bounds it on the development machine), ~17,700 objects/s
/// from a local directory. An archive of small objects is bound by these, not by its bytes.
const S3_OBJECTS_PER_S: f64 = 2_700.0;
const LOCAL_OBJECTS_PER_S: f64 = 17_700.0;

impl Estimate {
    /// For the plan `p`, whose days have `digests` digest files.
    pub fn of(p: &ShardedPlan, digests: u64) -> Estimate {
        let sum = |f: fn(&DayListing) -> u64| p.plan.days.iter().map(f).sum::<u64>();
        let objects = sum(|f| f.objects);
        let archived_objects = sum(|f| f.archived_objects);
        let s3 = p.logs.starts_with("s3://");
        let per_s = if s3 {
            S3_OBJECTS_PER_S
        } else {
            LOCAL_OBJECTS_PER_S
        };
        // Each shard's bytes, and its time: the longer of its bytes' and its objects' (those
        // read, not archived).
        let shard = |s: &Vec<u32>| {
            let days = s.iter().map(|&i| &p.plan.days[i as usize]);
            let bytes: u64 = days.clone().map(|d| d.bytes).sum();
            let read: u64 = days.map(|d| d.objects - d.archived_objects).sum();
            let (by_bytes, by_objects) = (bytes as f64 / 1e6 / SCAN_MB_PER_S, read as f64 / per_s);
            (bytes, by_bytes.max(by_objects), by_objects > by_bytes)
        };
        let shards: Vec<(u64, f64, bool)> = p.shards.iter().map(shard).collect();
        let longest = shards
            .iter()
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0, false));
        // A folder's listing pages (1,000 keys each) when planning and again by its shard; the
        // digest folders (the day and the next) when planning and by the merge.
        let pages = |n: u64| n.div_ceil(1000).max(1);
        let lists = 2 * p.plan.days.iter().map(|f| pages(f.objects)).sum::<u64>()
            + if p.plan.hashes_logs() {
                2 * 2 * p.plan.prefixes.len() as u64
            } else {
                0
            };
        Estimate {
            objects,
            bytes: sum(|f| f.bytes),
            gets: objects - archived_objects + digests,
            lists,
            archived_objects,
            archived_bytes: sum(|f| f.archived_bytes),
            shards: p.shards.len(),
            largest_shard_bytes: shards.iter().map(|s| s.0).max().unwrap_or(0),
            longest_shard_seconds: longest.1,
            objects_bound: longest.2,
            s3,
        }
    }

    pub fn render(&self) -> String {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        let cost =
            self.gets as f64 / 1000.0 * GET_PER_1000 + self.lists as f64 / 1000.0 * LIST_PER_1000;
        let mut o = format!(
            "plan: {} objects, {:.2} GiB in {} shard(s) (largest {:.2} GiB)\n\
             requests: {} GET, {} LIST (half of them made while planning) ≈ ${cost:.4} at S3 Standard list prices (GET $0.0004, LIST $0.005 per 1,000; us-east-1, 2026-11-29)\n\
             time: ≈ {:.0} s for the longest shard, {} (keytrail's measured two-thread rates on its development machine: {SCAN_MB_PER_S:.0} MB/s of gzip, {:.0} small objects/s {})\n",
            self.objects,
            gib(self.bytes),
            self.shards,
            gib(self.largest_shard_bytes),
            self.gets,
            self.lists,
            self.longest_shard_seconds,
            if self.objects_bound {
                "bound by its number of objects"
            } else {
                "bound by its bytes"
            },
            if self.s3 {
                S3_OBJECTS_PER_S
            } else {
                LOCAL_OBJECTS_PER_S
            },
            if self.s3 {
                "over S3 at 50 ms of round trip"
            } else {
                "from a local directory"
            },
        );
        if self.archived_objects > 0 {
            let gb = self.archived_bytes as f64 / 1e9;
            o.push_str(&format!(
                "archived: {} objects ({gb:.2} GB) in GLACIER/DEEP_ARCHIVE must be restored first: \
                 Glacier Flexible Retrieval Standard ≈ ${:.2} (3–5 h), Bulk free (5–12 h); Deep Archive: Standard within 12 h, Bulk within 48 h (see the S3 pricing page for its prices)\n",
                self.archived_objects,
                self.archived_objects as f64 / 1000.0 * RESTORE_STANDARD_PER_1000
                    + gb * RESTORE_STANDARD_PER_GB,
            ));
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::layout::ObjectRef;
    use crate::plan::tally;
    use crate::plan::tests::obj;

    fn folders(objects: &[ObjectRef]) -> Vec<DayListing> {
        let prefixes = objects.iter().map(|o| o.prefix.clone()).collect();
        tally(&prefixes, objects)
    }

    #[test]
    fn shards_keep_folders_whole_balance_bytes_and_cover_every_folder_once() {
        let mut objects = Vec::new();
        // Folder sizes 90, 60, 50, 40, 30 (worked by hand): largest first to the lightest shard
        // gives {90}, {60, 30}, {50, 40}.
        for (day, sizes) in [
            (1, vec![50, 40]),
            (2, vec![60]),
            (3, vec![20, 20]),
            (4, vec![30]),
            (5, vec![25, 25]),
        ] {
            for (j, s) in sizes.into_iter().enumerate() {
                objects.push(obj(day, &format!("o{j}.json.gz"), s));
            }
        }
        let folders = folders(&objects);
        // days: 1 → 90, 2 → 60, 3 → 40, 4 → 30, 5 → 50
        assert_eq!(
            folders.iter().map(|f| f.bytes).collect::<Vec<_>>(),
            [90, 60, 40, 30, 50]
        );
        let shards = assign(&folders, 3);
        let days = |s: &Vec<u32>| -> Vec<u32> {
            s.iter()
                .map(|&i| {
                    folders[i as usize]
                        .prefix
                        .day
                        .format("%d")
                        .to_string()
                        .parse()
                        .unwrap()
                })
                .collect()
        };
        assert_eq!(days(&shards[0]), [1]);
        assert_eq!(days(&shards[1]), [2, 4]);
        assert_eq!(days(&shards[2]), [3, 5]);
        let mut all: Vec<u32> = shards.concat();
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2, 3, 4]);
        assert_eq!(assign(&folders, 3), shards, "deterministic");
        assert_eq!(assign(&folders, 1), vec![vec![0, 1, 2, 3, 4]]);
    }

    pub(super) fn sharded(logs: &str, plan: Plan, shards: Vec<Vec<u32>>) -> ShardedPlan {
        ShardedPlan {
            format: ShardedPlan::FORMAT,
            logs: logs.into(),
            usage: String::new(),
            live: false,
            trails: None,
            backfill: "all".into(),
            since: None,
            verify: "auto".into(),
            digest_signatures: None,
            public_keys: vec![],
            max_inflated: 2 << 30,
            plan,
            shards,
        }
    }

    #[test]
    fn the_estimate_bounds_a_shard_by_its_bytes_or_by_its_objects() {
        // Worked by hand: shard 0 holds one folder of 600 MB in 1,000 objects, shard 1 one of
        // 30 MB in 23,000 objects (one of them archived). At 300 MB/s, 17,700 objects/s locally
        // and 2,700 objects/s over S3: locally shard 0 takes 2 s (bytes; its objects 0.06 s) and
        // shard 1 1.30 s (objects) — 2 s, bound by bytes; over S3 shard 1 takes 22,999 / 2,700 =
        // 8.5 s — bound by objects.
        let day = |d: u32, objects: u64, bytes: u64, archived: u64| DayListing {
            prefix: obj(d, "x", 0).prefix,
            objects,
            bytes,
            archived_objects: archived,
            archived_bytes: archived * 1000,
            listing: String::new(),
        };
        let plan = Plan {
            days: vec![day(1, 1_000, 600_000_000, 0), day(2, 23_000, 30_000_000, 1)],
            ..Plan::default()
        };
        let shards = vec![vec![0], vec![1]];
        let local = Estimate::of(&sharded("/data/logs", plan.clone(), shards.clone()), 0);
        assert!(
            (local.longest_shard_seconds - 2.0).abs() < 1e-9,
            "{local:?}"
        );
        assert!(!local.objects_bound && !local.s3);
        assert_eq!(
            (local.objects, local.gets, local.archived_objects),
            (24_000, 23_999, 1)
        );
        assert_eq!(local.largest_shard_bytes, 600_000_000);
        // Listing pages: 1 + 23 per listing, twice (planning, the shard).
        assert_eq!(local.lists, 48);
        let s3 = Estimate::of(&sharded("s3://trail", plan, shards), 5);
        assert!(
            (s3.longest_shard_seconds - 22_999.0 / 2_700.0).abs() < 1e-9,
            "{s3:?}"
        );
        assert!(s3.objects_bound && s3.s3);
        assert_eq!(s3.gets, 23_999 + 5);
        let text = s3.render();
        assert!(
            text.contains("≈ 9 s for the longest shard, bound by its number of objects"),
            "{text}"
        );
        assert!(text.contains("2700 small objects/s over S3"), "{text}");
    }

    #[test]
    fn shard_gib_gives_as_many_shards_as_the_bytes_need() {
        let bytes = 5u64 << 30;
        assert_eq!(Count::PerGib(2.0).of(bytes), 3);
        assert_eq!(Count::PerGib(5.0).of(bytes), 1);
        assert_eq!(
            Count::PerGib(1e-9).of(bytes),
            10_000,
            "capped at Batch's largest array"
        );
        assert_eq!(Count::Shards(0).of(bytes), 1);
    }

    #[test]
    fn a_shard_index_comes_from_k_of_n_or_the_batch_engines_environment() {
        assert_eq!(shard_index("2/3", 3), Ok(2));
        assert!(shard_index("3/3", 3).unwrap_err().contains("out of range"));
        assert!(shard_index("1/4", 3).unwrap_err().contains("has 3 shards"));
        assert!(shard_index("x", 3).is_err());
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use crate::archive::layout::ObjectRef;

    /// By hand: `cargo test --release --lib -- --ignored --nocapture plan_and_merge_bench`.
    /// A plan of 1,000,000 objects (300 accounts × 2 regions × ~1,667 objects a day folder…):
    /// assigning 100 shards, writing and reading the plan; then merging 100 shard results of
    /// 10,000 manifest rows each, read from their JSON as `merge` reads them.
    #[test]
    #[ignore]
    fn plan_and_merge_bench() {
        let t = std::time::Instant::now();
        let mut plan = Plan::default();
        let day0 = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        for i in 0..1_000_000u64 {
            let account = format!("{:012}", 100_000_000_000 + i % 300);
            let region = if i % 2 == 0 { "us-east-1" } else { "eu-west-1" };
            let day = day0 + chrono::Duration::days((i / 600 % 365) as i64);
            plan.objects.push(ObjectRef {
                key: format!(
                    "AWSLogs/o-exampleorg/{account}/CloudTrail/{region}/{}/{account}_CloudTrail_{region}_{}T0000Z_{i:016x}.json.gz",
                    day.format("%Y/%m/%d"),
                    day.format("%Y%m%d")
                ),
                size: 2_000 + (i * 7919) % 30_000,
                storage_class: None,
                prefix: DayPrefix {
                    account,
                    region: region.into(),
                    day,
                },
            });
        }
        plan.objects.sort();
        plan.prefixes = plan.objects.iter().map(|o| o.prefix.clone()).collect();
        let built = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        plan.days = crate::plan::tally(&plan.prefixes, &plan.objects);
        let shards = assign(&plan.days, 100);
        let assigned = t.elapsed().as_secs_f64();
        let objects = std::mem::take(&mut plan.objects);
        let sharded = super::tests::sharded("s3://org-trail", plan, shards);
        let t = std::time::Instant::now();
        let bytes = serde_json::to_vec(&sharded).unwrap();
        let written = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let back: ShardedPlan = serde_json::from_slice(&bytes).unwrap();
        let read = t.elapsed().as_secs_f64();
        assert_eq!(
            back.plan.days.iter().map(|f| f.objects).sum::<u64>(),
            1_000_000
        );
        let sizes: Vec<u64> = back
            .shards
            .iter()
            .map(|s| s.iter().map(|&i| back.plan.days[i as usize].bytes).sum())
            .collect();
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        println!(
            "plan of 1,000,000 objects in {} folders: build {built:.2} s, tally and assign 100 shards {assigned:.2} s (largest/smallest {:.3}), write {written:.2} s, read {read:.2} s, {:.1} MB of JSON; peak RSS {:?} MiB",
            back.plan.days.len(),
            *max as f64 / *min as f64,
            bytes.len() as f64 / 1e6,
            crate::progress::peak_rss_mib()
        );
        drop(back);
        // 100 shard results of 10,000 rows, merged as `merge` reads them.
        let bodies: Vec<Vec<u8>> = (0..100)
            .map(|k| {
                let manifest: Vec<ManifestRow> = (0..10_000)
                    .map(|j| {
                        let o = &objects[k * 10_000 + j];
                        ManifestRow {
                            object: o.key.clone(),
                            size_bytes: o.size,
                            status: crate::scan::ObjectStatus::Read,
                            reason: None,
                            records: 40,
                            kms_records: 3,
                            malformed_records: 0,
                            unattributable_uses: 0,
                            account_id: o.prefix.account.clone(),
                            region: o.prefix.region.clone(),
                            delivery_date: o.prefix.day,
                            archived: false,
                            sha256: Some("0".repeat(64)),
                        }
                    })
                    .collect();
                serde_json::to_vec(&ShardBody {
                    manifest,
                    uses: vec![],
                    stats: ScanStats::default(),
                    changed: vec![],
                })
                .unwrap()
            })
            .collect();
        let t = std::time::Instant::now();
        let mut merged = ScanResult::default();
        for b in &bodies {
            let body: ShardBody = serde_json::from_slice(b).unwrap();
            merged = merged.merge(ScanResult {
                manifest: body.manifest,
                uses: body.uses,
                stats: body.stats,
                ..ScanResult::default()
            });
        }
        println!(
            "merge of 100 shard results ({:.1} MB of JSON, {} manifest rows): {:.2} s; peak RSS {:?} MiB",
            bodies.iter().map(Vec::len).sum::<usize>() as f64 / 1e6,
            merged.manifest.len(),
            t.elapsed().as_secs_f64(),
            crate::progress::peak_rss_mib()
        );
    }
}
