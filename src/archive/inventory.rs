//! archive::inventory: the archive's listing from its bucket's S3 Inventory report
//! (`--s3-inventory s3://dest/.../manifest.json`) instead of `ListObjectsV2`, for archives too
//! large to list cheaply. The report is read the way AWS documents it: `manifest.json` names the
//! source bucket, the format (`CSV` or `Parquet`), the CSV columns (`fileSchema`) and the data
//! files (gzip CSV without a header, keys URL-encoded; or Parquet with `key`, `size`,
//! `storage_class` columns), each with its MD5, which is checked. A folder listed from it is
//! what `ListObjectsV2` with a `/` delimiter gives, so the plan and the manifest rows are the same.
//!
//! An inventory is a snapshot: days from the one before its creation on are listed live, so
//! objects delivered after it are not missed.

use super::{Entry, Listing};
use chrono::NaiveDate;

/// The parts of `manifest.json` keytrail reads.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    source_bucket: String,
    file_format: String,
    #[serde(default)]
    file_schema: String,
    /// Milliseconds since the epoch, as a string.
    creation_timestamp: String,
    files: Vec<DataFile>,
}

#[derive(Debug, serde::Deserialize)]
struct DataFile {
    key: String,
    #[serde(rename = "MD5checksum")]
    md5: String,
}

/// The objects of the archive's bucket under its prefix that the report lists, by folder.
///
/// Held compactly, as an organization's archive can be hundreds of millions of objects: each
/// folder's path once, and per object only what its name adds to the folder's *stem* — the part
/// CloudTrail's naming repeats from the folder (`<account>_CloudTrail_<region>_<YYYYMMDD>T` in a
/// log folder, `<account>_CloudTrail-Digest_<region>_` in a digest folder) —, its size and its
/// storage class (one of the few the bucket has): ~24 bytes besides the ~30 of a log's name
/// that are its own, against ~140 for the whole key (`inventory_memory`). A name that does not
/// start with its folder's stem is kept whole. Objects outside the archive's prefix, and those
/// that are not CloudTrail's logs or digests, are not kept at all.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Folder paths and stems, one after the other.
    paths: String,
    /// Every folder that holds an object, sorted by path.
    folders: Vec<Folder>,
    /// What each object's name adds to its folder's stem (or the whole name).
    tails: String,
    /// Sorted by folder, then name: `objects[f.first..f.first + f.count]` are folder `f`'s.
    objects: Vec<Row>,
    classes: Vec<String>,
    /// Folders of this day or later are listed live (the day before the report was made).
    pub live_from: Option<NaiveDate>,
}

/// A folder: everything of a key up to its last `/` (or nothing, for a key without one).
#[derive(Debug, Clone, Copy)]
struct Folder {
    /// Its path is `paths[at..at + len]`, its stem the `stem` bytes after that.
    at: usize,
    len: u32,
    stem: u16,
    /// Its objects, once sorted.
    first: usize,
    count: u32,
}

/// One object: its name is its folder's stem and `tails[start..start + len]`, or that alone
/// when `whole`.
#[derive(Debug, Clone, Copy)]
struct Row {
    start: u64,
    size: u64,
    /// The folder's index: in the order first seen while building, sorted once finished.
    folder: u32,
    len: u16,
    /// Index into `classes`, or [`NO_CLASS`].
    class: u8,
    whole: bool,
}

const NO_CLASS: u8 = u8::MAX;

impl Inventory {
    fn path(&self, f: &Folder) -> &str {
        &self.paths[f.at..f.at + f.len as usize]
    }

    fn stem(&self, f: &Folder) -> &str {
        let end = f.at + f.len as usize;
        &self.paths[end..end + f.stem as usize]
    }

    fn tail(&self, r: &Row) -> &str {
        &self.tails[r.start as usize..r.start as usize + r.len as usize]
    }

    /// The name of `r`, an object of folder `f`, in its two parts.
    fn name(&self, f: &Folder, r: &Row) -> (&str, &str) {
        (if r.whole { "" } else { self.stem(f) }, self.tail(r))
    }
}

/// The CloudTrail name stem of a day folder (`.../<account>/CloudTrail/<region>/YYYY/MM/DD/`
/// or `.../CloudTrail-Digest/...`): what every name filed there starts with, by CloudTrail's
/// naming. Nothing for any other folder.
fn stem_of(folder: &str) -> String {
    let parts: Vec<&str> = folder.trim_end_matches('/').rsplit('/').take(6).collect();
    match parts[..] {
        [d, m, y, region, "CloudTrail", account] => {
            format!("{account}_CloudTrail_{region}_{y}{m}{d}T")
        }
        [_, _, _, region, "CloudTrail-Digest", account] => {
            format!("{account}_CloudTrail-Digest_{region}_")
        }
        _ => String::new(),
    }
}

/// An inventory being read: rows appended as they come, sorted once at the end.
#[derive(Debug, Default)]
struct Building {
    inv: Inventory,
    /// Each folder's index in `inv.folders` (in the order first seen).
    seen: std::collections::HashMap<Box<str>, u32>,
    /// The last row's folder, looked at before `seen`: a folder's rows mostly come together.
    last: Option<u32>,
    /// Only keys under this are kept.
    prefix: String,
    /// Only CloudTrail's logs and digests are kept (`.../CloudTrail/...`,
    /// `.../CloudTrail-Digest/...`): a central log bucket also holds Config snapshots, VPC flow
    /// logs, load balancers' logs — often more objects than the trails —, and the plan never
    /// looks into them (an account folder without `CloudTrail/` is skipped either way).
    trails_only: bool,
}

impl Building {
    fn push(&mut self, key: &str, size: u64, class: Option<&str>) -> Result<(), String> {
        let trail = || key.contains("/CloudTrail/") || key.contains("/CloudTrail-Digest/");
        if !key.starts_with(&self.prefix) || (self.trails_only && !trail()) {
            return Ok(());
        }
        let (path, name) = key.split_at(key.rfind('/').map_or(0, |i| i + 1));
        let folder = self.folder(path)?;
        let inv = &mut self.inv;
        let class = match class.filter(|c| !c.is_empty()) {
            None => NO_CLASS,
            Some(c) => match inv.classes.iter().position(|k| k == c) {
                Some(i) => i as u8,
                None if inv.classes.len() < NO_CLASS as usize => {
                    inv.classes.push(c.to_string());
                    (inv.classes.len() - 1) as u8
                }
                None => return Err(format!("more than {NO_CLASS} storage classes")),
            },
        };
        let f = inv.folders[folder as usize];
        let (tail, whole) = match name.strip_prefix(inv.stem(&f)) {
            Some(rest) if f.stem > 0 => (rest, false),
            _ => (name, true),
        };
        let len = u16::try_from(tail.len()).map_err(|_| format!("a key of {} bytes", key.len()))?;
        inv.objects.push(Row {
            start: inv.tails.len() as u64,
            size,
            folder,
            len,
            class,
            whole,
        });
        inv.tails.push_str(tail);
        Ok(())
    }

    /// The index of folder `path`, added when new.
    fn folder(&mut self, path: &str) -> Result<u32, String> {
        let inv = &mut self.inv;
        if let Some(i) = self
            .last
            .filter(|&i| inv.path(&inv.folders[i as usize]) == path)
        {
            return Ok(i);
        }
        let i = match self.seen.get(path) {
            Some(&i) => i,
            None => {
                let i = u32::try_from(inv.folders.len()).map_err(|_| "too many folders")?;
                let stem = stem_of(path);
                inv.folders.push(Folder {
                    at: inv.paths.len(),
                    len: u32::try_from(path.len())
                        .map_err(|_| format!("a folder of {} bytes", path.len()))?,
                    stem: stem.len() as u16,
                    first: 0,
                    count: 0,
                });
                inv.paths.push_str(path);
                inv.paths.push_str(&stem);
                self.seen.insert(path.into(), i);
                i
            }
        };
        self.last = Some(i);
        Ok(i)
    }

    /// Sorted by folder and name, each key once (a report may list one in two data files: the
    /// first listing is kept).
    fn finish(self, live_from: Option<NaiveDate>) -> Inventory {
        let Building { mut inv, seen, .. } = self;
        drop(seen);
        // Folders sorted by path; each row's folder renumbered to match.
        let mut order: Vec<u32> = (0..inv.folders.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            inv.path(&inv.folders[a as usize])
                .cmp(inv.path(&inv.folders[b as usize]))
        });
        let mut rank = vec![0u32; order.len()];
        for (r, &f) in order.iter().enumerate() {
            rank[f as usize] = r as u32;
        }
        inv.folders = order.iter().map(|&f| inv.folders[f as usize]).collect();
        for r in &mut inv.objects {
            r.folder = rank[r.folder as usize];
        }
        drop(rank);
        // Then the rows by folder and name, a key listed twice in the order it was read (the
        // arena grows as rows are read), so the first is the one kept.
        let mut objects = std::mem::take(&mut inv.objects);
        objects.sort_unstable_by(|a, b| {
            a.folder
                .cmp(&b.folder)
                .then_with(|| inv.compare_names(a, b))
                .then(a.start.cmp(&b.start))
        });
        objects.dedup_by(|a, b| a.folder == b.folder && inv.compare_names(a, b).is_eq());
        objects.shrink_to_fit();
        let mut at = 0;
        for (i, f) in inv.folders.iter_mut().enumerate() {
            f.first = at;
            while at < objects.len() && objects[at].folder as usize == i {
                at += 1;
            }
            f.count = (at - f.first) as u32;
        }
        inv.objects = objects;
        inv.tails.shrink_to_fit();
        inv.paths.shrink_to_fit();
        inv.live_from = live_from;
        inv
    }
}

impl Inventory {
    /// The order of two objects' names, both of one folder.
    fn compare_names(&self, a: &Row, b: &Row) -> std::cmp::Ordering {
        if !a.whole && !b.whole {
            return self.tail(a).cmp(self.tail(b));
        }
        let f = &self.folders[a.folder as usize];
        let (sa, ta) = self.name(f, a);
        let (sb, tb) = self.name(f, b);
        sa.bytes()
            .chain(ta.bytes())
            .cmp(sb.bytes().chain(tb.bytes()))
    }
}

/// Reads the report whose `manifest.json` is `manifest` (its bytes), for the archive's `bucket`,
/// keeping the objects under `prefix` (the archive's); `get` fetches a data file by its key in
/// the manifest's bucket.
pub async fn read<F, Fut>(
    manifest: &[u8],
    bucket: &str,
    prefix: &str,
    get: F,
) -> Result<Inventory, String>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>, String>>,
{
    let m: Manifest = serde_json::from_slice(manifest)
        .map_err(|e| format!("not an S3 Inventory manifest.json: {e}"))?;
    if m.source_bucket != bucket {
        return Err(format!(
            "the inventory is of bucket {}, the archive is s3://{bucket}",
            m.source_bucket
        ));
    }
    let created = m
        .creation_timestamp
        .parse::<i64>()
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .ok_or_else(|| format!("creationTimestamp {:?} is not a time", m.creation_timestamp))?;
    let format = m.file_format.to_ascii_uppercase();
    let columns = match format.as_str() {
        "CSV" => Some(Columns::of(&m.file_schema)?),
        "PARQUET" => None,
        other => {
            return Err(format!(
                "inventory format {other}: keytrail reads CSV and Parquet inventories"
            ))
        }
    };
    let mut building = Building {
        prefix: prefix.to_string(),
        trails_only: true,
        ..Default::default()
    };
    for f in &m.files {
        let bytes = get(f.key.clone())
            .await
            .map_err(|e| format!("{}: {e}", f.key))?;
        let md5 = crate::model::hex(&<md5::Md5 as md5::Digest>::digest(&bytes));
        if !md5.eq_ignore_ascii_case(&f.md5) {
            return Err(format!(
                "{}: MD5 {md5}, the manifest says {} (a damaged or replaced file)",
                f.key, f.md5
            ));
        }
        match &columns {
            Some(c) => c.rows(&bytes, &mut building),
            None => parquet_rows(&bytes, &mut building),
        }
        .map_err(|e| format!("{}: {e}", f.key))?;
    }
    Ok(building.finish(created.date_naive().pred_opt()))
}

/// Where the fields keytrail needs are in a CSV row (`fileSchema`: "Bucket, Key, Size, ...").
#[derive(Debug)]
struct Columns {
    key: usize,
    size: usize,
    storage_class: Option<usize>,
    is_latest: Option<usize>,
    is_delete_marker: Option<usize>,
}

impl Columns {
    fn of(schema: &str) -> Result<Columns, String> {
        let names: Vec<&str> = schema.split(',').map(str::trim).collect();
        let at = |n: &str| names.iter().position(|c| c.eq_ignore_ascii_case(n));
        Ok(Columns {
            key: at("Key").ok_or("the inventory's fileSchema has no Key")?,
            size: at("Size").ok_or(
                "the inventory's fileSchema has no Size: add the Size field to the inventory \
                 configuration",
            )?,
            storage_class: at("StorageClass"),
            is_latest: at("IsLatest"),
            is_delete_marker: at("IsDeleteMarker"),
        })
    }

    /// The current objects of one gzip CSV data file (no header; keys URL-encoded), inflated as
    /// they are read.
    fn rows(&self, gz: &[u8], into: &mut Building) -> Result<(), String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(flate2::read::MultiGzDecoder::new(gz));
        let mut row = csv::StringRecord::new();
        for line in 1.. {
            let more = reader.read_record(&mut row).map_err(|e| match e.kind() {
                csv::ErrorKind::Io(io) => format!("not gzip: {io}"),
                _ => format!("line {line}: {e}"),
            })?;
            if !more {
                break;
            }
            let field = |i: usize| row.get(i).unwrap_or("");
            let yes = |i: Option<usize>| i.is_some_and(|i| field(i).eq_ignore_ascii_case("true"));
            if yes(self.is_delete_marker) || (self.is_latest.is_some() && !yes(self.is_latest)) {
                continue;
            }
            let key = url_decode(field(self.key))
                .map_err(|e| format!("line {line}: key {:?}: {e}", field(self.key)))?;
            let size = field(self.size)
                .parse::<u64>()
                .map_err(|_| format!("line {line}: size {:?} is not a number", field(self.size)))?;
            into.push(&key, size, self.storage_class.map(field))
                .map_err(|e| format!("line {line}: {e}"))?;
        }
        Ok(())
    }
}

/// A CSV inventory's key: URL-encoded, `+` for a space.
fn url_decode(s: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|e| format!("not UTF-8 once decoded: {e}"))
}

/// The current objects of one Parquet data file (columns `key`, `size`, `storage_class`,
/// `is_latest`, `is_delete_marker`; keys as they are).
fn parquet_rows(bytes: &[u8], into: &mut Building) -> Result<(), String> {
    use polars::prelude::*;
    let df = ParquetReader::new(std::io::Cursor::new(bytes))
        .finish()
        .map_err(|e| format!("not a Parquet inventory file: {e}"))?;
    let col = |n: &str| df.column(n).ok();
    let keys = col("key")
        .ok_or("no key column")?
        .str()
        .map_err(|e| format!("key: {e}"))?
        .clone();
    let sizes = col("size")
        .ok_or("no size column: add the Size field to the inventory configuration")?
        .cast(&DataType::UInt64)
        .map_err(|e| format!("size: {e}"))?;
    let sizes = sizes.u64().map_err(|e| format!("size: {e}"))?.clone();
    let class = col("storage_class").and_then(|c| c.str().ok().cloned());
    let flag = |n: &str| col(n).and_then(|c| c.bool().ok().cloned());
    let (latest, deleted) = (flag("is_latest"), flag("is_delete_marker"));
    for i in 0..df.height() {
        if deleted.as_ref().and_then(|d| d.get(i)) == Some(true)
            || latest.as_ref().and_then(|l| l.get(i)) == Some(false)
        {
            continue;
        }
        let key = keys.get(i).ok_or_else(|| format!("row {i}: no key"))?;
        into.push(
            key,
            sizes.get(i).unwrap_or(0),
            class.as_ref().and_then(|c| c.get(i)),
        )
        .map_err(|e| format!("row {i}: {e}"))?;
    }
    Ok(())
}

impl Inventory {
    /// Whether `prefix` is a day folder (`.../YYYY/MM/DD/`) the report may not hold whole.
    pub fn too_recent(&self, prefix: &str) -> bool {
        let Some(from) = self.live_from else {
            return false;
        };
        let parts: Vec<&str> = prefix.trim_end_matches('/').rsplit('/').take(3).collect();
        match parts.as_slice() {
            [d, m, y] => NaiveDate::parse_from_str(&format!("{y}-{m}-{d}"), "%Y-%m-%d")
                .is_ok_and(|day| day >= from),
            _ => false,
        }
    }

    /// The folder `prefix` (empty, or ending with `/`) as `ListObjectsV2` with a `/` delimiter
    /// lists it: its sub-folders once each, its objects; both sorted.
    pub fn list(&self, prefix: &str) -> Listing {
        let folders = &self.folders;
        let mut i = folders.partition_point(|f| self.path(f) < prefix);
        let mut out = Listing::default();
        while i < folders.len() {
            let f = &folders[i];
            let Some(rest) = self.path(f).strip_prefix(prefix) else {
                break;
            };
            if rest.is_empty() {
                let rows = &self.objects[f.first..f.first + f.count as usize];
                out.objects.extend(rows.iter().map(|r| {
                    let (stem, tail) = self.name(f, r);
                    Entry {
                        key: [prefix, stem, tail].concat(),
                        size: r.size,
                        storage_class: self.classes.get(r.class as usize).cloned(),
                    }
                }));
                i += 1;
                continue;
            }
            // A deeper folder: its first level below `prefix` is a sub-folder, listed once.
            let slash = rest.find('/').expect("a folder path ends with /");
            let sub = &self.path(f)[..prefix.len() + slash + 1];
            out.folders.push(sub.to_string());
            // Past every folder within it: the first that sorts after "sub/\u{10FFFF}".
            let end = format!("{}0", &sub[..sub.len() - 1]);
            i += folders[i..].partition_point(|f| self.path(f) < end.as_str());
        }
        out
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(keys: &[&str]) -> Inventory {
        let mut b = Building::default();
        for k in keys {
            b.push(k, k.len() as u64, None).unwrap();
        }
        b.finish(NaiveDate::from_ymd_opt(2026, 3, 1))
    }

    #[test]
    fn a_folder_lists_like_list_objects_v2_with_a_delimiter() {
        // '-' and '.' sort before '/', '0' right after it: the skip past a folder must not
        // swallow "a/b-c/..." nor stop early at "a/b/".
        let i = inv(&[
            "a/b/1.gz",
            "a/b/2.gz",
            "a/b/c/3.gz",
            "a/b-c/4.gz",
            "a/b.gz",
            "a/b0/5.gz",
            "a/top.gz",
            "z.gz",
        ]);
        let l = i.list("a/");
        assert_eq!(l.folders, ["a/b-c/", "a/b/", "a/b0/"]);
        let keys: Vec<&str> = l.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["a/b.gz", "a/top.gz"]);
        let l = i.list("a/b/");
        assert_eq!(l.folders, ["a/b/c/"]);
        assert_eq!(l.objects.len(), 2);
        let l = i.list("");
        assert_eq!(l.folders, ["a/"]);
        assert_eq!(l.objects[0].key, "z.gz");
        assert!(i.list("nothing/").folders.is_empty());
    }

    /// `ListObjectsV2` with a `/` delimiter, written plainly over whole keys: the reference the
    /// compact layout is checked against.
    fn reference(keys: &std::collections::BTreeMap<String, u64>, prefix: &str) -> Listing {
        let mut folders = std::collections::BTreeSet::new();
        let mut out = Listing::default();
        for (k, &size) in keys.range(prefix.to_string()..) {
            let Some(rest) = k.strip_prefix(prefix) else {
                break;
            };
            match rest.find('/') {
                Some(slash) => {
                    folders.insert(k[..prefix.len() + slash + 1].to_string());
                }
                None => out.objects.push(Entry {
                    key: k.clone(),
                    size,
                    storage_class: None,
                }),
            }
        }
        out.folders = folders.into_iter().collect();
        out
    }

    #[test]
    fn names_held_after_their_folders_stem_list_as_whole_keys_do() {
        // Log and digest folders whose names mostly start with the stem CloudTrail's naming
        // gives them, and some that do not: a file of the day before filed late, AWS Config's
        // write check, a name that is the stem and nothing more, a name sorting between the
        // stemmed ones, sub-folders inside a day folder, keys listed twice.
        let mut keys = std::collections::BTreeMap::new();
        let mut b = Building::default();
        let mut n = 0u64;
        for account in ["111122223333", "444455556666"] {
            for (region, day) in [("us-east-1", "2026/02/14"), ("eu-west-1", "2026/02/15")] {
                let compact = day.replace('/', "");
                let logs = format!("AWSLogs/o-1/{account}/CloudTrail/{region}/{day}/");
                let digests = format!("AWSLogs/o-1/{account}/CloudTrail-Digest/{region}/{day}/");
                let stem = format!("{account}_CloudTrail_{region}_{compact}T");
                let mut names: Vec<String> = (0..12)
                    .map(|i| {
                        format!(
                            "{logs}{stem}{:02}{:02}Z_{:016x}.json.gz",
                            i * 2,
                            i % 6 * 10,
                            i * 7919
                        )
                    })
                    .collect();
                names.extend([
                    format!("{logs}{account}_CloudTrail_{region}_20260213T2355Z_late.json.gz"),
                    format!("{logs}ConfigWritabilityCheckFile"),
                    format!("{logs}{stem}"),
                    format!("{logs}{stem}0"),
                    format!("{logs}{account}_CloudTrail_{region}_{compact}S.json.gz"),
                    format!("{logs}sub/{stem}0000Z_a.json.gz"),
                    format!("{logs}sub-x/b.json.gz"),
                    format!("{digests}{account}_CloudTrail-Digest_{region}_org_us-east-1_{compact}T010203Z.json.gz"),
                    format!("{digests}other.json.gz"),
                ]);
                for name in names.iter().chain(names.iter().step_by(5)) {
                    n += 1;
                    b.push(name, n, None).unwrap();
                    keys.entry(name.clone()).or_insert(n);
                }
            }
        }
        let inv = b.finish(None);
        assert_eq!(inv.len(), keys.len());
        // Every folder any key is in, and each of its ancestors.
        let mut prefixes: std::collections::BTreeSet<String> = [String::new()].into();
        for k in keys.keys() {
            for (i, _) in k.match_indices('/') {
                prefixes.insert(k[..=i].to_string());
            }
        }
        prefixes.insert("AWSLogs/o-1/1".to_string());
        for p in &prefixes {
            let (got, want) = (inv.list(p), reference(&keys, p));
            assert_eq!(got.folders, want.folders, "{p}");
            assert_eq!(got.objects, want.objects, "{p}");
        }
    }

    #[test]
    fn days_from_the_one_before_the_report_are_too_recent_to_trust_it() {
        let i = inv(&[]);
        let day = |d: &str| format!("AWSLogs/111122223333/CloudTrail/us-east-1/{d}/");
        assert!(!i.too_recent(&day("2026/02/28")));
        assert!(i.too_recent(&day("2026/03/01")));
        assert!(i.too_recent(&day("2027/01/01")));
        assert!(!i.too_recent("AWSLogs/111122223333/CloudTrail/us-east-1/"));
    }

    #[test]
    fn csv_rows_are_decoded_and_old_versions_and_delete_markers_dropped() {
        let csv =
            "\"b\",\"AWSLogs/1/a+b%2Bc.json.gz\",\"v1\",\"true\",\"false\",\"10\",\"GLACIER\"\n\
                   \"b\",\"old.json.gz\",\"v0\",\"false\",\"false\",\"5\",\"STANDARD\"\n\
                   \"b\",\"gone.json.gz\",\"v2\",\"true\",\"true\",\"\",\"\"\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, csv.as_bytes()).unwrap();
        let cols =
            Columns::of("Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, StorageClass")
                .unwrap();
        let mut b = Building::default();
        cols.rows(&gz.finish().unwrap(), &mut b).unwrap();
        let rows = b.finish(None).list("AWSLogs/1/").objects;
        assert_eq!(
            rows,
            [Entry {
                key: "AWSLogs/1/a b+c.json.gz".into(),
                size: 10,
                storage_class: Some("GLACIER".into())
            }]
        );
        assert!(Columns::of("Bucket, Key, ETag").is_err(), "no Size");
    }

    #[test]
    fn only_the_trails_under_the_archives_prefix_are_kept_and_each_key_once() {
        let mut b = Building {
            prefix: "trails/AWSLogs/".into(),
            trails_only: true,
            ..Default::default()
        };
        // Hand-written: two data files listing one key twice, a key outside the prefix, a
        // Config snapshot beside the trail, keys out of order, two storage classes and none.
        for (k, size, class) in [
            ("trails/AWSLogs/2/CloudTrail/b.gz", 2, Some("GLACIER")),
            ("other/AWSLogs/1/CloudTrail/a.gz", 9, None),
            (
                "trails/AWSLogs/1/CloudTrail-Digest/a.gz",
                1,
                Some("STANDARD"),
            ),
            ("trails/AWSLogs/1/Config/a.gz", 1, Some("STANDARD")),
            ("trails/AWSLogs/2/CloudTrail/b.gz", 2, Some("GLACIER")),
            ("trails/AWSLogs/2/CloudTrail/c.gz", 3, Some("")),
        ] {
            b.push(k, size, class).unwrap();
        }
        let inv = b.finish(None);
        assert_eq!(inv.len(), 3);
        assert!(inv.list("other/").folders.is_empty());
        assert_eq!(
            inv.list("trails/AWSLogs/").folders,
            ["trails/AWSLogs/1/", "trails/AWSLogs/2/"]
        );
        assert_eq!(
            inv.list("trails/AWSLogs/1/").folders,
            ["trails/AWSLogs/1/CloudTrail-Digest/"]
        );
        let got: Vec<(String, u64, Option<String>)> = inv
            .list("trails/AWSLogs/2/CloudTrail/")
            .objects
            .into_iter()
            .map(|e| (e.key, e.size, e.storage_class))
            .collect();
        let want =
            |k: &str, size, class: Option<&str>| (k.to_string(), size, class.map(str::to_string));
        assert_eq!(
            got,
            [
                want("trails/AWSLogs/2/CloudTrail/b.gz", 2, Some("GLACIER")),
                want("trails/AWSLogs/2/CloudTrail/c.gz", 3, None)
            ]
        );
        let digest = &inv.list("trails/AWSLogs/1/CloudTrail-Digest/").objects[0];
        assert_eq!(digest.storage_class.as_deref(), Some("STANDARD"));
    }

    /// Resident memory of this process, in bytes (Linux).
    fn resident() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: usize = statm.split(' ').nth(1).unwrap().parse().unwrap();
        pages * 4096
    }

    /// The most resident memory this process has held so far, in bytes (Linux).
    fn peak() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    /// By hand (`cargo test --release --lib inventory_memory -- --ignored --nocapture`):
    /// the memory an inventory of a million CloudTrail keys holds, against the same rows as
    /// `Entry`s, measured as resident memory in one run; and the most held while reading it
    /// (arenas grow by doubling).
    #[test]
    #[ignore]
    fn inventory_memory() {
        let rows = 1_000_000;
        // As CloudTrail names them: 50 accounts, 200 days, 100 files a day in each (one every
        // five minutes for eight hours), each name repeating its folder's account, region, day.
        let key = |i: usize| {
            let account = 111122223333u64 + (i % 50) as u64;
            let slot = i / 50 % 100;
            let day =
                NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new((i / 5000) as u64);
            format!(
                "AWSLogs/o-a1b2c3d4e5/{account:012}/CloudTrail/us-east-1/{}/{account:012}_CloudTrail_us-east-1_{}T{:02}{:02}Z_{:016x}.json.gz",
                day.format("%Y/%m/%d"),
                day.format("%Y%m%d"),
                slot * 5 / 60,
                slot * 5 % 60,
                i as u64 * 0x9e37_79b9
            )
        };
        let key_bytes: usize = (0..rows).map(|i| key(i).len()).sum();
        let before = resident();
        let mut b = Building::default();
        for i in 0..rows {
            b.push(&key(i), 4096, Some("STANDARD")).unwrap();
        }
        let inv = b.finish(None);
        let compact = resident() - before;
        let reading = peak() - before;
        assert_eq!(inv.len(), rows);
        drop(inv);
        let before = resident();
        let mut entries: Vec<Entry> = (0..rows)
            .map(|i| Entry {
                key: key(i),
                size: 4096,
                storage_class: Some("STANDARD".to_string()),
            })
            .collect();
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        let owned = resident() - before;
        assert_eq!(entries.len(), rows);
        println!(
            "{rows} keys of {:.0} bytes on average: compact {:.0} bytes per object ({:.0} at most \
             while reading), owned entries {:.0}",
            key_bytes as f64 / rows as f64,
            compact as f64 / rows as f64,
            reading as f64 / rows as f64,
            owned as f64 / rows as f64
        );
    }
}
