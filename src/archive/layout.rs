//! archive::layout: the names of a CloudTrail archive — the shared vocabulary of every stage that
//! touches objects. Day folders (`.../<account>/CloudTrail/<region>/YYYY/MM/DD/`), the objects
//! found in them, and the rules that tell a log file from a digest, an Insights file or AWS
//! Config's write check, by name alone. No I/O.

use chrono::NaiveDate;

/// One folder of the archive: `.../<account>/CloudTrail/<region>/YYYY/MM/DD/`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct DayPrefix {
    pub account: String,
    pub region: String,
    pub day: NaiveDate,
}

/// An object found under a planned day prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ObjectRef {
    /// The object key relative to the store's root (`/`-separated), as it is in S3.
    pub key: String,
    pub size: u64,
    pub storage_class: Option<String>,
    pub prefix: DayPrefix,
}

/// Whether an object in a day folder is a CloudTrail log file of that account and region:
/// `<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<16 chars>.json.gz`. `Err` is the reason to
/// skip it.
pub fn check_log_name(name: &str, account: &str, region: &str) -> Result<(), String> {
    if name == "ConfigWritabilityCheckFile" {
        return Err("AWS Config write-check file, not a log".into());
    }
    if name.contains("_CloudTrail-Digest_") {
        return Err("CloudTrail digest file, not a log".into());
    }
    if name.contains("_CloudTrail-Insight_") {
        return Err("CloudTrail Insights file, not a log".into());
    }
    let parts: Vec<&str> = name.split('_').collect();
    let well_formed = match parts[..] {
        [acct, "CloudTrail", reg, time, tail] => {
            let t = time.as_bytes();
            let time_ok = t.len() == 14
                && t[..8].iter().all(u8::is_ascii_digit)
                && t[8] == b'T'
                && t[9..13].iter().all(u8::is_ascii_digit)
                && t[13] == b'Z';
            let tail_ok = tail
                .strip_suffix(".json.gz")
                .is_some_and(|r| r.len() == 16 && r.bytes().all(|b| b.is_ascii_alphanumeric()));
            if time_ok && tail_ok && (acct != account || reg != region) {
                return Err(format!(
                    "log file of {acct}/{reg} filed under {account}/{region}"
                ));
            }
            time_ok && tail_ok
        }
        _ => false,
    };
    if well_formed {
        Ok(())
    } else {
        Err("not a CloudTrail log file name".into())
    }
}

/// Whether an object key is a digest file: `..._CloudTrail-Digest_<region>_<trail>_<home>_<time>.json.gz`.
pub fn is_digest_name(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or_default();
    name.contains("_CloudTrail-Digest_") && name.ends_with(".json.gz")
}

/// The last path segment of a folder key (`a/b/` → `b`).
pub fn folder_name(folder: &str) -> &str {
    folder
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names() {
        let (a, r) = ("111122223333", "us-east-1");
        let cases: &[(&str, Option<&str>)] = &[
            (
                "111122223333_CloudTrail_us-east-1_20260301T0005Z_abcdEFGH12345678.json.gz",
                None,
            ),
            (
                "111122223333_CloudTrail_us-east-1_20260301T0005Z_abcdEFGH1234567.json.gz",
                Some("not a CloudTrail log file name"),
            ),
            (
                "111122223333_CloudTrail_us-east-1_20260301T000512Z_abcdEFGH12345678.json.gz",
                Some("not a CloudTrail log file name"),
            ),
            (
                "111122223333_CloudTrail_eu-west-1_20260301T0005Z_abcdEFGH12345678.json.gz",
                Some("filed under 111122223333/us-east-1"),
            ),
            (
                "111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_20260301T000512Z.json.gz",
                Some("digest"),
            ),
            (
                "111122223333_CloudTrail-Insight_us-east-1_20260301T0005Z_abcdEFGH12345678.json.gz",
                Some("Insights"),
            ),
            ("ConfigWritabilityCheckFile", Some("AWS Config")),
            (
                "111122223333_CloudTrail_us-east-1_20260301T0005Z_abcdEFGH12345678.json",
                Some("not a CloudTrail log file name"),
            ),
            ("notes.txt", Some("not a CloudTrail log file name")),
        ];
        for (name, want) in cases {
            match (check_log_name(name, a, r), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => {
                    assert!(e.contains(w), "case {name}: `{e}` should contain `{w}`")
                }
                (got, want) => panic!("case {name}: got {got:?}, want {want:?}"),
            }
        }
    }
}
