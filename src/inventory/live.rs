//! inventory (live): which keys exist in each requested region — `ListKeys` (every key, in every
//! state), `DescribeKey` (state, manager, multi-Region), `ListAliases` — through the KMS API.
//! It returns the same `Key` values the snapshot reader does; `GetKeyLastUsage` is the tracking
//! stage's (`tracking::live`).

use super::accounts::{Account, AccountStatus};
use super::journal::{Held, Journal};
use super::{read_inventory, Inventory, Key, Source};
use crate::aws::{explain, Aws, Caller, Sessions};
use crate::config::{Accounts, Reach, Regions};
use crate::model::Warnings;
use crate::model::{Instant, KeyArn};
use anyhow::Context;
use chrono::{TimeZone, Utc};
use futures::stream::{self, StreamExt};
use std::collections::{BTreeMap, BTreeSet};

/// The inventory stage: the keys of a snapshot (or of a resumed run's kept one), or, when
/// `source` is live, of every requested region of every account `reach` names — each entered
/// with its own session, `reach.account_concurrency` at a time. An account that cannot be entered
/// or listed is `failed` with the reason and the others go on. Returns the sessions the tracking
/// stage asks each account's keys with.
pub async fn take(
    source: Source,
    aws: Option<&Aws>,
    regions: &Regions,
    reach: &Reach,
    journal: Option<(&Journal, Held)>,
    progress: bool,
    warnings: &mut Warnings,
) -> anyhow::Result<(Inventory, Option<Sessions>)> {
    let mut answered = BTreeSet::new();
    let (keys, accounts, sessions) = match (&source, aws) {
        (Source::Snapshot(path) | Source::Kept(path), _) => {
            let (keys, accounts) = read_inventory(path)?;
            (keys, accounts, None)
        }
        (Source::Live, Some(aws)) => {
            let (keys, accounts, sessions) =
                organization(aws, regions, reach, journal, progress, warnings).await?;
            answered = keys
                .iter()
                .filter(|k| k.tracking_start.is_some() || k.error.is_some())
                .map(|k| k.arn.clone())
                .collect();
            (keys, accounts, Some(sessions))
        }
        (Source::Live, None) => anyhow::bail!("a live inventory needs the AWS configuration"),
    };
    let inventory = Inventory {
        keys,
        accounts,
        source,
        answered,
    };
    Ok((inventory, sessions))
}

/// An account to examine, as the organization (or the command line) names it.
#[derive(Debug, Clone)]
struct Member {
    id: String,
    name: Option<String>,
    /// Organizations' `State` (`ACTIVE`, `SUSPENDED`, …); `None` when not listed from it.
    state: Option<String>,
}

/// The keys of every account `reach` names, each account's outcome, and their sessions. With a
/// journal, each account is journaled as it is examined; the accounts an interrupted run had
/// examined (`held`) are taken from it, with the answers it had, and only entered again when
/// some of their keys still need asking.
pub async fn organization(
    aws: &Aws,
    regions: &Regions,
    reach: &Reach,
    journal: Option<(&Journal, Held)>,
    progress: bool,
    warnings: &mut Warnings,
) -> anyhow::Result<(Vec<Key>, Vec<Account>, Sessions)> {
    if *regions == Regions::Configured && aws.region_fallback {
        anyhow::bail!(
            "no region to inventory: pass --regions (a list, or all) or --region, or set AWS_REGION or a profile region"
        );
    }
    let (journal, mut held) = match journal {
        Some((j, h)) => (Some(j), h),
        None => (None, Held::default()),
    };
    let caller = aws.caller().await.map_err(anyhow::Error::msg)?;
    let members = members(aws, &reach.accounts, &caller).await?;
    let total = members.len();
    let mut done = 0;
    let mut examined: Vec<Examined> = Vec::new();
    let (kept, fresh): (Vec<Member>, Vec<Member>) = members
        .into_iter()
        .partition(|m| held.accounts.contains_key(&m.id));
    for m in kept {
        let (account, keys) = held.accounts.remove(&m.id).expect("held");
        let pending = keys.iter().any(|k| !held.answers.contains_key(&k.arn));
        let session = if !pending {
            None
        } else if m.id == caller.account {
            Some(aws.clone())
        } else {
            aws.assume(
                &role_arn(&caller, &m.id, reach),
                reach.external_id.as_deref(),
            )
            .await
            .ok()
        };
        done += 1;
        examined.push((account, keys, Vec::new(), session));
    }
    let mut results = stream::iter(fresh)
        .map(|m| examine(aws, &caller, m, regions, reach))
        .buffer_unordered(reach.account_concurrency.max(1));
    while let Some(r) = results.next().await {
        done += 1;
        if let Some(j) = journal {
            j.examined(&r.0, &r.1);
            crate::interrupt::kill_point("examined", done as u64);
        }
        if progress {
            let a = &r.0;
            eprintln!(
                "inventory: account {} {} ({done}/{total}){}",
                a.id,
                a.status.as_str(),
                a.reason
                    .as_deref()
                    .map(|x| format!(": {x}"))
                    .unwrap_or_default()
            );
        }
        examined.push(r);
    }
    examined.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    let mut sessions = Sessions::new(aws.clone());
    let (mut keys, mut accounts) = (Vec::new(), Vec::new());
    for (account, k, w, session) in examined {
        if account.status == AccountStatus::Failed {
            warnings.push(format!(
                "account {}: {}; its keys were not examined",
                account.id,
                account.reason.as_deref().unwrap_or("failed")
            ));
        }
        warnings.extend(w);
        if let Some(s) = session {
            sessions.insert(&account.id, s);
        }
        // A key an interrupted run had the answer of is taken with it.
        keys.extend(
            k.into_iter()
                .map(|k| held.answers.remove(&k.arn).unwrap_or(k)),
        );
        accounts.push(account);
    }
    keys.sort_by(|a, b| a.arn.cmp(&b.arn));
    Ok((keys, accounts, sessions))
}

/// The role keytrail assumes in account `id`.
fn role_arn(caller: &Caller, id: &str, reach: &Reach) -> String {
    format!(
        "arn:{}:iam::{id}:role/{}",
        caller.partition, reach.role_name
    )
}

/// The accounts to examine: the caller's own, the given ones, or the organization's.
async fn members(aws: &Aws, accounts: &Accounts, caller: &Caller) -> anyhow::Result<Vec<Member>> {
    let plain = |id: &str| Member {
        id: id.to_string(),
        name: None,
        state: None,
    };
    Ok(match accounts {
        Accounts::Own => vec![plain(&caller.account)],
        Accounts::List(ids) => ids.iter().map(|id| plain(id)).collect(),
        Accounts::Org => {
            // Every page, also an empty one that still carries a NextToken (the paginator
            // follows the token, not the page's size).
            let pages: Vec<aws_sdk_organizations::operation::list_accounts::ListAccountsOutput> = aws
                .organizations()
                .list_accounts()
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "--accounts org: organizations:ListAccounts failed: {} (run from the management account or a delegated administrator)",
                        explain(&e)
                    )
                })?;
            let mut out: Vec<Member> = pages
                .iter()
                .flat_map(|p| p.accounts())
                .filter_map(|a| {
                    Some(Member {
                        id: a.id()?.to_string(),
                        name: a.name().map(str::to_string),
                        // `State`, not the retiring `Status`.
                        state: Some(a.state().map_or("UNKNOWN", |s| s.as_str()).to_string()),
                    })
                })
                .collect();
            out.sort_by(|a, b| a.id.cmp(&b.id));
            out.dedup_by(|a, b| a.id == b.id);
            out
        }
    })
}

/// An account examined: what became of it, its keys, the warnings, and its session.
type Examined = (Account, Vec<Key>, Vec<String>, Option<Aws>);

/// One account: entered (its own credentials for the caller's account, the role otherwise),
/// its regions found, its keys listed.
async fn examine(
    aws: &Aws,
    caller: &Caller,
    m: Member,
    regions: &Regions,
    reach: &Reach,
) -> Examined {
    let mut account = Account {
        id: m.id.clone(),
        name: m.name.clone(),
        status: AccountStatus::Inventoried,
        reason: None,
        regions: Vec::new(),
    };
    let fail = |mut a: Account, why: String| {
        a.status = AccountStatus::Failed;
        a.reason = Some(why);
        a
    };
    if let Some(state) = m.state.as_deref().filter(|s| *s != "ACTIVE") {
        account.status = AccountStatus::Skipped;
        account.reason = Some(format!("account state {state}"));
        return (account, Vec::new(), Vec::new(), None);
    }
    let session = if m.id == caller.account {
        aws.clone()
    } else {
        match aws
            .assume(
                &role_arn(caller, &m.id, reach),
                reach.external_id.as_deref(),
            )
            .await
        {
            Ok(s) => s,
            Err(e) => return (fail(account, e), Vec::new(), Vec::new(), None),
        }
    };
    let names = match regions {
        Regions::Configured => vec![aws.region().to_string()],
        Regions::List(list) => list.clone(),
        Regions::All => match enabled_regions(&session).await {
            Ok(r) => r,
            Err(e) => {
                return (
                    fail(account, format!("{e:#}")),
                    Vec::new(),
                    Vec::new(),
                    None,
                )
            }
        },
    };
    let mut keys = Vec::new();
    let warnings = Warnings::default();
    for region in &names {
        match keys_in_region(&session, region).await {
            Ok(k) => {
                keys.extend(k);
                account.regions.push(region.clone());
            }
            Err(e) => {
                let w = warnings.into_vec();
                return (fail(account, format!("{e:#}")), keys, w, Some(session));
            }
        }
    }
    account.regions.sort();
    (account, keys, warnings.into_vec(), Some(session))
}

/// `DescribeKey` calls in flight per region (its quota is 2000/s; this stays far below).
const DESCRIBE_CONCURRENCY: usize = 8;

/// An SDK timestamp, to the millisecond (KMS's precision; the wire's float seconds are not exact).
pub fn instant(t: &aws_sdk_kms::primitives::DateTime) -> Option<Instant> {
    let millis = t.secs().checked_mul(1000)? + i64::from((t.subsec_nanos() + 500_000) / 1_000_000);
    Utc.timestamp_millis_opt(millis).single()
}

/// The regions enabled for the account (`--regions all`), from Account `ListRegions`.
pub async fn enabled_regions(aws: &Aws) -> anyhow::Result<Vec<String>> {
    use aws_sdk_account::types::RegionOptStatus;
    let regions: Vec<aws_sdk_account::types::Region> = aws
        .account()
        .list_regions()
        .region_opt_status_contains(RegionOptStatus::Enabled)
        .region_opt_status_contains(RegionOptStatus::EnabledByDefault)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| {
            anyhow::anyhow!("--regions all: account:ListRegions failed: {}", explain(&e))
        })?;
    let mut names: Vec<String> = regions
        .iter()
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect();
    names.sort();
    anyhow::ensure!(
        !names.is_empty(),
        "--regions all: Account ListRegions returned no enabled region"
    );
    Ok(names)
}

/// Every key of `region` with its aliases (`ListKeys`, `ListAliases`), without its metadata
/// ([`describe`]) or its last usage yet. A failure to list is the account's failure.
pub async fn keys_in_region(aws: &Aws, region: &str) -> anyhow::Result<Vec<Key>> {
    let kms = aws.kms(region);
    let entries: Vec<aws_sdk_kms::types::KeyListEntry> = kms
        .list_keys()
        .limit(1000) // the most a page may hold: fewer calls in a large account
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| anyhow::anyhow!("kms:ListKeys in {region} failed: {}", explain(&e)))?;
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let alias_entries: Vec<aws_sdk_kms::types::AliasListEntry> = kms
        .list_aliases()
        .limit(100) // the most a page may hold
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| anyhow::anyhow!("kms:ListAliases in {region} failed: {}", explain(&e)))?;
    for a in alias_entries {
        // AWS-predefined aliases come without a target key.
        if let (Some(name), Some(target)) = (a.alias_name(), a.target_key_id()) {
            aliases
                .entry(target.to_string())
                .or_default()
                .push(name.to_string());
        }
    }
    entries
        .iter()
        .map(|e| {
            let arn = e
                .key_arn()
                .context("ListKeys returned a key without KeyArn")?;
            let arn = KeyArn::parse(arn)?;
            let mut aliases = aliases.get(arn.key_id()).cloned().unwrap_or_default();
            aliases.sort();
            Ok(Key {
                aliases,
                arn,
                key_state: None,
                key_manager: None,
                multi_region: None,
                creation: None,
                tracking_start: None,
                last_usage: None,
                error: None,
            })
        })
        .collect()
}

/// What `DescribeKey` says of a key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Described {
    pub key_state: Option<String>,
    pub key_manager: Option<String>,
    pub multi_region: Option<bool>,
    pub creation: Option<Instant>,
}

impl Described {
    /// The key with this metadata (`GetKeyLastUsage`'s creation date, when it gave one, wins).
    pub fn fill(self, key: &mut Key) {
        key.key_state = self.key_state;
        key.key_manager = self.key_manager;
        key.multi_region = self.multi_region;
        key.creation = key.creation.or(self.creation);
    }
}

/// `DescribeKey` for every key, [`DESCRIBE_CONCURRENCY`] at a time per account and region (its
/// quota is in the thousands per second: it needs no pacing). A failure keeps the key with what
/// `ListKeys` said, and a warning.
pub async fn describe(
    sessions: &Sessions,
    keys: &[Key],
) -> (BTreeMap<KeyArn, Described>, Vec<String>) {
    let scopes: BTreeSet<(&str, &str)> = keys
        .iter()
        .map(|k| (k.arn.account(), k.arn.region()))
        .collect();
    let in_flight = (scopes.len() * DESCRIBE_CONCURRENCY).clamp(1, 256);
    let clients: BTreeMap<(&str, &str), aws_sdk_kms::Client> = scopes
        .into_iter()
        .map(|(a, r)| ((a, r), sessions.of(a).kms(r)))
        .collect();
    let jobs: Vec<(KeyArn, aws_sdk_kms::Client)> = keys
        .iter()
        .map(|k| {
            let kms = clients[&(k.arn.account(), k.arn.region())].clone();
            (k.arn.clone(), kms)
        })
        .collect();
    let results: Vec<(KeyArn, Result<Described, String>)> = stream::iter(jobs)
        .map(|(arn, kms)| async move {
            let got = match kms.describe_key().key_id(arn.as_str()).send().await {
                Ok(out) => Ok(out
                    .key_metadata()
                    .map(|m| Described {
                        key_state: m.key_state().map(|s| s.as_str().to_string()),
                        key_manager: m.key_manager().map(|s| s.as_str().to_string()),
                        multi_region: m.multi_region(),
                        creation: m.creation_date().and_then(instant),
                    })
                    .unwrap_or_default()),
                Err(err) => Err(format!("DescribeKey {arn} failed: {}", explain(&err))),
            };
            (arn, got)
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let mut out = BTreeMap::new();
    let mut warnings = Vec::new();
    for (arn, r) in results {
        match r {
            Ok(d) => {
                out.insert(arn, d);
            }
            Err(w) => warnings.push(w),
        }
    }
    warnings.sort();
    (out, warnings)
}
