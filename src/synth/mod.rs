//! synth: a deterministic generator of realistic CloudTrail archives, with a usage snapshot and
//! the ground truth a correct run must reproduce. Every trap of the README's "what counts as a use"
//! occurs in it: failed calls, non-cryptographic KMS calls, alias / bare id / alias ARN / absent
//! `keyId`, `resources` without `type`, records without `resources`, ReEncrypt, cross-account
//! double records, duplicate deliveries, midnight spill-over into the next day's folder,
//! multi-Region replicas, digest / Insights / AWS Config objects, a missing-days gap, a successful
//! call naming no key, and corrupt objects (truncated gzip, invalid JSON, zero bytes, not gzip).
//!
//! The truth is computed from what the generator meant (its semantic calls) and where it put each
//! delivered copy — never by parsing what it wrote — so it is independent of keytrail's decoder.

pub mod digests;
pub mod records;
pub mod rng;
mod truth;

use crate::model::{day_of, start_of, Instant};
use anyhow::Context;
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use flate2::write::GzEncoder;
use rayon::prelude::*;
use rng::Rng;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

pub const ACCOUNT_A: &str = "111122223333";
pub const ACCOUNT_B: &str = "044455556666";
/// Outside the organization: its own copies of cross-account calls are not in the archive.
pub const ACCOUNT_X: &str = "777788889999";
pub const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const ARCHIVED: [&str; 2] = [ACCOUNT_A, ACCOUNT_B];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// A few MB: the samples and the tests.
    Small,
    /// About 1 GB of gzip: the benchmark.
    Large,
    /// About 200,000 objects sized like real CloudTrail deliveries (mostly 1–20 KB of gzip, a
    /// tail of larger ones): the small-object benchmark.
    ManySmall,
}

#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub seed: u64,
    pub preset: Preset,
    pub org_id: Option<String>,
    pub prefix: Option<String>,
    /// Write a signed hourly digest chain (`--sign`).
    pub sign: bool,
    /// Break the signed archive in these ways (`--tamper`).
    pub tamper: Vec<digests::Tamper>,
    /// Each key scenario this many times per account and region (`--copies`; 1 as the samples).
    pub copies: u32,
}

/// The calendar of the synthetic world.
pub struct Calendar {
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    /// When KMS began recording usage (every key created before it has this TrackingStartDate).
    pub tracking_start: Instant,
    /// When the snapshot was taken.
    pub snapshot_time: Instant,
}

pub fn calendar() -> Calendar {
    Calendar {
        first_day: date(2026, 2, 1),
        last_day: date(2026, 3, 19),
        tracking_start: t(2026, 3, 8, 0, 0, 0),
        snapshot_time: t(2026, 3, 20, 0, 0, 0),
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn t(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Instant {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("valid time")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    Busy,
    PreUsed,
    PreUnused,
    OldUnused,
    OldUsed,
    NewUnused,
    NewUsed,
    LateUnused,
    MrkPrimary,
    MrkReplica,
    Errored,
    AwsManaged,
}

#[derive(Debug, Clone)]
pub(crate) struct SynthKey {
    pub arn: String,
    pub id: String,
    pub account: String,
    pub region: String,
    pub created: Instant,
    pub scenario: Scenario,
    pub aliases: Vec<String>,
    pub manager: &'static str,
    pub multi_region: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum Identity {
    Role {
        account: String,
        arn: String,
        principal_id: String,
    },
    User {
        account: String,
        arn: String,
    },
    Service {
        invoked_by: String,
    },
}

impl Identity {
    pub fn account(&self) -> Option<&str> {
        match self {
            Identity::Role { account, .. } | Identity::User { account, .. } => Some(account),
            Identity::Service { .. } => None,
        }
    }
    /// Who the report should name for a call by this identity.
    pub fn principal(&self) -> String {
        match self {
            Identity::Role { arn, .. } | Identity::User { arn, .. } => arn.clone(),
            Identity::Service { invoked_by } => invoked_by.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResourceStyle {
    Typed,
    Untyped,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum CopyKind {
    Owner,
    Caller,
}

/// One API call, as the generator means it.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub id: usize,
    pub time: Instant,
    pub region: String,
    pub op: &'static str,
    pub owner_account: String,
    pub resource_arns: Vec<String>,
    pub resources: ResourceStyle,
    pub key_id_param: Option<String>,
    pub destination_param: Option<String>,
    pub caller: Identity,
    pub error_code: Option<String>,
    pub source_ip: String,
    pub user_agent: String,
    pub request_id: String,
    pub owner_event_id: String,
    pub caller_event_id: Option<String>,
    pub shared_event_id: Option<String>,
    /// The inventory keys this call is a use of (index into the key list), with the role.
    pub uses: Vec<(usize, &'static str)>,
    /// For a failed call: the keys it tried to use, with the role (a failed attempt, no use).
    pub attempted: Vec<(usize, &'static str)>,
    /// A successful tracked call that names no key.
    pub unattributable: bool,
    /// For CreateAlias / UpdateAlias / DeleteAlias: the alias (`alias/<name>`) it changed; its
    /// key is the first of `resource_arns` that is a key.
    pub alias_name: Option<String>,
    pub duplicate: bool,
    /// Seconds from the call to its delivery.
    pub delay: i64,
}

impl Call {
    pub fn cross_account(&self) -> bool {
        self.caller
            .account()
            .is_some_and(|a| a != self.owner_account)
    }
    /// The copies CloudTrail delivers, with their recipient account. A denied cross-account call
    /// appears only in the caller's account; the caller's copy exists only for archived accounts.
    pub fn copies(&self) -> Vec<(CopyKind, String)> {
        let mut out = Vec::new();
        let cross = self.cross_account();
        if !(cross && self.error_code.is_some()) {
            out.push((CopyKind::Owner, self.owner_account.clone()));
        }
        if let Some(acct) = self
            .caller
            .account()
            .filter(|a| cross && ARCHIVED.contains(a))
        {
            out.push((CopyKind::Caller, acct.to_string()));
        }
        out
    }
    pub fn event_id(&self, kind: CopyKind) -> String {
        match kind {
            CopyKind::Owner => self.owner_event_id.clone(),
            CopyKind::Caller => self.caller_event_id.clone().unwrap_or_default(),
        }
    }
}

/// What kind of broken object to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Corruption {
    TruncatedGzip,
    InvalidJson,
    ZeroBytes,
    NotGzip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObjKind {
    Log,
    Corrupt(Corruption),
    /// Not a log file, inside a day folder (must be skipped).
    Stray,
}

/// An object the generator wrote into a day folder.
#[derive(Debug, Clone)]
pub(crate) struct Obj {
    pub key: String,
    pub account: String,
    pub region: String,
    pub day: NaiveDate,
    pub kind: ObjKind,
    pub copies: Vec<(usize, CopyKind)>,
}

struct Shape {
    /// One log file per account, region and slot of this many seconds.
    slot_secs: i64,
    /// Noise records per file: this many, or, with `tail`, from a range with a tail of larger
    /// files.
    noise_per_file: usize,
    tail: bool,
    /// Share of noise records that are KMS calls on keys outside the inventory.
    kms_noise: f64,
}

fn shape(p: Preset) -> Shape {
    match p {
        Preset::Small => Shape {
            slot_secs: 6 * 3600,
            noise_per_file: 18,
            tail: false,
            kms_noise: 0.04,
        },
        Preset::Large => Shape {
            slot_secs: 3600,
            noise_per_file: 1900,
            tail: false,
            kms_noise: 0.03,
        },
        // 47 days × 4 account-regions × 1,080 slots a day ≈ 203,000 objects.
        Preset::ManySmall => Shape {
            slot_secs: 80,
            noise_per_file: 0,
            tail: true,
            kms_noise: 0.03,
        },
    }
}

/// Writes `out/logs/`, `out/usage.jsonl` and `out/truth.json`. Returns a one-line description.
pub fn generate(out: &Path, opts: &SynthOptions) -> anyhow::Result<String> {
    let cal = calendar();
    let mut rng = Rng::new(opts.seed);
    let keys = make_keys(&mut rng, opts.copies);
    let calls = make_calls(&mut rng, &keys, &cal);
    let shape = shape(opts.preset);
    let logs = out.join("logs");
    if logs.exists() {
        std::fs::remove_dir_all(&logs)
            .with_context(|| format!("cannot clear {}", logs.display()))?;
    }
    let mut base = String::new();
    if let Some(p) = &opts.prefix {
        base.push_str(p.trim_matches('/'));
        base.push('/');
    }
    base.push_str("AWSLogs/");
    if let Some(org) = &opts.org_id {
        anyhow::ensure!(
            org.starts_with("o-"),
            "--org-id must look like o-xxxxxxxxxx"
        );
        base.push_str(org);
        base.push('/');
    }
    let files = plan_files(&calls, &cal, &shape, &base);
    anyhow::ensure!(opts.sign || opts.tamper.is_empty(), "--tamper needs --sign");
    let written: Vec<(Obj, u64, String, Instant)> = files
        .par_iter()
        .enumerate()
        .map(|(i, f)| {
            write_file(&logs, f, &calls, &shape, &rng.fork(i as u64 + 1))
                .map(|(n, sha)| (f.obj.clone(), n, sha, f.delivered))
        })
        .collect::<anyhow::Result<_>>()?;
    let bytes: u64 = written.iter().map(|(_, n, _, _)| n).sum();
    let mut integrity = None;
    if opts.sign {
        let signed: Vec<digests::SignedLog> = written
            .iter()
            .map(|(o, _, sha, delivered)| digests::SignedLog {
                key: o.key.clone(),
                account: o.account.clone(),
                region: o.region.clone(),
                delivered: *delivered,
                sha256: sha.clone(),
            })
            .collect();
        let last = written
            .iter()
            .map(|w| w.3)
            .max()
            .unwrap_or(start_of(cal.last_day));
        let end = start_of(day_of(last)) + Duration::days(1);
        let digests::Signed { expected, restarts } = digests::write(
            out,
            &logs,
            &base,
            start_of(cal.first_day),
            end,
            &signed,
            &opts.tamper,
        )?;
        let damaged: Vec<&str> = written
            .iter()
            .filter(|(o, ..)| matches!(o.kind, ObjKind::Corrupt(_)))
            .map(|(o, ..)| o.key.as_str())
            .collect();
        integrity = Some(serde_json::json!({
            "findings": expected
                .iter()
                .map(|(k, o)| serde_json::json!({"kind": k, "object": o}))
                .collect::<Vec<_>>(),
            "corrupt_objects": damaged,
            "restarts": restarts,
        }));
    }
    let mut objects: Vec<Obj> = written.into_iter().map(|(o, ..)| o).collect();
    objects.extend(write_side_objects(&logs, &base)?);
    objects.sort_by(|a, b| a.key.cmp(&b.key));

    let snapshot = truth::snapshot_lines(&keys, &calls, &cal);
    std::fs::write(out.join("usage.jsonl"), snapshot.join("\n") + "\n")
        .context("cannot write usage.jsonl")?;
    let mut truth = truth::truth(&keys, &calls, &objects, &cal);
    if let Some(i) = integrity {
        truth["integrity"] = i;
    }
    std::fs::write(
        out.join("truth.json"),
        serde_json::to_string_pretty(&truth)? + "\n",
    )
    .context("cannot write truth.json")?;
    Ok(format!(
        "synth: {} keys, {} calls, {} log objects ({:.1} MB gzip) in {}",
        keys.len(),
        calls.len(),
        objects.len(),
        bytes as f64 / 1e6,
        out.display()
    ))
}

fn make_keys(rng: &mut Rng, copies: u32) -> Vec<SynthKey> {
    let mut keys = Vec::new();
    // (scenario, earliest creation, creation jitter in hours, aliases)
    let plan: [(Scenario, Instant, i64, &[&str]); 8] = [
        (Scenario::Busy, t(2025, 6, 1, 10, 0, 0), 6, &["alias/busy"]),
        (
            Scenario::PreUsed,
            t(2026, 2, 5, 8, 12, 33),
            10,
            &["alias/payments", "alias/rotating"],
        ),
        (Scenario::PreUnused, t(2026, 2, 3, 11, 0, 0), 10, &[]),
        (
            Scenario::OldUnused,
            t(2025, 3, 1, 9, 30, 0),
            0,
            &["alias/legacy"],
        ),
        (Scenario::OldUsed, t(2024, 11, 20, 16, 45, 0), 0, &[]),
        (Scenario::NewUnused, t(2026, 3, 12, 7, 0, 0), 10, &[]),
        (
            Scenario::NewUsed,
            t(2026, 3, 10, 7, 0, 0),
            10,
            &["alias/new-service"],
        ),
        (Scenario::LateUnused, t(2026, 2, 25, 7, 0, 0), 10, &[]),
    ];
    for account in ARCHIVED {
        for region in REGIONS {
            for ((scenario, base, jitter_hours, aliases), copy) in plan
                .into_iter()
                .flat_map(|p| (0..copies).map(move |c| (p, c)))
            {
                let aliases: Vec<String> = aliases
                    .iter()
                    .map(|a| match copy {
                        0 => a.to_string(),
                        c => format!("{a}-{c}"),
                    })
                    .collect();
                let jitter = Duration::seconds(rng.range(0, jitter_hours * 3600 + 1))
                    + Duration::milliseconds(rng.range(1, 999));
                let id = rng.uuid();
                keys.push(SynthKey {
                    arn: format!("arn:aws:kms:{region}:{account}:key/{id}"),
                    id,
                    account: account.into(),
                    region: region.into(),
                    created: base + jitter,
                    scenario,
                    aliases,
                    manager: "CUSTOMER",
                    multi_region: false,
                    error: None,
                });
            }
        }
    }
    let mrk = format!("mrk-{}", rng.uuid().replace('-', ""));
    for (region, scenario, created) in [
        (
            REGIONS[0],
            Scenario::MrkPrimary,
            t(2026, 2, 2, 9, 0, 0) + Duration::milliseconds(500),
        ),
        (
            REGIONS[1],
            Scenario::MrkReplica,
            t(2026, 2, 2, 10, 0, 0) + Duration::milliseconds(500),
        ),
    ] {
        keys.push(SynthKey {
            arn: format!("arn:aws:kms:{region}:{ACCOUNT_A}:key/{mrk}"),
            id: mrk.clone(),
            account: ACCOUNT_A.into(),
            region: region.into(),
            created,
            scenario,
            aliases: vec!["alias/global".into()],
            manager: "CUSTOMER",
            multi_region: true,
            error: None,
        });
    }
    let id = rng.uuid();
    keys.push(SynthKey {
        arn: format!("arn:aws:kms:{}:{ACCOUNT_A}:key/{id}", REGIONS[0]),
        id,
        account: ACCOUNT_A.into(),
        region: REGIONS[0].into(),
        created: t(2025, 1, 1, 0, 0, 0),
        scenario: Scenario::Errored,
        aliases: vec![],
        manager: "CUSTOMER",
        multi_region: false,
        error: Some("AccessDeniedException: User: arn:aws:sts::111122223333:assumed-role/keytrail/run is not authorized to perform: kms:GetKeyLastUsage".into()),
    });
    let id = rng.uuid();
    keys.push(SynthKey {
        arn: format!("arn:aws:kms:{}:{ACCOUNT_A}:key/{id}", REGIONS[0]),
        id,
        account: ACCOUNT_A.into(),
        region: REGIONS[0].into(),
        created: t(2023, 5, 1, 12, 0, 0),
        scenario: Scenario::AwsManaged,
        aliases: vec!["alias/aws/ebs".into()],
        manager: "AWS",
        multi_region: false,
        error: None,
    });
    keys
}

/// Builds calls with fresh ids.
struct Calls<'a> {
    rng: &'a mut Rng,
    keys: &'a [SynthKey],
    calls: Vec<Call>,
}

impl Calls<'_> {
    fn role(&mut self, account: &str) -> Identity {
        let role = *self.rng.pick(&[
            "app-backend",
            "etl-nightly",
            "payments-api",
            "data-lake-reader",
        ]);
        let session = self.rng.alnum(12);
        Identity::Role {
            account: account.into(),
            arn: format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
            principal_id: format!("AROA{}:{session}", self.rng.alnum(17).to_uppercase()),
        }
    }

    fn user(&mut self, account: &str) -> Identity {
        let name = *self.rng.pick(&["alice", "bob", "carol"]);
        Identity::User {
            account: account.into(),
            arn: format!("arn:aws:iam::{account}:user/{name}"),
        }
    }

    fn at(&mut self, lo: Instant, hi: Instant) -> Instant {
        lo + Duration::seconds(self.rng.range(0, (hi - lo).num_seconds().max(1)))
    }

    /// A call on key `k` (by index) with the defaults: typed resources, no keyId, success.
    fn call(&mut self, k: usize, time: Instant, op: &'static str, caller: Identity) -> &mut Call {
        // CloudTrail's eventTime has whole seconds; round up so a call never precedes its key.
        let time = Utc
            .timestamp_opt(
                time.timestamp() + i64::from(time.timestamp_subsec_millis() > 0),
                0,
            )
            .single()
            .expect("valid");
        let key = &self.keys[k];
        let cross = caller.account().is_some_and(|a| a != key.account);
        let tracked = crate::scan::record::is_tracked_operation(op);
        let c = Call {
            id: self.calls.len(),
            time,
            region: key.region.clone(),
            op,
            owner_account: key.account.clone(),
            resource_arns: vec![key.arn.clone()],
            resources: ResourceStyle::Typed,
            key_id_param: if cross { Some(key.arn.clone()) } else { None },
            destination_param: None,
            caller,
            error_code: None,
            source_ip: format!(
                "10.{}.{}.{}",
                self.rng.next_u64() % 256,
                self.rng.next_u64() % 256,
                self.rng.next_u64() % 256
            ),
            user_agent: records::user_agent(self.rng),
            request_id: self.rng.uuid(),
            owner_event_id: self.rng.uuid(),
            caller_event_id: cross.then(|| self.rng.uuid()),
            shared_event_id: cross.then(|| self.rng.uuid()),
            uses: if tracked { vec![(k, "key")] } else { vec![] },
            attempted: vec![],
            unattributable: false,
            alias_name: None,
            duplicate: false,
            delay: self.rng.range(60, 600),
        };
        self.calls.push(c);
        self.calls.last_mut().expect("just pushed")
    }

    /// `op` (CreateAlias, UpdateAlias, DeleteAlias) of `alias` with key `k`, by a user of its
    /// account: the alias's ARN and the key's in `resources`, as AWS logs it.
    fn alias_change(&mut self, k: usize, time: Instant, op: &'static str, alias: &str) {
        let key = &self.keys[k];
        let alias_arn = format!("arn:aws:kms:{}:{}:{alias}", key.region, key.account);
        let caller = self.user(&key.account.clone());
        let c = self.call(k, time, op, caller);
        c.resource_arns.insert(0, alias_arn);
        c.alias_name = Some(alias.into());
    }

    fn use_key(&mut self, k: usize, lo: Instant, hi: Instant, op: &'static str) -> &mut Call {
        let time = self.at(lo, hi);
        let caller = self.role(&self.keys[k].account.clone());
        self.call(k, time, op, caller)
    }

    /// Calls on `k` that are not uses: a failed decrypt (on a long-unused key, one it refused
    /// as disabled: someone still tried it), DescribeKey, CreateGrant.
    fn non_uses(&mut self, k: usize, lo: Instant, hi: Instant) {
        let refusal = match self.keys[k].scenario {
            Scenario::OldUnused => "DisabledException",
            _ => "AccessDeniedException",
        };
        self.use_key(k, lo, hi, "Decrypt").fail(refusal);
        self.use_key(k, lo, hi, "DescribeKey");
        self.use_key(k, lo, hi, "CreateGrant");
        self.use_key(k, lo, hi, "GetKeyPolicy");
    }
}

impl Call {
    fn fail(&mut self, code: &str) -> &mut Call {
        self.error_code = Some(code.into());
        self.attempted = std::mem::take(&mut self.uses);
        self
    }
    fn style(&mut self, resources: ResourceStyle, key_id: Option<String>) -> &mut Call {
        self.resources = resources;
        self.key_id_param = key_id;
        self
    }
}

fn make_calls(rng: &mut Rng, keys: &[SynthKey], cal: &Calendar) -> Vec<Call> {
    let mut b = Calls {
        rng,
        keys,
        calls: Vec::new(),
    };
    let first = start_of(cal.first_day);
    let g = cal.tracking_start;
    let end = start_of(cal.last_day) + Duration::hours(20);
    let find = |acct: &str, region: &str, s: Scenario| {
        keys.iter()
            .position(|k| k.account == acct && k.region == region && k.scenario == s)
            .expect("scenario key exists")
    };
    let ops = [
        "Encrypt",
        "Decrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
    ];
    for (k, key) in keys.iter().enumerate() {
        let other = if key.account == ACCOUNT_A {
            ACCOUNT_B
        } else {
            ACCOUNT_A
        };
        let created = key.created + Duration::seconds(5);
        match key.scenario {
            Scenario::Busy | Scenario::AwsManaged => {
                busy_calls(&mut b, k, key, other, (first, end), &ops)
            }
            Scenario::PreUsed => {
                let dest = find(&key.account, &key.region, Scenario::OldUsed);
                pre_used_calls(&mut b, k, key, other, (created, g), dest)
            }
            Scenario::OldUsed => {
                for _ in 0..2 {
                    let time = b.at(first + Duration::days(1), g - Duration::days(1));
                    b.call(
                        k,
                        time,
                        "GenerateDataKeyWithoutPlaintext",
                        Identity::Service {
                            invoked_by: "ec2.amazonaws.com".into(),
                        },
                    );
                }
            }
            Scenario::PreUnused | Scenario::LateUnused | Scenario::OldUnused => {
                b.non_uses(k, created.max(first), g);
            }
            Scenario::NewUsed => {
                for _ in 0..3 {
                    let op = *b.rng.pick(&ops);
                    b.use_key(k, created, end, op);
                }
            }
            Scenario::NewUnused => {
                b.use_key(k, created, end, "DescribeKey");
            }
            Scenario::MrkPrimary => {
                b.use_key(k, created, end, "DescribeKey");
            }
            Scenario::MrkReplica => {
                b.use_key(k, created, g, "Decrypt");
                b.use_key(k, created, g, "Decrypt");
            }
            Scenario::Errored => {
                b.use_key(k, first, end, "Sign");
            }
        }
    }
    // A successful Decrypt that names no key: no resources, no keyId.
    let k = find(ACCOUNT_B, REGIONS[1], Scenario::Busy);
    let time = b.at(t(2026, 2, 10, 8, 0, 0), t(2026, 2, 10, 16, 0, 0));
    let c = b
        .use_key(k, time, time + Duration::seconds(1), "Decrypt")
        .style(ResourceStyle::None, None);
    c.resource_arns.clear();
    c.uses.clear();
    c.unattributable = true;
    // Busy keys disabled after their last use (2026-03-18), still called the next day, by their
    // own account and by the other archived one (that refusal is logged in the caller's account
    // only): refusals only a run that watches the last days (--watch-days) sees.
    let next_day = (t(2026, 3, 19, 8, 0, 0), t(2026, 3, 19, 16, 0, 0));
    for (k, key) in keys.iter().enumerate() {
        if key.scenario == Scenario::Busy {
            b.use_key(k, next_day.0, next_day.1, "Decrypt")
                .fail("DisabledException");
            let other = if key.account == ACCOUNT_A {
                ACCOUNT_B
            } else {
                ACCOUNT_A
            };
            let time = b.at(next_day.0, next_day.1);
            let caller = b.role(other);
            b.call(k, time, "Decrypt", caller).fail("DisabledException");
        }
    }
    for (k, key) in keys.iter().enumerate() {
        if key.scenario == Scenario::PreUsed {
            let before = find(&key.account, &key.region, Scenario::OldUsed);
            rotated_alias_calls(&mut b, (before, k), &key.aliases[1]);
        }
    }
    b.calls
}

/// An alias that moved between two keys inside their windows (`alias/rotating`, today the
/// second key's): created for `before`, updated to `after`, with calls on both sides that name
/// their key only through it — each the use of the key it pointed at then. (Days clear of the
/// archive's gap and corrupt objects, so the alias records are always read.)
fn rotated_alias_calls(b: &mut Calls, (before, after): (usize, usize), alias: &str) {
    let d = |dd: u32, h: u32| t(2026, 2, dd, h, 0, 0);
    let created = b.at(d(3, 9), d(3, 10));
    b.alias_change(before, created, "CreateAlias", alias);
    for _ in 0..2 {
        b.use_key(before, d(4, 0), d(10, 0), "Decrypt")
            .style(ResourceStyle::None, Some(alias.into()));
    }
    let moved = b.at(d(11, 12), d(11, 13));
    b.alias_change(after, moved, "UpdateAlias", alias);
    for _ in 0..2 {
        b.use_key(after, d(11, 14), d(13, 12), "GenerateDataKey")
            .style(ResourceStyle::None, Some(alias.into()));
    }
}

/// A busy key (or an AWS managed one, used by a service): calls on most days of the archive,
/// some from other accounts, and a last use after tracking start.
fn busy_calls(
    b: &mut Calls,
    k: usize,
    key: &SynthKey,
    other: &str,
    (first, end): (Instant, Instant),
    ops: &[&'static str],
) {
    let mut day = first;
    while day < end {
        if b.rng.chance(0.6) {
            let op = *b.rng.pick(ops);
            let time = b.at(day, day + Duration::days(1));
            let caller = if key.scenario == Scenario::AwsManaged {
                Identity::Service {
                    invoked_by: "ec2.amazonaws.com".into(),
                }
            } else if b.rng.chance(0.1) {
                b.role(other)
            } else if b.rng.chance(0.05) {
                b.role(ACCOUNT_X)
            } else {
                b.role(&key.account)
            };
            b.call(k, time, op, caller);
        }
        day += Duration::days(1);
    }
    // The last use: after tracking start, from the other archived account for account A.
    let time = b.at(t(2026, 3, 18, 0, 0, 0), t(2026, 3, 18, 20, 0, 0));
    let caller = match key.scenario {
        Scenario::AwsManaged => Identity::Service {
            invoked_by: "ec2.amazonaws.com".into(),
        },
        _ if key.account == ACCOUNT_A => b.role(ACCOUNT_B),
        _ => b.role(&key.account),
    };
    b.call(k, time, "Decrypt", caller);
}

/// A key used before tracking in every way a record can name it (alias, bare id, alias ARN, no
/// resources), from other accounts, late into the next day's folder, in a failed call and as a
/// ReEncrypt source towards `dest`.
fn pre_used_calls(
    b: &mut Calls,
    k: usize,
    key: &SynthKey,
    other: &str,
    (created, g): (Instant, Instant),
    dest: usize,
) {
    let alias_arn = format!("arn:aws:kms:{}:{}:alias/payments", key.region, key.account);
    let d = |m: u32, dd: u32| t(2026, m, dd, 0, 0, 0);
    b.use_key(k, created, created + Duration::days(3), "Decrypt");
    b.use_key(k, d(2, 10), d(2, 15), "Encrypt")
        .style(ResourceStyle::Untyped, Some("alias/payments".into()));
    b.use_key(k, d(2, 12), d(2, 18), "GenerateDataKey")
        .style(ResourceStyle::None, Some("alias/payments".into()));
    b.use_key(k, d(2, 18), d(2, 24), "Encrypt")
        .style(ResourceStyle::None, Some(key.id.clone()));
    b.use_key(k, d(2, 24), d(3, 1), "Decrypt")
        .style(ResourceStyle::None, Some(alias_arn));
    let time = b.at(d(2, 8), d(3, 5));
    let caller = b.role(other);
    b.call(k, time, "Decrypt", caller);
    let time = b.at(d(2, 8), d(3, 5));
    let caller = b.user(ACCOUNT_X);
    b.call(k, time, "GenerateDataKey", caller);
    b.use_key(k, d(2, 6), d(3, 5), "Decrypt").duplicate = true;
    // Late on the last day before tracking: delivered into the tracking-start day's folder.
    let c = b.use_key(
        k,
        g - Duration::seconds(110),
        g - Duration::seconds(60),
        "Decrypt",
    );
    c.delay = 420;
    b.non_uses(k, created, g);
    let time = b.at(d(2, 8), d(3, 5));
    let caller = b.role(other);
    b.call(k, time, "Decrypt", caller)
        .fail("AccessDeniedException");
    // ReEncrypt from this key to the account's long-lived key.
    let dest_arn = b.keys[dest].arn.clone();
    let c = b.use_key(k, d(2, 20), d(3, 2), "ReEncrypt");
    c.resource_arns.push(dest_arn.clone());
    c.destination_param = Some(dest_arn);
    c.uses = vec![(k, "source"), (dest, "destination")];
}

/// A log file to write: its object and the copies it carries.
struct FileSpec {
    obj: Obj,
    slot_start: Instant,
    /// The delivery time in its name.
    delivered: Instant,
}

const GAP: (&str, &str, [u32; 2]) = (ACCOUNT_B, "us-east-1", [14, 16]);

fn in_gap(account: &str, region: &str, day: NaiveDate) -> bool {
    account == GAP.0
        && region == GAP.1
        && day >= date(2026, 2, GAP.2[0])
        && day <= date(2026, 2, GAP.2[1])
}

fn corruption(account: &str, region: &str, day: NaiveDate, slot: i64) -> Option<Corruption> {
    if account != ACCOUNT_A || region != "eu-west-1" || slot != 1 {
        return None;
    }
    match day.to_string().as_str() {
        "2026-02-20" => Some(Corruption::TruncatedGzip),
        "2026-02-21" => Some(Corruption::InvalidJson),
        "2026-02-22" => Some(Corruption::ZeroBytes),
        "2026-02-23" => Some(Corruption::NotGzip),
        _ => None,
    }
}

fn plan_files(calls: &[Call], cal: &Calendar, shape: &Shape, base: &str) -> Vec<FileSpec> {
    let slot_secs = shape.slot_secs;
    let lead = lead(slot_secs);
    let mut slots: BTreeMap<(String, String, i64), Vec<(usize, CopyKind)>> = BTreeMap::new();
    for acct in ARCHIVED {
        for region in REGIONS {
            let mut s = start_of(cal.first_day).timestamp() / slot_secs;
            let last = (start_of(cal.last_day).timestamp() + 86_400) / slot_secs;
            while s < last {
                slots.entry((acct.into(), region.into(), s)).or_default();
                s += 1;
            }
        }
    }
    for c in calls {
        for (kind, acct) in c.copies() {
            let mut deliveries = vec![c.time.timestamp() + c.delay];
            if c.duplicate {
                deliveries.push(c.time.timestamp() + c.delay + slot_secs);
            }
            for d in deliveries {
                slots
                    .entry((acct.clone(), c.region.clone(), d / slot_secs))
                    .or_default()
                    .push((c.id, kind));
            }
        }
    }
    let mut name_rng = Rng::new(0x5EED);
    slots
        .into_iter()
        .filter_map(|((account, region, slot), copies)| {
            let slot_start = Utc
                .timestamp_opt(slot * slot_secs, 0)
                .single()
                .expect("valid");
            let delivered = slot_start + Duration::seconds(slot_secs - lead);
            let day = day_of(delivered);
            if in_gap(&account, &region, day) {
                return None;
            }
            let slot_in_day = (slot_start - start_of(day)).num_seconds() / slot_secs;
            let stamp = delivered.format("%Y%m%dT%H%MZ");
            let name = format!(
                "{account}_CloudTrail_{region}_{stamp}_{}.json.gz",
                name_rng.alnum(16)
            );
            let key = format!(
                "{base}{account}/CloudTrail/{region}/{}/{name}",
                day.format("%Y/%m/%d")
            );
            let kind = corruption(&account, &region, day, slot_in_day)
                .map_or(ObjKind::Log, ObjKind::Corrupt);
            Some(FileSpec {
                obj: Obj {
                    key,
                    account,
                    region,
                    day,
                    kind,
                    copies,
                },
                slot_start,
                delivered,
            })
        })
        .collect()
}

/// How long before a slot's end its file is delivered (and how far before its start its first
/// record may be): five minutes, or half of a shorter slot.
fn lead(slot_secs: i64) -> i64 {
    300.min(slot_secs / 2)
}

fn write_file(
    logs: &Path,
    f: &FileSpec,
    calls: &[Call],
    shape: &Shape,
    rng: &Rng,
) -> anyhow::Result<(u64, String)> {
    let mut rng = rng.clone();
    let slot_secs = shape.slot_secs;
    let lead = lead(slot_secs);
    let noise = if shape.tail {
        // Most deliveries are a few KB; one in twenty is a busy interval.
        if rng.chance(0.05) {
            rng.range(400, 2500) as usize
        } else {
            rng.range(4, 140) as usize
        }
    } else {
        shape.noise_per_file
    };
    let mut recs: Vec<(i64, String)> = f
        .obj
        .copies
        .iter()
        .map(|(id, kind)| {
            (
                calls[*id].time.timestamp(),
                records::call_record(&calls[*id], *kind),
            )
        })
        .collect();
    for _ in 0..noise {
        let time = f.slot_start + Duration::seconds(rng.range(-lead, slot_secs - lead));
        let kms = rng.chance(shape.kms_noise);
        let stamp = records::iso_secs(time);
        recs.push((
            time.timestamp(),
            records::noise_record(&mut rng, &f.obj.account, &f.obj.region, &stamp, kms),
        ));
    }
    recs.sort_by_key(|(ts, _)| *ts);
    let mut json = String::with_capacity(recs.iter().map(|(_, r)| r.len() + 1).sum::<usize>() + 16);
    json.push_str("{\"Records\":[");
    for (i, (_, r)) in recs.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(r);
    }
    json.push_str("]}");
    let gz = |data: &[u8]| -> std::io::Result<Vec<u8>> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data)?;
        e.finish()
    };
    // What a digest lists: the hash of the JSON as delivered (before any corruption).
    let sha = {
        use sha2::Digest as _;
        crate::model::hex(&sha2::Sha256::digest(json.as_bytes()))
    };
    let bytes = match f.obj.kind {
        ObjKind::Log | ObjKind::Stray => gz(json.as_bytes())?,
        ObjKind::Corrupt(Corruption::TruncatedGzip) => {
            let full = gz(json.as_bytes())?;
            full[..full.len() * 2 / 3].to_vec()
        }
        ObjKind::Corrupt(Corruption::InvalidJson) => gz(&json.as_bytes()[..json.len() / 2])?,
        ObjKind::Corrupt(Corruption::ZeroBytes) => Vec::new(),
        ObjKind::Corrupt(Corruption::NotGzip) => json.into_bytes(),
    };
    let path = logs.join(&f.obj.key);
    std::fs::create_dir_all(path.parent().expect("has parent"))?;
    std::fs::write(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok((bytes.len() as u64, sha))
}

/// Objects that share log buckets but are not logs: Insights, AWS Config's write check (digests
/// come with `--sign`)
/// (one of them inside a day folder, where keytrail must skip it).
fn write_side_objects(logs: &Path, base: &str) -> anyhow::Result<Vec<Obj>> {
    let mut out = Vec::new();
    let write = |key: String, bytes: &[u8]| -> anyhow::Result<()> {
        let path = logs.join(&key);
        std::fs::create_dir_all(path.parent().expect("has parent"))?;
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    };
    for acct in ARCHIVED {
        write(
            format!("{base}{acct}/Config/ConfigWritabilityCheckFile"),
            b"",
        )?;
        for region in REGIONS {
            let insight = format!(
                "{base}{acct}/CloudTrail-Insight/{region}/2026/02/15/{acct}_CloudTrail-Insight_{region}_20260215T1200Z_AbCdEfGh12345678.json.gz"
            );
            write(insight, &gzip_bytes(br#"{"Records":[{"eventType":"AwsCloudTrailInsight","insightDetails":{"state":"Start"}}]}"#))?;
        }
    }
    let stray_day = date(2026, 2, 10);
    let key = format!(
        "{base}{ACCOUNT_A}/CloudTrail/us-east-1/{}/ConfigWritabilityCheckFile",
        stray_day.format("%Y/%m/%d")
    );
    write(key.clone(), b"")?;
    out.push(Obj {
        key,
        account: ACCOUNT_A.into(),
        region: "us-east-1".into(),
        day: stray_day,
        kind: ObjKind::Stray,
        copies: vec![],
    });
    Ok(out)
}

fn gzip_bytes(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("in-memory write");
    e.finish().expect("in-memory write")
}
