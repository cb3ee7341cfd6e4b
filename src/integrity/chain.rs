//! integrity::chain: the digest chain of each trail (per account, region, trail name and home
//! region), followed by its links as `aws cloudtrail validate-logs` follows them: each digest
//! names the one before it (`previousDigestS3Object`). A named digest that is not in the archive
//! is missing; a digest that names none starts the chain again (informational: logging or
//! validation was off); a digest that is not where it says it was delivered has been moved; a
//! digest that is not what the next one says of it (hash, signature) is a break. Backfill digests
//! stand beside the hourly chain: they can be named, they name nothing themselves.

use super::digest::Digest;
use super::{days_between, Finding, Kind};
use crate::model::{iso, Instant};
use chrono::Duration;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Digests looked up by the key a listed digest names as its previous one, where that key was
/// not among the listed digests (it lies before the planned days, or it is gone): the digest, or
/// why it could not be read.
pub type Named = HashMap<String, Result<Digest, String>>;

/// The keys the listed `digests` name as previous digests that are not among them, each with a
/// digest that names it (whose account and region it is read as): what must be looked up (in
/// `named`) before the walk.
pub fn unlisted_predecessors(digests: &[Digest]) -> BTreeMap<String, &Digest> {
    let listed: BTreeSet<&str> = digests.iter().map(|d| d.key.as_str()).collect();
    digests
        .iter()
        .filter(|d| !d.backfill)
        .filter_map(|d| Some((d.prev_object.as_deref()?, d)))
        .filter(|(k, _)| !listed.contains(k))
        .map(|(k, d)| (k.to_string(), d))
        .collect()
}

/// The chain's findings over `digests` (sorted by chain and start time), with the digests their
/// links name outside the listing in `named`, read from the S3 `bucket` where the archive is one.
/// `bad_signature` digests are not also reported for the signature the next one remembers.
pub(super) fn walk(
    digests: &[Digest],
    named: &Named,
    bucket: Option<&str>,
    bad_signature: &BTreeSet<&str>,
) -> Vec<Finding> {
    let by_key: HashMap<&str, &Digest> = digests
        .iter()
        .map(|d| (d.key.as_str(), d))
        .chain(
            named
                .iter()
                .filter_map(|(k, d)| Some((k.as_str(), d.as_ref().ok()?))),
        )
        .collect();
    let hourly: Vec<&Digest> = digests.iter().filter(|d| !d.backfill).collect();
    let mut out = Vec::new();
    for (i, d) in hourly.iter().enumerate() {
        // The digest before it in time, in its own chain.
        let older = i
            .checked_sub(1)
            .map(|j| hourly[j])
            .filter(|o| o.chain() == d.chain());
        let other_bucket = bucket.filter(|b| *b != d.s3_bucket);
        if d.s3_object != d.key || other_bucket.is_some() {
            out.push(finding(
                Kind::DigestMoved,
                d,
                &d.key,
                days_between(d.start, d.end),
                format!(
                    "has been moved from its original location: it says it was delivered as {}{}",
                    d.s3_object,
                    other_bucket
                        .map(|_| format!(" in bucket {}", d.s3_bucket))
                        .unwrap_or_default()
                ),
            ));
        }
        let Some(prev_key) = d.prev_object.as_deref() else {
            out.extend(older.filter(|o| o.end < d.start).map(|o| restart(o, d)));
            continue;
        };
        match by_key.get(prev_key) {
            Some(prev) => out.extend(broken_link(prev, d, bad_signature)),
            None => out.push(missing(prev_key, d, older, named.get(prev_key))),
        }
    }
    out
}

/// `chain_restart` on `d`, which names no previous digest, after `older`.
fn restart(older: &Digest, d: &Digest) -> Finding {
    finding(
        Kind::ChainRestart,
        d,
        &d.key,
        days_between(older.end, d.start),
        format!(
            "no log files were delivered by CloudTrail between {} and {} (trail {}, home region {}): the chain starts again here, no previous digest named; logging or log file validation was off",
            iso(older.end),
            iso(d.start),
            d.trail,
            d.home_region
        ),
    )
}

/// `digest_missing` on `prev_key`, which `d` names but the archive does not hold (`looked_up`:
/// what the lookup by key said), over the time since `older`.
fn missing(
    prev_key: &str,
    d: &Digest,
    older: Option<&Digest>,
    looked_up: Option<&Result<Digest, String>>,
) -> Finding {
    let from = older.map_or(d.start - Duration::hours(1), |o| o.end.min(d.start));
    let why = match looked_up {
        Some(Err(e)) => format!(" ({e})"),
        _ => String::new(),
    };
    finding(
        Kind::DigestMissing,
        d,
        prev_key,
        days_between(from, d.start),
        format!(
            "named by {} as its previous digest, not in the archive{why}: deleted or expired (a lifecycle rule looks the same); no digest covers {} to {}",
            d.key,
            iso(from),
            iso(d.start)
        ),
    )
}

/// A `digest_hash_mismatch` on `prev` when `next` does not say of it what it is: its SHA-256, or
/// (unless its own signature is reported bad) its signature.
fn broken_link(prev: &Digest, next: &Digest, bad_signature: &BTreeSet<&str>) -> Option<Finding> {
    let detail = if next.prev_hash.as_deref() != Some(prev.sha256.as_str()) {
        format!(
            "its SHA-256 is {}, the next digest ({}) says {}",
            prev.sha256,
            next.key,
            next.prev_hash.as_deref().unwrap_or("null")
        )
    } else {
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
            })?
    };
    Some(finding(
        Kind::DigestHashMismatch,
        prev,
        &prev.key,
        days_between(prev.start, prev.end),
        detail,
    ))
}

fn finding(
    kind: Kind,
    of: &Digest,
    object: &str,
    days: Vec<chrono::NaiveDate>,
    detail: String,
) -> Finding {
    Finding {
        kind,
        object: object.to_string(),
        account_id: of.account.clone(),
        region: of.region.clone(),
        days,
        detail,
    }
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
