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

/// The objects of the archive's bucket under its prefix that the report lists, sorted by key.
///
/// Held compactly, as an organization's archive can be hundreds of millions of objects: every
/// key in one buffer, and per object its place there, its size and its storage class (one of
/// the few the bucket has) — ~24 bytes besides the key, against ~140 for a `Vec<Entry>` of
/// owned strings (`inventory_memory`). Objects outside the archive's prefix, and those that are
/// not CloudTrail's logs or digests, are not kept at all.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    keys: String,
    objects: Vec<Row>,
    classes: Vec<String>,
    /// Folders of this day or later are listed live (the day before the report was made).
    pub live_from: Option<NaiveDate>,
}

/// One object: its key is `keys[start..start + len]`.
#[derive(Debug, Clone, Copy)]
struct Row {
    start: usize,
    len: u32,
    /// Index into `classes`, or [`NO_CLASS`].
    class: u8,
    size: u64,
}

const NO_CLASS: u8 = u8::MAX;

/// An inventory being read: rows appended as they come, sorted once at the end.
#[derive(Debug, Default)]
struct Building {
    inv: Inventory,
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
        let len = u32::try_from(key.len()).map_err(|_| format!("a key of {} bytes", key.len()))?;
        inv.objects.push(Row {
            start: inv.keys.len(),
            len,
            class,
            size,
        });
        inv.keys.push_str(key);
        Ok(())
    }

    /// Sorted by key, each key once (a report may list one in two data files: the first listing
    /// is kept).
    fn finish(mut self, live_from: Option<NaiveDate>) -> Inventory {
        let keys = &self.inv.keys;
        self.inv
            .objects
            .sort_by(|a, b| key_of(keys, a).cmp(key_of(keys, b)));
        self.inv
            .objects
            .dedup_by(|a, b| key_of(keys, a) == key_of(keys, b));
        self.inv.objects.shrink_to_fit();
        self.inv.keys.shrink_to_fit();
        self.inv.live_from = live_from;
        self.inv
    }
}

fn key_of<'a>(keys: &'a str, row: &Row) -> &'a str {
    &keys[row.start..row.start + row.len as usize]
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
        let keys = self.keys.as_str();
        let objects = &self.objects;
        let key = |i: usize| key_of(keys, &objects[i]);
        let mut i = objects.partition_point(|o| key_of(keys, o) < prefix);
        let mut out = Listing::default();
        while i < objects.len() {
            let Some(rest) = key(i).strip_prefix(prefix) else {
                break;
            };
            match rest.find('/') {
                Some(slash) => {
                    let folder = &key(i)[..prefix.len() + slash + 1];
                    out.folders.push(folder.to_string());
                    // Past every key in that folder: the first that sorts after "folder/\u{10FFFF}".
                    let end = format!("{}0", &folder[..folder.len() - 1]);
                    i += objects[i..].partition_point(|o| key_of(keys, o) < end.as_str());
                }
                None => {
                    let o = &objects[i];
                    out.objects.push(Entry {
                        key: key(i).to_string(),
                        size: o.size,
                        storage_class: self.classes.get(o.class as usize).cloned(),
                    });
                    i += 1;
                }
            }
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

    /// By hand (`cargo test --release --lib inventory_memory -- --ignored --nocapture`):
    /// the memory an inventory of a million CloudTrail keys holds, against the same rows as
    /// `Entry`s (the layout before), measured as resident memory in one run.
    #[test]
    #[ignore]
    fn inventory_memory() {
        let rows = 1_000_000;
        let key = |i: usize| {
            format!(
                "AWSLogs/o-a1b2c3d4e5/{:012}/CloudTrail/us-east-1/2026/{:02}/{:02}/{:012}_CloudTrail_us-east-1_20260101T{:04}Z_{:016x}.json.gz",
                111122223333u64 + (i % 500) as u64,
                1 + i % 12,
                1 + i % 28,
                111122223333u64 + (i % 500) as u64,
                i % 2400,
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
            "{rows} keys of {:.0} bytes on average: compact {:.0} bytes per object, owned entries {:.0}",
            key_bytes as f64 / rows as f64,
            compact as f64 / rows as f64,
            owned as f64 / rows as f64
        );
    }
}
