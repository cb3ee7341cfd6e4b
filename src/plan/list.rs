//! plan::list: where the log objects of a CloudTrail archive are. It finds the
//! `[prefix/]AWSLogs/[o-orgid/]<account>/CloudTrail/` folders, how far back each account and
//! region goes, and the objects of the planned day folders — only those folders, never a walk of
//! the whole archive. It works on any [`Archive`] (a local directory or an S3 bucket), through
//! folder listings only; which objects are log files is decided by name in `archive::layout`.

use super::{tally, ArchiveStarts, DayListing, Plan};
use crate::archive::layout::{folder_name, is_digest_name, DayPrefix, ObjectRef};
use crate::archive::{Archive, ArchiveError};
use crate::config::{Config, VerifyMode};
use crate::model::is_account_id;
use crate::tracking::TrackedKey;
use crate::trails::Trail;
use chrono::NaiveDate;
use futures::stream::{self, StreamExt, TryStreamExt};
use std::collections::BTreeSet;

/// The plan stage: finds the archive's trail folders and extent, plans the keys' windows (with
/// what the trails say about each account and region), and lists the planned day folders and,
/// unless integrity checking is off, their digest folders. With `Objects::Tally` the plan keeps
/// only what each folder holds ([`Plan::days`]), not its objects: memory by folders, not objects.
pub async fn make<A: Archive>(
    archive: &A,
    keys: &[TrackedKey],
    trails: Option<&[Trail]>,
    cfg: &Config,
    objects: Objects,
) -> Result<Plan, ListError> {
    let folders = discover(archive, archive.start()).await?;
    let starts = archive_starts(archive, &folders).await?;
    let mut plan = super::plan(keys, &starts, cfg.backfill, cfg.since);
    if let Some(watch) = cfg.watch {
        let (start, end) = watch.bounds();
        let held: Vec<&str> = folders.trails.iter().map(|t| t.account.as_str()).collect();
        super::add_watch(&mut plan, keys, &held, super::Window { start, end });
    }
    if let Some(trails) = trails {
        super::add_trail_gaps(&mut plan, |account, region| {
            crate::trails::gaps_for(trails, account, region)
        });
    }
    (plan.objects, plan.days) = list_days(archive, &folders, &plan.prefixes, objects).await?;
    if cfg.integrity.mode != VerifyMode::Off {
        plan.digests = list_digests(archive, &folders, &plan.prefixes).await?;
        plan.hash_logs = !plan.digests.is_empty();
    }
    plan.folders = folders.trails;
    Ok(plan)
}

/// Adds the callers' folders `wanted` to the plan — those of accounts the archive holds and not
/// planned already — with their objects and, when the plan checks digests, their digests, so
/// they are read and checked like any other. Returns the objects added.
pub async fn add_callers<A: Archive>(
    archive: &A,
    plan: &mut Plan,
    wanted: BTreeSet<DayPrefix>,
) -> Result<Vec<ObjectRef>, ListError> {
    let held: BTreeSet<&str> = plan.folders.iter().map(|t| t.account.as_str()).collect();
    let new: BTreeSet<DayPrefix> = wanted
        .into_iter()
        .filter(|p| held.contains(p.account.as_str()) && !plan.prefixes.contains(p))
        .collect();
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let folders = plan.trail_folders();
    let (objects, days) = list_days(archive, &folders, &new, Objects::Keep).await?;
    plan.days.extend(days);
    plan.days.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    if plan.hashes_logs() {
        plan.digests
            .extend(list_digests(archive, &folders, &new).await?);
        plan.digests.sort();
        plan.digests.dedup();
    }
    plan.objects.extend(objects.iter().cloned());
    plan.objects.sort();
    plan.prefixes.extend(new.iter().cloned());
    plan.callers.extend(new);
    Ok(objects)
}

/// One `.../<account>/CloudTrail/` folder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct TrailDir {
    pub account: String,
    /// The folder's key, with a trailing slash.
    pub key_prefix: String,
}

#[derive(Debug, Clone)]
pub struct TrailFolders {
    pub trails: Vec<TrailDir>,
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("--logs {0}: no CloudTrail logs found (expected [prefix/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/ or AWSLogs/<o-orgid>/<account>/CloudTrail/...)")]
    NoLogs(String),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// How deep a prefix before `AWSLogs/` may go.
const MAX_PREFIX_DEPTH: usize = 4;
/// Folder listings in flight at once.
const LIST_CONCURRENCY: usize = 16;

/// Finds the trail folders below `start` (empty, or a prefix ending with `/`).
pub async fn discover<S: Archive>(store: &S, start: &str) -> Result<TrailFolders, ListError> {
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
    // The account folders (an organization's hundreds), then each one's CloudTrail/ folder
    // looked for, LIST_CONCURRENCY at a time.
    let mut accounts: Vec<String> = Vec::new();
    for logs in aws_logs {
        for sub in store.list(&logs).await?.folders {
            let name = folder_name(&sub);
            if is_account_id(name) {
                accounts.push(sub);
            } else if name.starts_with("o-") {
                for acct in store.list(&sub).await?.folders {
                    if is_account_id(folder_name(&acct)) {
                        accounts.push(acct);
                    }
                }
            }
        }
    }
    let found: Vec<Option<TrailDir>> = stream::iter(accounts)
        .map(|dir| async move { trail_of(store, &dir).await })
        .buffered(LIST_CONCURRENCY)
        .try_collect()
        .await?;
    let mut trails: Vec<TrailDir> = found.into_iter().flatten().collect();
    if trails.is_empty() {
        return Err(ListError::NoLogs(store.describe()));
    }
    trails.sort();
    trails.dedup();
    Ok(TrailFolders { trails })
}

/// The `CloudTrail/` folder of an account folder, if it has one.
async fn trail_of<S: Archive>(store: &S, account_dir: &str) -> Result<Option<TrailDir>, ListError> {
    let ct = format!("{account_dir}CloudTrail/");
    let has = store.list(account_dir).await?.folders.contains(&ct);
    Ok(has.then(|| TrailDir {
        account: folder_name(account_dir).to_string(),
        key_prefix: ct,
    }))
}

/// The first delivery day holding any object, per account and region. Walks only the year, month
/// and day folder names, earliest first, stopping at the first non-empty day; the account-regions
/// are walked [`LIST_CONCURRENCY`] at a time (an organization has hundreds).
pub async fn archive_starts<S: Archive>(
    store: &S,
    archive: &TrailFolders,
) -> Result<ArchiveStarts, ListError> {
    let regions: Vec<Vec<(String, String)>> = stream::iter(&archive.trails)
        .map(|trail| async move {
            let listed = store.list(&trail.key_prefix).await?;
            Ok::<_, ListError>(
                listed
                    .folders
                    .into_iter()
                    .map(|r| (trail.account.clone(), r))
                    .collect(),
            )
        })
        .buffered(LIST_CONCURRENCY)
        .try_collect()
        .await?;
    let firsts: Vec<(String, String, Option<NaiveDate>)> =
        stream::iter(regions.into_iter().flatten())
            .map(|(account, region_dir)| async move {
                let day = first_day(store, &region_dir).await?;
                Ok::<_, ListError>((account, folder_name(&region_dir).to_string(), day))
            })
            .buffered(LIST_CONCURRENCY)
            .try_collect()
            .await?;
    let mut starts = ArchiveStarts::new();
    for (account, region, day) in firsts {
        if let Some(day) = day {
            let e = starts.entry((account, region)).or_insert(day);
            *e = (*e).min(day);
        }
    }
    Ok(starts)
}

async fn first_day<S: Archive>(
    store: &S,
    region_dir: &str,
) -> Result<Option<NaiveDate>, ListError> {
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

/// Whether listing keeps the objects it finds or only what each folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objects {
    Keep,
    Tally,
}

/// The objects directly in the planned day folders (sorted by key; none with `Objects::Tally`)
/// and what each folder holds, in `prefixes`' order; folders are listed concurrently, each
/// tallied as soon as it is listed.
pub async fn list_days<S: Archive>(
    store: &S,
    archive: &TrailFolders,
    prefixes: &BTreeSet<DayPrefix>,
    keep: Objects,
) -> Result<(Vec<ObjectRef>, Vec<DayListing>), ListError> {
    let per_day: Vec<(Vec<ObjectRef>, DayListing)> = stream::iter(prefixes)
        .map(|p| async move {
            let one = BTreeSet::from([p.clone()]);
            let objects = list_unbuffered(store, archive, &one).await?;
            let day = tally(&one, &objects).pop().expect("one folder tallied");
            let objects = match keep {
                Objects::Keep => objects,
                Objects::Tally => Vec::new(),
            };
            Ok::<_, ListError>((objects, day))
        })
        .buffered(LIST_CONCURRENCY)
        .try_collect()
        .await?;
    let mut objects = Vec::new();
    let mut days = Vec::with_capacity(per_day.len());
    for (o, d) in per_day {
        objects.extend(o);
        days.push(d);
    }
    objects.sort();
    Ok((objects, days))
}

/// The objects of `prefixes`' folders, one folder after another (for a few folders).
async fn list_unbuffered<S: Archive>(
    store: &S,
    archive: &TrailFolders,
    prefixes: &BTreeSet<DayPrefix>,
) -> Result<Vec<ObjectRef>, ListError> {
    let mut out = Vec::new();
    for p in prefixes {
        let day_rel = format!("{}/{}/", p.region, p.day.format("%Y/%m/%d"));
        for t in archive.trails.iter().filter(|t| t.account == p.account) {
            let l = store.list(&format!("{}{day_rel}", t.key_prefix)).await?;
            out.extend(l.objects.into_iter().map(|e| ObjectRef {
                key: e.key,
                size: e.size,
                storage_class: e.storage_class,
                prefix: p.clone(),
            }));
        }
    }
    out.sort();
    Ok(out)
}

/// Every object directly in the planned day folders, sorted by key; folders are listed
/// concurrently. Sub-folders are not descended into.
pub async fn list<S: Archive>(
    store: &S,
    archive: &TrailFolders,
    prefixes: &BTreeSet<DayPrefix>,
) -> Result<Vec<ObjectRef>, ListError> {
    Ok(list_days(store, archive, prefixes, Objects::Keep).await?.0)
}

/// The digest files of the planned days and of the day after each (a digest is delivered after
/// the hour it covers), from `.../<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/`.
pub async fn list_digests<S: Archive>(
    store: &S,
    archive: &TrailFolders,
    prefixes: &BTreeSet<DayPrefix>,
) -> Result<Vec<ObjectRef>, ListError> {
    let digest_dirs = TrailFolders {
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
    found.retain(|o| is_digest_name(&o.key));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::local::LocalArchive;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
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
        let store = LocalArchive {
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
        let nothing = LocalArchive {
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
