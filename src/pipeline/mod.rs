//! pipeline: one run, stage after stage, each a function from one named value to the next —
//! `Inventory` → `Tracked` keys → `Source` (the archive and its trails) → `Plan` → `ScanResult`
//! → `Evidence` (with the digest check and CloudTrail's event history) → `Correlated` → the
//! report. Nothing here decides anything: it wires the stages, the runtimes they run on and the
//! resume checkpoint together.

use crate::archive::{self, Archive};

pub mod shard;
pub mod store;
use crate::config::{Config, Logs, Usage};
use crate::inventory;
use crate::model::Warnings;
use crate::report::{self, Summary};
use crate::scan::record::KeyIndex;
use crate::{aws, checkpoint, correlate, integrity, interrupt, lookup, plan, tracking, trails};
use std::sync::Arc;

/// The result of a finished run.
#[derive(Debug)]
pub struct RunOutcome {
    pub summary: Summary,
}

/// Runs the whole job on `cfg`. Errors are fatal (exit 2); incomplete evidence is not an error
/// but shows in the outcome.
pub fn run(cfg: &Config) -> anyhow::Result<RunOutcome> {
    let started = std::time::Instant::now();
    cfg.logs.check()?;
    let verify_with = integrity::live::VerifyWith::read(cfg)?;
    let staging = store::Output::create(&cfg.out, cfg.overwrite, cfg)?;
    let journal = checkpoint::dir_for(&cfg.out);
    if !cfg.resume {
        // An interrupted run's checkpoint is not this run's.
        checkpoint::discard(&journal);
    }
    let source = inventory::Source::of(&cfg.usage, &journal.join(checkpoint::USAGE), cfg.resume);
    let engines = Engines::start(cfg, source.is_live() || !matches!(cfg.logs, Logs::Local(_)))?;
    let mut warnings = Warnings::default();
    let prepared = prepare(
        cfg,
        &engines,
        source,
        &journal,
        plan::list::Objects::Keep,
        &mut warnings,
    )?;
    let scanner =
        checkpoint::Scanner::open(cfg, &prepared.dest.logs, &prepared.tracked, &prepared.plan)?;
    let scanned = scanner.scan(
        &engines.rt,
        &prepared.archive,
        &prepared.plan.objects,
        &prepared.index,
        cfg,
    );
    finish(
        cfg,
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

/// What the stages before the scan give: the keys with their answers, where the logs are, the
/// archive opened, the plan, and the keys' index for attribution.
pub(crate) struct Prepared {
    pub tracked: tracking::Tracked,
    pub dest: trails::Destination,
    pub archive: archive::AnyArchive,
    pub plan: plan::Plan,
    pub index: Arc<KeyIndex>,
}

/// Inventory, tracking, the trails, the archive and the plan (with its objects, or only what each
/// folder holds).
pub(crate) fn prepare(
    cfg: &Config,
    engines: &Engines,
    source: inventory::Source,
    journal: &std::path::Path,
    objects: plan::list::Objects,
    warnings: &mut Warnings,
) -> anyhow::Result<Prepared> {
    let aws = engines.aws.as_ref();
    let rt = &engines.rt;
    // A live inventory journals its progress, so that --resume goes on where it stopped.
    let (inventory_journal, held) = match source.is_live() {
        true => {
            let path = journal.join(inventory::journal::FILE);
            let (j, held) = inventory::journal::Journal::open(&path, cfg.resume);
            (Some(j), Some(held))
        }
        false => (None, None),
    };
    let (inventory, sessions) = rt.block_on(inventory::live::take(
        source,
        aws,
        &cfg.regions,
        &cfg.reach,
        inventory_journal.as_ref().zip(held),
        cfg.progress,
        warnings,
    ))?;
    let tracked = rt.block_on(tracking::live::track_inventory(
        inventory,
        sessions.as_ref(),
        cfg.kms_rate,
        inventory_journal.as_ref(),
        warnings,
    ));
    let dest = rt.block_on(trails::review(cfg, aws, &tracked.keys, warnings))?;
    let archive = open_archive(cfg, engines, &dest.logs)?;
    let plan = rt.block_on(plan::list::make(
        &archive,
        &tracked.keys,
        dest.trails(),
        cfg,
        objects,
    ))?;
    let index = key_index(&tracked);
    Ok(Prepared {
        tracked,
        dest,
        archive,
        plan,
        index,
    })
}

/// The keys (and aliases) uses are attributed to.
pub(crate) fn key_index(tracked: &tracking::Tracked) -> Arc<KeyIndex> {
    Arc::new(KeyIndex::new(
        tracked.keys().map(|k| (&k.arn, k.aliases.as_slice())),
    ))
}

/// The archive, read with --logs-role-arn's session when given (a log-archive account).
pub(crate) fn open_archive(
    cfg: &Config,
    engines: &Engines,
    logs: &Logs,
) -> anyhow::Result<archive::AnyArchive> {
    let aws = engines.aws.as_ref();
    let logs_session = match (&cfg.reach.logs_role_arn, aws, logs) {
        (Some(role), Some(aws), Logs::S3 { .. }) => Some(
            engines
                .rt
                .block_on(aws.assume(role, cfg.reach.external_id.as_deref()))
                .map_err(|e| anyhow::anyhow!("--logs-role-arn: {e}"))?,
        ),
        _ => None,
    };
    engines.rt.block_on(archive::open(
        logs,
        logs_session.as_ref().or(aws),
        cfg.s3_inventory.as_deref(),
    ))
}

/// Everything after the plan's objects were scanned: the callers' folders, the digest check,
/// CloudTrail's event history, the correlation and the report, committed into place.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish(
    cfg: &Config,
    engines: &Engines,
    prepared: Prepared,
    scanned: crate::scan::ScanResult,
    scanner: checkpoint::Scanner,
    verify_with: integrity::live::VerifyWith,
    staging: store::Output,
    mut warnings: Warnings,
    started: std::time::Instant,
) -> anyhow::Result<RunOutcome> {
    let Prepared {
        tracked,
        dest,
        archive,
        plan,
        index,
    } = prepared;
    let aws = engines.aws.as_ref();
    let rt = &engines.rt;
    let (plan, mut scanned) = scanner.read_callers(rt, &archive, plan, scanned, &index, cfg)?;
    // Everything is read: alias-only records resolve as their aliases pointed then.
    crate::scan::aliases::resolve(&mut scanned, &index);
    // CloudTrail's public keys are asked for where the digests come from S3.
    let cloudtrail = aws.filter(|_| archive.bucket().is_some());
    let evidence = rt.block_on(integrity::live::check(
        &archive,
        cloudtrail,
        &plan,
        scanned,
        verify_with,
        cfg,
        dest.trails(),
        &mut warnings,
    ));
    let live = aws.filter(|_| cfg.usage == Usage::Aws);
    let evidence = rt.block_on(lookup::fill(
        evidence,
        live,
        &tracked,
        &index,
        &mut warnings,
    ));
    let correlated = correlate::correlate(&tracked.keys, &plan, &evidence);

    let summary = Summary::of_run(
        &correlated,
        &evidence,
        &plan,
        report::RunFacts {
            arguments: cfg.arguments.clone(),
            logs: dest.logs.to_string(),
            backfill: cfg.backfill.as_str(),
            since: cfg.since,
            threads: cfg.threads,
            elapsed_seconds: started.elapsed().as_secs_f64(),
            resumed_objects: scanner.resumed_objects(),
            checkpoint_error: scanner.error(),
            accounts: inventory::accounts::rows(&tracked.accounts, tracked.keys()),
        },
        warnings,
    );
    report::write_usage(staging.path(), &tracked)?;
    report::write(staging.path(), &correlated, &evidence, &summary)?;
    let out = cfg.out.to_string_lossy();
    let accounts = tracked
        .keys()
        .map(|k| k.arn.account().to_string())
        .collect();
    let regions = tracked.keys().map(|k| k.arn.region().to_string()).collect();
    report::athena::write(
        staging.path(),
        out.strip_prefix("s3://").map(|_| out.as_ref()),
        &out,
        &accounts,
        &regions,
    )?;
    interrupt::kill_point("commit", 0);
    staging.commit()?;
    scanner.finish();
    Ok(RunOutcome { summary })
}

/// The run's runtime: one thread, the one that drives the run (`block_on`). Network I/O on one
/// thread wakes nothing across threads: on the `many-small` archive over S3 this took keytrail's
/// CPU per object from 406 to 259 µs (tests/bench/README.md). The scan goes further, thread per
/// core: this thread and one more per core, each with a runtime of its own that gets objects and
/// decodes them (`scan::fetch`).
pub fn io_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// What the stages run on: the run's runtime ([`io_runtime`]; the scan adds its own workers), and
/// the AWS configuration when the run talks to AWS (live keys, or an archive in S3).
pub(crate) struct Engines {
    pub rt: tokio::runtime::Runtime,
    pub aws: Option<aws::Aws>,
}

impl Engines {
    /// The runtime, and the AWS configuration when `needs_aws`.
    pub fn start(cfg: &Config, needs_aws: bool) -> anyhow::Result<Engines> {
        let rt = io_runtime()?;
        let aws = needs_aws
            .then(|| rt.block_on(aws::load(cfg.profile.as_deref(), cfg.region.as_deref())));
        Ok(Engines { rt, aws })
    }
}
