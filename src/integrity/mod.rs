//! integrity: CloudTrail's signed digest chain, checked against what the scan read.
//!
//! Each digest file lists the SHA-256 of every log object delivered in its period (about an
//! hour), points at the previous digest (`previousDigestHashValue`, `previousDigestSignature`)
//! and is signed by CloudTrail (RSA PKCS#1 v1.5, SHA-256, over the string in
//! [`signed_string`]). The scan hashes every log's inflated bytes as it reads them
//! (`DecodeLimits::hash`), so nothing is downloaded twice; this module compares those hashes with the
//! digests, walks the chain and checks the signatures. Findings use the vocabulary of
//! `aws cloudtrail validate-logs`: see [`Kind`].

mod chain;
pub use chain::{unlisted_predecessors, Named};
mod coverage;
pub mod digest;
pub mod live;
pub mod signature;

pub use digest::{parse_digest, Digest};
pub use signature::{
    fingerprint, read_public_key, read_public_keys, read_signatures, signed_string, PublicKeys,
};

use crate::archive::layout::DayPrefix;
use crate::model::Instant;
use crate::scan::ManifestRow;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Listed in a digest, not in the archive.
    LogMissing,
    /// In the archive, delivered inside the period the chain covers, in no digest.
    LogUnlisted,
    /// Its inflated bytes do not hash to its digest entry (or it cannot be inflated at all).
    LogModified,
    /// A digest that its successor names (`previousDigestS3Object`) is not in the archive:
    /// deleted or expired. `validate-logs`: "INVALID: not found".
    DigestMissing,
    /// A digest that is not where it says it was delivered (`digestS3Object`).
    /// `validate-logs`: "INVALID: has been moved from its original location".
    DigestMoved,
    /// A digest whose bytes do not match what the next digest says of it.
    DigestHashMismatch,
    /// A digest whose signature does not verify.
    DigestBadSignature,
    /// No public key with the digest's fingerprint.
    PublicKeyNotFound,
    /// Not a failure: the chain starts again (a digest names no previous one), CloudTrail's own
    /// signed statement that logging or log file validation was off in between; no digest covers
    /// that period. `validate-logs`: "No log files were delivered by CloudTrail between …".
    ChainRestart,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::LogMissing,
        Kind::LogUnlisted,
        Kind::LogModified,
        Kind::DigestMissing,
        Kind::DigestMoved,
        Kind::DigestHashMismatch,
        Kind::DigestBadSignature,
        Kind::PublicKeyNotFound,
        Kind::ChainRestart,
    ];

    /// Whether it is evidence of tampering or loss (it weakens verdicts and fails the run), as
    /// opposed to an informational row.
    pub fn fails(self) -> bool {
        self != Kind::ChainRestart
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::LogMissing => "log_missing",
            Kind::LogUnlisted => "log_unlisted",
            Kind::LogModified => "log_modified",
            Kind::DigestMissing => "digest_missing",
            Kind::DigestMoved => "digest_moved",
            Kind::DigestHashMismatch => "digest_hash_mismatch",
            Kind::DigestBadSignature => "digest_bad_signature",
            Kind::PublicKeyNotFound => "public_key_not_found",
            Kind::ChainRestart => "chain_restart",
        }
    }
}

/// One row of `integrity/`.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    /// The log object or digest concerned (for `digest_missing`, the missing digest's key as its
    /// successor names it; for `chain_restart`, the digest the chain starts again with).
    pub object: String,
    pub account_id: String,
    pub region: String,
    /// The delivery days whose evidence it weakens.
    pub days: Vec<NaiveDate>,
    pub detail: String,
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
    /// The findings that fail (all but `chain_restart`).
    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.kind.fails())
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

/// Days from the day of `a` to the day of `b`, inclusive.
fn days_between(a: Instant, b: Instant) -> Vec<NaiveDate> {
    crate::model::days(a.date_naive(), b.date_naive()).collect()
}

/// Checks `digests` (those of the planned account/regions, read from the planned days' digest
/// folders and the day after each) against the scan's `manifest`, over the `planned` days:
/// signatures, then the chain, then the logs, then which days the chain covers. `bucket` is the
/// S3 bucket they were read from, when the archive is one.
pub fn verify(
    mut digests: Vec<Digest>,
    named: &Named,
    bucket: Option<&str>,
    manifest: &[ManifestRow],
    planned: &BTreeSet<DayPrefix>,
    keys: &PublicKeys,
) -> Checked {
    let mut out = Checked {
        digests: digests.len(),
        ..Checked::default()
    };
    signature::check_all(&digests, keys, &mut out);
    digests.sort_by(|a, b| (a.chain(), a.start).cmp(&(b.chain(), b.start)));
    let bad_signature: BTreeSet<&str> = out
        .findings
        .iter()
        .filter(|f| f.kind == Kind::DigestBadSignature)
        .map(|f| f.object.as_str())
        .collect();
    let chain_findings = chain::walk(&digests, named, bucket, &bad_signature);
    let spans = chain::spans(&digests);
    out.findings.extend(chain_findings);
    out.findings
        .extend(coverage::logs(&digests, manifest, planned, &spans));
    out.covered = coverage::covered_days(planned, &spans);
    out
}

/// The fetched digests parsed, each with its signature from `signatures`; a digest that cannot
/// be read is itself a finding.
pub fn parse_fetched(
    fetched: Vec<(crate::archive::layout::ObjectRef, Result<Vec<u8>, String>)>,
    signatures: &HashMap<String, String>,
) -> (Vec<Digest>, Vec<Finding>) {
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
    (digests, unreadable)
}

#[cfg(test)]
mod tests {
    use super::digest::{folder_day, log_time};
    use super::signature::{base64_decode, unhex};
    use super::*;
    use crate::archive::layout::is_digest_name;
    use crate::model::parse_iso;

    /// A digest named `key` whose SHA-256 is `sha`; `prev` is the (key, SHA-256) it names as its
    /// previous digest, `None` for the start of a chain.
    fn digest(key: &str, start: &str, end: &str, prev: Option<(&str, &str)>, sha: &str) -> Digest {
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
            prev_hash: prev.map(|p| p.1.to_string()),
            prev_signature: None,
            prev_object: prev.map(|p| p.0.to_string()),
            fingerprint: Some("aa".into()),
            logs: Vec::new(),
            sha256: sha.into(),
            signature: None,
        }
    }

    /// The digest of hour `h` (to `h + 1`) of 2026-02-01.
    fn hour(key: &str, h: u32, prev: Option<(&str, &str)>, sha: &str) -> Digest {
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
        let with = |keys: &PublicKeys| {
            verify(
                vec![d.clone()],
                &Named::new(),
                None,
                &[],
                &planned(&[1]),
                keys,
            )
        };
        let c = with(&other);
        assert_eq!(kinds(&c), [("public_key_not_found", "d1")]);
        // A key with the fingerprint that does not verify the signature: a bad signature.
        let same = PublicKeys {
            keys: vec![("aa".into(), vec![0x30])],
            try_all: false,
        };
        let c = with(&same);
        assert_eq!(kinds(&c), [("digest_bad_signature", "d1")]);
        // No keys at all for a local archive: not verified, not a finding.
        let c = verify(
            vec![d],
            &Named::new(),
            None,
            &[],
            &planned(&[1]),
            &PublicKeys::default_local(),
        );
        assert!(c.findings.is_empty());
        assert_eq!(c.signatures_unchecked, 1);
    }

    fn walk(digests: Vec<Digest>, named: &Named) -> Checked {
        verify(
            digests,
            named,
            None,
            &[],
            &planned(&[1]),
            &PublicKeys::default_local(),
        )
    }

    #[test]
    fn the_chain_is_followed_by_its_links() {
        let none = Named::new();
        // b names a; c names b2, which is not in the archive (one digest_missing, on the key c
        // names); d names c but says another hash of it.
        let got = walk(
            vec![
                hour("d", 4, Some(("c", "c0")), "dd"),
                hour("c", 3, Some(("b2", "xx")), "cc"),
                hour("b", 1, Some(("a", "aa")), "bb"),
                hour("a", 0, None, "aa"),
            ],
            &none,
        );
        assert_eq!(
            kinds(&got),
            [("digest_missing", "b2"), ("digest_hash_mismatch", "c")]
        );
        let missing = &got.findings[0];
        assert!(
            missing.detail.contains("named by c") && missing.detail.contains("deleted or expired"),
            "{}",
            missing.detail
        );
        // Two deleted in a row: the one named is reported, over the whole uncovered period.
        let got = walk(
            vec![
                hour("a", 0, None, "aa"),
                hour("d", 3, Some(("c", "cc")), "dd"),
            ],
            &none,
        );
        assert_eq!(kinds(&got), [("digest_missing", "c")]);
        assert!(
            got.findings[0]
                .detail
                .contains("2026-02-01T01:00:00Z to 2026-02-01T03:00:00Z"),
            "{}",
            got.findings[0].detail
        );
        // The first digest of the planned days names one before them: looked up by its key.
        let first = hour("e", 5, Some(("p", "pp")), "ee");
        let found: Named = [("p".to_string(), Ok(hour("p", 4, None, "pp")))].into();
        assert!(walk(vec![first.clone()], &found).findings.is_empty());
        let gone: Named = [("p".to_string(), Err("cannot read: not found".to_string()))].into();
        let got = walk(vec![first.clone()], &gone);
        assert_eq!(kinds(&got), [("digest_missing", "p")]);
        assert!(got.findings[0].detail.contains("not found"));
        let other: Named = [("p".to_string(), Ok(hour("p", 4, None, "p?")))].into();
        assert_eq!(
            kinds(&walk(vec![first], &other)),
            [("digest_hash_mismatch", "p")]
        );
        // Periods seconds apart or hours apart: a link is a link.
        let f = hour("f", 0, None, "ff");
        let g = digest(
            "g",
            "2026-02-01T01:00:05Z",
            "2026-02-01T02:00:05Z",
            Some(("f", "ff")),
            "gg",
        );
        let late = hour("late", 7, Some(("g", "gg")), "ll");
        assert!(walk(vec![f.clone(), g, late], &none).findings.is_empty());
    }

    #[test]
    fn a_chain_that_starts_again_is_a_restart_not_a_failure() {
        let got = walk(
            vec![
                hour("f", 0, None, "ff"),
                hour("g", 1, Some(("f", "ff")), "gg"),
                hour("h", 5, None, "hh"),
            ],
            &Named::new(),
        );
        assert_eq!(kinds(&got), [("chain_restart", "h")]);
        assert!(
            got.findings[0].detail.contains(
                "no log files were delivered by CloudTrail between 2026-02-01T02:00:00Z and 2026-02-01T05:00:00Z"
            ),
            "{}",
            got.findings[0].detail
        );
        assert_eq!(got.failures().count(), 0);
        // The first digest read starting a chain says nothing: there is nothing before it.
        assert!(walk(vec![hour("h", 5, None, "hh")], &Named::new())
            .findings
            .is_empty());
    }

    #[test]
    fn a_digest_not_where_it_says_it_was_delivered_has_been_moved() {
        let moved = Digest {
            s3_object: "elsewhere".into(),
            ..hour("b", 1, Some(("a", "aa")), "bb")
        };
        let got = walk(vec![hour("a", 0, None, "aa"), moved], &Named::new());
        assert_eq!(kinds(&got), [("digest_moved", "b")]);
        assert!(got.findings[0].detail.contains("elsewhere"));
        assert_eq!(got.failures().count(), 1);
        // Read from another bucket than it names (an S3 archive knows its bucket).
        let chain = || {
            vec![
                hour("a", 0, None, "aa"),
                hour("b", 1, Some(("a", "aa")), "bb"),
            ]
        };
        let in_bucket = |bucket| {
            verify(
                chain(),
                &Named::new(),
                Some(bucket),
                &[],
                &planned(&[1]),
                &PublicKeys::default_local(),
            )
        };
        assert!(in_bucket("b").findings.is_empty());
        let got = in_bucket("copy-of-b");
        assert_eq!(kinds(&got), [("digest_moved", "a"), ("digest_moved", "b")]);
        assert!(
            got.findings[0].detail.contains("bucket b"),
            "{}",
            got.findings[0].detail
        );
    }

    #[test]
    fn backfill_digests_stand_beside_the_hourly_chain() {
        let backfill = |key: &str, h: u32, sha: &str| Digest {
            backfill: true,
            ..hour(key, h, Some(("unrelated", "unrelated")), sha)
        };
        // Beside the chain: a late listing for hour 1 breaks nothing, names nothing that must
        // exist, and a second one hours later is no hole.
        let got = walk(
            vec![
                hour("a", 0, None, "aa"),
                hour("b", 1, Some(("a", "aa")), "bb"),
                backfill("x", 1, "xx"),
                hour("c", 2, Some(("b", "bb")), "cc"),
                hour("d", 3, Some(("c", "cc")), "dd"),
                backfill("y", 5, "yy"),
            ],
            &Named::new(),
        );
        assert!(got.findings.is_empty(), "{:?}", kinds(&got));
        // In the chain: an hour may name a backfill as its previous digest (also across a gap
        // in time) ...
        let got = walk(
            vec![
                hour("a", 0, None, "aa"),
                backfill("x", 0, "xx"),
                hour("b", 1, Some(("x", "xx")), "bb"),
                hour("c", 2, Some(("b", "b?")), "cc"),
                backfill("z", 3, "zz"),
                hour("e", 4, Some(("z", "zz")), "ee"),
            ],
            &Named::new(),
        );
        // ... while a wrong hash is still a break.
        assert_eq!(kinds(&got), [("digest_hash_mismatch", "b")]);
    }

    #[test]
    fn two_trails_of_one_name_in_two_home_regions_are_two_chains() {
        let hour = |key: &str, home: &str, h: u32, prev: Option<(&str, &str)>, sha: &str| Digest {
            home_region: home.into(),
            ..hour(key, h, prev, sha)
        };
        let got = walk(
            vec![
                hour("e0", "us-east-1", 0, None, "e0"),
                hour("w0", "eu-west-1", 0, None, "w0"),
                hour("e1", "us-east-1", 1, Some(("e0", "e0")), "e1"),
                hour("w1", "eu-west-1", 1, Some(("w0", "w0")), "w1"),
                hour("e2", "us-east-1", 2, Some(("e1", "e1")), "e2"),
                hour("w2", "eu-west-1", 2, Some(("w1", "w1")), "w2"),
            ],
            &Named::new(),
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
