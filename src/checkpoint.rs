//! checkpoint: what a run has already scanned, kept beside `--out` so that a run that was
//! killed (SIGKILL included) goes on with `--resume` instead of starting again.
//!
//! The checkpoint is a directory `.<out>.keytrail-checkpoint/` next to `--out`:
//! - `run.json` — what the recorded results depend on: the archive, a digest of the keys and their
//!   aliases (attribution), and the per-object limits. Written once, atomically (temporary file,
//!   fsync, rename). A resume with another identity is refused: its results would not be this
//!   run's.
//! - `journal` — one line per object whose scan finished: `<crc32 hex> <json>`, where the JSON holds
//!   the object's key and size, its manifest row and its uses. A line is appended only after the
//!   object's result exists, so the journal can never describe work that did not happen. A line
//!   cut short by a kill, or damaged, fails its CRC: it and everything after it are dropped and
//!   those objects are scanned again.
//! - `usage.jsonl` — in live mode, the usage snapshot the run took, so a resumed run reports on the
//!   same `GetKeyLastUsage` answers instead of asking again.
//!
//! A finished run removes its checkpoint once the report is in place.

use crate::archive::layout::ObjectRef;
use crate::archive::Archive;
use crate::config::DecodeLimits as Limits;
use crate::config::{Config, Logs};
use crate::inventory::Key;
use crate::model::hex;
use crate::plan::list::ListError;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::scan::callers;
use crate::scan::fetch::InFlight;
use crate::scan::record::KeyIndex;
use crate::scan::record::UseCopy;
use crate::scan::ScanResult;
use crate::scan::{ManifestRow, ScanStats, Scanned};
use crate::tracking::Tracked;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const META: &str = "run.json";
const JOURNAL: &str = "journal";
/// The live run's usage snapshot, kept for a resume.
pub const USAGE: &str = "usage.jsonl";
/// Bumped whenever a journal line's meaning changes.
const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {path}: {msg}")]
    Io { path: PathBuf, msg: String },
    #[error("--resume: the checkpoint at {path} was made for {what}; start without --resume to begin again")]
    Mismatch { path: PathBuf, what: String },
}

/// The checkpoint directory for a report at `out` (in the temporary folder for a report in S3).
pub fn dir_for(out: &Path) -> PathBuf {
    let text = out.to_string_lossy();
    if let Some(s3) = text.strip_prefix("s3://") {
        let name: String = s3
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        return std::env::temp_dir().join(format!(".s3_{name}.keytrail-checkpoint"));
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parent.join(format!(".{name}.keytrail-checkpoint"))
}

/// What the recorded results of a run depend on. An object's result is a function of its bytes,
/// the keys (and aliases) it is attributed against, and the limits; objects are named by key and
/// size within one archive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    format: u32,
    logs: String,
    keys_sha256: String,
    max_inflated: u64,
    max_record: usize,
    hash: bool,
}

impl Identity {
    pub fn new<'k>(
        logs: &Logs,
        keys: impl IntoIterator<Item = &'k Key>,
        limits: Limits,
    ) -> Identity {
        let mut text = String::new();
        let mut sorted: Vec<&Key> = keys.into_iter().collect();
        sorted.sort_by(|a, b| a.arn.cmp(&b.arn));
        for k in sorted {
            let mut aliases = k.aliases.clone();
            aliases.sort();
            text.push_str(k.arn.as_str());
            for a in aliases {
                text.push(' ');
                text.push_str(&a);
            }
            text.push('\n');
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
        Identity {
            format: FORMAT,
            logs: logs.to_string(),
            keys_sha256: hex(digest.as_ref()),
            max_inflated: limits.max_inflated,
            max_record: limits.max_record,
            hash: limits.hash,
        }
    }

    /// How this (the checkpoint's) identity differs from `other` (the run's), in words.
    fn difference(&self, other: &Identity) -> String {
        if self.format != other.format {
            format!("another keytrail version (format {})", self.format)
        } else if self.logs != other.logs {
            format!("another archive ({})", self.logs)
        } else if self.keys_sha256 != other.keys_sha256 {
            "another set of keys or aliases".into()
        } else if self.hash != other.hash {
            format!(
                "a run {} integrity checking",
                if self.hash { "with" } else { "without" }
            )
        } else {
            format!(
                "other limits (--max-inflated-mib {})",
                self.max_inflated >> 20
            )
        }
    }
}

/// One journal line: an object and what scanning it gave.
#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    key: String,
    size: u64,
    row: ManifestRow,
    uses: Vec<UseCopy>,
    stats: ScanStats,
}

/// Recorded results by object key and size.
type Results = HashMap<(String, u64), Scanned>;

/// An open checkpoint: the results it already holds, and the journal new ones are appended to.
#[derive(Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    journal: Mutex<Journal>,
    done: Mutex<Results>,
    resumed: usize,
}

#[derive(Debug)]
struct Journal {
    file: File,
    written: u64,
    error: Option<String>,
}

impl Checkpoint {
    /// Opens the checkpoint at `dir` for a run with `identity`. With `resume`, the results of an
    /// earlier run with the same identity are kept; without, any earlier checkpoint is discarded.
    pub fn open(
        dir: &Path,
        identity: &Identity,
        resume: bool,
    ) -> Result<Checkpoint, CheckpointError> {
        let io = |msg: String| CheckpointError::Io {
            path: dir.to_path_buf(),
            msg,
        };
        let meta = dir.join(META);
        let journal = dir.join(JOURNAL);
        let mut done = HashMap::new();
        let mut good_len = 0;
        let earlier = resume && meta.exists();
        if earlier {
            let text = std::fs::read_to_string(&meta).map_err(|e| io(e.to_string()))?;
            let theirs: Identity = serde_json::from_str(&text)
                .map_err(|e| io(format!("{META} is damaged ({e}); start without --resume")))?;
            if &theirs != identity {
                return Err(CheckpointError::Mismatch {
                    path: dir.to_path_buf(),
                    what: theirs.difference(identity),
                });
            }
            (done, good_len) = read_journal(&journal).map_err(|e| io(e.to_string()))?;
        } else {
            discard(dir);
            std::fs::create_dir_all(dir).map_err(|e| io(e.to_string()))?;
            let text = serde_json::to_string_pretty(identity).expect("an identity serializes");
            write_atomically(&meta, text.as_bytes()).map_err(|e| io(e.to_string()))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&journal)
            .map_err(|e| io(e.to_string()))?;
        // Drop a torn tail so that new lines follow the last whole one.
        file.set_len(good_len).map_err(|e| io(e.to_string()))?;
        file.seek(std::io::SeekFrom::End(0))
            .map_err(|e| io(e.to_string()))?;
        crate::interrupt::checkpoint(dir);
        Ok(Checkpoint {
            dir: dir.to_path_buf(),
            journal: Mutex::new(Journal {
                file,
                written: 0,
                error: None,
            }),
            resumed: done.len(),
            done: Mutex::new(done),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// How many objects' results the checkpoint held when it was opened.
    pub fn resumed(&self) -> usize {
        self.resumed
    }

    /// Splits `objects` into those whose results the checkpoint holds (taken out of it) and those
    /// still to scan.
    pub fn take(&self, objects: &[ObjectRef]) -> (Vec<Scanned>, Vec<ObjectRef>) {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        let mut held = Vec::new();
        let mut todo = Vec::new();
        for obj in objects {
            match done.remove(&(obj.key.clone(), obj.size)) {
                Some(s) => held.push(s),
                None => todo.push(obj.clone()),
            }
        }
        (held, todo)
    }

    /// Appends one finished object to the journal. A failure to write is remembered (see
    /// [`Checkpoint::error`]) and does not stop the scan: it only costs a resume some work.
    pub fn record(&self, obj: &ObjectRef, scanned: &Scanned) {
        let (row, uses, stats) = scanned;
        let entry = Entry {
            key: obj.key.clone(),
            size: obj.size,
            row: row.clone(),
            uses: uses.clone(),
            stats: stats.clone(),
        };
        let json = serde_json::to_string(&entry).expect("a scan result serializes");
        let line = format!("{:08x} {json}\n", crc(json.as_bytes()));
        let mut j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        if j.error.is_some() {
            return;
        }
        match j.file.write_all(line.as_bytes()) {
            Ok(()) => {
                j.written += 1;
                let n = j.written;
                drop(j);
                crate::interrupt::kill_point("scan", n);
            }
            Err(e) => j.error = Some(e.to_string()),
        }
    }

    /// Why the journal stopped being written, if it did.
    pub fn error(&self) -> Option<String> {
        let j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        j.error.clone()
    }

    /// Makes the journal durable (before an orderly stop).
    pub fn sync(&self) {
        let j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        let _ = j.file.sync_all();
    }

    /// The run finished and its report is in place: the checkpoint is no longer needed.
    pub fn remove(self) {
        crate::interrupt::no_checkpoint();
        discard(&self.dir);
    }
}

/// The scan stage with its resume journal: the objects the journal holds are taken as they were
/// read; the rest are scanned and journaled as each finishes.
#[derive(Debug)]
pub struct Scanner {
    checkpoint: Checkpoint,
    limits: Limits,
    taken: std::sync::atomic::AtomicUsize,
}

impl Scanner {
    /// Opens the checkpoint next to `--out` for this run: its identity is the archive, the keys
    /// and the decode limits (logs are hashed when the plan has digests). A live run's answers
    /// are kept in it first, so that a resume does not ask KMS again.
    pub fn open(
        cfg: &Config,
        logs: &Logs,
        tracked: &Tracked,
        plan: &Plan,
    ) -> Result<Scanner, CheckpointError> {
        let limits = Limits {
            hash: plan.hashes_logs(),
            ..cfg.limits
        };
        let dir = dir_for(&cfg.out);
        let identity = Identity::new(logs, tracked.keys(), limits);
        let checkpoint = Checkpoint::open(&dir, &identity, cfg.resume)?;
        if tracked.source.is_live() {
            // Best effort: without it a resume asks KMS again.
            let text = crate::inventory::snapshot_text(&tracked.accounts, tracked.keys());
            let _ = write_atomically(&dir.join(USAGE), text.as_bytes());
        }
        crate::interrupt::kill_point("start", 0);
        Ok(Scanner {
            checkpoint,
            limits,
            taken: Default::default(),
        })
    }

    /// Scans `objects` of `archive`, but those the checkpoint already holds, with `cfg.threads`
    /// workers, this thread's on `rt`.
    pub fn scan<A: Archive>(
        &self,
        rt: &tokio::runtime::Runtime,
        archive: &A,
        objects: &[ObjectRef],
        index: &KeyIndex,
        cfg: &Config,
    ) -> ScanResult {
        let (held, todo) = self.checkpoint.take(objects);
        self.taken
            .fetch_add(held.len(), std::sync::atomic::Ordering::Relaxed);
        let bytes = todo.iter().map(|o| o.size).sum();
        let progress = Progress::scan(todo.len() as u64, bytes, cfg.progress);
        let in_flight = InFlight {
            objects: cfg.concurrency,
            bytes: cfg.max_in_flight,
        };
        let (fresh, _) = crate::scan::fetch::scan(
            rt,
            archive,
            &todo,
            index,
            cfg.threads,
            in_flight,
            self.limits,
            &|obj, scanned| {
                self.checkpoint.record(obj, scanned);
                progress.object(obj.size);
            },
        );
        progress.finish();
        ScanResult::of(held.into_iter().chain(fresh))
    }

    /// The callers' folders that name who made the cross-account uses `first` found
    /// ([`crate::scan::callers`]), added to the plan and read the same way. Returns the plan as
    /// read and the result of both.
    pub fn read_callers<A: Archive>(
        &self,
        rt: &tokio::runtime::Runtime,
        archive: &A,
        mut plan: Plan,
        first: ScanResult,
        index: &KeyIndex,
        cfg: &Config,
    ) -> Result<(Plan, ScanResult), ListError> {
        let wanted = callers::wanted(&first);
        let added = rt.block_on(crate::plan::list::add_callers(
            archive,
            &mut plan,
            wanted.prefixes,
        ))?;
        if added.is_empty() {
            return Ok((plan, first));
        }
        let second = self.scan(rt, archive, &added, index, cfg);
        Ok((
            plan,
            first.merge(callers::keep_wanted(second, &wanted.calls)),
        ))
    }

    /// How many objects' results came from the checkpoint of an interrupted run.
    pub fn resumed_objects(&self) -> usize {
        self.taken.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Where the checkpoint is and why it could not be written, if it could not.
    pub fn error(&self) -> Option<(String, String)> {
        let e = self.checkpoint.error()?;
        Some((self.checkpoint.path().display().to_string(), e))
    }

    /// The report is in place: the checkpoint is no longer needed.
    pub fn finish(self) {
        self.checkpoint.remove();
    }
}

/// Removes a checkpoint folder (a run without `--resume` starts afresh).
pub fn discard(dir: &Path) {
    if dir.exists() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn crc(bytes: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(bytes);
    c.sum()
}

/// The whole, intact lines of a journal, and the length they span; reading stops at the first
/// line that is cut short or fails its CRC.
fn read_journal(path: &Path) -> std::io::Result<(Results, u64)> {
    let mut done = HashMap::new();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((done, 0)),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut good = 0u64;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        let Some(entry) = (n > 0 && line.ends_with(b"\n"))
            .then(|| parse_line(&line[..n - 1]))
            .flatten()
        else {
            break;
        };
        good += n as u64;
        done.insert(
            (entry.key, entry.size),
            (entry.row, entry.uses, entry.stats),
        );
    }
    Ok((done, good))
}

fn parse_line(line: &[u8]) -> Option<Entry> {
    let (sum, json) = (line.get(..8)?, line.get(9..)?);
    let sum = u32::from_str_radix(std::str::from_utf8(sum).ok()?, 16).ok()?;
    (line.get(8) == Some(&b' ') && crc(json) == sum)
        .then(|| serde_json::from_slice(json).ok())
        .flatten()
}

/// Writes `path` so that it is either absent, the old file, or wholly `bytes` — never half.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        if let Ok(d) = File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::layout::DayPrefix;
    use crate::model::KeyArn;
    use crate::scan::ObjectStatus;
    use chrono::NaiveDate;

    fn object(n: u32) -> ObjectRef {
        ObjectRef {
            key: format!("AWSLogs/111122223333/CloudTrail/us-east-1/2025/01/02/f{n}.json.gz"),
            size: 100 + u64::from(n),
            storage_class: None,
            prefix: DayPrefix {
                account: "111122223333".into(),
                region: "us-east-1".into(),
                day: NaiveDate::from_ymd_opt(2025, 1, 2).unwrap(),
            },
        }
    }

    fn result(obj: &ObjectRef) -> Scanned {
        let arn = KeyArn::parse(
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        )
        .unwrap();
        let use_copy = UseCopy {
            key: arn,
            role: crate::scan::record::KeyRole::Source,
            event_id: format!("ev-{}", obj.size),
            shared_event_id: Some("shared".into()),
            event_time: "2025-01-02T03:04:05.678Z".parse().unwrap(),
            operation: "ReEncrypt".into(),
            principal_arn: None,
            principal_type: Some("AssumedRole".into()),
            principal_account: Some("111122223333".into()),
            invoked_by: None,
            source_ip: Some("10.0.0.1".into()),
            user_agent: Some("ua \"quoted\" \u{e9}".into()),
            encryption_context: Some("{\"a\":\"b\"}".into()),
            recipient_account_id: Some("111122223333".into()),
            log_object: obj.key.clone(),
            error_code: None,
            error_message: None,
            resolved_by: Default::default(),
            via_alias: None,
        };
        let row = ManifestRow {
            object: obj.key.clone(),
            size_bytes: obj.size,
            status: ObjectStatus::Read,
            reason: None,
            records: 7,
            kms_records: 2,
            malformed_records: 1,
            unattributable_uses: 0,
            account_id: obj.prefix.account.clone(),
            region: obj.prefix.region.clone(),
            delivery_date: obj.prefix.day,
            archived: false,
            sha256: Some("ab".repeat(32)),
        };
        let stats = ScanStats {
            objects_read: 1,
            records: 7,
            ..ScanStats::default()
        };
        (row, vec![use_copy], stats)
    }

    fn identity(logs: &str) -> Identity {
        Identity::new(&Logs::parse(logs).unwrap(), &[], Limits::default())
    }

    #[test]
    fn a_resumed_checkpoint_gives_back_exactly_what_was_recorded() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ck");
        let objects: Vec<ObjectRef> = (0..4).map(object).collect();
        let id = identity("/logs");
        let ck = Checkpoint::open(&dir, &id, false).unwrap();
        ck.record(&objects[1], &result(&objects[1]));
        ck.record(&objects[3], &result(&objects[3]));
        drop(ck);
        let ck = Checkpoint::open(&dir, &id, true).unwrap();
        assert_eq!(ck.resumed(), 2);
        let (held, todo) = ck.take(&objects);
        assert_eq!(held, vec![result(&objects[1]), result(&objects[3])]);
        assert_eq!(todo, vec![objects[0].clone(), objects[2].clone()]);
    }

    #[test]
    fn a_torn_or_damaged_line_ends_the_journal_and_is_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ck");
        let objects: Vec<ObjectRef> = (0..3).map(object).collect();
        let id = identity("/logs");
        let ck = Checkpoint::open(&dir, &id, false).unwrap();
        for o in &objects {
            ck.record(o, &result(o));
        }
        drop(ck);
        let path = dir.join(JOURNAL);
        let text = std::fs::read(&path).unwrap();
        let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
        // Cut the last line short, as a kill in the middle of a write would.
        let torn = [lines[0], lines[1], &lines[2][..lines[2].len() / 2]].concat();
        std::fs::write(&path, &torn).unwrap();
        let ck = Checkpoint::open(&dir, &id, true).unwrap();
        assert_eq!(ck.resumed(), 2);
        ck.record(&objects[2], &result(&objects[2]));
        drop(ck);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            text,
            "the torn tail is replaced"
        );
        // A flipped byte in the middle line: it and what follows are not trusted.
        let mut bad = text.clone();
        let at = lines[0].len() + 40;
        bad[at] ^= 0x01;
        std::fs::write(&path, &bad).unwrap();
        assert_eq!(Checkpoint::open(&dir, &id, true).unwrap().resumed(), 1);
    }

    #[test]
    fn another_run_cannot_resume_a_checkpoint_and_a_fresh_run_discards_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ck");
        let o = object(0);
        let ck = Checkpoint::open(&dir, &identity("/logs"), false).unwrap();
        ck.record(&o, &result(&o));
        drop(ck);
        let err = Checkpoint::open(&dir, &identity("/other"), true).unwrap_err();
        assert!(err.to_string().contains("another archive (/logs)"), "{err}");
        let limits = Limits {
            max_inflated: 64 << 20,
            ..Limits::default()
        };
        let other = Identity::new(&Logs::parse("/logs").unwrap(), &[], limits);
        let err = Checkpoint::open(&dir, &other, true).unwrap_err();
        assert!(err.to_string().contains("--max-inflated-mib 2048"), "{err}");
        assert_eq!(
            Checkpoint::open(&dir, &identity("/logs"), false)
                .unwrap()
                .resumed(),
            0
        );
        // Nothing to resume is not an error: the run starts from the beginning.
        let ck = Checkpoint::open(&tmp.path().join("none"), &identity("/logs"), true).unwrap();
        assert_eq!(ck.resumed(), 0);
    }

    /// A scan's results merge: split the objects any way, scan the parts as separate processes
    /// would, merge the parts' results in any order — the result is the whole scan's.
    mod merge {
        use super::*;
        use proptest::prelude::*;

        /// Object `n`'s result, holding `n % 3` uses in an order of its own.
        fn scanned(n: u32) -> Scanned {
            let obj = object(n);
            let (row, uses, stats) = result(&obj);
            let mut more = Vec::new();
            for k in (0..n % 3).rev() {
                let mut u = uses[0].clone();
                u.event_id = format!("ev-{n}-{k}");
                more.push(u);
            }
            (row, more, stats)
        }

        proptest! {
            #[test]
            fn scan_results_merge_in_any_order_to_the_result_of_the_union(
                parts in proptest::collection::vec(0usize..4, 1..24),
                order in any::<u64>(),
            ) {
                let all: Vec<Scanned> = (0..parts.len() as u32).map(scanned).collect();
                let whole = ScanResult::of(all.clone());
                let mut shards: Vec<ScanResult> = (0..4)
                    .map(|p| ScanResult::of(all.iter().zip(&parts).filter(|(_, q)| **q == p).map(|(s, _)| s.clone())))
                    .collect();
                let n = shards.len();
                shards.rotate_left(order as usize % n);
                if order % 2 == 1 {
                    shards.reverse();
                }
                let merged = shards.into_iter().fold(ScanResult::default(), ScanResult::merge);
                prop_assert_eq!(&merged, &whole);
                // Each object's uses stay together and in the order the object held them.
                let ids: Vec<&str> = whole.uses.iter().map(|u| u.event_id.as_str()).collect();
                let want: Vec<String> = (0..parts.len() as u32)
                    .map(|n| (n, object(n).key))
                    .collect::<std::collections::BTreeMap<_, _>>()
                    .into_iter()
                    .map(|(n, key)| (key, n))
                    .collect::<std::collections::BTreeMap<_, _>>()
                    .into_values()
                    .flat_map(|n| (0..n % 3).rev().map(move |k| format!("ev-{n}-{k}")))
                    .collect();
                prop_assert_eq!(ids, want.iter().map(String::as_str).collect::<Vec<_>>());
            }
        }
    }
}
