//! Shared vocabulary of the pipeline: key ARNs, timestamps and the day arithmetic that the plan,
//! the scan and the report all agree on. Pure values; no I/O.

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, TimeZone, Utc};
use std::fmt;

/// A UTC instant. CloudTrail's `eventTime` has whole seconds; KMS timestamps carry fractions.
pub type Instant = DateTime<Utc>;

/// A KMS key identified by its ARN, the only identifier that is unique across accounts and
/// regions (multi-Region replicas share their `mrk-` key id).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct KeyArn {
    arn: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a KMS key ARN (expected arn:<partition>:kms:<region>:<account>:key/<key-id>)"
)]
pub struct BadKeyArn(pub String);

impl KeyArn {
    pub fn parse(s: &str) -> Result<KeyArn, BadKeyArn> {
        let bad = || BadKeyArn(s.to_string());
        let mut parts = s.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("kms"), Some(region), Some(account), Some(res)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        let id = res.strip_prefix("key/").ok_or_else(bad)?;
        let valid_id = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if partition.is_empty() || !is_region(region) || !is_account_id(account) || !valid_id {
            return Err(bad());
        }
        Ok(KeyArn { arn: s.to_string() })
    }

    pub fn as_str(&self) -> &str {
        &self.arn
    }
    fn field(&self, n: usize) -> &str {
        self.arn.split(':').nth(n).unwrap_or_default()
    }
    pub fn partition(&self) -> &str {
        self.field(1)
    }
    pub fn region(&self) -> &str {
        self.field(3)
    }
    pub fn account(&self) -> &str {
        self.field(4)
    }
    pub fn key_id(&self) -> &str {
        self.field(5).trim_start_matches("key/")
    }
}

impl TryFrom<String> for KeyArn {
    type Error = BadKeyArn;
    fn try_from(s: String) -> Result<KeyArn, BadKeyArn> {
        KeyArn::parse(&s)
    }
}

impl From<KeyArn> for String {
    fn from(k: KeyArn) -> String {
        k.arn
    }
}

impl fmt::Display for KeyArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`: lower-case words and a number.
pub fn is_region(s: &str) -> bool {
    let mut parts = s.split('-');
    let first_ok = parts
        .next()
        .is_some_and(|p| p.len() >= 2 && p.bytes().all(|b| b.is_ascii_lowercase()));
    let rest: Vec<&str> = parts.collect();
    first_ok
        && rest.len() >= 2
        && rest
            .last()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && rest[..rest.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

/// The UTC calendar day of an instant.
pub fn day_of(t: Instant) -> NaiveDate {
    t.date_naive()
}

/// Midnight UTC at the start of `d`.
pub fn start_of(d: NaiveDate) -> Instant {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

/// The last calendar day that the half-open interval `[start, end)` touches, if any.
pub fn last_day_before(end: Instant) -> NaiveDate {
    day_of(end - Duration::milliseconds(1))
}

/// Every day from `first` to `last`, both included.
pub fn days(first: NaiveDate, last: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    first.iter_days().take_while(move |d| *d <= last)
}

/// Parses the timestamp forms found in snapshots and CloudTrail: RFC 3339 / ISO-8601 with a zone
/// (`2026-04-01T10:00:00Z`, `2026-04-01T10:00:00.123+00:00`), which is how the AWS CLI prints them.
pub fn parse_iso(s: &str) -> Option<Instant> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Epoch seconds with an optional fraction, the wire form of every KMS timestamp.
pub fn from_epoch_seconds(secs: f64) -> Option<Instant> {
    if !secs.is_finite() {
        return None;
    }
    let millis = (secs * 1000.0).round() as i64;
    Utc.timestamp_millis_opt(millis).single()
}

/// Formats as the ISO-8601 form used in reports and messages (milliseconds only when non-zero).
pub fn iso(t: Instant) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses a `--since` value: a date (`2025-01-31`, meaning its midnight UTC) or a full timestamp.
pub fn parse_since(s: &str) -> Option<Instant> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(start_of)
        .or_else(|| parse_iso(s))
}

/// Lower-case hex of `bytes` (SHA-256 values, signatures, fingerprints).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The 14 operations `GetKeyLastUsage` tracks; only successful calls to these are uses.
pub const TRACKED_OPERATIONS: [&str; 14] = [
    "Decapsulate",
    "Decrypt",
    "DeriveSharedSecret",
    "Encapsulate",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "ReEncrypt",
    "Sign",
    "Verify",
    "VerifyMac",
];

/// What a run says to its reader besides the report: gathered from every stage in one place,
/// printed once and kept in `summary.json`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Warnings(Vec<String>);

impl Warnings {
    pub fn push(&mut self, warning: impl Into<String>) {
        self.0.push(warning.into());
    }
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

impl Extend<String> for Warnings {
    fn extend<I: IntoIterator<Item = String>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_arn_accepts_real_forms_and_names_what_is_wrong() {
        type Parts<'a> = Option<(&'a str, &'a str, &'a str)>;
        let cases: &[(&str, Parts)] = &[
            (
                "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                Some((
                    "us-east-1",
                    "111122223333",
                    "1234abcd-12ab-34cd-56ef-1234567890ab",
                )),
            ),
            (
                "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
                Some((
                    "eu-west-1",
                    "111122223333",
                    "mrk-1234abcd12ab34cd56ef1234567890ab",
                )),
            ),
            (
                "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/abc",
                Some(("us-gov-west-1", "111122223333", "abc")),
            ),
            ("arn:aws:kms:us-east-1:111122223333:alias/app", None),
            ("arn:aws:kms:us-east-1:11112222333:key/abc", None),
            ("arn:aws:s3:us-east-1:111122223333:key/abc", None),
            ("1234abcd-12ab-34cd-56ef-1234567890ab", None),
            ("arn:aws:kms:US-EAST-1:111122223333:key/abc", None),
            ("arn:aws:kms:us-east-1:111122223333:key/", None),
        ];
        for (input, expected) in cases {
            let got = KeyArn::parse(input).ok();
            let got = got.as_ref().map(|k| (k.region(), k.account(), k.key_id()));
            assert_eq!(got, *expected, "case {input}");
        }
        let err = KeyArn::parse("alias/x").unwrap_err().to_string();
        assert!(
            err.contains("alias/x") && err.contains("arn:<partition>"),
            "{err}"
        );
        assert_eq!(
            KeyArn::parse("arn:aws-cn:kms:cn-north-1:111122223333:key/k")
                .unwrap()
                .partition(),
            "aws-cn"
        );
    }

    #[test]
    fn timestamps_in_both_snapshot_forms_agree() {
        let a = from_epoch_seconds(1_775_000_000.25).unwrap();
        let b = parse_iso("2026-03-31T23:33:20.250Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(iso(a), "2026-03-31T23:33:20.250Z");
        assert_eq!(parse_since("2026-03-01"), parse_iso("2026-03-01T00:00:00Z"));
        assert!(parse_since("March").is_none());
    }

    #[test]
    fn last_day_before_excludes_an_end_at_midnight() {
        let end = parse_iso("2026-04-10T00:00:00Z").unwrap();
        assert_eq!(last_day_before(end).to_string(), "2026-04-09");
        let end = parse_iso("2026-04-10T00:00:01Z").unwrap();
        assert_eq!(last_day_before(end).to_string(), "2026-04-10");
    }
}
