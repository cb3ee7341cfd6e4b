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
use std::io::Read;

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

/// Every object of the archive's bucket the report lists, sorted by key.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    objects: Vec<Entry>,
    /// Folders of this day or later are listed live (the day before the report was made).
    pub live_from: Option<NaiveDate>,
}

/// Reads the report whose `manifest.json` is `manifest` (its bytes), for the archive's `bucket`;
/// `get` fetches a data file by its key in the manifest's bucket.
pub async fn read<F, Fut>(manifest: &[u8], bucket: &str, get: F) -> Result<Inventory, String>
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
    let mut objects = Vec::new();
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
        let rows = match &columns {
            Some(c) => c.rows(&bytes),
            None => parquet_rows(&bytes),
        };
        objects.extend(rows.map_err(|e| format!("{}: {e}", f.key))?);
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    objects.dedup_by(|a, b| a.key == b.key);
    Ok(Inventory {
        objects,
        live_from: created.date_naive().pred_opt(),
    })
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

    /// The current objects of one gzip CSV data file (no header; keys URL-encoded).
    fn rows(&self, gz: &[u8]) -> Result<Vec<Entry>, String> {
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(gz)
            .read_to_end(&mut text)
            .map_err(|e| format!("not gzip: {e}"))?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_slice());
        let mut out = Vec::new();
        for (line, row) in reader.records().enumerate() {
            let row = row.map_err(|e| format!("line {}: {e}", line + 1))?;
            let field = |i: usize| row.get(i).unwrap_or("");
            let yes = |i: Option<usize>| i.is_some_and(|i| field(i).eq_ignore_ascii_case("true"));
            if yes(self.is_delete_marker) || (self.is_latest.is_some() && !yes(self.is_latest)) {
                continue;
            }
            let key = url_decode(field(self.key))
                .map_err(|e| format!("line {}: key {:?}: {e}", line + 1, field(self.key)))?;
            let size = field(self.size).parse::<u64>().map_err(|_| {
                format!(
                    "line {}: size {:?} is not a number",
                    line + 1,
                    field(self.size)
                )
            })?;
            out.push(Entry {
                key,
                size,
                storage_class: self
                    .storage_class
                    .map(field)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string),
            });
        }
        Ok(out)
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
fn parquet_rows(bytes: &[u8]) -> Result<Vec<Entry>, String> {
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
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        if deleted.as_ref().and_then(|d| d.get(i)) == Some(true)
            || latest.as_ref().and_then(|l| l.get(i)) == Some(false)
        {
            continue;
        }
        let key = keys.get(i).ok_or_else(|| format!("row {i}: no key"))?;
        out.push(Entry {
            key: key.to_string(),
            size: sizes.get(i).unwrap_or(0),
            storage_class: class.as_ref().and_then(|c| c.get(i)).map(str::to_string),
        });
    }
    Ok(out)
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
        let objects = &self.objects;
        let mut i = objects.partition_point(|o| o.key.as_str() < prefix);
        let mut out = Listing::default();
        while let Some(o) = objects.get(i) {
            let Some(rest) = o.key.strip_prefix(prefix) else {
                break;
            };
            match rest.find('/') {
                Some(slash) => {
                    let folder = &o.key[..prefix.len() + slash + 1];
                    out.folders.push(folder.to_string());
                    // Past every key in that folder: the first that sorts after "folder/\u{10FFFF}".
                    let end = format!("{}0", &folder[..folder.len() - 1]);
                    i += objects[i..].partition_point(|o| o.key < end);
                }
                None => {
                    out.objects.push(o.clone());
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
        let mut objects: Vec<Entry> = keys
            .iter()
            .map(|k| Entry {
                key: k.to_string(),
                size: k.len() as u64,
                storage_class: None,
            })
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Inventory {
            objects,
            live_from: NaiveDate::from_ymd_opt(2026, 3, 1),
        }
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
        let rows = cols.rows(&gz.finish().unwrap()).unwrap();
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
}
