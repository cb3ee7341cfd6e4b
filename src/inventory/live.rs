//! inventory (live): which keys exist in each requested region — `ListKeys` (every key, in every
//! state), `DescribeKey` (state, manager, multi-Region), `ListAliases` — through the KMS API.
//! It returns the same `Key` values the snapshot reader does; `GetKeyLastUsage` is the tracking
//! stage's (`tracking::live`).

use super::{read_snapshot, Inventory, Key, Source};
use crate::aws::Aws;
use crate::config::Regions;
use crate::model::Warnings;
use crate::model::{Instant, KeyArn};
use anyhow::Context;
use aws_sdk_kms::error::DisplayErrorContext;
use chrono::{TimeZone, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use std::collections::BTreeMap;

/// The inventory stage: the keys of a snapshot (or of a resumed run's kept one), or of every
/// requested region of the account when `source` is live.
pub async fn take(
    source: Source,
    aws: Option<&Aws>,
    regions: &Regions,
    warnings: &mut Warnings,
) -> anyhow::Result<Inventory> {
    let keys = match (&source, aws) {
        (Source::Snapshot(path) | Source::Kept(path), _) => read_snapshot(path)?,
        (Source::Live, Some(aws)) => keys(aws, regions, warnings).await?,
        (Source::Live, None) => anyhow::bail!("a live inventory needs the AWS configuration"),
    };
    Ok(Inventory { keys, source })
}

/// Every key of every requested region, sorted by ARN, without their last usage yet.
pub async fn keys(
    aws: &Aws,
    regions: &Regions,
    warnings: &mut Warnings,
) -> anyhow::Result<Vec<Key>> {
    let regions = match regions {
        Regions::Configured => vec![aws.region().to_string()],
        Regions::List(list) => list.clone(),
        Regions::All => enabled_regions(aws).await?,
    };
    let mut keys = Vec::new();
    for region in &regions {
        keys.extend(keys_in_region(aws, region, warnings).await?);
    }
    keys.sort_by(|a, b| a.arn.cmp(&b.arn));
    Ok(keys)
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
            anyhow::anyhow!(
                "--regions all: Account ListRegions failed: {}",
                aws_sdk_account::error::DisplayErrorContext(&e)
            )
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

/// Every key of `region`, without its last usage yet. Failures to list are fatal (no list, no
/// inventory); a failed `DescribeKey` keeps the key with what `ListKeys` said, and a warning.
pub async fn keys_in_region(
    aws: &Aws,
    region: &str,
    warnings: &mut Warnings,
) -> anyhow::Result<Vec<Key>> {
    let kms = aws.kms(region);
    let entries: Vec<aws_sdk_kms::types::KeyListEntry> = kms
        .list_keys()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| anyhow::anyhow!("ListKeys in {region} failed: {}", DisplayErrorContext(&e)))?;
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let alias_entries: Vec<aws_sdk_kms::types::AliasListEntry> = kms
        .list_aliases()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "ListAliases in {region} failed: {}",
                DisplayErrorContext(&e)
            )
        })?;
    for a in alias_entries {
        // AWS-predefined aliases come without a target key.
        if let (Some(name), Some(target)) = (a.alias_name(), a.target_key_id()) {
            aliases
                .entry(target.to_string())
                .or_default()
                .push(name.to_string());
        }
    }
    let described: Vec<(Key, Option<String>)> = stream::iter(entries)
        .map(|e| {
            let kms = kms.clone();
            let aliases = &aliases;
            async move {
                let arn = e
                    .key_arn()
                    .context("ListKeys returned a key without KeyArn")?;
                let arn = KeyArn::parse(arn)?;
                let mut key = Key {
                    aliases: aliases.get(arn.key_id()).cloned().unwrap_or_default(),
                    arn,
                    key_state: None,
                    key_manager: None,
                    multi_region: None,
                    creation: None,
                    tracking_start: None,
                    last_usage: None,
                    error: None,
                };
                let warning = match kms.describe_key().key_id(key.arn.as_str()).send().await {
                    Ok(out) => {
                        if let Some(m) = out.key_metadata() {
                            key.key_state = m.key_state().map(|s| s.as_str().to_string());
                            key.key_manager = m.key_manager().map(|s| s.as_str().to_string());
                            key.multi_region = m.multi_region();
                            key.creation = m.creation_date().and_then(instant);
                        }
                        None
                    }
                    Err(err) => Some(format!(
                        "DescribeKey {} failed: {}",
                        key.arn,
                        DisplayErrorContext(&err)
                    )),
                };
                anyhow::Ok((key, warning))
            }
        })
        .buffered(DESCRIBE_CONCURRENCY)
        .try_collect()
        .await?;
    let mut keys = Vec::with_capacity(described.len());
    for (mut key, warning) in described {
        key.aliases.sort();
        warnings.extend(warning);
        keys.push(key);
    }
    Ok(keys)
}
