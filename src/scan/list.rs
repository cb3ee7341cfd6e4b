//! list: where the log objects of a local CloudTrail archive are. It finds the
//! `[prefix/]AWSLogs/[o-orgid/]<account>/CloudTrail/` folders, how far back each account and
//! region goes, and the objects of the planned day folders — only those folders, never a walk of
//! the whole archive. Which objects are log files is decided here too, by name.

use crate::model::is_account_id;
use crate::plan::{ArchiveStarts, DayPrefix};
use chrono::NaiveDate;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One `.../<account>/CloudTrail/` folder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TrailDir {
    pub account: String,
    pub path: PathBuf,
    /// The object-key prefix of this folder relative to the archive root, with a trailing slash.
    pub key_prefix: String,
}

#[derive(Debug, Clone)]
pub struct Archive {
    pub root: PathBuf,
    pub trails: Vec<TrailDir>,
}

/// An object found under a planned day prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    /// The object key relative to the archive root (`/`-separated), as it is in S3.
    pub key: String,
    pub path: PathBuf,
    pub size: u64,
    pub prefix: DayPrefix,
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("--logs {0}: no such directory")]
    Missing(PathBuf),
    #[error("--logs {0}: no CloudTrail logs found (expected [prefix/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/ or AWSLogs/<o-orgid>/<account>/CloudTrail/...)")]
    NoLogs(PathBuf),
    #[error("cannot list {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How deep a prefix before `AWSLogs/` may go.
const MAX_PREFIX_DEPTH: usize = 4;

pub fn open(root: &Path) -> Result<Archive, ListError> {
    if !root.is_dir() {
        return Err(ListError::Missing(root.to_path_buf()));
    }
    let mut aws_logs = Vec::new();
    find_aws_logs(root, "", 0, &mut aws_logs)?;
    let mut trails = Vec::new();
    for (dir, rel) in aws_logs {
        for (name, path) in subdirs(&dir)? {
            if is_account_id(&name) {
                push_trail(&mut trails, &name, &path, format!("{rel}{name}/"));
            } else if name.starts_with("o-") {
                for (acct, apath) in subdirs(&path)? {
                    if is_account_id(&acct) {
                        push_trail(&mut trails, &acct, &apath, format!("{rel}{name}/{acct}/"));
                    }
                }
            }
        }
    }
    if trails.is_empty() {
        return Err(ListError::NoLogs(root.to_path_buf()));
    }
    trails.sort();
    Ok(Archive {
        root: root.to_path_buf(),
        trails,
    })
}

fn push_trail(trails: &mut Vec<TrailDir>, account: &str, account_dir: &Path, rel: String) {
    let path = account_dir.join("CloudTrail");
    if path.is_dir() {
        trails.push(TrailDir {
            account: account.to_string(),
            path,
            key_prefix: format!("{rel}CloudTrail/"),
        });
    }
}

fn find_aws_logs(
    dir: &Path,
    rel: &str,
    depth: usize,
    out: &mut Vec<(PathBuf, String)>,
) -> Result<(), ListError> {
    for (name, path) in subdirs(dir)? {
        if name == "AWSLogs" {
            out.push((path, format!("{rel}AWSLogs/")));
        } else if depth < MAX_PREFIX_DEPTH && !name.starts_with('.') {
            find_aws_logs(&path, &format!("{rel}{name}/"), depth + 1, out)?;
        }
    }
    Ok(())
}

/// The sub-folders of `dir`, sorted by name; a missing folder has none.
fn subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, ListError> {
    Ok(entries(dir)?
        .into_iter()
        .filter(|(_, _, is_dir, _)| *is_dir)
        .map(|(n, p, _, _)| (n, p))
        .collect())
}

/// `(name, path, is_dir, size)` of every entry of `dir`, sorted by name; a missing folder is empty.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf, bool, u64)>, ListError> {
    let io = |source| ListError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io)?;
        let meta = entry.metadata().map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push((name, entry.path(), meta.is_dir(), meta.len()));
    }
    out.sort();
    Ok(out)
}

/// The first delivery day holding any object, per account and region. Walks only the year, month
/// and day folder names, earliest first, stopping at the first non-empty day.
pub fn archive_starts(archive: &Archive) -> Result<ArchiveStarts, ListError> {
    let mut starts = ArchiveStarts::new();
    for trail in &archive.trails {
        for (region, rpath) in subdirs(&trail.path)? {
            if let Some(day) = first_day(&rpath)? {
                let e = starts.entry((trail.account.clone(), region)).or_insert(day);
                *e = (*e).min(day);
            }
        }
    }
    Ok(starts)
}

fn first_day(region_dir: &Path) -> Result<Option<NaiveDate>, ListError> {
    for (y, ypath) in subdirs(region_dir)? {
        for (m, mpath) in subdirs(&ypath)? {
            for (d, dpath) in subdirs(&mpath)? {
                let Ok(day) = NaiveDate::parse_from_str(&format!("{y}-{m}-{d}"), "%Y-%m-%d") else {
                    continue;
                };
                if !entries(&dpath)?.is_empty() {
                    return Ok(Some(day));
                }
            }
        }
    }
    Ok(None)
}

/// Every object in the planned day folders, sorted by key. Sub-folders are not descended into.
pub fn list(
    archive: &Archive,
    prefixes: &BTreeSet<DayPrefix>,
) -> Result<Vec<ObjectRef>, ListError> {
    let mut out = Vec::new();
    for p in prefixes {
        let day_rel = format!("{}/{}", p.region, p.day.format("%Y/%m/%d"));
        for trail in archive.trails.iter().filter(|t| t.account == p.account) {
            let dir = trail.path.join(&day_rel);
            for (name, path, is_dir, size) in entries(&dir)? {
                if !is_dir {
                    let key = format!("{}{day_rel}/{name}", trail.key_prefix);
                    out.push(ObjectRef {
                        key,
                        path,
                        size,
                        prefix: p.clone(),
                    });
                }
            }
        }
    }
    out.sort();
    Ok(out)
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

    #[test]
    fn finds_plain_org_and_prefixed_layouts_and_lists_only_planned_days() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let touch = |rel: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        };
        touch("AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02/a.json.gz");
        touch("AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/03/b.json.gz");
        touch("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/03/01/d.json.gz");
        touch("logs/x/AWSLogs/o-abc123/444455556666/CloudTrail/eu-west-1/2026/02/28/c.json.gz");
        touch("AWSLogs/111122223333/Config/ConfigWritabilityCheckFile");
        let a = open(root).unwrap();
        let prefixes: Vec<&str> = a.trails.iter().map(|t| t.key_prefix.as_str()).collect();
        assert_eq!(
            prefixes,
            [
                "AWSLogs/111122223333/CloudTrail/",
                "logs/x/AWSLogs/o-abc123/444455556666/CloudTrail/"
            ]
        );
        let starts = archive_starts(&a).unwrap();
        assert_eq!(
            starts[&("111122223333".into(), "us-east-1".into())].to_string(),
            "2026-03-02"
        );
        assert_eq!(
            starts[&("444455556666".into(), "eu-west-1".into())].to_string(),
            "2026-02-28"
        );
        let want: BTreeSet<DayPrefix> = [DayPrefix {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            day: "2026-03-03".parse().unwrap(),
        }]
        .into();
        let objs = list(&a, &want).unwrap();
        assert_eq!(objs.len(), 1);
        assert_eq!(
            objs[0].key,
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/03/b.json.gz"
        );
        assert!(matches!(
            open(&root.join("nope")),
            Err(ListError::Missing(_))
        ));
        assert!(matches!(
            open(&root.join("logs/x/AWSLogs/o-abc123/444455556666/CloudTrail")),
            Err(ListError::NoLogs(_))
        ));
    }
}
