//! integrity::live: the digests' bytes and what their signatures are checked with — CloudTrail's
//! signature of each digest (S3 user metadata, or `--digest-signatures`) and CloudTrail's public
//! keys (`--public-key`, or `ListPublicKeys` in each digest's region) — then the check itself.

use super::{read_public_key, read_public_keys, read_signatures, Checked, PublicKeys};
use crate::archive::layout::ObjectRef;
use crate::archive::Archive;
use crate::aws::Aws;
use crate::config::{Config, VerifyMode};
use crate::model::{Instant, Warnings};
use crate::plan::Plan;
use crate::scan::ScanResult;
use crate::trails::Trail;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Digest files fetched at once (at most `--concurrency`).
const DIGESTS_IN_FLIGHT: usize = 64;

/// What the scan found, with the digest check over it (`None` when it did not run) and, in a live
/// run, the last uses CloudTrail's event history returned (`lookup::fill`).
#[derive(Debug, Default)]
pub struct Evidence {
    pub scan: ScanResult,
    pub integrity: Option<Checked>,
    pub history: Vec<crate::scan::record::UseCopy>,
}

/// What digest signatures are checked with: the signatures (`--digest-signatures`; over s3://,
/// each digest's object metadata adds its own) and CloudTrail's public keys (`--public-key`, or
/// `ListPublicKeys`).
#[derive(Debug)]
pub struct VerifyWith {
    /// Digest object key -> hex signature.
    signatures: HashMap<String, String>,
    public_keys: PublicKeys,
}

impl VerifyWith {
    /// Reads the files the flags name — before anything runs, so that a bad one stops the run
    /// at once, not after the scan.
    pub fn read(cfg: &Config) -> anyhow::Result<VerifyWith> {
        Ok(VerifyWith {
            signatures: match &cfg.integrity.signatures {
                Some(p) => read_signatures(p)?,
                None => Default::default(),
            },
            public_keys: read_public_keys(&cfg.integrity.public_keys)?,
        })
    }
}

/// Fetches the plan's digests from `archive` and checks them against what the scan read, as
/// `--verify-integrity` asks. `cloudtrail` is where `ListPublicKeys` is asked (an S3 archive
/// without `--public-key`); `trails` are the trails read, to warn when one validates logs but no
/// digest was found.
#[allow(clippy::too_many_arguments)]
pub async fn check<A: Archive>(
    archive: &A,
    cloudtrail: Option<&Aws>,
    plan: &Plan,
    scan: ScanResult,
    with: VerifyWith,
    cfg: &Config,
    trails: Option<&[Trail]>,
    warnings: &mut Warnings,
) -> Evidence {
    let VerifyWith {
        mut signatures,
        mut public_keys,
    } = with;
    let none_found = plan.digests.is_empty();
    if none_found && cfg.integrity.mode != VerifyMode::Off {
        for t in trails
            .into_iter()
            .flatten()
            .filter(|t| t.log_file_validation)
        {
            warnings.push(format!(
                "trail {} has log file validation enabled, but the archive holds no digest files for the planned days: they may have been removed; integrity was not checked",
                t.arn
            ));
        }
    }
    if none_found && cfg.integrity.mode == VerifyMode::On {
        warnings.push(
            "--verify-integrity on: no digest files found for the planned accounts and regions; nothing could be verified",
        );
    }
    if none_found || cfg.integrity.mode == VerifyMode::Off {
        return Evidence {
            scan,
            ..Evidence::default()
        };
    }
    // Digests are few (one per account, region and hour): a fixed number in flight, under the
    // log scan's cap, which the adaptive window of the scan may never reach.
    let in_flight = cfg.concurrency.min(DIGESTS_IN_FLIGHT);
    let digests = fetch(archive, &plan.digests, in_flight, &mut signatures).await;
    if let (Some(aws), true) = (cloudtrail, cfg.integrity.public_keys.is_empty()) {
        let failed = cloudtrail_keys(aws, &digests, &mut public_keys, warnings).await;
        for (d, _) in &digests {
            if failed.contains(d.prefix.region.as_str()) {
                signatures.remove(&d.key);
            }
        }
    }
    let (digests, unreadable) = super::parse_fetched(digests, &signatures);
    let named = predecessors(archive, &digests, in_flight).await;
    let mut checked = super::verify(
        digests,
        &named,
        archive.bucket(),
        &scan.manifest,
        &plan.prefixes,
        &public_keys,
    );
    checked.findings.extend(unreadable);
    if checked.signatures_unchecked > 0 {
        warnings.push(format!(
            "{} digest signature(s) not verified (no signature or no public key: pass --digest-signatures and --public-key for a local archive)",
            checked.signatures_unchecked
        ));
    }
    Evidence {
        scan,
        integrity: Some(checked),
        history: Vec::new(),
    }
}

/// The digests the listed ones name as their previous ones but that were not listed (before the
/// planned days, or gone), each looked up by its key: one GET each (`--concurrency` at a time),
/// read as its successor's account and region.
async fn predecessors<A: Archive>(
    archive: &A,
    digests: &[super::Digest],
    concurrency: usize,
) -> super::Named {
    let lookups = super::unlisted_predecessors(digests)
        .into_iter()
        .map(|(key, of)| async move {
            let got = archive
                .get(&key)
                .await
                .and_then(|(bytes, _)| super::parse_digest(&key, &of.account, &of.region, &bytes));
            (key, got)
        });
    futures::stream::iter(lookups)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

/// The digests' bytes; CloudTrail's own signature of each (object metadata, where the archive
/// keeps it) replaces what `--digest-signatures` said.
async fn fetch<A: Archive>(
    archive: &A,
    digests: &[ObjectRef],
    concurrency: usize,
    signatures: &mut HashMap<String, String>,
) -> Vec<(ObjectRef, Result<Vec<u8>, String>)> {
    let fetched = futures::stream::iter(digests)
        .map(|d| async move { (d.clone(), archive.get(&d.key).await) })
        .buffered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    fetched
        .into_iter()
        .map(|(d, got)| match got {
            Ok((bytes, signature)) => {
                if let Some(sig) = signature {
                    signatures.insert(d.key.clone(), sig);
                }
                (d, Ok(bytes))
            }
            Err(e) => (d, Err(e)),
        })
        .collect()
}

/// The digest-signing keys from CloudTrail `ListPublicKeys`, in each region the digests come from,
/// over the period they span. Returns the regions where they could not be listed: there the
/// signatures go unverified (a warning), rather than every digest being reported as signed by an
/// unknown key.
async fn cloudtrail_keys<'d>(
    aws: &Aws,
    digests: &'d [(ObjectRef, Result<Vec<u8>, String>)],
    keys: &mut PublicKeys,
    warnings: &mut Warnings,
) -> BTreeSet<&'d str> {
    let mut failed = BTreeSet::new();
    let mut regions: BTreeMap<&str, (chrono::NaiveDate, chrono::NaiveDate)> = Default::default();
    for (d, _) in digests {
        let span = regions
            .entry(d.prefix.region.as_str())
            .or_insert((d.prefix.day, d.prefix.day));
        span.0 = span.0.min(d.prefix.day);
        span.1 = span.1.max(d.prefix.day);
    }
    keys.try_all = false;
    for (region, (first, last)) in regions {
        let from = crate::model::start_of(first) - chrono::Duration::days(1);
        let to = crate::model::start_of(last) + chrono::Duration::days(1);
        match list_public_keys(aws, region, from, to).await {
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

/// CloudTrail's digest-signing public keys valid between `from` and `to` in `region`
/// (`ListPublicKeys`), as `(fingerprint, DER)`. The SDK hands over the decoded blob; a further
/// base64 layer is accepted too.
pub async fn list_public_keys(
    aws: &Aws,
    region: &str,
    from: Instant,
    to: Instant,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    use aws_sdk_cloudtrail::primitives::DateTime;
    let mut out = Vec::new();
    let mut pages = aws
        .cloudtrail(region)
        .list_public_keys()
        .start_time(DateTime::from_secs(from.timestamp()))
        .end_time(DateTime::from_secs(to.timestamp()))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            anyhow::anyhow!(
                "ListPublicKeys in {region} failed: {}",
                crate::aws::explain(&e)
            )
        })?;
        for k in page.public_key_list() {
            if let (Some(fp), Some(v)) = (k.fingerprint(), k.value()) {
                out.push((fp.to_ascii_lowercase(), read_public_key(v.as_ref())));
            }
        }
    }
    Ok(out)
}
