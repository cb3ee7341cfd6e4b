//! The `keytrail` command: parse flags, resolve them once into a `Config`, run, map the result to
//! an exit code (0 clean, 1 incomplete evidence or unreadable objects, 2 usage or fatal error).

use clap::{Parser, Subcommand, ValueEnum};
use keytrail::config::{BackfillScope, Config, Logs, Regions, Usage};
use keytrail::synth::{self, Preset, SynthOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "keytrail",
    version,
    about = "Prove whether AWS KMS keys were ever used: GetKeyLastUsage + the CloudTrail archive, as Athena-ready Parquet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify every key, backfill pre-tracking usage from the CloudTrail archive, write the report.
    Run(RunArgs),
    /// Write only the usage snapshot (live KMS inventory and GetKeyLastUsage), for a scan elsewhere.
    Inventory {
        /// The snapshot file to write (JSON Lines).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        live: LiveArgs,
    },
    /// Plan a run for many machines: resolve the keys, list the archive, assign the objects to
    /// shards, and print what it will cost and take. No log object is read.
    Plan {
        #[command(flatten)]
        run: RunArgs,
        /// Shards to split the objects into (e.g. the array size of an AWS Batch job).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10000), conflicts_with = "shard_gib")]
        shards: Option<u64>,
        /// Or: as many shards as it takes for each to hold about this many GiB (gzip, as stored).
        #[arg(long)]
        shard_gib: Option<f64>,
    },
    /// Scan one shard of a plan (`--out PLAN` of `keytrail plan`) into a directory of results.
    Scan {
        #[arg(long)]
        plan: PathBuf,
        /// K/N (0-based K), or `auto`: K from AWS_BATCH_JOB_ARRAY_INDEX or JOB_COMPLETION_INDEX.
        #[arg(long)]
        shard: String,
        /// The directory every shard writes its result to.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        engine: ShardArgs,
    },
    /// Merge every shard's result of a plan into the report (refused if any is missing).
    Merge {
        #[arg(long)]
        plan: PathBuf,
        /// The directory the shards wrote their results to.
        #[arg(long)]
        shards: PathBuf,
        /// Report directory (created; must not exist or be empty unless --overwrite).
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing report in --out.
        #[arg(long)]
        overwrite: bool,
        #[command(flatten)]
        engine: ShardArgs,
    },
    /// Measure the scan against the inflate-only floor on a local archive (planned as --backfill all).
    Bench {
        #[arg(long)]
        usage: PathBuf,
        #[arg(long)]
        logs: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// The same archive in S3 (s3://bucket[/prefix], e.g. a loopback S3 server through
        /// AWS_ENDPOINT_URL): adds a phase scanning it over the network, beside the local scan.
        #[arg(long)]
        s3_logs: Option<String>,
    },
    /// Generate a deterministic synthetic archive, usage snapshot and ground truth.
    Synth {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = PresetArg::Small)]
        preset: PresetArg,
        /// Organization-trail layout: AWSLogs/<org-id>/<account>/...
        #[arg(long)]
        org_id: Option<String>,
        /// Key prefix before AWSLogs/.
        #[arg(long)]
        prefix: Option<String>,
        /// Write a signed hourly digest chain (CloudTrail-Digest/), the public key
        /// (digest-public-key.der) and the signatures (digest-signatures.json).
        #[arg(long)]
        sign: bool,
        /// Break the signed archive: comma-separated kinds, one object each.
        #[arg(long, value_enum, value_delimiter = ',')]
        tamper: Vec<synth::digests::Tamper>,
        /// Each key scenario this many times per account and region (36 keys at 1; 312 makes
        /// 9,988): an inventory of an organization's size, for report.html at scale.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        copies: u32,
    },
}

/// `keytrail run`'s flags, as given; [`RunArgs::resolve`] turns them into a [`Config`].
#[derive(clap::Args)]
struct RunArgs {
    /// `aws` (live: ListKeys, DescribeKey, ListAliases, GetKeyLastUsage) or a usage snapshot
    /// file (JSON Lines of GetKeyLastUsage responses, optionally with KeyMetadata, Aliases).
    #[arg(long)]
    usage: String,
    #[command(flatten)]
    live: LiveArgs,
    /// CloudTrail archive: s3://bucket[/prefix], a local directory with the bucket's layout (an
    /// `aws s3 sync` of it), or `auto` (live: the S3 location the account's trails deliver to).
    #[arg(long)]
    logs: String,
    /// List the s3:// archive's folders from its bucket's S3 Inventory report (CSV or Parquet)
    /// instead of ListObjectsV2: s3://bucket/.../manifest.json. Days from the one before the
    /// report's creation on are still listed live.
    #[arg(long)]
    s3_inventory: Option<String>,
    /// Report directory (created; must not exist or be empty unless --overwrite).
    #[arg(long)]
    out: PathBuf,
    /// Which keys get a backfill: those unknown before tracking (default) or all.
    #[arg(long, value_enum, default_value_t = Backfill::Unknown)]
    backfill: Backfill,
    /// Start every backfill window no earlier than this (YYYY-MM-DD or ISO-8601, UTC).
    #[arg(long)]
    since: Option<String>,
    /// Also read the last N days in every region of the keys and every account the archive
    /// holds, for who still calls the keys: failed attempts there (a disabled key's callers,
    /// cross-account ones included) are counted for every key.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3660))]
    watch_days: Option<u32>,
    /// The end of --watch-days' days (YYYY-MM-DD or ISO-8601, UTC; default: now) — for a
    /// snapshot taken earlier, its time.
    #[arg(long, requires = "watch_days")]
    as_of: Option<String>,
    /// Worker threads for decompression and parsing (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// The most S3 objects fetched at once (s3:// archives): in-flight GETs start at 16 and grow
    /// while the decoders keep up, halving when S3 answers SlowDown
    #[arg(long, default_value_t = keytrail::scan::fetch::DEFAULT_CONCURRENCY,
          value_parser = clap::value_parser!(u64).range(1..))]
    concurrency: u64,
    /// MiB of S3 objects (as stored, compressed) held at once while fetched or decoded; an
    /// object larger than this is fetched alone (s3:// archives).
    #[arg(long, default_value_t = keytrail::scan::fetch::DEFAULT_IN_FLIGHT_MIB,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_in_flight_mib: u64,
    /// An object that inflates to more than this many MiB is unreadable (gzip bombs).
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..))]
    max_inflated_mib: u64,
    /// Replace an existing report in --out.
    #[arg(long)]
    overwrite: bool,
    /// Check CloudTrail's digest chain (hashes, chain, signatures) in the same pass:
    /// `auto` (default) when the archive holds digests for the planned accounts and regions.
    #[arg(long, value_enum, default_value_t = Verify::Auto)]
    verify_integrity: Verify,
    /// JSON map of digest object key -> hex signature (a local archive has no S3 metadata).
    #[arg(long)]
    digest_signatures: Option<PathBuf>,
    /// A CloudTrail public key to verify digest signatures with (DER, PEM or base64; repeatable).
    #[arg(long)]
    public_key: Vec<PathBuf>,
    /// Go on from where an interrupted run with the same arguments stopped (its checkpoint
    /// is kept next to --out until a run finishes); without it, a run starts afresh.
    #[arg(long)]
    resume: bool,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
}

/// How a shard or a merge runs (the rest comes from the plan).
#[derive(clap::Args)]
struct ShardArgs {
    /// Worker threads for decompression and parsing (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// The most S3 objects fetched at once (s3:// archives): in-flight GETs start at 16 and grow
    /// while the decoders keep up, halving when S3 answers SlowDown
    #[arg(long, default_value_t = keytrail::scan::fetch::DEFAULT_CONCURRENCY,
          value_parser = clap::value_parser!(u64).range(1..))]
    concurrency: u64,
    /// AWS profile (default: the SDK's standard chain).
    #[arg(long)]
    profile: Option<String>,
    /// AWS region for the clients.
    #[arg(long)]
    region: Option<String>,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
}

impl ShardArgs {
    /// This process's own settings; the run's come from the plan.
    fn config(&self, out: PathBuf, overwrite: bool) -> Config {
        Config {
            usage: Usage::Aws,
            reach: Default::default(),
            regions: Regions::Configured,
            kms_rate: 5.0,
            logs: Logs::Auto,
            s3_inventory: None,
            out,
            backfill: BackfillScope::Unknown,
            since: None,
            watch: None,
            threads: self.threads.unwrap_or_else(keytrail::config::cores),
            concurrency: self.concurrency as usize,
            max_in_flight: keytrail::scan::fetch::DEFAULT_IN_FLIGHT_MIB << 20,
            limits: Default::default(),
            profile: self.profile.clone(),
            region: self.region.clone(),
            overwrite,
            resume: false,
            progress: !self.quiet,
            integrity: keytrail::config::Integrity {
                mode: keytrail::config::VerifyMode::Auto,
                signatures: None,
                public_keys: Vec::new(),
            },
            arguments: std::env::args().collect(),
        }
    }
}

/// How to reach AWS.
#[derive(clap::Args)]
struct LiveArgs {
    /// Regions whose keys to inventory live (`run --usage aws`, `inventory`): comma-separated, or
    /// `all` (every enabled region; needs account:ListRegions). Default: the configured region.
    #[arg(long)]
    regions: Option<String>,
    /// GetKeyLastUsage requests per second per account and region (its quota is about 5).
    #[arg(long, default_value_t = 5.0)]
    kms_rate: f64,
    /// AWS profile (default: the SDK's standard chain).
    #[arg(long)]
    profile: Option<String>,
    /// AWS region for the clients (default: the SDK's; an S3 bucket's own region is found by itself).
    #[arg(long)]
    region: Option<String>,
    /// Whose keys: `self` (the credentials' account), `org` (every ACTIVE account of the
    /// organization; run from the management account or a delegated administrator), or
    /// comma-separated account ids.
    #[arg(long, default_value = "self")]
    accounts: String,
    /// The role assumed in each account but the credentials' own (see deploy/).
    #[arg(long, default_value = keytrail::config::DEFAULT_ROLE_NAME)]
    role_name: String,
    /// The external id the member role's trust policy requires, if any.
    #[arg(long)]
    external_id: Option<String>,
    /// Accounts examined at once; each account and region is paced on its own.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=256))]
    account_concurrency: u32,
    /// The role the archive (--logs s3://...) is read with, e.g. in the log-archive account.
    #[arg(long)]
    logs_role_arn: Option<String>,
}

impl LiveArgs {
    fn regions(&self) -> Result<Regions, String> {
        self.regions
            .as_deref()
            .map_or(Ok(Regions::Configured), Regions::parse)
    }

    fn reach(&self) -> Result<keytrail::config::Reach, String> {
        if let Some(arn) = &self.logs_role_arn {
            if !arn.starts_with("arn:") || !arn.contains(":role/") {
                return Err(format!(
                    "--logs-role-arn {arn}: expected arn:<partition>:iam::<account>:role/<name>"
                ));
            }
        }
        Ok(keytrail::config::Reach {
            accounts: keytrail::config::Accounts::parse(&self.accounts)?,
            role_name: self.role_name.clone(),
            external_id: self.external_id.clone(),
            account_concurrency: self.account_concurrency as usize,
            logs_role_arn: self.logs_role_arn.clone(),
        })
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Backfill {
    Unknown,
    All,
}

#[derive(Clone, Copy, ValueEnum)]
enum Verify {
    Auto,
    On,
    Off,
}

#[derive(Clone, Copy, ValueEnum)]
enum PresetArg {
    Small,
    Large,
    ManySmall,
}

/// How a `keytrail` process ends (the README's "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    /// The report is complete.
    Clean = 0,
    /// The report is written, but some evidence was incomplete: inconclusive keys, unreadable
    /// objects or integrity findings.
    Incomplete = 1,
    /// A usage error or a fatal one; nothing was written.
    Failed = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

fn main() -> ExitCode {
    keytrail::interrupt::install();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Failed
            } else {
                Exit::Clean
            }
            .into();
        }
    };
    let done = match cli.command {
        Command::Run(args) => run(args),
        Command::Inventory { out, live } => inventory(&out, &live),
        Command::Plan {
            run,
            shards,
            shard_gib,
        } => match (shards, shard_gib) {
            (_, Some(g)) if g.is_nan() || g <= 0.0 => Err("--shard-gib must be more than 0".into()),
            (_, Some(g)) => plan(run, keytrail::pipeline::shard::Count::PerGib(g)),
            (n, None) => plan(
                run,
                keytrail::pipeline::shard::Count::Shards(n.unwrap_or(1) as usize),
            ),
        },
        Command::Scan {
            plan,
            shard,
            out,
            engine,
        } => scan_shard(&plan, &shard, &out, &engine),
        Command::Merge {
            plan,
            shards,
            out,
            overwrite,
            engine,
        } => {
            let quiet = engine.quiet;
            let cfg = engine.config(out, overwrite);
            keytrail::pipeline::shard::merge(&plan, &shards, &cfg)
                .map_err(|e| format!("{e:#}"))
                .map(|outcome| finished(&outcome, quiet, &cfg))
        }
        Command::Bench {
            usage,
            logs,
            threads,
            s3_logs,
        } => keytrail::bench::run(&usage, &logs, threads.unwrap_or(0), s3_logs.as_deref())
            .map(|b| say(&b.render()))
            .map(|()| Exit::Clean)
            .map_err(|e| format!("{e:#}")),
        Command::Synth {
            out,
            seed,
            preset,
            org_id,
            prefix,
            sign,
            tamper,
            copies,
        } => {
            let opts = SynthOptions {
                sign,
                tamper,
                copies,
                seed,
                preset: match preset {
                    PresetArg::Small => Preset::Small,
                    PresetArg::Large => Preset::Large,
                    PresetArg::ManySmall => Preset::ManySmall,
                },
                org_id,
                prefix,
            };
            synth::generate(&out, &opts)
                .map(|s| say(&format!("{s}\n")))
                .map(|()| Exit::Clean)
                .map_err(|e| format!("{e:#}"))
        }
    };
    match done {
        Ok(exit) => exit.into(),
        Err(msg) => {
            eprintln!("keytrail: error: {msg}");
            Exit::Failed.into()
        }
    }
}

/// `keytrail run`: the whole job.
fn run(args: RunArgs) -> Result<Exit, String> {
    let quiet = args.quiet;
    let cfg = args.resolve()?;
    let outcome = keytrail::run(&cfg).map_err(|e| format!("{e:#}"))?;
    Ok(finished(&outcome, quiet, &cfg))
}

/// The summary of a finished report, and its exit code.
fn finished(outcome: &keytrail::pipeline::RunOutcome, quiet: bool, cfg: &Config) -> Exit {
    if !quiet {
        say(&outcome.summary.render());
        say(&format!("report: {}\n", cfg.out.display()));
    }
    if outcome.summary.incomplete() {
        Exit::Incomplete
    } else {
        Exit::Clean
    }
}

/// `keytrail plan`: the plan file and its estimate.
fn plan(args: RunArgs, shards: keytrail::pipeline::shard::Count) -> Result<Exit, String> {
    let quiet = args.quiet;
    let cfg = args.resolve()?;
    let (_, estimate) =
        keytrail::pipeline::shard::plan(&cfg, shards, &cfg.out).map_err(|e| format!("{e:#}"))?;
    if !quiet {
        say(&estimate.render());
        say(&format!("plan: {}\n", cfg.out.display()));
    }
    Ok(Exit::Clean)
}

/// `keytrail scan`: one shard. Exit 0 once its result is written, unreadable objects included.
fn scan_shard(
    plan: &std::path::Path,
    shard: &str,
    out: &std::path::Path,
    engine: &ShardArgs,
) -> Result<Exit, String> {
    let cfg = engine.config(out.to_path_buf(), false);
    let file = keytrail::pipeline::shard::read_plan(plan, &cfg).map_err(|e| format!("{e:#}"))?;
    let n = file.plan.shards.len();
    let k = keytrail::pipeline::shard::shard_index(shard, n)?;
    let stats =
        keytrail::pipeline::shard::scan(plan, &file, k, out, &cfg).map_err(|e| format!("{e:#}"))?;
    if !engine.quiet {
        say(&format!(
            "shard {k} of {n}: {} objects read, {} skipped, {} unreadable; result {}\n",
            stats.objects_read,
            stats.objects_skipped,
            stats.objects_unreadable,
            keytrail::pipeline::shard::shard_name(k, n)
        ));
    }
    Ok(Exit::Clean)
}

impl RunArgs {
    /// The flags resolved, once, into the run's validated settings.
    fn resolve(self) -> Result<Config, String> {
        let regions = self.live.regions()?;
        let since = match self.since.as_deref() {
            None => None,
            Some(s) => Some(keytrail::model::parse_since(s).ok_or_else(|| {
                format!("--since {s}: expected YYYY-MM-DD or an ISO-8601 timestamp")
            })?),
        };
        if self.threads == Some(0) {
            return Err("--threads must be at least 1".into());
        }
        let until = match self.as_of.as_deref() {
            None => chrono::Utc::now(),
            Some(s) => keytrail::model::parse_since(s).ok_or_else(|| {
                format!("--as-of {s}: expected YYYY-MM-DD or an ISO-8601 timestamp")
            })?,
        };
        let watch = self
            .watch_days
            .map(|days| keytrail::config::Watch { days, until });
        Ok(Config {
            usage: Usage::parse(&self.usage),
            reach: self.live.reach()?,
            regions,
            kms_rate: self.live.kms_rate,
            logs: Logs::parse(&self.logs)?,
            s3_inventory: self.s3_inventory,
            out: self.out,
            backfill: match self.backfill {
                Backfill::Unknown => BackfillScope::Unknown,
                Backfill::All => BackfillScope::All,
            },
            since,
            watch,
            threads: self.threads.unwrap_or_else(keytrail::config::cores),
            concurrency: self.concurrency as usize,
            max_in_flight: self.max_in_flight_mib << 20,
            limits: keytrail::config::DecodeLimits {
                max_inflated: self.max_inflated_mib << 20,
                ..Default::default()
            },
            profile: self.live.profile,
            region: self.live.region,
            overwrite: self.overwrite,
            resume: self.resume,
            progress: !self.quiet,
            integrity: keytrail::config::Integrity {
                mode: match self.verify_integrity {
                    Verify::Auto => keytrail::config::VerifyMode::Auto,
                    Verify::On => keytrail::config::VerifyMode::On,
                    Verify::Off => keytrail::config::VerifyMode::Off,
                },
                signatures: self.digest_signatures,
                public_keys: self.public_key,
            },
            arguments: std::env::args().collect(),
        })
    }
}

/// `keytrail inventory`: the usage snapshot alone.
fn inventory(out: &std::path::Path, live: &LiveArgs) -> Result<Exit, String> {
    let regions = live.regions()?;
    let reach = live.reach()?;
    let (keys, failed) =
        inventory_only(out, live, &regions, &reach).map_err(|e| format!("{e:#}"))?;
    say(&format!(
        "inventory: {keys} keys written to {}\n",
        out.display()
    ));
    // An account whose keys were not examined makes the snapshot incomplete.
    Ok(if failed > 0 {
        Exit::Incomplete
    } else {
        Exit::Clean
    })
}

/// `keytrail inventory`: the live snapshot alone, written atomically.
fn inventory_only(
    out: &std::path::Path,
    live: &LiveArgs,
    regions: &Regions,
    reach: &keytrail::config::Reach,
) -> anyhow::Result<(usize, usize)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut warnings = keytrail::model::Warnings::default();
    let (keys, accounts) = rt.block_on(async {
        let aws = keytrail::aws::load(live.profile.as_deref(), live.region.as_deref()).await;
        let (mut keys, accounts, sessions) = keytrail::inventory::live::organization(
            &aws,
            regions,
            reach,
            None,
            true,
            &mut warnings,
        )
        .await?;
        keytrail::tracking::live::ask(
            &sessions,
            &mut keys,
            live.kms_rate,
            &Default::default(),
            &|_| {},
            &mut warnings,
        )
        .await;
        anyhow::Ok((keys, accounts))
    })?;
    for w in warnings.as_slice() {
        eprintln!("keytrail: warning: {w}");
    }
    let tmp = out.with_extension("jsonl.keytrail-tmp");
    keytrail::inventory::write_snapshot(&accounts, &keys, &tmp)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, out)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    let failed = accounts
        .iter()
        .filter(|a| a.status == keytrail::inventory::accounts::AccountStatus::Failed)
        .count();
    Ok((keys.len(), failed))
}

/// Prints to stdout; a closed pipe (`keytrail run ... | head`) is not an error, since the
/// report is already written and the exit code still tells the outcome.
fn say(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
