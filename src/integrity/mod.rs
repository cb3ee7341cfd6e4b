//! integrity: CloudTrail's signed digest chain, checked against what the scan read.
//!
//! Each digest file lists the SHA-256 of every log object delivered in its period (about an
//! hour), points at the previous digest (`previousDigestHashValue`, `previousDigestSignature`)
//! and is signed by CloudTrail (RSA PKCS#1 v1.5, SHA-256, over the string in
//! [`signed_string`]). The scan hashes every log's inflated bytes as it reads them
//! (`DecodeLimits::hash`), so nothing is downloaded twice; this module compares those hashes with the
//! digests, walks the chain and checks the signatures. Findings use the vocabulary of
//! `aws cloudtrail validate-logs`: see [`Kind`].

pub mod live;

use crate::archive::layout::DayPrefix;
use crate::model::{parse_iso, Instant};
use crate::scan::{ManifestRow, ObjectStatus};
use chrono::{Duration, NaiveDate};
use serde::Deserialize;
use sha2::Digest as _;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Listed in a digest, not in the archive.
    LogMissing,
    /// In the archive, delivered inside the period the chain covers, in no digest.
    LogUnlisted,
    /// Its inflated bytes do not hash to its digest entry (or it cannot be inflated at all).
    LogModified,
    /// A hole in the chain: no digest covers this period.
    DigestMissing,
    /// A digest whose bytes do not match what the next digest says of it.
    DigestHashMismatch,
    /// A digest whose signature does not verify.
    DigestBadSignature,
    /// No public key with the digest's fingerprint.
    PublicKeyNotFound,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::LogMissing,
        Kind::LogUnlisted,
        Kind::LogModified,
        Kind::DigestMissing,
        Kind::DigestHashMismatch,
        Kind::DigestBadSignature,
        Kind::PublicKeyNotFound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::LogMissing => "log_missing",
            Kind::LogUnlisted => "log_unlisted",
            Kind::LogModified => "log_modified",
            Kind::DigestMissing => "digest_missing",
            Kind::DigestHashMismatch => "digest_hash_mismatch",
            Kind::DigestBadSignature => "digest_bad_signature",
            Kind::PublicKeyNotFound => "public_key_not_found",
        }
    }
}

/// One row of `integrity/`.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    /// The log object or digest concerned (for `digest_missing`, the digest after the hole).
    pub object: String,
    pub account_id: String,
    pub region: String,
    /// The delivery days whose evidence it weakens.
    pub days: Vec<NaiveDate>,
    pub detail: String,
}

/// A digest file as CloudTrail writes it (the fields this check uses).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DigestJson {
    digest_start_time: String,
    digest_end_time: String,
    #[serde(rename = "digestS3Bucket")]
    digest_s3_bucket: String,
    #[serde(rename = "digestS3Object")]
    digest_s3_object: String,
    previous_digest_hash_value: Option<String>,
    previous_digest_signature: Option<String>,
    digest_public_key_fingerprint: Option<String>,
    #[serde(default)]
    log_files: Vec<LogFileJson>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogFileJson {
    #[serde(rename = "s3Object")]
    s3_object: String,
    hash_value: String,
}

/// A digest read from the archive.
#[derive(Debug, Clone)]
pub struct Digest {
    /// Its object key in the store.
    pub key: String,
    pub account: String,
    pub region: String,
    /// The trail that wrote it and that trail's home region (from its name), so that chains of
    /// different trails stay apart — also two trails of one name in two home regions.
    pub trail: String,
    pub home_region: String,
    /// A backfill digest (`..._backfill.json.gz`): CloudTrail's late listing of log files that
    /// missed their hour's digest. Its signature and listed logs count; it is not an hour of
    /// the chain.
    pub backfill: bool,
    pub start: Instant,
    pub end: Instant,
    /// `digestEndTime` exactly as written (it is part of the signed string).
    pub end_text: String,
    pub s3_bucket: String,
    pub s3_object: String,
    pub prev_hash: Option<String>,
    pub prev_signature: Option<String>,
    pub fingerprint: Option<String>,
    /// `(s3Object, hashValue)` of each log file delivered in its period.
    pub logs: Vec<(String, String)>,
    /// Hex SHA-256 of its inflated bytes.
    pub sha256: String,
    /// Hex signature (S3 metadata `signature`, or `--digest-signatures`), when known.
    pub signature: Option<String>,
}

impl Digest {
    /// Which chain it belongs to: account, region, trail and the trail's home region.
    fn chain(&self) -> (&str, &str, &str, &str) {
        (&self.account, &self.region, &self.trail, &self.home_region)
    }
}

/// Parses a digest from its gzip'd bytes.
pub fn parse_digest(key: &str, account: &str, region: &str, gz: &[u8]) -> Result<Digest, String> {
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(gz), &mut json)
        .map_err(|e| format!("gzip: {e}"))?;
    let d: DigestJson =
        serde_json::from_slice(&json).map_err(|e| format!("not a CloudTrail digest: {e}"))?;
    let time = |s: &str| parse_iso(s).ok_or_else(|| format!("bad digest time `{s}`"));
    // <acct>_CloudTrail-Digest_<region>_<trail>_<home-region>_<time>[_backfill].json.gz; a
    // trail's name may itself hold underscores.
    let name = key.rsplit('/').next().unwrap_or_default();
    let stem = name.strip_suffix(".json.gz").unwrap_or(name);
    let (stem, backfill) = match stem.strip_suffix("_backfill") {
        Some(s) => (s, true),
        None => (stem, false),
    };
    let parts: Vec<&str> = stem.split('_').collect();
    let (trail, home_region) = if parts.len() >= 6 {
        (
            parts[3..parts.len() - 2].join("_"),
            parts[parts.len() - 2].to_string(),
        )
    } else {
        Default::default()
    };
    Ok(Digest {
        key: key.to_string(),
        account: account.to_string(),
        region: region.to_string(),
        trail,
        home_region,
        backfill,
        start: time(&d.digest_start_time)?,
        end: time(&d.digest_end_time)?,
        end_text: d.digest_end_time,
        s3_bucket: d.digest_s3_bucket,
        s3_object: d.digest_s3_object,
        prev_hash: d.previous_digest_hash_value,
        prev_signature: d.previous_digest_signature,
        fingerprint: d.digest_public_key_fingerprint,
        logs: d
            .log_files
            .into_iter()
            .map(|l| (l.s3_object, l.hash_value.to_ascii_lowercase()))
            .collect(),
        sha256: crate::model::hex(&sha2::Sha256::digest(&json)),
        signature: None,
    })
}

/// What CloudTrail signs for a digest (FACTS.md, "Log file integrity").
pub fn signed_string(
    end_text: &str,
    bucket: &str,
    object: &str,
    sha256_hex: &str,
    prev_signature: Option<&str>,
) -> String {
    format!(
        "{end_text}\n{bucket}/{object}\n{sha256_hex}\n{}",
        prev_signature.unwrap_or("null")
    )
}

/// The public keys digests are verified with.
#[derive(Debug, Default, Clone)]
pub struct PublicKeys {
    /// `(fingerprint, DER)`; a key from a file carries keytrail's own fingerprint
    /// ([`fingerprint`]), a key from `ListPublicKeys` CloudTrail's.
    pub keys: Vec<(String, Vec<u8>)>,
    /// Keys from files may be tried against any digest (their CloudTrail fingerprint is unknown).
    pub try_all: bool,
}

impl PublicKeys {
    /// No key yet, for a local archive: file keys may be tried against any digest.
    pub fn default_local() -> PublicKeys {
        PublicKeys {
            keys: Vec::new(),
            try_all: true,
        }
    }
}

/// keytrail's fingerprint of a public key (what `synth --sign` writes into its digests): the
/// first 16 bytes of the SHA-256 of its DER, in hex.
pub fn fingerprint(der: &[u8]) -> String {
    crate::model::hex(&sha2::Sha256::digest(der)[..16])
}

/// Reads a public key file: DER (PKCS#1 `RSAPublicKey` or SubjectPublicKeyInfo), or the same
/// in base64 (as the AWS CLI shows `ListPublicKeys` values), or PEM.
pub fn read_public_key(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    if bytes.first() == Some(&0x30) {
        return bytes.to_vec();
    }
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
        .split_whitespace()
        .collect();
    base64_decode(&body).unwrap_or_else(|| bytes.to_vec())
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn verify_signature(der: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let Some(sig) = unhex(signature_hex) else {
        return false;
    };
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        der,
    )
    .verify(message, &sig)
    .is_ok()
}

/// The outcome of the check over the planned days.
#[derive(Debug, Default)]
pub struct Checked {
    pub findings: Vec<Finding>,
    /// Planned (account, region, day)s that the chain covers from start to end.
    pub covered: BTreeSet<(String, String, NaiveDate)>,
    /// Digests whose signature was verified / could not be checked (no signature or no key).
    pub signatures_verified: usize,
    pub signatures_unchecked: usize,
    pub digests: usize,
}

impl Checked {
    /// Findings per (account, region, day), for the verdicts.
    pub fn by_day(&self) -> HashMap<(&str, &str, NaiveDate), Vec<&Finding>> {
        let mut out: HashMap<(&str, &str, NaiveDate), Vec<&Finding>> = HashMap::new();
        for f in &self.findings {
            for d in &f.days {
                out.entry((f.account_id.as_str(), f.region.as_str(), *d))
                    .or_default()
                    .push(f);
            }
        }
        out
    }

    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut out: BTreeMap<&'static str, usize> =
            Kind::ALL.iter().map(|k| (k.as_str(), 0)).collect();
        for f in &self.findings {
            *out.entry(f.kind.as_str()).or_default() += 1;
        }
        out
    }
}

/// The delivery day of a digest: the one in its folder (`.../YYYY/MM/DD/<name>`).
fn folder_day(key: &str) -> Option<NaiveDate> {
    let mut parts = key.rsplit('/').skip(1);
    let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// The delivery time in a log file's name (`..._<YYYYMMDDTHHmmZ>_<16 chars>.json.gz`).
fn log_time(key: &str) -> Option<Instant> {
    let name = key.rsplit('/').next()?;
    let stamp = name.rsplit('_').nth(1)?;
    let t = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%MZ").ok()?;
    Some(t.and_utc())
}

/// Days from the day of `a` to the day of `b`, inclusive.
fn days_between(a: Instant, b: Instant) -> Vec<NaiveDate> {
    crate::model::days(a.date_naive(), b.date_naive()).collect()
}

/// Checks `digests` (those of the planned account/regions, read from the planned days' digest
/// folders and the day after each) against the scan's `manifest`, over the `planned` days.
pub fn verify(
    mut digests: Vec<Digest>,
    manifest: &[ManifestRow],
    planned: &BTreeSet<DayPrefix>,
    keys: &PublicKeys,
) -> Checked {
    let mut out = Checked {
        digests: digests.len(),
        ..Checked::default()
    };
    let listed_days: BTreeSet<(String, String, NaiveDate)> = planned
        .iter()
        .flat_map(|p| {
            [p.day, p.day + Duration::days(1)].map(|d| (p.account.clone(), p.region.clone(), d))
        })
        .collect();
    let is_planned = |a: &str, r: &str, d: NaiveDate| {
        planned.contains(&DayPrefix {
            account: a.to_string(),
            region: r.to_string(),
            day: d,
        })
    };

    // Signatures.
    for d in &digests {
        let message = signed_string(
            &d.end_text,
            &d.s3_bucket,
            &d.s3_object,
            &d.sha256,
            d.prev_signature.as_deref(),
        );
        let Some(sig) = &d.signature else {
            out.signatures_unchecked += 1;
            continue;
        };
        let matching: Vec<&Vec<u8>> = keys
            .keys
            .iter()
            .filter(|(fp, _)| Some(fp) == d.fingerprint.as_ref())
            .map(|(_, der)| der)
            .collect();
        let candidates: Vec<&Vec<u8>> = if matching.is_empty() && keys.try_all {
            keys.keys.iter().map(|(_, der)| der).collect()
        } else {
            matching
        };
        if candidates.is_empty() {
            if keys.keys.is_empty() && keys.try_all {
                out.signatures_unchecked += 1;
                continue;
            }
            out.findings.push(Finding {
                kind: Kind::PublicKeyNotFound,
                object: d.key.clone(),
                account_id: d.account.clone(),
                region: d.region.clone(),
                days: days_between(d.start, d.end),
                detail: format!(
                    "no public key with fingerprint {}",
                    d.fingerprint.as_deref().unwrap_or("(none)")
                ),
            });
            continue;
        }
        if candidates
            .iter()
            .any(|der| verify_signature(der, message.as_bytes(), sig))
        {
            out.signatures_verified += 1;
        } else {
            out.findings.push(Finding {
                kind: Kind::DigestBadSignature,
                object: d.key.clone(),
                account_id: d.account.clone(),
                region: d.region.clone(),
                days: days_between(d.start, d.end),
                detail: "the signature does not verify (RSA PKCS#1 v1.5, SHA-256)".into(),
            });
        }
    }

    // The chain, per account, region and trail.
    digests.sort_by(|a, b| (a.chain(), a.start).cmp(&(b.chain(), b.start)));
    let bad_signature: BTreeSet<&str> = out
        .findings
        .iter()
        .filter(|f| f.kind == Kind::DigestBadSignature)
        .map(|f| f.object.as_str())
        .collect();
    let mut chain_findings = Vec::new();
    let mut spans: BTreeMap<(String, String), Vec<(Instant, Instant)>> = BTreeMap::new();
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
    for d in &digests {
        spans
            .entry((d.account.clone(), d.region.clone()))
            .or_default()
            .push((d.start, d.end));
    }
    out.findings.extend(chain_findings);

    // Logs: every listed log of a planned day is present and hashes right; every log of a
    // planned day inside the chain's period is listed.
    let rows: HashMap<&str, &ManifestRow> =
        manifest.iter().map(|r| (r.object.as_str(), r)).collect();
    let mut listed: HashMap<&str, (&str, &Digest)> = HashMap::new();
    for d in &digests {
        for (object, hash) in &d.logs {
            listed.insert(object.as_str(), (hash.as_str(), d));
        }
    }
    let mut log_findings = Vec::new();
    for (object, (hash, d)) in &listed {
        let Some(day) = folder_day(object) else {
            continue;
        };
        if !is_planned(&d.account, &d.region, day) {
            continue;
        }
        let finding = |kind, detail: String| Finding {
            kind,
            object: object.to_string(),
            account_id: d.account.clone(),
            region: d.region.clone(),
            days: vec![day],
            detail,
        };
        match rows.get(object) {
            None => log_findings.push(finding(
                Kind::LogMissing,
                format!("listed in digest {}, not in the archive", d.key),
            )),
            Some(r) => match &r.sha256 {
                Some(h) if h == hash => {}
                Some(h) => log_findings.push(finding(
                    Kind::LogModified,
                    format!("SHA-256 {h}, digest {} says {hash}", d.key),
                )),
                None => log_findings.push(finding(
                    Kind::LogModified,
                    format!(
                        "cannot be inflated to be hashed ({}); digest {} says {hash}",
                        r.reason.as_deref().unwrap_or("unreadable"),
                        d.key
                    ),
                )),
            },
        }
    }
    for r in manifest {
        let is_log = r.status != ObjectStatus::Skipped || r.archived;
        if !is_log || listed.contains_key(r.object.as_str()) {
            continue;
        }
        let Some(t) = log_time(&r.object) else {
            continue;
        };
        let inside = spans
            .get(&(r.account_id.clone(), r.region.clone()))
            .is_some_and(|s| s.iter().any(|(a, b)| *a <= t && t < *b));
        if inside {
            log_findings.push(Finding {
                kind: Kind::LogUnlisted,
                object: r.object.clone(),
                account_id: r.account_id.clone(),
                region: r.region.clone(),
                days: vec![r.delivery_date],
                detail: "delivered inside the period the digest chain covers, but in no digest"
                    .into(),
            });
        }
    }
    log_findings.sort_by(|a, b| a.object.cmp(&b.object));
    out.findings.extend(log_findings);

    // Coverage: a planned day is covered when the chain spans it from start to end.
    for p in planned {
        let Some(s) = spans.get(&(p.account.clone(), p.region.clone())) else {
            continue;
        };
        let day_start = p.day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let day_end = day_start + Duration::days(1);
        let mut cursor = day_start;
        let mut sorted = s.clone();
        sorted.sort();
        for (a, b) in sorted {
            if a <= cursor && b > cursor {
                cursor = b;
            }
        }
        if cursor >= day_end {
            out.covered
                .insert((p.account.clone(), p.region.clone(), p.day));
        }
    }
    out
}

/// Reads `--digest-signatures` (a JSON object: digest object key -> hex signature).
pub fn read_signatures(path: &std::path::Path) -> anyhow::Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--digest-signatures {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "--digest-signatures {}: expected a JSON object of digest key -> hex signature ({e})",
            path.display()
        )
    })
}

/// Reads `--public-key` files.
pub fn read_public_keys(paths: &[std::path::PathBuf]) -> anyhow::Result<PublicKeys> {
    let mut keys = Vec::new();
    for p in paths {
        let bytes =
            std::fs::read(p).map_err(|e| anyhow::anyhow!("--public-key {}: {e}", p.display()))?;
        let der = read_public_key(&bytes);
        anyhow::ensure!(
            aws_lc_rs::rsa::PublicKey::from_der(&der).is_ok(),
            "--public-key {}: not an RSA public key (PKCS#1 or SubjectPublicKeyInfo, DER, PEM or base64)",
            p.display()
        );
        keys.push((fingerprint(&der), der));
    }
    Ok(PublicKeys {
        keys,
        try_all: true,
    })
}

/// Parses the fetched digests (with their signatures from `signatures`) and checks them and the
/// scanned logs; a digest that cannot be read is itself a finding.
pub fn check(
    fetched: Vec<(crate::archive::layout::ObjectRef, Result<Vec<u8>, String>)>,
    manifest: &[ManifestRow],
    planned: &BTreeSet<DayPrefix>,
    signatures: &HashMap<String, String>,
    keys: &PublicKeys,
) -> Checked {
    let mut digests = Vec::new();
    let mut unreadable = Vec::new();
    for (obj, bytes) in fetched {
        let parsed =
            bytes.and_then(|b| parse_digest(&obj.key, &obj.prefix.account, &obj.prefix.region, &b));
        match parsed {
            Ok(mut d) => {
                d.signature = signatures.get(&d.key).map(|s| s.to_ascii_lowercase());
                digests.push(d);
            }
            Err(e) => unreadable.push(Finding {
                kind: Kind::DigestHashMismatch,
                object: obj.key.clone(),
                account_id: obj.prefix.account.clone(),
                region: obj.prefix.region.clone(),
                days: vec![obj.prefix.day],
                detail: format!("the digest cannot be read: {e}"),
            }),
        }
    }
    let mut out = verify(digests, manifest, planned, keys);
    out.findings.extend(unreadable);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::layout::is_digest_name;

    fn digest(key: &str, start: &str, end: &str, prev_hash: Option<&str>, sha: &str) -> Digest {
        Digest {
            key: key.into(),
            account: "111122223333".into(),
            region: "us-east-1".into(),
            trail: "t".into(),
            home_region: "us-east-1".into(),
            backfill: false,
            start: parse_iso(start).unwrap(),
            end: parse_iso(end).unwrap(),
            end_text: end.into(),
            s3_bucket: "b".into(),
            s3_object: key.into(),
            prev_hash: prev_hash.map(str::to_string),
            prev_signature: None,
            fingerprint: Some("aa".into()),
            logs: Vec::new(),
            sha256: sha.into(),
            signature: None,
        }
    }

    /// The digest of hour `h` (to `h + 1`) of 2026-02-01.
    fn hour(key: &str, h: u32, prev: Option<&str>, sha: &str) -> Digest {
        digest(
            key,
            &format!("2026-02-01T{h:02}:00:00Z"),
            &format!("2026-02-01T{:02}:00:00Z", h + 1),
            prev,
            sha,
        )
    }

    fn planned(days: &[u32]) -> BTreeSet<DayPrefix> {
        days.iter()
            .map(|d| DayPrefix {
                account: "111122223333".into(),
                region: "us-east-1".into(),
                day: NaiveDate::from_ymd_opt(2026, 2, *d).unwrap(),
            })
            .collect()
    }

    fn kinds(c: &Checked) -> Vec<(&'static str, &str)> {
        c.findings
            .iter()
            .map(|f| (f.kind.as_str(), f.object.as_str()))
            .collect()
    }

    #[test]
    fn keys_are_matched_by_fingerprint_or_reported_missing() {
        let mut d = digest(
            "d1",
            "2026-02-01T00:00:00Z",
            "2026-02-01T01:00:00Z",
            None,
            "00",
        );
        d.signature = Some("0011".into());
        let other = PublicKeys {
            keys: vec![("bb".into(), vec![0x30])],
            try_all: false,
        };
        let c = verify(vec![d.clone()], &[], &planned(&[1]), &other);
        assert_eq!(kinds(&c), [("public_key_not_found", "d1")]);
        // A key with the fingerprint that does not verify the signature: a bad signature.
        let same = PublicKeys {
            keys: vec![("aa".into(), vec![0x30])],
            try_all: false,
        };
        let c = verify(vec![d.clone()], &[], &planned(&[1]), &same);
        assert_eq!(kinds(&c), [("digest_bad_signature", "d1")]);
        // No keys at all for a local archive: not verified, not a finding.
        let c = verify(vec![d], &[], &planned(&[1]), &PublicKeys::default_local());
        assert!(c.findings.is_empty());
        assert_eq!(c.signatures_unchecked, 1);
    }

    #[test]
    fn chain_holes_and_hash_breaks() {
        let a = digest(
            "a",
            "2026-02-01T00:00:00Z",
            "2026-02-01T01:00:00Z",
            None,
            "aa",
        );
        let b = digest(
            "b",
            "2026-02-01T01:00:00Z",
            "2026-02-01T02:00:00Z",
            Some("aa"),
            "bb",
        );
        let c = digest(
            "c",
            "2026-02-01T03:00:00Z",
            "2026-02-01T04:00:00Z",
            Some("xx"),
            "cc",
        );
        let d = digest(
            "d",
            "2026-02-01T04:00:00Z",
            "2026-02-01T05:00:00Z",
            Some("c0"),
            "dd",
        );
        let keys = PublicKeys::default_local();
        let got = verify(vec![d, c, b, a], &[], &planned(&[1]), &keys);
        // b -> c skips 02:00-03:00; c's hash is not what d says.
        assert_eq!(
            kinds(&got),
            [("digest_missing", "c"), ("digest_hash_mismatch", "c")]
        );
        // A hole that reaches into a day this run did not list is not called a hole.
        let e = digest(
            "e",
            "2026-02-05T00:00:00Z",
            "2026-02-05T01:00:00Z",
            Some("bb"),
            "ee",
        );
        let b = digest(
            "b",
            "2026-02-01T01:00:00Z",
            "2026-02-01T02:00:00Z",
            None,
            "bb",
        );
        let got = verify(vec![b, e], &[], &planned(&[1, 5]), &keys);
        assert!(got.findings.is_empty(), "{:?}", kinds(&got));
        // Periods a few seconds apart, but the later digest names the earlier one's hash: no
        // digest can be missing between them.
        let f = digest(
            "f",
            "2026-02-01T00:00:00Z",
            "2026-02-01T01:00:00Z",
            None,
            "ff",
        );
        let g = digest(
            "g",
            "2026-02-01T01:00:05Z",
            "2026-02-01T02:00:05Z",
            Some("ff"),
            "gg",
        );
        let got = verify(vec![f.clone(), g], &[], &planned(&[1]), &keys);
        assert!(got.findings.is_empty(), "{:?}", kinds(&got));
        // A chain that starts again after a hole (no previous digest named) says so.
        let h = digest(
            "h",
            "2026-02-01T05:00:00Z",
            "2026-02-01T06:00:00Z",
            None,
            "hh",
        );
        let got = verify(vec![f, h], &[], &planned(&[1]), &keys);
        assert_eq!(kinds(&got), [("digest_missing", "h")]);
        assert!(
            got.findings[0].detail.contains("starts again"),
            "{}",
            got.findings[0].detail
        );
    }

    #[test]
    fn backfill_digests_stand_beside_the_hourly_chain() {
        let backfill = |key: &str, h: u32, sha: &str| Digest {
            backfill: true,
            ..hour(key, h, Some("unrelated"), sha)
        };
        let keys = PublicKeys::default_local();
        // Beside the chain: a late listing for hour 1 breaks nothing, and a second one hours
        // later is no hole.
        let got = verify(
            vec![
                hour("a", 0, None, "aa"),
                hour("b", 1, Some("aa"), "bb"),
                backfill("x", 1, "xx"),
                hour("c", 2, Some("bb"), "cc"),
                hour("d", 3, Some("cc"), "dd"),
                backfill("y", 5, "yy"),
            ],
            &[],
            &planned(&[1]),
            &keys,
        );
        assert!(got.findings.is_empty(), "{:?}", kinds(&got));
        // In the chain: the hour after it points at the backfill, not at the hour before (also
        // across a gap in time).
        let got = verify(
            vec![
                hour("a", 0, None, "aa"),
                backfill("x", 0, "xx"),
                hour("b", 1, Some("xx"), "bb"),
                hour("c", 2, Some("b?"), "cc"),
                backfill("z", 3, "zz"),
                hour("e", 4, Some("zz"), "ee"),
            ],
            &[],
            &planned(&[1]),
            &keys,
        );
        // ... while a link to anything else is still a break.
        assert_eq!(kinds(&got), [("digest_hash_mismatch", "b")]);
    }

    #[test]
    fn two_trails_of_one_name_in_two_home_regions_are_two_chains() {
        let hour = |key: &str, home: &str, h: u32, prev: Option<&str>, sha: &str| Digest {
            home_region: home.into(),
            ..hour(key, h, prev, sha)
        };
        let got = verify(
            vec![
                hour("e0", "us-east-1", 0, None, "e0"),
                hour("w0", "eu-west-1", 0, None, "w0"),
                hour("e1", "us-east-1", 1, Some("e0"), "e1"),
                hour("w1", "eu-west-1", 1, Some("w0"), "w1"),
                hour("e2", "us-east-1", 2, Some("e1"), "e2"),
                hour("w2", "eu-west-1", 2, Some("w1"), "w2"),
            ],
            &[],
            &planned(&[1]),
            &PublicKeys::default_local(),
        );
        assert!(got.findings.is_empty(), "{:?}", kinds(&got));
    }

    #[test]
    fn a_digest_name_gives_its_trail_and_whether_it_is_a_backfill() {
        let json = br#"{"digestStartTime":"2026-02-01T00:00:00Z","digestEndTime":"2026-02-01T01:00:00Z","digestS3Bucket":"b","digestS3Object":"k","previousDigestHashValue":null,"previousDigestSignature":null,"digestPublicKeyFingerprint":"aa","logFiles":[]}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, json).unwrap();
        let gz = gz.finish().unwrap();
        let dir = "AWSLogs/1/CloudTrail-Digest/eu-west-1/2026/02/01/";
        let stem = "1_CloudTrail-Digest_eu-west-1_my_trail_us-east-1_20260201T010700Z";
        for (suffix, backfill) in [("", false), ("_backfill", true)] {
            let key = format!("{dir}{stem}{suffix}.json.gz");
            let d = parse_digest(&key, "1", "eu-west-1", &gz).unwrap();
            assert_eq!(
                (d.trail.as_str(), d.home_region.as_str(), d.backfill),
                ("my_trail", "us-east-1", backfill),
                "{key}"
            );
        }
    }

    #[test]
    fn base64_and_hex() {
        assert_eq!(base64_decode("TWFu").unwrap(), b"Man");
        assert_eq!(base64_decode("TWE=").unwrap(), b"Ma");
        assert_eq!(base64_decode("TQ==").unwrap(), b"M");
        assert_eq!(unhex("00ff10").unwrap(), vec![0, 255, 16]);
        assert!(unhex("0g").is_none());
    }

    #[test]
    fn the_signed_string_is_the_one_cloudtrail_documents() {
        assert_eq!(
            signed_string("2026-02-01T01:00:00Z", "b", "k/d.json.gz", "ab", None),
            "2026-02-01T01:00:00Z\nb/k/d.json.gz\nab\nnull"
        );
    }

    #[test]
    fn names() {
        assert!(is_digest_name("AWSLogs/1/CloudTrail-Digest/us-east-1/2026/02/01/1_CloudTrail-Digest_us-east-1_t_us-east-1_20260201T010700Z.json.gz"));
        assert_eq!(
            folder_day("a/2026/02/03/x.json.gz"),
            NaiveDate::from_ymd_opt(2026, 2, 3)
        );
        assert_eq!(
            log_time("a/111122223333_CloudTrail_us-east-1_20260201T0155Z_abcdefghijklmnop.json.gz")
                .map(crate::model::iso),
            Some("2026-02-01T01:55:00Z".to_string())
        );
    }
}
