//! synth --sign: a real CloudTrail digest chain for the synthetic archive — one digest per hour
//! per account and region, listing the SHA-256 of each log delivered in that hour, chained by
//! `previousDigestHashValue` / `previousDigestSignature`, and signed (RSA PKCS#1 v1.5, SHA-256)
//! with the fixed synth-only key `digest-signing-key.pk8` (a test key: it signs nothing real, and
//! being fixed keeps `synth` deterministic). `--tamper` then breaks it in the ways
//! `validate-logs` reports, and the expected findings go into the truth.

use crate::integrity::{fingerprint, signed_string};
use anyhow::Context;
use chrono::{Duration, Utc};
use rayon::prelude::*;
use serde_json::json;
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::path::Path;

/// The synth-only signing key (PKCS#8 DER, RSA 2048).
const SIGNING_KEY: &[u8] = include_bytes!("digest-signing-key.pk8");
/// The bucket the synthetic trail delivers to (what digests name).
pub const BUCKET: &str = "org-trail-logs";
const TRAIL: &str = "org-trail";

/// Ways to break the signed archive, one object each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Tamper {
    /// Rewrite a log (still readable JSON, other bytes): `log_modified`.
    ModifyLog,
    /// Delete a log that a digest lists: `log_missing`.
    DeleteLog,
    /// Add a log that no digest lists: `log_unlisted`.
    UnlistedLog,
    /// Delete a digest: `digest_missing`.
    DeleteDigest,
    /// Change a digest's signature: `digest_bad_signature`.
    BadSignature,
    /// Rewrite a digest (same content, other bytes): the next digest's
    /// `previousDigestHashValue` no longer matches (`digest_hash_mismatch`) and neither does its
    /// own signature (`digest_bad_signature`).
    ModifyDigest,
    /// Move a digest to another key in its folder (its signature metadata travels with it): it is
    /// not where it says it was delivered (`digest_moved`), and the key its successor names is
    /// gone (`digest_missing`).
    MoveDigest,
    /// Delete a day's first two digests together with the logs they list: the later one is
    /// named by its successor (`digest_missing`); the logs have no digest left to miss them.
    DeleteFirstDigests,
}

/// A log object written by synth, with the SHA-256 of the JSON CloudTrail delivered (for a
/// corrupt object, the JSON before it was damaged).
pub struct SignedLog {
    pub key: String,
    pub account: String,
    pub region: String,
    pub delivered: chrono::DateTime<Utc>,
    pub sha256: String,
}

/// What a signed archive must be reported with.
pub struct Signed {
    /// The failing findings its tampering causes, as `(kind, object)`, sorted.
    pub expected: Vec<(String, String)>,
    /// Where its chains start again after logging was off (see [`Chain::restarts`]).
    pub restarts: Vec<serde_json::Value>,
}

/// Writes the chains under `logs`, `signatures` (digest key → hex signature) and the public key;
/// applies `tamper`; returns what a check must report.
pub fn write(
    out: &Path,
    logs: &Path,
    base: &str,
    first: chrono::DateTime<Utc>,
    end: chrono::DateTime<Utc>,
    written: &[SignedLog],
    tamper: &[Tamper],
) -> anyhow::Result<Signed> {
    let key = aws_lc_rs::rsa::KeyPair::from_pkcs8(SIGNING_KEY)
        .map_err(|e| anyhow::anyhow!("synth signing key: {e}"))?;
    use aws_lc_rs::signature::KeyPair as _;
    let public = key.public_key().as_ref().to_vec();
    let fp = fingerprint(&public);
    let mut by_chain: BTreeMap<(&str, &str), Vec<&SignedLog>> = BTreeMap::new();
    for l in written {
        by_chain
            .entry((l.account.as_str(), l.region.as_str()))
            .or_default()
            .push(l);
    }
    let chains: Vec<((&str, &str), Vec<&SignedLog>)> = by_chain.into_iter().collect();
    let written_chains: Vec<Chain> = chains
        .par_iter()
        .map(|((account, region), logs_of)| {
            chain(logs, base, account, region, first, end, logs_of, &key, &fp)
        })
        .collect::<anyhow::Result<_>>()?;
    let restarts: Vec<serde_json::Value> = written_chains
        .iter()
        .flat_map(|c| c.restarts.iter().cloned())
        .collect();
    let mut signatures: BTreeMap<String, String> = written_chains
        .into_iter()
        .flat_map(|c| c.signatures)
        .collect();

    let mut expected = tamper_with(logs, base, written, tamper, &mut signatures)?;
    std::fs::write(
        out.join("digest-signatures.json"),
        serde_json::to_string_pretty(&signatures)? + "\n",
    )?;
    std::fs::write(out.join("digest-public-key.der"), &public)?;
    expected.sort();
    Ok(Signed { expected, restarts })
}

/// Breaks the signed archive once per kind in `tamper` (on account A, us-east-1, on days inside
/// the backfill windows), keeping `signatures` as CloudTrail would have them; returns the
/// findings a check must report, as (kind, object).
fn tamper_with(
    logs: &Path,
    base: &str,
    written: &[SignedLog],
    tamper: &[Tamper],
    signatures: &mut BTreeMap<String, String>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut expected = Vec::new();
    // Targets: account A, us-east-1, on days inside the backfill windows, one per kind.
    let pick = |day: u32, n: usize| {
        written
            .iter()
            .filter(|l| {
                l.account == super::ACCOUNT_A
                    && l.region == "us-east-1"
                    && l.delivered.date_naive() == super::date(2026, 2, day)
            })
            .nth(n)
    };
    let digest_key = |hour_end: chrono::DateTime<Utc>| {
        let delivered = hour_end + Duration::minutes(7);
        format!(
            "{base}{acct}/CloudTrail-Digest/us-east-1/{}/{acct}_CloudTrail-Digest_us-east-1_{TRAIL}_us-east-1_{}.json.gz",
            delivered.format("%Y/%m/%d"),
            delivered.format("%Y%m%dT%H%M%SZ"),
            acct = super::ACCOUNT_A,
        )
    };
    for t in tamper {
        match t {
            Tamper::ModifyLog => {
                let l = pick(5, 1).context("no log to modify")?;
                respace(&logs.join(&l.key))?;
                expected.push(("log_modified".to_string(), l.key.clone()));
            }
            Tamper::DeleteLog => {
                let l = pick(6, 1).context("no log to delete")?;
                std::fs::remove_file(logs.join(&l.key))?;
                expected.push(("log_missing".to_string(), l.key.clone()));
            }
            Tamper::UnlistedLog => {
                let l = pick(7, 1).context("no log to copy")?;
                let key = l.key.replace(
                    &l.key[l.key.len() - 24..l.key.len() - 8],
                    "UNLISTEDUNLISTED",
                );
                std::fs::copy(logs.join(&l.key), logs.join(&key))?;
                expected.push(("log_unlisted".to_string(), key));
            }
            Tamper::DeleteDigest => {
                let hour_end = super::t(2026, 2, 8, 12, 0, 0);
                let gone = digest_key(hour_end);
                std::fs::remove_file(logs.join(&gone))
                    .with_context(|| format!("no digest {gone}"))?;
                signatures.remove(&gone);
                // Reported as its successor names it.
                expected.push(("digest_missing".to_string(), gone));
            }
            Tamper::BadSignature => {
                let k = digest_key(super::t(2026, 2, 9, 12, 0, 0));
                let sig = signatures.get_mut(&k).context("no digest to re-sign")?;
                let flipped = if sig.starts_with('0') { "1" } else { "0" };
                sig.replace_range(0..1, flipped);
                expected.push(("digest_bad_signature".to_string(), k));
            }
            Tamper::ModifyDigest => {
                let k = digest_key(super::t(2026, 2, 10, 12, 0, 0));
                respace(&logs.join(&k))?;
                expected.push(("digest_hash_mismatch".to_string(), k.clone()));
                expected.push(("digest_bad_signature".to_string(), k));
            }
            Tamper::MoveDigest => {
                // One second earlier in its name, so that a walk by time meets it where the
                // original was (validate-logs checks it then, and finds it moved).
                let from = digest_key(super::t(2026, 2, 11, 12, 0, 0));
                let to = from.replace("20260211T120700Z", "20260211T120659Z");
                std::fs::rename(logs.join(&from), logs.join(&to))
                    .with_context(|| format!("no digest {from}"))?;
                let sig = signatures.remove(&from).context("no digest to move")?;
                signatures.insert(to.clone(), sig);
                expected.push(("digest_missing".to_string(), from));
                expected.push(("digest_moved".to_string(), to));
            }
            Tamper::DeleteFirstDigests => {
                let gone = delete_first_digests(logs, written, &digest_key, signatures)?;
                expected.push(("digest_missing".to_string(), gone));
            }
        }
    }
    Ok(expected)
}

/// Deletes the digests of 23:00-00:00 and 00:00-01:00 of account A, us-east-1 (delivered into
/// 2026-02-12's folder) and the logs they list; returns the later one's key: what the next
/// digest names, and so what a check must find missing.
fn delete_first_digests(
    logs: &Path,
    written: &[SignedLog],
    digest_key: &dyn Fn(chrono::DateTime<Utc>) -> String,
    signatures: &mut BTreeMap<String, String>,
) -> anyhow::Result<String> {
    let hours = [
        super::t(2026, 2, 12, 0, 0, 0),
        super::t(2026, 2, 12, 1, 0, 0),
    ];
    for end in hours {
        let gone = digest_key(end);
        std::fs::remove_file(logs.join(&gone)).with_context(|| format!("no digest {gone}"))?;
        signatures.remove(&gone);
        let start = end - Duration::hours(1);
        for l in written.iter().filter(|l| {
            l.account == super::ACCOUNT_A
                && l.region == "us-east-1"
                && l.delivered >= start
                && l.delivered < end
        }) {
            std::fs::remove_file(logs.join(&l.key))?;
        }
    }
    Ok(digest_key(hours[1]))
}

/// Rewrites a gzip'd JSON object with the same content in other bytes (a space after the opening
/// brace): what it says is unchanged, its hash is not.
fn respace(path: &Path) -> anyhow::Result<()> {
    let mut json = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(path)?),
        &mut json,
    )?;
    json.insert(1, b' ');
    std::fs::write(path, super::gzip_bytes(&json))?;
    Ok(())
}

/// What one chain's writing gave: (digest key, hex signature) of each digest, and where the chain
/// starts again after logging was off.
#[derive(Default)]
struct Chain {
    signatures: Vec<(String, String)>,
    /// `{object: the digest that starts again, folders: [account/region/day of the digest before
    /// the gap, of this one]}`: a run reports the restart when it reads both folders.
    restarts: Vec<serde_json::Value>,
}

/// `account/region/YYYY-MM-DD` of a digest key's folder.
fn folder_of(key: &str) -> String {
    let parts: Vec<&str> = key.rsplit('/').collect();
    // name, DD, MM, YYYY, region, CloudTrail-Digest, account, ...
    format!(
        "{}/{}/{}-{}-{}",
        parts[6], parts[4], parts[3], parts[2], parts[1]
    )
}

/// One account's and region's hourly chain.
#[allow(clippy::too_many_arguments)]
fn chain(
    logs: &Path,
    base: &str,
    account: &str,
    region: &str,
    first: chrono::DateTime<Utc>,
    end: chrono::DateTime<Utc>,
    logs_of: &[&SignedLog],
    key: &aws_lc_rs::rsa::KeyPair,
    fp: &str,
) -> anyhow::Result<Chain> {
    let mut out = Chain::default();
    let mut prev: Option<(String, String, String)> = None; // (key, sha256 hex, signature hex)
                                                           // The last digest written before logging was turned off, while it is off.
    let mut off_after: Option<String> = None;
    let mut hour = first;
    while hour < end {
        let next = hour + Duration::hours(1);
        // Logging off (the missing-days gap): no logs, no digests; the chain starts again after.
        if super::in_gap(account, region, hour.date_naive()) {
            if let Some((k, ..)) = prev.take() {
                off_after = Some(k);
            }
            hour = next;
            continue;
        }
        let delivered = next + Duration::minutes(7);
        let key_name = format!(
            "{base}{account}/CloudTrail-Digest/{region}/{}/{account}_CloudTrail-Digest_{region}_{TRAIL}_us-east-1_{}.json.gz",
            delivered.format("%Y/%m/%d"),
            delivered.format("%Y%m%dT%H%M%SZ")
        );
        let files: Vec<_> = logs_of
            .iter()
            .filter(|l| l.delivered >= hour && l.delivered < next)
            .map(|l| json!({"s3Bucket": BUCKET, "s3Object": l.key, "hashValue": l.sha256}))
            .collect();
        let end_text = next.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let doc = json!({
            "awsAccountId": account,
            "digestStartTime": hour.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "digestEndTime": end_text,
            "digestS3Bucket": BUCKET,
            "digestS3Object": key_name,
            "digestPublicKeyFingerprint": fp,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": null,
            "oldestEventTime": null,
            "previousDigestS3Bucket": prev.as_ref().map(|_| BUCKET),
            "previousDigestS3Object": prev.as_ref().map(|p| p.0.clone()),
            "previousDigestHashValue": prev.as_ref().map(|p| p.1.clone()),
            "previousDigestHashAlgorithm": "SHA-256",
            "previousDigestSignature": prev.as_ref().map(|p| p.2.clone()),
            "logFiles": files,
        });
        let bytes = serde_json::to_vec(&doc)?;
        let sha = crate::model::hex(&sha2::Sha256::digest(&bytes));
        let message = signed_string(
            &end_text,
            BUCKET,
            &key_name,
            &sha,
            prev.as_ref().map(|p| p.2.as_str()),
        );
        let mut sig = vec![0u8; key.public_modulus_len()];
        key.sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            message.as_bytes(),
            &mut sig,
        )
        .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
        let sig = crate::model::hex(&sig);
        let path = logs.join(&key_name);
        std::fs::create_dir_all(path.parent().expect("has parent"))?;
        std::fs::write(&path, super::gzip_bytes(&bytes))?;
        if let Some(before) = off_after.take() {
            out.restarts.push(json!({
                "object": key_name,
                "folders": [folder_of(&before), folder_of(&key_name)],
            }));
        }
        out.signatures.push((key_name.clone(), sig.clone()));
        prev = Some((key_name, sha, sig));
        hour = next;
    }
    Ok(out)
}
