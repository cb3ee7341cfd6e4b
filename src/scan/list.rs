//! list: where the log objects of a CloudTrail archive are. It finds the
//! `[prefix/]AWSLogs/[o-orgid/]<account>/CloudTrail/` folders, how far back each account and
//! region goes, and the objects of the planned day folders — only those folders, never a walk of
//! the whole archive. Which objects are log files is decided here too, by name. It works on any
//! `Store` (a local directory or an S3 bucket), through folder listings only.

use super::store::{folder_name, Store, StoreError};
use crate::model::is_account_id;
use crate::plan::{ArchiveStarts, DayPrefix};
use chrono::NaiveDate;
use futures::stream::{self, StreamExt, TryStreamExt};
use std::collections::BTreeSet;

/// One `.../<account>/CloudTrail/` folder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TrailDir {
    pub account: String,
    /// The folder's key, with a trailing slash.
    pub key_prefix: String,
}

#[derive(Debug, Clone)]
pub struct Archive {
    pub trails: Vec<TrailDir>,
}

/// An object found under a planned day prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    /// The object key relative to the store's root (`/`-separated), as it is in S3.
    pub key: String,
    pub size: u64,
    pub storage_class: Option<String>,
    pub prefix: DayPrefix,
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("--logs {0}: no CloudTrail logs found (expected [prefix/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/ or AWSLogs/<o-orgid>/<account>/CloudTrail/...)")]
    NoLogs(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How deep a prefix before `AWSLogs/` may go.
const MAX_PREFIX_DEPTH: usize = 4;
/// Folder listings in flight at once.
const LIST_CONCURRENCY: usize = 16;

/// Finds the trail folders below `start` (empty, or a prefix ending with `/`).
pub async fn discover<S: Store>(store: &S, start: &str) -> Result<Archive, ListError> {
    let mut aws_logs = Vec::new();
    let mut level = vec![start.to_string()];
    for depth in 0..=MAX_PREFIX_DEPTH {
        let mut next = Vec::new();
        for folder in &level {
            if folder_name(folder) == "AWSLogs" {
                aws_logs.push(folder.clone());
                continue;
            }
            for sub in store.list(folder).await?.folders {
                let name = folder_name(&sub);
                if name == "AWSLogs" {
                    aws_logs.push(sub);
                } else if depth < MAX_PREFIX_DEPTH && !name.starts_with('.') {
                    next.push(sub);
                }
            }
        }
        level = next;
    }
    let mut trails = Vec::new();
    for logs in aws_logs {
        for sub in store.list(&logs).await?.folders {
            let name = folder_name(&sub);
            if is_account_id(name) {
                push_trail(store, &mut trails, name, &sub).await?;
            } else if name.starts_with("o-") {
                for acct in store.list(&sub).await?.folders {
                    if is_account_id(folder_name(&acct)) {
                        push_trail(store, &mut trails, folder_name(&acct), &acct).await?;
                    }
                }
            }
        }
    }
    if trails.is_empty() {
        return Err(ListError::NoLogs(store.describe()));
    }
    trails.sort();
    trails.dedup();
    Ok(Archive { trails })
}

async fn push_trail<S: Store>(
    store: &S,
    trails: &mut Vec<TrailDir>,
    account: &str,
    account_dir: &str,
) -> Result<(), ListError> {
    let ct = format!("{account_dir}CloudTrail/");
    if store.list(account_dir).await?.folders.contains(&ct) {
        trails.push(TrailDir {
            account: account.to_string(),
            key_prefix: ct,
        });
    }
    Ok(())
}

/// The first delivery day holding any object, per account and region. Walks only the year, month
/// and day folder names, earliest first, stopping at the first non-empty day.
pub async fn archive_starts<S: Store>(
    store: &S,
    archive: &Archive,
) -> Result<ArchiveStarts, ListError> {
    let mut starts = ArchiveStarts::new();
    for trail in &archive.trails {
        for region_dir in store.list(&trail.key_prefix).await?.folders {
            if let Some(day) = first_day(store, &region_dir).await? {
                let e = starts
                    .entry((trail.account.clone(), folder_name(&region_dir).to_string()))
                    .or_insert(day);
                *e = (*e).min(day);
            }
        }
    }
    Ok(starts)
}

async fn first_day<S: Store>(store: &S, region_dir: &str) -> Result<Option<NaiveDate>, ListError> {
    for y in store.list(region_dir).await?.folders {
        for m in store.list(&y).await?.folders {
            for d in store.list(&m).await?.folders {
                let ymd = format!(
                    "{}-{}-{}",
                    folder_name(&y),
                    folder_name(&m),
                    folder_name(&d)
                );
                let Ok(day) = NaiveDate::parse_from_str(&ymd, "%Y-%m-%d") else {
                    continue;
                };
                let l = store.list(&d).await?;
                if !l.objects.is_empty() || !l.folders.is_empty() {
                    return Ok(Some(day));
                }
            }
        }
    }
    Ok(None)
}

/// Every object directly in the planned day folders, sorted by key; folders are listed
/// concurrently. Sub-folders are not descended into.
pub async fn list<S: Store>(
    store: &S,
    archive: &Archive,
    prefixes: &BTreeSet<DayPrefix>,
) -> Result<Vec<ObjectRef>, ListError> {
    let folders: Vec<(String, &DayPrefix)> = prefixes
        .iter()
        .flat_map(|p| {
            let day_rel = format!("{}/{}/", p.region, p.day.format("%Y/%m/%d"));
            archive
                .trails
                .iter()
                .filter(move |t| t.account == p.account)
                .map(move |t| (format!("{}{day_rel}", t.key_prefix), p))
        })
        .collect();
    let listings: Vec<Vec<ObjectRef>> = stream::iter(folders)
        .map(|(folder, p)| async move {
            let l = store.list(&folder).await?;
            Ok::<_, ListError>(
                l.objects
                    .into_iter()
                    .map(|e| ObjectRef {
                        key: e.key,
                        size: e.size,
                        storage_class: e.storage_class,
                        prefix: p.clone(),
                    })
                    .collect(),
            )
        })
        .buffered(LIST_CONCURRENCY)
        .try_collect()
        .await?;
    let mut out: Vec<ObjectRef> = listings.into_iter().flatten().collect();
    out.sort();
    Ok(out)
}

/// The digest files of the planned days and of the day after each (a digest is delivered after
/// the hour it covers), from `.../<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/`.
pub async fn list_digests<S: Store>(
    store: &S,
    archive: &Archive,
    prefixes: &BTreeSet<DayPrefix>,
) -> Result<Vec<ObjectRef>, ListError> {
    let digest_dirs = Archive {
        trails: archive
            .trails
            .iter()
            .map(|t| TrailDir {
                account: t.account.clone(),
                key_prefix: format!(
                    "{}CloudTrail-Digest/",
                    t.key_prefix.trim_end_matches("CloudTrail/")
                ),
            })
            .collect(),
    };
    let days: BTreeSet<DayPrefix> = prefixes
        .iter()
        .flat_map(|p| {
            [p.day, p.day + chrono::Duration::days(1)].map(|day| DayPrefix {
                account: p.account.clone(),
                region: p.region.clone(),
                day,
            })
        })
        .collect();
    let mut found = list(store, &digest_dirs, &days).await?;
    found.retain(|o| crate::integrity::is_digest_name(&o.key));
    Ok(found)
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
    use crate::scan::store::LocalStore;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

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
        touch("AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/03/sub/c.json.gz");
        touch("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/03/01/d.json.gz");
        touch("logs/x/AWSLogs/o-abc123/444455556666/CloudTrail/eu-west-1/2026/02/28/c.json.gz");
        touch("AWSLogs/111122223333/Config/ConfigWritabilityCheckFile");
        let store = LocalStore {
            root: root.to_path_buf(),
        };
        let a = block_on(discover(&store, "")).unwrap();
        let prefixes: Vec<&str> = a.trails.iter().map(|t| t.key_prefix.as_str()).collect();
        assert_eq!(
            prefixes,
            [
                "AWSLogs/111122223333/CloudTrail/",
                "logs/x/AWSLogs/o-abc123/444455556666/CloudTrail/"
            ]
        );
        let starts = block_on(archive_starts(&store, &a)).unwrap();
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
        let objs = block_on(list(&store, &a, &want)).unwrap();
        assert_eq!(objs.len(), 1);
        assert_eq!(
            objs[0].key,
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/03/b.json.gz"
        );
        let nothing = LocalStore {
            root: root.join("logs/x/AWSLogs/o-abc123/444455556666/CloudTrail"),
        };
        assert!(matches!(
            block_on(discover(&nothing, "")),
            Err(ListError::NoLogs(_))
        ));
        // A prefix given by the user is where the search starts.
        let a = block_on(discover(&store, "logs/")).unwrap();
        assert_eq!(a.trails.len(), 1);
    }
}
