//! decode: bytes of one log object in, the uses it holds out. The same decoder serves local
//! files and S3 bodies; it knows nothing of where the bytes came from. A record that cannot be
//! read is skipped and counted; an object that cannot be read at all is an error with its reason.

use super::record::{
    attribute, use_copies, Attribution, KeyIndex, Record, UseCopy, KMS_EVENT_SOURCE,
};
use flate2::read::MultiGzDecoder;
use memchr::memmem;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::io::Read;

/// What one readable log object held.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Decoded {
    pub records: u64,
    /// Records whose `eventSource` is KMS (uses or not).
    pub kms_records: u64,
    /// Records skipped because a field had the wrong shape.
    pub malformed_records: u64,
    /// Successful tracked calls that name no key at all.
    pub unattributable: u64,
    pub uses: Vec<UseCopy>,
}

#[derive(Deserialize)]
struct Document<'a> {
    #[serde(rename = "Records", borrow)]
    records: Option<Vec<&'a RawValue>>,
}

/// Decodes a gzip'd CloudTrail log file (`{"Records":[...]}`).
pub fn decode(bytes: &[u8], index: &KeyIndex, log_object: &str) -> Result<Decoded, String> {
    if bytes.is_empty() {
        return Err("empty object (0 bytes)".into());
    }
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(format!("not gzip (starts with {})", hex_prefix(bytes)));
    }
    let json = inflate(bytes)?;
    decode_json(&json, index, log_object)
}

/// Objects whose trailer promises more than this are inflated by the streaming path.
const FAST_INFLATE_MAX: usize = 1 << 30;

thread_local! {
    static LIBDEFLATE: std::cell::RefCell<libdeflater::Decompressor> =
        std::cell::RefCell::new(libdeflater::Decompressor::new());
}

/// Inflates a gzip object. Fast path: a single-member gzip (what CloudTrail writes) whose trailer
/// (ISIZE) gives a plausible size is inflated by libdeflate into a buffer of exactly that size —
/// about twice as fast as zlib-rs here (`keytrail bench`). Anything else — several members, a
/// trailer that lies, a truncated or corrupt stream — goes through flate2's streaming decoder,
/// which is exact and names what is wrong.
pub fn inflate(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let n = bytes.len();
    if n >= 18 {
        let isize =
            u32::from_le_bytes([bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]]) as usize;
        // Deflate cannot expand more than 1032:1.
        if isize > 0 && isize <= FAST_INFLATE_MAX && isize <= n.saturating_mul(1032) {
            let mut out = vec![0u8; isize];
            let done = LIBDEFLATE.with(|d| d.borrow_mut().gzip_decompress(bytes, &mut out));
            if done == Ok(isize) {
                return Ok(out);
            }
        }
    }
    let mut json = Vec::with_capacity(n.saturating_mul(8));
    MultiGzDecoder::new(bytes)
        .read_to_end(&mut json)
        .map_err(|e| format!("gzip: {e}"))?;
    Ok(json)
}

/// Decodes an inflated CloudTrail document.
pub fn decode_json(json: &[u8], index: &KeyIndex, log_object: &str) -> Result<Decoded, String> {
    let doc: Document = serde_json::from_slice(json).map_err(|e| format!("invalid JSON: {e}"))?;
    let records = doc
        .records
        .ok_or("no Records array: not a CloudTrail log file")?;
    let finder = memmem::Finder::new(KMS_EVENT_SOURCE);
    let mut out = Decoded {
        records: records.len() as u64,
        ..Decoded::default()
    };
    let mut keys = Vec::new();
    for raw in records {
        // Most records are not KMS calls: skip them without parsing.
        if finder.find(raw.get().as_bytes()).is_none() {
            continue;
        }
        let Ok(record) = serde_json::from_str::<Record>(raw.get()) else {
            out.malformed_records += 1;
            continue;
        };
        if record.event_source.as_deref() != Some(KMS_EVENT_SOURCE) {
            continue;
        }
        out.kms_records += 1;
        match attribute(&record, index, &mut keys) {
            Attribution::NotAUse => {}
            Attribution::Unattributable => out.unattributable += 1,
            Attribution::Uses => match use_copies(&record, &keys, log_object) {
                Ok(copies) => out.uses.extend(copies),
                Err(_) => out.malformed_records += 1,
            },
        }
    }
    Ok(out)
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::KeyArn;
    use flate2::write::GzEncoder;
    use std::io::Write;

    const K1: &str = "arn:aws:kms:us-east-1:111122223333:key/k1";

    fn index() -> KeyIndex {
        let k = KeyArn::parse(K1).unwrap();
        KeyIndex::new([(&k, &[][..])])
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn doc() -> String {
        let use_rec = format!(
            r#"{{"eventTime":"2026-03-01T10:00:00Z","eventSource":"kms.amazonaws.com","eventName":"Decrypt","eventID":"e1","recipientAccountId":"111122223333","resources":[{{"ARN":"{K1}"}}]}}"#
        );
        let denied = use_rec.replace("\"e1\"", "\"e2\"").replace(
            "\"eventName\"",
            "\"errorCode\":\"AccessDenied\",\"eventName\"",
        );
        let s3 = r#"{"eventTime":"2026-03-01T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"e3"}"#;
        let bad_type = r#"{"eventTime":17,"eventSource":"kms.amazonaws.com","eventName":"Decrypt","eventID":"e4"}"#;
        format!(r#"{{"Records":[{use_rec},{denied},{s3},{bad_type}]}}"#)
    }

    #[test]
    fn counts_records_kms_records_and_uses() {
        let d = decode(&gz(doc().as_bytes()), &index(), "o").unwrap();
        assert_eq!(
            (d.records, d.kms_records, d.malformed_records, d.uses.len()),
            (4, 2, 1, 1)
        );
        assert_eq!(d.uses[0].event_id, "e1");
        // Concatenated gzip members are one stream (gzip allows it).
        let mut two = gz(br#"{"Records":"#);
        two.extend(gz(br#"[]}"#));
        assert_eq!(decode(&two, &index(), "o").unwrap().records, 0);
    }

    #[test]
    fn the_fast_and_the_streaming_inflate_agree() {
        let doc = doc();
        let one = gz(doc.as_bytes());
        assert_eq!(inflate(&one).unwrap(), doc.as_bytes());
        // Two members: libdeflate stops after the first, so the streaming path must answer.
        let (a, b) = doc.split_at(doc.len() / 2);
        let mut two = gz(a.as_bytes());
        two.extend(gz(b.as_bytes()));
        assert_eq!(inflate(&two).unwrap(), doc.as_bytes());
        // A trailer that lies about the size: the streaming path checks and reports it.
        let mut lying = one.clone();
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&7u32.to_le_bytes());
        assert!(
            inflate(&lying).unwrap_err().starts_with("gzip:"),
            "a wrong ISIZE is corruption"
        );
    }

    #[test]
    fn unreadable_objects_name_their_reason() {
        let full = gz(doc().as_bytes());
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("zero bytes", vec![], "empty object"),
            (
                "not gzip",
                doc().into_bytes(),
                "not gzip (starts with 7b 22 52 65)",
            ),
            ("truncated gzip", full[..full.len() / 2].to_vec(), "gzip:"),
            ("invalid JSON", gz(b"{\"Records\":[{]}"), "invalid JSON"),
            (
                "JSON but not CloudTrail",
                gz(b"{\"configurationItems\":[]}"),
                "no Records array",
            ),
        ];
        for (name, bytes, want) in cases {
            let err = decode(&bytes, &index(), "o").unwrap_err();
            assert!(
                err.contains(want),
                "case {name}: `{err}` should contain `{want}`"
            );
        }
    }
}
