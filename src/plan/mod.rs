//! plan: which log objects must be read, and why. The core ([`plan`]) is a pure function of the
//! tracked keys, the archive's extent and the run's settings: for every key that needs a
//! backfill, its account, region and the days of its window plus one delivery-slack day; for
//! every key with a recorded last use, the day of that event plus one (to join it). Only those
//! account/region/day prefixes are listed, never the whole archive. [`list`] is the stage's edge:
//! it finds the archive's extent and lists the planned folders into the [`Plan`] value.

pub mod list;

use crate::archive::layout::{DayPrefix, ObjectRef};
use crate::config::BackfillScope;
use crate::model::{day_of, days, hex, iso, last_day_before, start_of, Instant, KeyArn};
use crate::tracking::{TrackedKey, TrackingStatus};
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};

/// The first delivery day present in the archive, per (account, region).
pub type ArchiveStarts = BTreeMap<(String, String), NaiveDate>;

/// A key's backfill window, half-open: `[start, end)`, never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    pub fn first_day(&self) -> NaiveDate {
        day_of(self.start)
    }
    pub fn last_day(&self) -> NaiveDate {
        last_day_before(self.end)
    }
    /// The day after the window, read because records are filed by delivery time.
    pub fn slack_day(&self) -> NaiveDate {
        self.last_day().succ_opt().expect("date in range")
    }
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> {
        days(self.first_day(), self.last_day())
    }
    pub fn day_count(&self) -> i64 {
        (self.last_day() - self.first_day()).num_days() + 1
    }
    pub fn contains(&self, t: Instant) -> bool {
        self.start <= t && t < self.end
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KeyPlan {
    pub arn: KeyArn,
    pub status: TrackingStatus,
    /// Whether this key is in the backfill scope of the run.
    pub backfill: bool,
    pub window: Option<Window>,
    /// Why the evidence cannot be complete before any object is read: the window does not start
    /// at key creation, the trails do not log KMS calls there (`add_trail_gaps`), or there is no
    /// window at all. Empty when nothing is known to limit it.
    pub gaps: Vec<String>,
    /// The delivery days read to join the last use's event ID (`None` when there is no last use).
    pub join_days: Option<(NaiveDate, NaiveDate)>,
}

/// The plan stage's value: what to read and why. Written by one process and read by another, so
/// it serializes, with its [`Plan::FORMAT`] in it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub format: u32,
    /// In the inventory's (ARN) order.
    pub keys: Vec<KeyPlan>,
    /// The account/region/day folders to read (with the callers' folders, once added).
    pub prefixes: BTreeSet<DayPrefix>,
    /// The callers' folders added after the scan ([`list::add_callers`]): read only for the
    /// caller's own copy of a cross-account use, which names who called. A subset of `prefixes`.
    pub callers: BTreeSet<DayPrefix>,
    /// The archive's trail folders (`.../<account>/CloudTrail/`), where the prefixes are.
    pub folders: Vec<list::TrailDir>,
    /// The log folders' objects, sorted by key ([`list::make`] fills them in).
    pub objects: Vec<ObjectRef>,
    /// The digest files of the planned days and the day after each; empty when integrity is not
    /// checked.
    pub digests: Vec<ObjectRef>,
    /// Every planned day folder (`prefixes`, in order) as its listing found it. Filled whether or
    /// not `objects` is kept ([`list::make`]).
    #[serde(default)]
    pub days: Vec<DayListing>,
    /// Whether the scan hashes the logs it reads: digests were found to check them against. Kept
    /// apart from `digests`, which a sharded plan does not carry (its merge lists them).
    #[serde(default)]
    pub hash_logs: bool,
    /// The recent days read for failed attempts (`--watch-days`; [`add_watch`]).
    #[serde(default)]
    pub watch: Option<Window>,
}

impl Plan {
    /// The plan's layout version: a plan of another format is refused, not misread.
    pub const FORMAT: u32 = 3;

    /// The plan as another process reads it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a plan serializes")
    }

    /// A plan written by [`Plan::to_json`]; one of another format is refused, not misread.
    pub fn from_json(text: &str) -> Result<Plan, String> {
        #[derive(serde::Deserialize)]
        struct Format {
            format: u32,
        }
        let f: Format =
            serde_json::from_str(text).map_err(|e| format!("not a keytrail plan: {e}"))?;
        if f.format != Plan::FORMAT {
            return Err(format!(
                "a plan of format {} (this keytrail reads format {})",
                f.format,
                Plan::FORMAT
            ));
        }
        serde_json::from_str(text).map_err(|e| format!("a damaged plan: {e}"))
    }

    /// The archive's trail folders, as the listings take them.
    pub fn trail_folders(&self) -> list::TrailFolders {
        list::TrailFolders {
            trails: self.folders.clone(),
        }
    }

    /// Whether the scan hashes the logs it reads: when there are digests to check them against.
    pub fn hashes_logs(&self) -> bool {
        self.hash_logs
    }
}

/// What listing one planned account/region/day folder found: enough to balance shards, estimate a
/// run, and tell later whether the folder changed — without naming its objects.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DayListing {
    pub prefix: DayPrefix,
    pub objects: u64,
    pub bytes: u64,
    /// Objects in GLACIER or DEEP_ARCHIVE (not readable until restored), and their bytes.
    pub archived_objects: u64,
    pub archived_bytes: u64,
    /// SHA-256 (first 16 bytes, hex) of the listing: each object's key and size in key order
    /// (not its storage class, which an S3 Inventory report may leave out; archived objects are
    /// counted above). Empty folders have the fingerprint of nothing.
    pub listing: String,
}

fn is_archived(o: &ObjectRef) -> bool {
    o.storage_class
        .as_deref()
        .is_some_and(|c| c == "GLACIER" || c == "DEEP_ARCHIVE")
}

/// Every folder of `prefixes`, in order, with what `objects` (a listing of them, in key order)
/// holds in each.
pub fn tally(prefixes: &BTreeSet<DayPrefix>, objects: &[ObjectRef]) -> Vec<DayListing> {
    let mut by: BTreeMap<&DayPrefix, Vec<&ObjectRef>> =
        prefixes.iter().map(|p| (p, Vec::new())).collect();
    for o in objects {
        by.entry(&o.prefix).or_default().push(o);
    }
    by.into_iter()
        .map(|(prefix, objects)| {
            let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
            for o in &objects {
                h.update(o.key.as_bytes());
                h.update(format!("\t{}\n", o.size).as_bytes());
            }
            let archived = objects.iter().filter(|o| is_archived(o));
            DayListing {
                prefix: prefix.clone(),
                objects: objects.len() as u64,
                bytes: objects.iter().map(|o| o.size).sum(),
                archived_objects: archived.clone().count() as u64,
                archived_bytes: archived.map(|o| o.size).sum(),
                listing: hex(&h.finish().as_ref()[..16]),
            }
        })
        .collect()
}

/// How each folder a shard listed differs from what planning found there, in words (nothing when
/// they are the same).
pub fn changes(planned: &[&DayListing], found: &[DayListing]) -> Vec<String> {
    let found: BTreeMap<&DayPrefix, &DayListing> = found.iter().map(|f| (&f.prefix, f)).collect();
    planned
        .iter()
        .filter_map(|p| Some((p, *found.get(&p.prefix)?)))
        .filter(|(p, f)| p.listing != f.listing || p.archived_objects != f.archived_objects)
        .map(|(p, f)| {
            let d = &p.prefix;
            let archived = if p.archived_objects != f.archived_objects {
                format!(
                    "; {} archived (GLACIER/DEEP_ARCHIVE) when planned, {} when read",
                    p.archived_objects, f.archived_objects
                )
            } else {
                String::new()
            };
            format!(
                "day folder {}/{}/{} changed between planning and scanning: {} objects ({} bytes) when planned, {} objects ({} bytes) when read{archived}; what was read is reported",
                d.account, d.region, d.day, p.objects, p.bytes, f.objects, f.bytes
            )
        })
        .collect()
}

/// The keys' windows and the folders to read, from the keys, the archive's extent and the run's
/// scope; no objects yet.
pub fn plan(
    keys: &[TrackedKey],
    starts: &ArchiveStarts,
    scope: BackfillScope,
    since: Option<Instant>,
) -> Plan {
    let mut out = Plan {
        format: Plan::FORMAT,
        ..Plan::default()
    };
    for key in keys {
        let status = key.status;
        let account = key.arn.account().to_string();
        let region = key.arn.region().to_string();
        let backfill = match scope {
            BackfillScope::Unknown => status == TrackingStatus::UnknownBeforeTracking,
            BackfillScope::All => status != TrackingStatus::Error,
        };
        let archive_start = starts.get(&(account.clone(), region.clone())).copied();
        let (window, gaps) = match (backfill, key.creation, key.tracking_start) {
            (true, Some(created), Some(end)) => {
                window_for(created, end, since, archive_start, &account, &region)
            }
            _ => (None, Vec::new()),
        };
        let mut add = |day: NaiveDate| {
            out.prefixes.insert(DayPrefix {
                account: account.clone(),
                region: region.clone(),
                day,
            });
        };
        if let Some(w) = window {
            w.days().for_each(&mut add);
            add(w.slack_day());
        }
        let join_days = key.last_usage.as_ref().map(|u| {
            let d = day_of(u.timestamp);
            (d, d.succ_opt().expect("date in range"))
        });
        if let Some((d, slack)) = join_days {
            add(d);
            add(slack);
        }
        out.keys.push(KeyPlan {
            arn: key.arn.clone(),
            status,
            backfill,
            window,
            gaps,
            join_days,
        });
    }
    out
}

/// Adds the days of `watch` (and the day after, for late deliveries) to the plan in every region
/// of `keys`, for their accounts and every other account the archive holds (`held`): the failed
/// attempts there are counted for every key (`--watch-days`), whatever its window — those a
/// cross-account caller made too, which CloudTrail logs in the caller's account only.
pub fn add_watch(plan: &mut Plan, keys: &[TrackedKey], held: &[&str], watch: Window) {
    let regions: BTreeSet<&str> = keys.iter().map(|k| k.arn.region()).collect();
    let accounts: BTreeSet<&str> = keys
        .iter()
        .map(|k| k.arn.account())
        .chain(held.iter().copied())
        .collect();
    let places = accounts
        .iter()
        .flat_map(|a| regions.iter().map(move |r| (*a, *r)));
    for (account, region) in places {
        for day in watch.days().chain([watch.slack_day()]) {
            plan.prefixes.insert(DayPrefix {
                account: account.to_string(),
                region: region.to_string(),
                day,
            });
        }
    }
    plan.watch = Some(watch);
}

/// Adds what is known to limit the evidence of an account and region before any object is read
/// (from the trails' configuration) to every backfilled key there.
pub fn add_trail_gaps(plan: &mut Plan, gaps: impl Fn(&str, &str) -> Vec<String>) {
    for kp in plan.keys.iter_mut().filter(|k| k.backfill) {
        kp.gaps.extend(gaps(kp.arn.account(), kp.arn.region()));
    }
}

/// `[max(creation, --since, archive start), tracking start)`, and what keeps it from starting at
/// creation.
fn window_for(
    created: Instant,
    end: Instant,
    since: Option<Instant>,
    archive_start: Option<NaiveDate>,
    account: &str,
    region: &str,
) -> (Option<Window>, Vec<String>) {
    if created >= end {
        return (None, Vec::new());
    }
    let mut start = created;
    let mut gaps = Vec::new();
    if let Some(s) = since.filter(|s| *s > created) {
        start = s;
        gaps.push(format!(
            "--since {} is after key creation {}",
            iso(s),
            iso(created)
        ));
    }
    match archive_start {
        Some(d) if start_of(d) > start => {
            start = start_of(d);
            gaps.push(format!(
                "archive for {account}/{region} starts {d}, after key creation {}",
                iso(created)
            ));
        }
        Some(_) => {}
        None => gaps.push(format!(
            "no CloudTrail logs for {account}/{region} in the archive"
        )),
    }
    if start >= end {
        gaps.push(format!(
            "no part of the pre-tracking period (before {}) is covered",
            iso(end)
        ));
        return (None, gaps);
    }
    (Some(Window { start, end }), gaps)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::inventory::parse_line;
    use crate::model::parse_iso;

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/k1";

    fn key(creation: &str, tracking: &str, last: Option<&str>) -> TrackedKey {
        let last = last.map_or("{}".to_string(), |t| {
            format!(r#"{{"Timestamp":"{t}","CloudTrailEventId":"e"}}"#)
        });
        let key = parse_line(&format!(
            r#"{{"KeyId":"{ARN}","KeyLastUsage":{last},"TrackingStartDate":"{tracking}","KeyCreationDate":"{creation}"}}"#
        ))
        .unwrap();
        crate::tracking::track(vec![key]).remove(0)
    }

    fn starts(day: &str) -> ArchiveStarts {
        [(
            ("111122223333".to_string(), "us-east-1".to_string()),
            day.parse().unwrap(),
        )]
        .into()
    }

    fn day_list(p: &Plan) -> Vec<String> {
        p.prefixes.iter().map(|d| d.day.to_string()).collect()
    }

    /// An object of day `day` of March 2026 in 111122223333/us-east-1.
    pub(crate) fn obj(day: u32, name: &str, size: u64) -> ObjectRef {
        ObjectRef {
            key: format!("AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/{day:02}/{name}"),
            size,
            storage_class: None,
            prefix: DayPrefix {
                account: "111122223333".into(),
                region: "us-east-1".into(),
                day: NaiveDate::from_ymd_opt(2026, 3, day).unwrap(),
            },
        }
    }

    #[test]
    fn a_folder_listed_again_tells_what_changed() {
        let objects = vec![
            obj(1, "a.json.gz", 10),
            obj(1, "b.json.gz", 20),
            obj(2, "c.json.gz", 5),
        ];
        let mut prefixes: BTreeSet<DayPrefix> = objects.iter().map(|o| o.prefix.clone()).collect();
        // A planned folder with nothing in it yet.
        let empty = obj(3, "x", 0).prefix;
        prefixes.insert(empty.clone());
        let planned = tally(&prefixes, &objects);
        assert_eq!(planned.len(), 3);
        assert_eq!((planned[0].objects, planned[0].bytes), (2, 30));
        assert_eq!((planned[2].prefix.clone(), planned[2].objects), (empty, 0));
        let refs: Vec<&DayListing> = planned.iter().collect();
        // Listed again unchanged: nothing to say.
        assert!(changes(&refs, &tally(&prefixes, &objects)).is_empty());
        // An object replaced by another of the same size, one delivered into the empty folder,
        // one of another storage class: each folder that differs is named, once.
        let mut again = objects.clone();
        again[1].key = again[1].key.replace("b.json", "b2.json");
        again.push(obj(3, "late.json.gz", 7));
        let said = changes(&refs, &tally(&prefixes, &again));
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(
            said[0].contains("111122223333/us-east-1/2026-03-01"),
            "{}",
            said[0]
        );
        assert!(
            said[0].contains("2 objects (30 bytes) when planned, 2 objects (30 bytes) when read")
        );
        assert!(
            said[1].contains("2026-03-03")
                && said[1].contains("0 objects (0 bytes) when planned, 1 objects (7 bytes)")
        );
        // A storage class is not in the fingerprint (an inventory may leave it out: STANDARD
        // listed live is no change), but an object found archived is.
        let mut standard = objects.clone();
        standard[0].storage_class = Some("STANDARD".into());
        assert!(changes(&refs, &tally(&prefixes, &standard)).is_empty());
        let mut glacier = objects.clone();
        glacier[2].storage_class = Some("GLACIER".into());
        let t = tally(&prefixes, &glacier);
        assert_eq!((t[1].archived_objects, t[1].archived_bytes), (1, 5));
        let said = changes(&refs, &t);
        assert_eq!(said.len(), 1);
        assert!(
            said[0].contains("0 archived (GLACIER/DEEP_ARCHIVE) when planned, 1 when read"),
            "{}",
            said[0]
        );
    }

    #[test]
    fn watched_days_are_read_in_every_place_of_the_keys() {
        let other = "arn:aws:kms:eu-west-1:444455556666:key/k2";
        let mut k2 = key("2026-03-02T10:00:00Z", "2026-03-04T00:00:00Z", None);
        k2.key.arn = KeyArn::parse(other).unwrap();
        let keys = [
            key("2026-03-02T10:00:00Z", "2026-03-04T00:00:00Z", None),
            k2,
        ];
        let mut p = plan(&keys, &starts("2026-01-01"), BackfillScope::Unknown, None);
        let before = p.prefixes.clone();
        let watch = Window {
            start: parse_iso("2026-11-27T00:00:00Z").unwrap(),
            end: parse_iso("2026-11-29T00:00:00Z").unwrap(),
        };
        add_watch(&mut p, &keys, &["777788889999"], watch);
        let added: Vec<String> = p
            .prefixes
            .difference(&before)
            .map(|d| format!("{}/{}/{}", d.account, d.region, d.day))
            .collect();
        // Every region of the keys, in the keys' accounts and the other account the archive
        // holds.
        let mut want = Vec::new();
        for account in ["111122223333", "444455556666", "777788889999"] {
            for region in ["eu-west-1", "us-east-1"] {
                for day in ["2026-11-27", "2026-11-28", "2026-11-29"] {
                    want.push(format!("{account}/{region}/{day}"));
                }
            }
        }
        assert_eq!(added, want);
        assert_eq!(p.watch, Some(watch));
        assert_eq!(Plan::from_json(&p.to_json()), Ok(p));
    }

    #[test]
    fn a_plan_of_another_format_is_refused() {
        let mut p = plan(
            &[key("2026-03-02T10:00:00Z", "2026-03-04T00:00:00Z", None)],
            &starts("2026-01-01"),
            BackfillScope::Unknown,
            None,
        );
        p.objects.push(ObjectRef {
            key: "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02/x.json.gz".into(),
            size: 7,
            storage_class: Some("GLACIER".into()),
            prefix: p.prefixes.first().unwrap().clone(),
        });
        assert_eq!(Plan::from_json(&p.to_json()).as_ref(), Ok(&p));
        p.format = Plan::FORMAT + 1;
        let err = Plan::from_json(&p.to_json()).unwrap_err();
        assert!(
            err.contains(&format!("reads format {}", Plan::FORMAT)),
            "{err}"
        );
        assert!(Plan::from_json("{}")
            .unwrap_err()
            .contains("not a keytrail plan"));
    }

    #[test]
    fn window_days_plus_slack_and_join_days() {
        struct Case {
            name: &'static str,
            key: TrackedKey,
            scope: BackfillScope,
            since: Option<&'static str>,
            archive: &'static str,
            days: &'static [&'static str],
            limited: bool,
        }
        let cases = [
            Case {
                name: "window ends at midnight: slack is the tracking-start day",
                key: key("2026-03-02T10:00:00Z", "2026-03-04T00:00:00Z", None),
                scope: BackfillScope::Unknown,
                since: None,
                archive: "2026-01-01",
                days: &["2026-03-02", "2026-03-03", "2026-03-04"],
                limited: false,
            },
            Case {
                name: "window ends mid-day",
                key: key("2026-03-02T10:00:00Z", "2026-03-03T08:00:00Z", None),
                scope: BackfillScope::Unknown,
                since: None,
                archive: "2026-01-01",
                days: &["2026-03-02", "2026-03-03", "2026-03-04"],
                limited: false,
            },
            Case {
                name: "archive starts after creation",
                key: key("2025-01-01T00:00:00Z", "2026-03-03T08:00:00Z", None),
                scope: BackfillScope::Unknown,
                since: None,
                archive: "2026-03-02",
                days: &["2026-03-02", "2026-03-03", "2026-03-04"],
                limited: true,
            },
            Case {
                name: "--since after creation",
                key: key("2025-01-01T00:00:00Z", "2026-03-03T08:00:00Z", None),
                scope: BackfillScope::Unknown,
                since: Some("2026-03-03"),
                archive: "2024-01-01",
                days: &["2026-03-03", "2026-03-04"],
                limited: true,
            },
            Case {
                name: "used key out of default scope: only its join days",
                key: key(
                    "2025-01-01T00:00:00Z",
                    "2026-03-03T08:00:00Z",
                    Some("2026-03-10T23:59:59Z"),
                ),
                scope: BackfillScope::Unknown,
                since: None,
                archive: "2026-03-02",
                days: &["2026-03-10", "2026-03-11"],
                limited: false,
            },
            Case {
                name: "used key with --backfill all: window, slack and join days",
                key: key(
                    "2026-03-01T12:00:00Z",
                    "2026-03-02T08:00:00Z",
                    Some("2026-03-10T01:00:00Z"),
                ),
                scope: BackfillScope::All,
                since: None,
                archive: "2026-01-01",
                days: &[
                    "2026-03-01",
                    "2026-03-02",
                    "2026-03-03",
                    "2026-03-10",
                    "2026-03-11",
                ],
                limited: false,
            },
            Case {
                name: "created after tracking start: nothing to read",
                key: key("2026-03-05T00:00:00Z", "2026-03-05T00:00:00Z", None),
                scope: BackfillScope::All,
                since: None,
                archive: "2026-01-01",
                days: &[],
                limited: false,
            },
        ];
        for c in cases {
            let p = plan(
                &[c.key],
                &starts(c.archive),
                c.scope,
                c.since.map(|s| crate::model::parse_since(s).unwrap()),
            );
            assert_eq!(day_list(&p), c.days, "case {}", c.name);
            assert_eq!(
                !p.keys[0].gaps.is_empty(),
                c.limited,
                "case {}: {:?}",
                c.name,
                p.keys[0].gaps
            );
        }
    }

    #[test]
    fn archive_starting_after_tracking_leaves_no_window_and_says_so() {
        let p = plan(
            &[key("2025-01-01T00:00:00Z", "2026-03-03T08:00:00Z", None)],
            &starts("2026-04-01"),
            BackfillScope::Unknown,
            None,
        );
        assert!(p.keys[0].window.is_none());
        assert!(p.prefixes.is_empty());
        assert!(
            p.keys[0]
                .gaps
                .iter()
                .any(|l| l.contains("no part of the pre-tracking period")),
            "{:?}",
            p.keys[0].gaps
        );
    }

    #[test]
    fn window_membership_is_half_open() {
        let w = Window {
            start: parse_iso("2026-03-01T10:00:00Z").unwrap(),
            end: parse_iso("2026-03-02T00:00:00Z").unwrap(),
        };
        assert!(w.contains(parse_iso("2026-03-01T10:00:00Z").unwrap()));
        assert!(w.contains(parse_iso("2026-03-01T23:59:59Z").unwrap()));
        assert!(!w.contains(parse_iso("2026-03-02T00:00:00Z").unwrap()));
        assert!(!w.contains(parse_iso("2026-03-01T09:59:59Z").unwrap()));
        assert_eq!(w.day_count(), 1);
    }

    mod props {
        use super::*;
        use chrono::TimeZone;
        use proptest::prelude::*;

        fn at(secs: i64) -> Instant {
            chrono::Utc.timestamp_opt(1_767_225_600 + secs, 0).unwrap() // 2026-01-01 + secs
        }

        proptest! {
            /// Every window day and its slack day are planned; every planned prefix is there for a
            /// window, a slack day or a join; and the prefixes are a set (each listed once).
            #[test]
            fn plan_covers_every_window_day_and_nothing_else(
                keys in proptest::collection::vec((0i64..90 * 86_400, 0i64..40 * 86_400, proptest::option::of(0i64..20 * 86_400)), 1..6),
                archive_day in 0i64..60,
                all in any::<bool>(),
            ) {
                let mut ks = Vec::new();
                for (i, (created, len, last)) in keys.iter().enumerate() {
                    let arn = format!("arn:aws:kms:us-east-1:111122223333:key/k{i}");
                    let tracking = at(created + len);
                    let last = last.map(|l| format!(r#"{{"Timestamp":{}}}"#, (tracking + chrono::Duration::seconds(l)).timestamp()));
                    ks.push(parse_line(&format!(
                        r#"{{"KeyId":"{arn}","KeyLastUsage":{},"TrackingStartDate":{},"KeyCreationDate":{}}}"#,
                        last.unwrap_or("{}".into()), tracking.timestamp(), at(*created).timestamp()
                    )).unwrap());
                }
                let starts = starts(&day_of(at(archive_day * 86_400)).to_string());
                let scope = if all { BackfillScope::All } else { BackfillScope::Unknown };
                let p = plan(&crate::tracking::track(ks), &starts, scope, None);
                let mut justified = BTreeSet::new();
                for kp in &p.keys {
                    if let Some(w) = kp.window {
                        prop_assert!(kp.backfill);
                        prop_assert!(w.start < w.end);
                        for d in w.days().chain(std::iter::once(w.slack_day())) {
                            prop_assert!(p.prefixes.iter().any(|x| x.day == d), "day {} of {} not planned", d, kp.arn);
                            justified.insert(d);
                        }
                        prop_assert_eq!(w.days().count() as i64, w.day_count());
                    }
                    if let Some((d, s)) = kp.join_days {
                        justified.insert(d);
                        justified.insert(s);
                    }
                }
                let planned: BTreeSet<NaiveDate> = p.prefixes.iter().map(|x| x.day).collect();
                prop_assert_eq!(planned.len(), p.prefixes.len());
                prop_assert_eq!(planned, justified);
                // Another process reads the same plan back.
                prop_assert_eq!(Plan::from_json(&p.to_json()), Ok(p.clone()));
            }
        }
    }
}
