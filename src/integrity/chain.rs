//! integrity::chain: the digest chain of each trail (per account, region, trail name and home
//! region), walked in time order: a hole where no digest covers a period, a break where a digest
//! is not what the next one says of it. Backfill digests stand beside the hourly chain.

use super::digest::Digest;
use super::{days_between, Finding, Kind};
use crate::archive::layout::DayPrefix;
use crate::model::Instant;
use chrono::{Duration, NaiveDate};
use std::collections::{BTreeMap, BTreeSet};

/// The chain's findings over `digests`, sorted by chain and start time. A hole is reported only
/// where every day it spans had its digest folder listed (`planned` days and the day after each);
/// `bad_signature` digests are not also reported for the signature the next one remembers.
pub(super) fn walk(
    digests: &[Digest],
    planned: &BTreeSet<DayPrefix>,
    bad_signature: &BTreeSet<&str>,
) -> Vec<Finding> {
    let listed_days: BTreeSet<(String, String, NaiveDate)> = planned
        .iter()
        .flat_map(|p| {
            [p.day, p.day + Duration::days(1)].map(|d| (p.account.clone(), p.region.clone(), d))
        })
        .collect();
    let mut chain_findings = Vec::new();
    // The hourly chain is the regular digests. Backfill digests stand beside it; should the
    // next hour's digest point at one instead of at the previous hour, the chain holds too.
    let chain: Vec<&Digest> = digests.iter().filter(|d| !d.backfill).collect();
    let backfills: Vec<&Digest> = digests.iter().filter(|d| d.backfill).collect();
    let points_at_backfill = |next: &Digest| {
        backfills.iter().any(|b| {
            b.chain() == next.chain()
                && next.prev_hash.as_deref() == Some(b.sha256.as_str())
                && b.signature
                    .as_ref()
                    .is_none_or(|sig| next.prev_signature.as_ref() == Some(sig))
        })
    };
    for pair in chain.windows(2) {
        let (prev, next) = (pair[0], pair[1]);
        if prev.chain() != next.chain() {
            continue;
        }
        let to_prev = next.prev_hash.as_deref() == Some(prev.sha256.as_str());
        let to_backfill = points_at_backfill(next);
        if next.start > prev.end && !to_prev && !to_backfill {
            // A hole: reported only when every day it spans was listed (otherwise the digests
            // of the hole may simply be in folders this run did not read). A digest that names
            // its predecessor's hash leaves no room for a missing one, whatever the times say.
            let days = days_between(prev.end, next.start);
            if days
                .iter()
                .all(|d| listed_days.contains(&(next.account.clone(), next.region.clone(), *d)))
            {
                chain_findings.push(Finding {
                    kind: Kind::DigestMissing,
                    object: next.key.clone(),
                    account_id: next.account.clone(),
                    region: next.region.clone(),
                    days,
                    detail: format!(
                        "no digest from {} to {} (trail {}, home region {}){}",
                        crate::model::iso(prev.end),
                        crate::model::iso(next.start),
                        next.trail,
                        next.home_region,
                        if next.prev_hash.is_none() && next.prev_signature.is_none() {
                            "; the chain starts again here (no previous digest named): \
                             logging or log file validation was off, or the chain was cut"
                        } else {
                            "; this digest names a previous one that is not in the archive"
                        }
                    ),
                });
            }
            continue;
        }
        let broken = if to_backfill {
            None
        } else if !to_prev {
            Some(format!(
                "its SHA-256 is {}, the next digest ({}) says {}",
                prev.sha256,
                next.key,
                next.prev_hash.as_deref().unwrap_or("null")
            ))
        } else {
            // Its signature, as the next digest remembers it (unless it is itself reported bad).
            prev.signature
                .as_deref()
                .filter(|sig| {
                    !bad_signature.contains(prev.key.as_str())
                        && next.prev_signature.as_deref() != Some(*sig)
                })
                .map(|_| {
                    format!(
                        "the next digest ({}) names another previousDigestSignature",
                        next.key
                    )
                })
        };
        if let Some(detail) = broken {
            chain_findings.push(Finding {
                kind: Kind::DigestHashMismatch,
                object: prev.key.clone(),
                account_id: prev.account.clone(),
                region: prev.region.clone(),
                days: days_between(prev.start, prev.end),
                detail,
            });
        }
    }
    chain_findings
}

/// The periods the digests cover, per account and region.
pub(super) type Spans = BTreeMap<(String, String), Vec<(Instant, Instant)>>;

pub(super) fn spans(digests: &[Digest]) -> Spans {
    let mut spans = Spans::new();
    for d in digests {
        spans
            .entry((d.account.clone(), d.region.clone()))
            .or_default()
            .push((d.start, d.end));
    }
    spans
}
