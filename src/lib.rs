//! keytrail: was this AWS KMS key ever used — when, by whom, and how sure are we?
//!
//! The pipeline is the architecture; data flows one way:
//! `inventory → tracking → plan → scan → correlate → report`.
//! `plan`, `scan::decode`, `scan::record` and `correlate` are pure; `scan::list`/`scan::fetch`
//! read the archive; only `report` writes files. `synth` generates test archives with their
//! ground truth.

pub mod config;
pub mod correlate;
pub mod inventory;
pub mod model;
pub mod plan;
pub mod report;
pub mod scan;
pub mod synth;
pub mod tracking;

use config::Config;
use report::{Staging, Summary};
use scan::record::KeyIndex;

/// The result of a finished run.
#[derive(Debug)]
pub struct RunOutcome {
    pub summary: Summary,
}

/// Runs the whole job on `cfg`. Errors are fatal (exit 2); incomplete evidence is not an error
/// but shows in the outcome.
pub fn run(cfg: &Config) -> anyhow::Result<RunOutcome> {
    let started = std::time::Instant::now();
    let archive = scan::list::open(&cfg.logs)?;
    let keys = inventory::read_snapshot(&cfg.usage)?;
    let staging = Staging::create(&cfg.out, cfg.overwrite)?;
    let starts = scan::list::archive_starts(&archive)?;
    let plan = plan::plan(&keys, &starts, cfg.backfill, cfg.since);
    let objects = scan::list::list(&archive, &plan.prefixes)?;
    let index = KeyIndex::new(keys.iter().map(|k| (&k.arn, k.aliases.as_slice())));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .build()?;
    let scanned = pool.install(|| scan::scan(&objects, &index));
    let correlated = correlate::correlate(&keys, &plan, scanned.uses, &scanned.manifest);
    let mut summary = Summary::new(
        &correlated.findings,
        correlated.events.len(),
        scanned.stats,
        plan.prefixes.len(),
    );
    summary.arguments = cfg.arguments.clone();
    summary.backfill = cfg.backfill.as_str();
    summary.since = cfg.since;
    summary.threads = pool.current_num_threads();
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    report::write(staging.path(), &correlated, &scanned.manifest, &summary)?;
    staging.commit()?;
    Ok(RunOutcome { summary })
}
