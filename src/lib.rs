//! keytrail: was this AWS KMS key ever used — when, by whom, and how sure are we?
//!
//! The pipeline is the architecture; data flows one way:
//! `inventory → tracking → plan → scan → correlate → report`.
//! `plan`, `scan::decode`, `scan::record` and `correlate` are pure; `scan::list`/`scan::fetch`
//! read the archive; only `report` writes files. `synth` generates test archives with their
//! ground truth.

pub mod aws;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod correlate;
pub mod integrity;
pub mod interrupt;
pub mod inventory;
pub mod lookup;
pub mod model;
pub mod plan;
pub mod progress;
pub mod report;
pub mod scan;
pub mod synth;
pub mod tracking;
pub mod trails;

use config::{Config, Logs, Regions, Usage};
use report::{Staging, Summary};
use scan::list::ObjectRef;
use scan::record::KeyIndex;
use scan::s3::S3Store;
use scan::store::{LocalStore, Store};
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
    if let Logs::Local(dir) = &cfg.logs {
        anyhow::ensure!(dir.is_dir(), "--logs {}: no such directory", dir.display());
    }
    let staging = Staging::create(&cfg.out, cfg.overwrite)?;
    let checkpoint_dir = checkpoint::dir_for(&cfg.out);
    let kept_usage = checkpoint_dir.join(checkpoint::USAGE);
    let snapshot = match &cfg.usage {
        Usage::File(path) => Some(inventory::read_snapshot(path)?),
        // A resumed live run reports on the GetKeyLastUsage answers the interrupted one took.
        Usage::Aws if cfg.resume && kept_usage.exists() => {
            Some(inventory::read_snapshot(&kept_usage)?)
        }
        Usage::Aws => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .build()?;
    let needs_aws = snapshot.is_none() || !matches!(cfg.logs, Logs::Local(_));
    let aws =
        needs_aws.then(|| rt.block_on(aws::load(cfg.profile.as_deref(), cfg.region.as_deref())));
    let mut warnings = Vec::new();
    let keys = match (snapshot, &aws) {
        (Some(keys), _) => keys,
        (None, Some(aws)) => {
            let keys = rt.block_on(live_inventory(
                aws,
                &cfg.regions,
                cfg.kms_rate,
                &mut warnings,
            ))?;
            let path = staging.path().join("usage.jsonl");
            inventory::write_snapshot(&keys, &path)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            keys
        }
        (None, None) => unreachable!("live mode loads the AWS configuration"),
    };
    let index = Arc::new(KeyIndex::new(
        keys.iter().map(|k| (&k.arn, k.aliases.as_slice())),
    ));
    // Live runs check the trails; a snapshot replay stays off the CloudTrail API. `--logs auto`
    // reads them once, to find the archive and to check it.
    let (logs, trails) = match (&aws, &cfg.usage, &cfg.logs) {
        (Some(aws), _, Logs::Auto) => {
            let found = rt.block_on(trails::discover(aws, &key_regions(&keys), None, ""))?;
            let logs = trail_destination(&found, &keys)?;
            let trails = review_trails(Ok(found), &logs, &mut warnings);
            (logs, trails)
        }
        (Some(aws), Usage::Aws, logs) => {
            let (bucket, prefix) = match logs {
                Logs::S3 { bucket, prefix } => (Some(bucket.as_str()), prefix.as_str()),
                Logs::Local(_) | Logs::Auto => (None, ""),
            };
            let found = rt.block_on(trails::discover(aws, &key_regions(&keys), bucket, prefix));
            (logs.clone(), review_trails(found, logs, &mut warnings))
        }
        (_, _, logs) => (logs.clone(), None),
    };
    let mut verify_with = VerifyWith {
        signatures: match &cfg.integrity.signatures {
            Some(p) => integrity::read_signatures(p)?,
            None => Default::default(),
        },
        public_keys: integrity::read_public_keys(&cfg.integrity.public_keys)?,
    };
    // The checkpoint is opened once the archive is listed: whether logs are hashed (part of its
    // identity) depends on whether digests exist.
    let setup = |located: &Located| -> anyhow::Result<ScanSetup> {
        let limits = integrity_limits(cfg, located);
        let identity = checkpoint::Identity::new(&logs, &keys, limits);
        let checkpoint = checkpoint::Checkpoint::open(&checkpoint_dir, &identity, cfg.resume)?;
        if matches!(cfg.usage, Usage::Aws) {
            let staged = staging.path().join("usage.jsonl");
            if staged.exists() {
                keep_usage(&staged, &checkpoint_dir);
            } else {
                // Resumed from the kept snapshot: the report carries it as an uninterrupted run's would.
                std::fs::copy(&kept_usage, &staged)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", staged.display()))?;
            }
        }
        interrupt::kill_point("start", 0);
        let (held, todo) = checkpoint.take(&located.objects);
        let progress = progress::Progress::scan(
            todo.len() as u64,
            todo.iter().map(|o| o.size).sum(),
            cfg.progress,
        );
        Ok(ScanSetup {
            limits,
            checkpoint,
            held,
            todo,
            progress,
        })
    };
    let (plan, held, fresh, digests, checkpoint) = match (&logs, &aws) {
        (Logs::Local(dir), _) => {
            let store = LocalStore { root: dir.clone() };
            let located = rt.block_on(locate(&store, "", &keys, cfg, trails.as_deref()))?;
            let s = setup(&located)?;
            let fresh = pool.install(|| {
                scan::scan_local(&store, &s.todo, &index, s.limits, &|o, r| s.record(o, r))
            });
            s.progress.finish();
            let digests = located
                .digests
                .into_iter()
                .map(|d| {
                    let bytes = scan::fetch::read_local(&store, &d);
                    (d, bytes)
                })
                .collect();
            (located.plan, s.held, fresh, digests, s.checkpoint)
        }
        (Logs::S3 { bucket, prefix }, Some(aws)) => rt.block_on(async {
            let store = S3Store::connect(aws, bucket).await?;
            let located = locate(&store, prefix, &keys, cfg, trails.as_deref()).await?;
            let s = setup(&located)?;
            let fresh = scan::s3::scan(
                &store,
                &s.todo,
                index.clone(),
                &pool,
                scan::s3::InFlight {
                    objects: cfg.concurrency,
                    bytes: cfg.max_in_flight,
                },
                s.limits,
                &|o, r| s.record(o, r),
            )
            .await;
            s.progress.finish();
            let digests = s3_digests(
                &store,
                aws,
                located.digests,
                cfg,
                &mut verify_with,
                &mut warnings,
            )
            .await;
            anyhow::Ok((located.plan, s.held, fresh, digests, s.checkpoint))
        })?,
        (Logs::S3 { .. } | Logs::Auto, None) => unreachable!("s3:// loads the AWS configuration"),
        (Logs::Auto, Some(_)) => unreachable!("auto is resolved to s3:// above"),
    };
    let resumed_objects = held.len();
    let scanned = scan::merge(checkpoint::rejoin(held, fresh));
    let checked = check_integrity(
        cfg,
        digests,
        &scanned.manifest,
        &plan,
        &verify_with,
        trails.as_deref(),
        &mut warnings,
    );
    let mut copies = scanned.uses;
    if let (Some(aws), Usage::Aws) = (&aws, &cfg.usage) {
        // Last uses the archive does not hold: ask CloudTrail's event history (last 90 days).
        let missing = lookup::missing_events(&keys, &copies);
        if !missing.is_empty() {
            copies.extend(rt.block_on(lookup::lookup(aws, &missing, &index, &mut warnings)));
        }
    }
    let correlated =
        correlate::correlate(&keys, &plan, copies, &scanned.manifest, checked.as_ref());
    let mut summary = Summary::new(
        &correlated.findings,
        correlated.events.len(),
        scanned.stats,
        plan.prefixes.len(),
    );
    summary.warnings.extend(warnings);
    summary.arguments = cfg.arguments.clone();
    summary.logs = logs.to_string();
    summary.backfill = cfg.backfill.as_str();
    summary.since = cfg.since;
    summary.threads = pool.current_num_threads();
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    summary.resumed_objects = resumed_objects;
    summary.peak_rss_mib = bench::peak_rss_mib();
    if let Some(e) = checkpoint.error() {
        summary.warnings.push(format!(
            "the resume checkpoint {} could not be written ({e}); a resumed run would scan again",
            checkpoint.path().display()
        ));
    }
    summary.integrity = checked.as_ref().map(report::IntegritySummary::of);
    if let Some(i) = summary.integrity.as_ref().filter(|i| i.findings() > 0) {
        summary.warnings.push(format!(
            "{} log file integrity finding(s); see integrity/ — verdicts in the days concerned are not stronger than that",
            i.findings()
        ));
    }
    report::write(
        staging.path(),
        &correlated,
        &scanned.manifest,
        checked.as_ref(),
        &summary,
    )?;
    interrupt::kill_point("commit", 0);
    staging.commit()?;
    checkpoint.remove();
    Ok(RunOutcome { summary })
}

/// What digest signatures are checked with: the signatures (S3 metadata, or
/// `--digest-signatures`) and CloudTrail's public keys (`--public-key`, or ListPublicKeys).
struct VerifyWith {
    /// Digest object key -> hex signature.
    signatures: std::collections::HashMap<String, String>,
    public_keys: integrity::PublicKeys,
}

/// Fetches an S3 archive's digests, taking CloudTrail's signature of each from its metadata and,
/// unless `--public-key` gave them, the public keys from ListPublicKeys. Where the keys could not
/// be listed, those signatures go unverified (with a warning) rather than reported as bad.
async fn s3_digests(
    store: &S3Store,
    aws: &aws::Aws,
    digests: Vec<ObjectRef>,
    cfg: &Config,
    verify_with: &mut VerifyWith,
    warnings: &mut Vec<String>,
) -> Vec<(ObjectRef, Result<Vec<u8>, String>)> {
    use futures::StreamExt;
    let fetched = futures::stream::iter(digests)
        .map(|d| async {
            let got = store.get_with_signature(&d.key).await;
            (d, got)
        })
        .buffered(cfg.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut digests = Vec::with_capacity(fetched.len());
    for (d, got) in fetched {
        digests.push(match got {
            Ok((bytes, signature)) => {
                // CloudTrail's own signature (object metadata) is the one to check.
                if let Some(sig) = signature {
                    verify_with.signatures.insert(d.key.clone(), sig);
                }
                (d, Ok(bytes))
            }
            Err(e) => (d, Err(e)),
        });
    }
    if !digests.is_empty() && cfg.integrity.public_keys.is_empty() {
        let failed = cloudtrail_keys(aws, &digests, &mut verify_with.public_keys, warnings).await;
        for (d, _) in &digests {
            if failed.contains(d.prefix.region.as_str()) {
                verify_with.signatures.remove(&d.key);
            }
        }
    }
    digests
}

/// The digest check over what was scanned, as `--verify-integrity` asks; `None` when it did not
/// run (and a warning when it should have been able to).
fn check_integrity(
    cfg: &Config,
    digests: Vec<(ObjectRef, Result<Vec<u8>, String>)>,
    manifest: &[scan::ManifestRow],
    plan: &plan::Plan,
    verify_with: &VerifyWith,
    trails: Option<&[trails::Trail]>,
    warnings: &mut Vec<String>,
) -> Option<integrity::Checked> {
    use config::VerifyMode;
    if digests.is_empty() && cfg.integrity.mode != VerifyMode::Off {
        for t in trails
            .iter()
            .copied()
            .flatten()
            .filter(|t| t.log_file_validation)
        {
            warnings.push(format!(
                "trail {} has log file validation enabled, but the archive holds no digest files for the planned days: they may have been removed; integrity was not checked",
                t.arn
            ));
        }
    }
    let checked = match (cfg.integrity.mode, digests.is_empty()) {
        (VerifyMode::Off, _) | (VerifyMode::Auto, true) => return None,
        (VerifyMode::On, true) => {
            warnings.push(
                "--verify-integrity on: no digest files found for the planned accounts and regions; nothing could be verified"
                    .into(),
            );
            return None;
        }
        (_, false) => integrity::check(
            digests,
            manifest,
            &plan.prefixes,
            &verify_with.signatures,
            &verify_with.public_keys,
        ),
    };
    if checked.signatures_unchecked > 0 {
        warnings.push(format!(
            "{} digest signature(s) not verified (no signature or no public key: pass --digest-signatures and --public-key for a local archive)",
            checked.signatures_unchecked
        ));
    }
    Some(checked)
}

/// Keeps the live run's usage snapshot in the checkpoint, for a resume (best effort: without it a
/// resume asks KMS again).
fn keep_usage(snapshot: &std::path::Path, checkpoint_dir: &std::path::Path) {
    if let Ok(bytes) = std::fs::read(snapshot) {
        let _ = std::fs::create_dir_all(checkpoint_dir);
        let _ = checkpoint::write_atomically(&checkpoint_dir.join(checkpoint::USAGE), &bytes);
    }
}

/// Live inventory and tracking: every key of every requested region with its
/// `GetKeyLastUsage` answer, or the reason it failed.
pub async fn live_inventory(
    aws: &aws::Aws,
    regions: &Regions,
    kms_rate: f64,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Vec<inventory::Key>> {
    let regions = match regions {
        Regions::Configured => vec![aws.region().to_string()],
        Regions::List(list) => list.clone(),
        Regions::All => inventory::live::enabled_regions(aws).await?,
    };
    let mut keys = Vec::new();
    for region in &regions {
        keys.extend(inventory::live::keys_in_region(aws, region, warnings).await?);
    }
    keys.sort_by(|a, b| a.arn.cmp(&b.arn));
    tracking::live::track(aws, &mut keys, kms_rate).await;
    Ok(keys)
}

/// The trails that deliver to the archive, with a warning per trail that limits the evidence;
/// `None` (and a warning) when there are none or they could not be read.
fn review_trails(
    found: anyhow::Result<Vec<trails::Trail>>,
    logs: &Logs,
    warnings: &mut Vec<String>,
) -> Option<Vec<trails::Trail>> {
    match found {
        Ok(found) if found.is_empty() => {
            warnings.push(format!(
                "no trail delivers to {logs}; whether it logged KMS calls was not checked"
            ));
            None
        }
        Ok(found) => {
            for t in &found {
                if let trails::Coverage::None(why) | trails::Coverage::Partial(why) = &t.coverage {
                    warnings.push(format!("trail {} may not log KMS calls: {why}", t.arn));
                }
            }
            warnings.push(
                "trail event selectors were checked as they are today; earlier changes (PutEventSelectors) are not visible"
                    .into(),
            );
            Some(found)
        }
        Err(e) => {
            warnings.push(format!(
                "trails not checked ({e:#}); verdicts assume the archive's trail logged KMS calls"
            ));
            None
        }
    }
}

fn key_regions(keys: &[inventory::Key]) -> Vec<String> {
    let mut regions: Vec<String> = keys.iter().map(|k| k.arn.region().to_string()).collect();
    regions.sort();
    regions.dedup();
    regions
}

/// `--logs auto`: the one S3 location the trails of the keys' regions deliver to.
fn trail_destination(found: &[trails::Trail], keys: &[inventory::Key]) -> anyhow::Result<Logs> {
    let mut places: Vec<(String, String)> = found
        .iter()
        .map(|t| (t.bucket.clone(), t.prefix.clone()))
        .collect();
    places.sort();
    places.dedup();
    match &places[..] {
        [(bucket, prefix)] => Ok(Logs::S3 {
            bucket: bucket.clone(),
            prefix: prefix.clone(),
        }),
        [] => anyhow::bail!(
            "--logs auto: no trail in {} delivers to S3; pass --logs s3://...",
            key_regions(keys).join(", ")
        ),
        many => {
            anyhow::bail!(
            "--logs auto: the trails deliver to {} places ({}); pass the one to scan with --logs",
            many.len(),
            many.iter().map(|(b, p)| format!("s3://{b}/{p}")).collect::<Vec<_>>().join(", ")
        )
        }
    }
}

/// The digest-signing keys from CloudTrail `ListPublicKeys`, in each region the digests come from,
/// over the period they span. Returns the regions where they could not be listed: there the
/// signatures go unverified (a warning), rather than every digest being reported as signed by an
/// unknown key.
async fn cloudtrail_keys<'d>(
    aws: &aws::Aws,
    digests: &'d [(ObjectRef, Result<Vec<u8>, String>)],
    keys: &mut integrity::PublicKeys,
    warnings: &mut Vec<String>,
) -> std::collections::BTreeSet<&'d str> {
    let mut failed = std::collections::BTreeSet::new();
    let mut regions: std::collections::BTreeMap<&str, (chrono::NaiveDate, chrono::NaiveDate)> =
        Default::default();
    for (d, _) in digests {
        let span = regions
            .entry(d.prefix.region.as_str())
            .or_insert((d.prefix.day, d.prefix.day));
        span.0 = span.0.min(d.prefix.day);
        span.1 = span.1.max(d.prefix.day);
    }
    keys.try_all = false;
    for (region, (first, last)) in regions {
        let from = model::start_of(first) - chrono::Duration::days(1);
        let to = model::start_of(last) + chrono::Duration::days(1);
        match trails::list_public_keys(aws, region, from, to).await {
            Ok(found) => keys.keys.extend(found),
            Err(e) => {
                warnings.push(format!(
                    "{e:#}; digest signatures in {region} could not be verified"
                ));
                failed.insert(region);
            }
        }
    }
    failed
}

/// A scan about to run: its limits, its checkpoint, what the checkpoint already holds, what is
/// left to scan, and its progress bar.
struct ScanSetup {
    limits: scan::decode::Limits,
    checkpoint: checkpoint::Checkpoint,
    held: Vec<(usize, scan::Scanned)>,
    todo: Vec<ObjectRef>,
    progress: progress::Progress,
}

impl ScanSetup {
    /// One object is done: journal it and show it.
    fn record(&self, obj: &ObjectRef, scanned: &scan::Scanned) {
        self.checkpoint.record(obj, scanned);
        self.progress.object(obj.size);
    }
}

/// What `locate` found: the plan, its log objects, and the digests of its days.
struct Located {
    plan: plan::Plan,
    objects: Vec<ObjectRef>,
    digests: Vec<ObjectRef>,
}

/// The limits of this run: logs are hashed when digests will be checked.
fn integrity_limits(cfg: &Config, located: &Located) -> scan::decode::Limits {
    scan::decode::Limits {
        hash: match cfg.integrity.mode {
            config::VerifyMode::Off => false,
            config::VerifyMode::On | config::VerifyMode::Auto => !located.digests.is_empty(),
        },
        ..cfg.limits
    }
}

/// Finds the archive's trail folders and extent in `store` below `start`, plans (with what the
/// trails say about each account and region), and lists the planned day folders (and, unless
/// integrity checking is off, their digest folders).
async fn locate<S: Store>(
    store: &S,
    start: &str,
    keys: &[inventory::Key],
    cfg: &Config,
    trails: Option<&[trails::Trail]>,
) -> anyhow::Result<Located> {
    let archive = scan::list::discover(store, start).await?;
    let starts = scan::list::archive_starts(store, &archive).await?;
    let mut plan = plan::plan(keys, &starts, cfg.backfill, cfg.since);
    if let Some(trails) = trails {
        plan::add_limits(&mut plan, |account, region| {
            trails::limits_for(trails, account, region)
        });
    }
    let objects = scan::list::list(store, &archive, &plan.prefixes).await?;
    let digests = match cfg.integrity.mode {
        config::VerifyMode::Off => Vec::new(),
        _ => scan::list::list_digests(store, &archive, &plan.prefixes).await?,
    };
    Ok(Located {
        plan,
        objects,
        digests,
    })
}
