//! inventory: which keys exist, and what KMS said about each. Offline, this reads a usage
//! snapshot: JSON Lines, one `GetKeyLastUsage` response per key, optionally with the key's
//! `DescribeKey` metadata and aliases. It owns the snapshot format and its validation; it does not
//! decide anything about the keys (that is `tracking`).
//!
//! Timestamps are accepted as epoch-second numbers (the wire form) and as ISO-8601 strings (the
//! form the AWS CLI prints). `"KeyLastUsage": {}` — what KMS returns for a key not used since
//! tracking began — is "no last use": a use is a set `Timestamp`, nothing less.

pub mod accounts;
pub mod journal;
pub mod live;

pub use accounts::Account;

use crate::model::{from_epoch_seconds, parse_iso, Instant, KeyArn};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Where a run's keys and their `GetKeyLastUsage` answers come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A usage snapshot given with `--usage FILE`.
    Snapshot(PathBuf),
    /// The answers an interrupted live run kept in its checkpoint (`--resume`): reported on as
    /// they were, without asking KMS again.
    Kept(PathBuf),
    /// KMS, now (`--usage aws`).
    Live,
}

impl Source {
    /// The source of a run's keys: `--usage`, unless a resumed live run kept its answers at `kept`.
    pub fn of(usage: &crate::config::Usage, kept: &Path, resume: bool) -> Source {
        match usage {
            crate::config::Usage::File(p) => Source::Snapshot(p.clone()),
            crate::config::Usage::Aws if resume && kept.exists() => {
                Source::Kept(kept.to_path_buf())
            }
            crate::config::Usage::Aws => Source::Live,
        }
    }

    /// Whether keys are read from KMS (and need AWS credentials).
    pub fn is_live(&self) -> bool {
        matches!(self, Source::Live)
    }
}

/// The inventory stage's value: the keys, sorted by ARN, and where they came from. Keys from a
/// snapshot carry their `GetKeyLastUsage` answers already; live keys get them in `tracking`.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub keys: Vec<Key>,
    /// The accounts examined, with what became of each.
    pub accounts: Vec<Account>,
    pub source: Source,
    /// Live keys whose `GetKeyLastUsage` answer an interrupted run already had (`--resume`);
    /// the tracking stage asks only the others.
    pub answered: std::collections::BTreeSet<KeyArn>,
}

/// What KMS reports as the key's last successful cryptographic use.
#[derive(Debug, Clone, PartialEq)]
pub struct LastUsage {
    pub operation: Option<String>,
    pub timestamp: Instant,
    pub event_id: Option<String>,
    pub kms_request_id: Option<String>,
}

/// One key as the inventory knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub arn: KeyArn,
    pub aliases: Vec<String>,
    pub key_state: Option<String>,
    pub key_manager: Option<String>,
    pub multi_region: Option<bool>,
    pub creation: Option<Instant>,
    pub tracking_start: Option<Instant>,
    pub last_usage: Option<LastUsage>,
    /// `GetKeyLastUsage` failed for this key (live mode); the reason.
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read usage snapshot {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("usage snapshot {path}, line {line}: {msg}")]
    Line {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("usage snapshot {path} holds no keys")]
    Empty { path: PathBuf },
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawLine {
    key_id: Option<String>,
    key_last_usage: Option<Value>,
    tracking_start_date: Option<Value>,
    key_creation_date: Option<Value>,
    key_metadata: Option<RawMetadata>,
    aliases: Option<Vec<Value>>,
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawMetadata {
    arn: Option<String>,
    creation_date: Option<Value>,
    key_state: Option<String>,
    key_manager: Option<String>,
    multi_region: Option<bool>,
}

/// Reads a snapshot file's keys (see [`read_inventory`]).
pub fn read_snapshot(path: &Path) -> Result<Vec<Key>, SnapshotError> {
    read_inventory(path).map(|(keys, _)| keys)
}

/// Reads a snapshot file: its keys and its accounts (those its keys are in, when it names none).
/// Blank lines are allowed; anything else that is not a valid key or account line is an error
/// naming the line, because a silently dropped key is a key nobody investigates.
pub fn read_inventory(path: &Path) -> Result<(Vec<Key>, Vec<Account>), SnapshotError> {
    let file = std::fs::File::open(path).map_err(|source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_inventory_from(std::io::BufReader::new(file), path)
}

/// [`read_inventory`] of a snapshot's text (`path` names it in errors).
pub fn read_inventory_from(
    text: impl BufRead,
    path: &Path,
) -> Result<(Vec<Key>, Vec<Account>), SnapshotError> {
    let io = |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut keys = Vec::new();
    let mut accounts: Vec<Account> = Vec::new();
    let mut seen = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.map_err(io)?;
        let lineno = i + 1;
        let err = |msg: String| SnapshotError::Line {
            path: path.to_path_buf(),
            line: lineno,
            msg,
        };
        if line.trim().is_empty() {
            continue;
        }
        if let Some(account) = serde_json::from_str::<Value>(&line)
            .ok()
            .as_ref()
            .and_then(Account::parse)
        {
            let account = account.map_err(err)?;
            if accounts.iter().any(|a| a.id == account.id) {
                return Err(err(format!("account {} appears twice", account.id)));
            }
            accounts.push(account);
            continue;
        }
        let key = parse_line(&line).map_err(err)?;
        if !seen.insert(key.arn.clone()) {
            return Err(err(format!("key {} appears twice", key.arn)));
        }
        keys.push(key);
    }
    if keys.is_empty() && accounts.is_empty() {
        return Err(SnapshotError::Empty {
            path: path.to_path_buf(),
        });
    }
    if accounts.is_empty() {
        accounts = accounts::of_keys(&keys);
    }
    Ok((keys, accounts))
}

/// Parses one snapshot line. The message names the field that is wrong.
pub fn parse_line(line: &str) -> Result<Key, String> {
    let raw: RawLine = serde_json::from_str(line)
        .map_err(|e| format!("not a JSON object of the snapshot shape: {e}"))?;
    let key_id = raw.key_id.ok_or("missing KeyId")?;
    let meta = raw.key_metadata;
    let arn_text = if key_id.starts_with("arn:") {
        key_id.clone()
    } else {
        meta.as_ref()
            .and_then(|m| m.arn.clone())
            .ok_or_else(|| format!("KeyId `{key_id}` is not a key ARN and there is no KeyMetadata.Arn to say which account and region it is in"))?
    };
    let arn = KeyArn::parse(&arn_text).map_err(|e| e.to_string())?;
    if let Some(meta_arn) = meta.as_ref().and_then(|m| m.arn.as_deref()) {
        if meta_arn != arn.as_str() {
            return Err(format!(
                "KeyId `{key_id}` and KeyMetadata.Arn `{meta_arn}` name different keys"
            ));
        }
    }
    let error = raw.error.as_ref().map(error_text);
    let creation = match raw
        .key_creation_date
        .as_ref()
        .or(meta.as_ref().and_then(|m| m.creation_date.as_ref()))
    {
        Some(v) => Some(timestamp(v, "KeyCreationDate")?),
        None => None,
    };
    let tracking_start = match &raw.tracking_start_date {
        Some(v) => Some(timestamp(v, "TrackingStartDate")?),
        None => None,
    };
    if error.is_none() {
        if creation.is_none() {
            return Err("missing KeyCreationDate".into());
        }
        if tracking_start.is_none() {
            return Err("missing TrackingStartDate".into());
        }
    }
    let last_usage = match &raw.key_last_usage {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => match m.get("Timestamp") {
            None | Some(Value::Null) => None,
            Some(ts) => Some(LastUsage {
                timestamp: timestamp(ts, "KeyLastUsage.Timestamp")?,
                operation: opt_string(m.get("Operation"), "KeyLastUsage.Operation")?,
                event_id: opt_string(m.get("CloudTrailEventId"), "KeyLastUsage.CloudTrailEventId")?,
                kms_request_id: opt_string(m.get("KmsRequestId"), "KeyLastUsage.KmsRequestId")?,
            }),
        },
        Some(other) => return Err(format!("KeyLastUsage must be an object, found {other}")),
    };
    let aliases = raw
        .aliases
        .unwrap_or_default()
        .iter()
        .map(|a| match a {
            Value::String(s) => Ok(s.clone()),
            Value::Object(m) => m
                .get("AliasName")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("Aliases entry without AliasName: {a}")),
            other => Err(format!(
                "Aliases entries must be strings or ListAliases objects, found {other}"
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut aliases = aliases;
    aliases.sort();
    aliases.dedup();
    Ok(Key {
        arn,
        aliases,
        key_state: meta.as_ref().and_then(|m| m.key_state.clone()),
        key_manager: meta.as_ref().and_then(|m| m.key_manager.clone()),
        multi_region: meta.as_ref().and_then(|m| m.multi_region),
        creation,
        tracking_start,
        last_usage,
        error,
    })
}

/// One snapshot line for `key`, in the wire form (epoch-second timestamps), so that any run can
/// be replayed offline with `--usage FILE`.
pub fn snapshot_line(key: &Key) -> String {
    let epoch = |t: Instant| serde_json::json!(t.timestamp_millis() as f64 / 1000.0);
    let mut o = serde_json::Map::new();
    o.insert("KeyId".into(), key.arn.as_str().into());
    if let Some(u) = &key.last_usage {
        o.insert(
            "KeyLastUsage".into(),
            serde_json::json!({
                "Operation": u.operation, "Timestamp": epoch(u.timestamp),
                "CloudTrailEventId": u.event_id, "KmsRequestId": u.kms_request_id,
            }),
        );
    } else if key.error.is_none() {
        o.insert("KeyLastUsage".into(), serde_json::json!({}));
    }
    if let Some(t) = key.tracking_start {
        o.insert("TrackingStartDate".into(), epoch(t));
    }
    if let Some(t) = key.creation {
        o.insert("KeyCreationDate".into(), epoch(t));
    }
    let mut meta = serde_json::json!({
        "Arn": key.arn.as_str(), "KeyId": key.arn.key_id(), "AWSAccountId": key.arn.account(),
        "KeyState": key.key_state, "KeyManager": key.key_manager, "MultiRegion": key.multi_region,
    });
    if let Some(t) = key.creation {
        meta["CreationDate"] = epoch(t);
    }
    o.insert("KeyMetadata".into(), meta);
    o.insert("Aliases".into(), serde_json::json!(key.aliases));
    if let Some(e) = &key.error {
        o.insert("Error".into(), e.as_str().into());
    }
    Value::Object(o).to_string()
}

/// Writes a snapshot file: a line per account, then one per key.
pub fn write_snapshot<'k>(
    accounts: &[Account],
    keys: impl IntoIterator<Item = &'k Key>,
    path: &Path,
) -> std::io::Result<()> {
    std::fs::write(path, snapshot_text(accounts, keys))
}

/// The snapshot of `accounts` and `keys`: a line per account, then one per key.
pub fn snapshot_text<'k>(accounts: &[Account], keys: impl IntoIterator<Item = &'k Key>) -> String {
    accounts
        .iter()
        .map(|a| a.line() + "\n")
        .chain(keys.into_iter().map(|k| snapshot_line(k) + "\n"))
        .collect()
}

fn error_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(m) => {
            let code = m.get("Code").and_then(Value::as_str).unwrap_or("Error");
            match m.get("Message").and_then(Value::as_str) {
                Some(msg) => format!("{code}: {msg}"),
                None => code.to_string(),
            }
        }
        other => other.to_string(),
    }
}

fn opt_string(v: Option<&Value>, field: &str) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{field} must be a string, found {other}")),
    }
}

/// A snapshot timestamp: epoch seconds (number) or ISO-8601 (string).
fn timestamp(v: &Value, field: &str) -> Result<Instant, String> {
    let parsed = match v {
        Value::Number(n) => n.as_f64().and_then(from_epoch_seconds),
        Value::String(s) => parse_iso(s),
        _ => None,
    };
    parsed
        .ok_or_else(|| format!("{field} must be epoch seconds or an ISO-8601 timestamp, found {v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn empty_key_last_usage_means_not_used() {
        let line = format!(
            r#"{{"KeyId":"{ARN}","KeyLastUsage":{{}},"TrackingStartDate":1775000000,"KeyCreationDate":1700000000.5}}"#
        );
        let k = parse_line(&line).unwrap();
        assert_eq!(k.last_usage, None);
        assert_eq!(k.creation, from_epoch_seconds(1_700_000_000.5));
    }

    #[test]
    fn cli_and_wire_timestamps_give_the_same_key() {
        let wire = format!(
            r#"{{"KeyId":"{ARN}","KeyLastUsage":{{"Operation":"Decrypt","Timestamp":1776000000.123,"CloudTrailEventId":"e1","KmsRequestId":"r1"}},"TrackingStartDate":1775000000,"KeyCreationDate":1700000000}}"#
        );
        let cli = format!(
            r#"{{"KeyId":"{ARN}","KeyLastUsage":{{"Operation":"Decrypt","Timestamp":"2026-04-12T13:20:00.123000+00:00","CloudTrailEventId":"e1","KmsRequestId":"r1"}},"TrackingStartDate":"2026-03-31T23:33:20Z","KeyCreationDate":"2023-11-14T22:13:20Z"}}"#
        );
        let (a, b) = (parse_line(&wire).unwrap(), parse_line(&cli).unwrap());
        assert_eq!(a, b);
        assert_eq!(a.last_usage.unwrap().operation.as_deref(), Some("Decrypt"));
    }

    #[test]
    fn bare_key_id_takes_its_arn_from_metadata_and_aliases_take_both_shapes() {
        let line = format!(
            r#"{{"KeyId":"1234abcd-12ab-34cd-56ef-1234567890ab","TrackingStartDate":1775000000,"KeyCreationDate":1700000000,
            "KeyMetadata":{{"Arn":"{ARN}","KeyState":"Enabled","KeyManager":"CUSTOMER","MultiRegion":false}},
            "Aliases":["alias/a",{{"AliasName":"alias/b","TargetKeyId":"1234abcd-12ab-34cd-56ef-1234567890ab"}}]}}"#
        )
        .replace('\n', "");
        let k = parse_line(&line).unwrap();
        assert_eq!(k.arn.as_str(), ARN);
        assert_eq!(k.aliases, vec!["alias/a", "alias/b"]);
        assert_eq!(k.key_manager.as_deref(), Some("CUSTOMER"));
    }

    #[test]
    fn malformed_lines_name_the_problem() {
        let cases = [
            ("not json", "not a JSON object"),
            (r#"{"TrackingStartDate":1}"#, "missing KeyId"),
            (
                r#"{"KeyId":"abc","TrackingStartDate":1,"KeyCreationDate":1}"#,
                "no KeyMetadata.Arn",
            ),
            (
                &format!(r#"{{"KeyId":"{ARN}","KeyCreationDate":1}}"#),
                "missing TrackingStartDate",
            ),
            (
                &format!(
                    r#"{{"KeyId":"{ARN}","TrackingStartDate":"yesterday","KeyCreationDate":1}}"#
                ),
                "TrackingStartDate must be",
            ),
            (
                &format!(
                    r#"{{"KeyId":"{ARN}","TrackingStartDate":1,"KeyCreationDate":1,"KeyLastUsage":[]}}"#
                ),
                "KeyLastUsage must be an object",
            ),
            (
                r#"{"KeyId":"arn:aws:kms:us-east-1:111122223333:alias/x","TrackingStartDate":1,"KeyCreationDate":1}"#,
                "not a KMS key ARN",
            ),
        ];
        for (line, want) in cases {
            let err = parse_line(line).unwrap_err();
            assert!(
                err.contains(want),
                "case {line}: got `{err}`, want `{want}`"
            );
        }
    }

    #[test]
    fn an_error_line_needs_no_dates() {
        let line = format!(
            r#"{{"KeyId":"{ARN}","Error":{{"Code":"AccessDeniedException","Message":"not allowed"}}}}"#
        );
        let k = parse_line(&line).unwrap();
        assert_eq!(
            k.error.as_deref(),
            Some("AccessDeniedException: not allowed")
        );
    }

    #[test]
    fn a_written_snapshot_line_reads_back_as_the_same_key() {
        let lines = [
            format!(
                r#"{{"KeyId":"{ARN}","KeyLastUsage":{{"Operation":"Decrypt","Timestamp":"2026-04-12T13:20:00.123Z","CloudTrailEventId":"e1","KmsRequestId":"r1"}},"TrackingStartDate":1775000000,"KeyCreationDate":1700000000.5,"KeyMetadata":{{"Arn":"{ARN}","KeyState":"Disabled","KeyManager":"AWS","MultiRegion":false}},"Aliases":["alias/aws/ebs"]}}"#
            ),
            format!(
                r#"{{"KeyId":"{ARN}","KeyLastUsage":{{}},"TrackingStartDate":1775000000,"KeyCreationDate":1700000000}}"#
            ),
            format!(r#"{{"KeyId":"{ARN}","Error":"AccessDeniedException: no"}}"#),
        ];
        for line in lines {
            let key = parse_line(&line).unwrap();
            assert_eq!(
                parse_line(&snapshot_line(&key)).unwrap(),
                key,
                "case {line}"
            );
        }
    }

    #[test]
    fn read_snapshot_reports_the_line_number_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("u.jsonl");
        let good = format!(r#"{{"KeyId":"{ARN}","TrackingStartDate":1,"KeyCreationDate":1}}"#);
        std::fs::write(&p, format!("{good}\n\n{{oops\n")).unwrap();
        let e = read_snapshot(&p).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        std::fs::write(&p, format!("{good}\n{good}\n")).unwrap();
        let e = read_snapshot(&p).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("appears twice"), "{e}");
    }
}
