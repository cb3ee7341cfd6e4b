//! integrity::digest: a CloudTrail digest file as read — its JSON (the fields the check uses),
//! where its name says it belongs (account, region, trail, home region, backfill or hourly), and
//! the times in the names of digests and logs.

use crate::model::{parse_iso, Instant};
use chrono::NaiveDate;
use serde::Deserialize;
use sha2::Digest as _;

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
    #[serde(rename = "previousDigestS3Object")]
    previous_digest_s3_object: Option<String>,
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
    /// `previousDigestS3Object`: the key of the digest before it in its chain. `None` when the
    /// chain starts here (logging or log file validation was off before it).
    pub prev_object: Option<String>,
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
    pub(super) fn chain(&self) -> (&str, &str, &str, &str) {
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
        prev_object: d.previous_digest_s3_object,
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

/// The delivery day of a digest: the one in its folder (`.../YYYY/MM/DD/<name>`).
pub(super) fn folder_day(key: &str) -> Option<NaiveDate> {
    let mut parts = key.rsplit('/').skip(1);
    let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// The delivery time in a log file's name (`..._<YYYYMMDDTHHmmZ>_<16 chars>.json.gz`).
pub(super) fn log_time(key: &str) -> Option<Instant> {
    let name = key.rsplit('/').next()?;
    let stamp = name.rsplit('_').nth(1)?;
    let t = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%MZ").ok()?;
    Some(t.and_utc())
}
