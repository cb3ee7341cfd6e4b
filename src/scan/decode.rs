//! decode: bytes of one log object in, the uses it holds out. The same decoder serves local
//! files and S3 bodies; it knows nothing of where the bytes came from. A record that cannot be
//! read is skipped and counted; an object that cannot be read at all is an error with its reason.

use super::record::{
    alias_move, attribute, use_copies, Attributed, Attribution, KeyIndex, Record, UseCopy,
    KMS_EVENT_SOURCE,
};
use super::split::{self, Span, Splitter};
use crate::config::DecodeLimits;
use flate2::read::MultiGzDecoder;
use memchr::memmem;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::Digest as _;
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
    decode_with(bytes, index, log_object, DecodeLimits::default())
}

pub fn decode_with(
    bytes: &[u8],
    index: &KeyIndex,
    log_object: &str,
    limits: DecodeLimits,
) -> Result<Decoded, String> {
    decode_object(bytes, index, log_object, limits).0
}

/// SHA-256 of an object's inflated bytes (what a CloudTrail digest's `hashValue` is of).
pub type Sha256 = [u8; 32];

/// Decodes an object and, with `limits.hash`, hashes its inflated bytes in the same pass. The
/// hash is there whenever the object inflates whole within the cap — also when its content is not
/// a readable log, since the digest check must still compare it.
pub fn decode_object(
    bytes: &[u8],
    index: &KeyIndex,
    log_object: &str,
    limits: DecodeLimits,
) -> (Result<Decoded, String>, Option<Sha256>) {
    if bytes.is_empty() {
        return (Err("empty object (0 bytes)".into()), None);
    }
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return (
            Err(format!("not gzip (starts with {})", hex_prefix(bytes))),
            None,
        );
    }
    let whole = with_inflated(bytes, limits, |json| {
        let hash = limits.hash.then(|| sha2::Sha256::digest(json).into());
        (decode_json_with(json, index, log_object, limits), hash)
    });
    whole.unwrap_or_else(|| stream(bytes, index, log_object, limits))
}

/// Objects whose trailer promises more than this are inflated by the streaming path, so that no
/// worker ever holds more than this much JSON at once.
const WHOLE_MAX: usize = 64 << 20;

/// The streaming path inflates this much at a time.
const CHUNK: usize = 1 << 20;

thread_local! {
    static LIBDEFLATE: std::cell::RefCell<libdeflater::Decompressor> =
        std::cell::RefCell::new(libdeflater::Decompressor::new());
    /// The whole path's output buffer, reused from object to object: no page faults and no
    /// zeroing per object once it has grown to the usual size.
    static INFLATED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A reused buffer larger than this is given back after use (an unusually large object).
const KEEP_MAX: usize = 16 << 20;

/// Inflates a single-member gzip (what CloudTrail writes) whose trailer (ISIZE) gives a plausible
/// size up to [`WHOLE_MAX`], with libdeflate, into a buffer of exactly that size — about twice as
/// fast as zlib-rs here (`keytrail bench`) — and hands the JSON to `f`. `None` for anything else
/// — several members, a trailer that lies, a large object, a truncated or corrupt stream: the
/// streaming path reads those, with bounded memory, and names what is wrong.
pub fn with_inflated<R>(
    bytes: &[u8],
    limits: DecodeLimits,
    f: impl FnOnce(&[u8]) -> R,
) -> Option<R> {
    let n = bytes.len();
    if n < 18 {
        return None;
    }
    let isize =
        u32::from_le_bytes([bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]]) as usize;
    // Deflate cannot expand more than 1032:1.
    let plausible = isize > 0
        && isize <= WHOLE_MAX
        && isize as u64 <= limits.max_inflated
        && isize <= n.saturating_mul(1032);
    if !plausible {
        return None;
    }
    INFLATED.with(|cell| {
        let mut buf = cell.borrow_mut();
        if buf.len() < isize {
            buf.resize(isize, 0);
        }
        let out = &mut buf[..isize];
        let done = LIBDEFLATE.with(|d| d.borrow_mut().gzip_decompress(bytes, out));
        let result = (done == Ok(isize)).then(|| f(out));
        if buf.len() > KEEP_MAX {
            *buf = Vec::new();
        }
        result
    })
}

/// Inflates with flate2 a chunk at a time, appending each chunk to a buffer and handing it to
/// `each` (which drains what it no longer needs); `last` marks the end of the stream. The cap on
/// inflated bytes is enforced as it goes. Returns the inflated size.
fn inflate_chunks(
    bytes: &[u8],
    limits: DecodeLimits,
    mut hasher: Option<&mut sha2::Sha256>,
    mut each: impl FnMut(&mut Vec<u8>, bool) -> Result<(), String>,
) -> Result<u64, String> {
    let mut gz = MultiGzDecoder::new(bytes);
    let mut buf: Vec<u8> = Vec::with_capacity(2 * CHUNK);
    let mut total = 0u64;
    loop {
        let old = buf.len();
        buf.resize(old + CHUNK, 0);
        let mut got = 0;
        while got < CHUNK {
            match gz.read(&mut buf[old + got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("gzip: {e}")),
            }
        }
        buf.truncate(old + got);
        if let Some(h) = hasher.as_deref_mut() {
            h.update(&buf[old..]);
        }
        total += got as u64;
        if total > limits.max_inflated {
            return Err(format!(
                "inflates to more than {} MiB, the cap on one object (--max-inflated-mib)",
                limits.max_inflated >> 20
            ));
        }
        let last = got == 0;
        each(&mut buf, last)?;
        if last {
            return Ok(total);
        }
    }
}

/// The inflated size of an object, by the product's own inflate (the benchmark's floor).
pub fn inflated_len(bytes: &[u8]) -> Result<u64, String> {
    let limits = DecodeLimits::default();
    if let Some(n) = with_inflated(bytes, limits, |json| json.len() as u64) {
        return Ok(n);
    }
    inflate_chunks(bytes, limits, None, |buf, _| {
        buf.clear();
        Ok(())
    })
}

/// Decodes an object too large (or too odd) to inflate whole: a chunk at a time, keeping only the
/// record being read. Its layout must be CloudTrail's; there is no exact parse to fall back to
/// without holding the document, so a document in any other shape is unreadable, with what was
/// found where.
pub fn decode_stream(
    bytes: &[u8],
    index: &KeyIndex,
    log_object: &str,
    limits: DecodeLimits,
) -> Result<Decoded, String> {
    stream(bytes, index, log_object, limits).0
}

/// The streaming decode, hashing as it inflates when `limits.hash`. A document that turns out
/// not to be a log is still inflated to its end then, for its hash.
fn stream(
    bytes: &[u8],
    index: &KeyIndex,
    log_object: &str,
    limits: DecodeLimits,
) -> (Result<Decoded, String>, Option<Sha256>) {
    let mut splitter = Splitter::new();
    let mut sink = Sink::new(index, log_object, limits);
    let mut hasher = limits.hash.then(sha2::Sha256::new);
    let mut failed: Option<String> = None;
    let inflated = inflate_chunks(bytes, limits, hasher.as_mut(), |buf, last| {
        if failed.is_some() {
            buf.clear();
            return Ok(());
        }
        let step = split_chunk(&mut splitter, &mut sink, buf, last, limits);
        match step {
            Err(e) if limits.hash => {
                failed = Some(e);
                buf.clear();
                Ok(())
            }
            other => other,
        }
    });
    let hash = match (&inflated, hasher) {
        (Ok(_), Some(h)) => Some(h.finalize().into()),
        _ => None,
    };
    let result = match (inflated, failed) {
        (Err(e), _) | (Ok(_), Some(e)) => Err(e),
        (Ok(_), None) => Ok(sink.out),
    };
    (result, hash)
}

/// Feeds one more inflated chunk to the splitter, keeping only the open record.
fn split_chunk(
    splitter: &mut Splitter,
    sink: &mut Sink,
    buf: &mut Vec<u8>,
    last: bool,
    limits: DecodeLimits,
) -> Result<(), String> {
    splitter
        .scan(buf, last, |span| {
            sink.record(&buf[span.range.clone()], &span)
        })
        .map_err(|u| format!("not a CloudTrail log file: {}", u.0))?;
    if splitter.in_record() && splitter.pos() - splitter.keep_from() > limits.max_record {
        splitter.truncate_record();
    }
    let keep = splitter.keep_from();
    if splitter.pos() - keep > limits.max_record {
        return Err(format!(
            "not a CloudTrail log file: more than {} KiB between two records",
            limits.max_record >> 10
        ));
    }
    buf.drain(..keep);
    splitter.shift(keep);
    Ok(())
}

/// Decodes an inflated CloudTrail document: records located by the structural splitter, and only
/// those that may be KMS calls parsed. A document the splitter cannot read goes to the exact parse.
pub fn decode_json(json: &[u8], index: &KeyIndex, log_object: &str) -> Result<Decoded, String> {
    decode_json_with(json, index, log_object, DecodeLimits::default())
}

fn decode_json_with(
    json: &[u8],
    index: &KeyIndex,
    log_object: &str,
    limits: DecodeLimits,
) -> Result<Decoded, String> {
    let mut sink = Sink::new(index, log_object, limits);
    // The prefilter's searches run over the whole document, each byte looked at once, rather
    // than once per record: far fewer calls, and the SIMD search runs on long stretches.
    let kms = memmem::Finder::new(KMS_EVENT_SOURCE.as_bytes());
    let escape = memmem::Finder::new(b"\\u");
    let mut named = Ahead::new(&kms, json);
    let mut escaped = Ahead::new(&escape, json);
    let split = split::split(json, |span| {
        let r = span.range.clone();
        let maybe_kms =
            named.occurs_in(r.clone()) || (span.backslash && escaped.occurs_in(r.clone()));
        sink.record_found(&json[r], &span, maybe_kms)
    });
    match split {
        Ok(()) => Ok(sink.out),
        Err(_) => decode_exact(json, index, log_object, limits),
    }
}

/// Where a needle next occurs in a document, for ranges asked about in increasing order: the
/// document is searched forward only, never twice over.
struct Ahead<'f, 'h> {
    finder: &'f memmem::Finder<'f>,
    hay: &'h [u8],
    /// Where the last search started (`None`: not searched yet) and the first occurrence at or
    /// after it (`None`: there is none).
    searched: Option<(usize, Option<usize>)>,
}

impl<'f, 'h> Ahead<'f, 'h> {
    fn new(finder: &'f memmem::Finder<'f>, hay: &'h [u8]) -> Self {
        Ahead {
            finder,
            hay,
            searched: None,
        }
    }

    /// The needle lies wholly inside `r` (ranges come in increasing order of start).
    fn occurs_in(&mut self, r: std::ops::Range<usize>) -> bool {
        let next = match self.searched {
            // Still the first occurrence at or after `r.start`.
            Some((from, next)) if from <= r.start && next.is_none_or(|n| n >= r.start) => next,
            _ => {
                let next = self.finder.find(&self.hay[r.start..]).map(|i| r.start + i);
                self.searched = Some((r.start, next));
                next
            }
        };
        next.is_some_and(|n| n + self.finder.needle().len() <= r.end)
    }
}

/// The exact parse: the whole document through serde_json, every record's text checked. The
/// fallback for documents the splitter cannot read, and the reference the fast path is tested
/// against.
pub fn decode_exact(
    json: &[u8],
    index: &KeyIndex,
    log_object: &str,
    limits: DecodeLimits,
) -> Result<Decoded, String> {
    let doc: Document = serde_json::from_slice(json).map_err(|e| format!("invalid JSON: {e}"))?;
    let records = doc
        .records
        .ok_or("no Records array: not a CloudTrail log file")?;
    let mut sink = Sink::new(index, log_object, limits);
    for raw in records {
        let span = Span {
            range: 0..raw.get().len(),
            backslash: true,
            truncated: false,
        };
        sink.record(raw.get().as_bytes(), &span);
    }
    Ok(sink.out)
}

/// Where records go once found: a byte-level test first, and the parse and the rules of use only
/// for records that pass it.
struct Sink<'i> {
    index: &'i KeyIndex,
    log_object: &'i str,
    limits: DecodeLimits,
    kms: memmem::Finder<'static>,
    keys: Vec<Attributed>,
    out: Decoded,
}

impl<'i> Sink<'i> {
    fn new(index: &'i KeyIndex, log_object: &'i str, limits: DecodeLimits) -> Sink<'i> {
        Sink {
            index,
            log_object,
            limits,
            kms: memmem::Finder::new(KMS_EVENT_SOURCE.as_bytes()),
            keys: Vec::new(),
            out: Decoded::default(),
        }
    }

    /// Takes one record. Most records are not KMS calls: they are skipped without parsing. A
    /// KMS record names its source in plain bytes unless it spells it with \u escapes, so
    /// records with escapes are parsed too.
    fn record(&mut self, raw: &[u8], span: &Span) {
        let maybe_kms =
            self.kms.find(raw).is_some() || (span.backslash && memmem::find(raw, b"\\u").is_some());
        self.record_found(raw, span, maybe_kms);
    }

    /// Takes one record whose prefilter answer (`maybe_kms`) is already known.
    fn record_found(&mut self, raw: &[u8], span: &Span, maybe_kms: bool) {
        self.out.records += 1;
        if span.truncated || raw.len() > self.limits.max_record {
            self.out.malformed_records += 1;
            return;
        }
        if !maybe_kms {
            return;
        }
        let Ok(record) = serde_json::from_slice::<Record>(raw) else {
            self.out.malformed_records += 1;
            return;
        };
        if record.event_source.as_deref() != Some(KMS_EVENT_SOURCE) {
            return;
        }
        self.out.kms_records += 1;
        if let Some(moved) = alias_move(&record, self.index, self.log_object) {
            // Travels with the uses until ScanResult sets it apart, as failed attempts do.
            self.out.uses.push(moved);
            return;
        }
        match attribute(&record, self.index, &mut self.keys) {
            Attribution::NotAUse => {}
            Attribution::Unattributable => self.out.unattributable += 1,
            // Failed attempts travel with the uses (each copy carries its error code) until
            // ScanResult sets them apart.
            Attribution::Uses | Attribution::Failed => {
                match use_copies(&record, &self.keys, self.log_object) {
                    Ok(copies) => self.out.uses.extend(copies),
                    Err(_) => self.out.malformed_records += 1,
                }
            }
        }
    }
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
            (4, 2, 1, 2)
        );
        // The use, and the denied call as an attempt (with its error), in the object's order.
        assert_eq!(d.uses[0].event_id, "e1");
        assert_eq!(d.uses[0].error_code, None);
        assert_eq!(d.uses[1].event_id, "e2");
        assert_eq!(d.uses[1].error_code.as_deref(), Some("AccessDenied"));
        // Concatenated gzip members are one stream (gzip allows it).
        let mut two = gz(br#"{"Records":"#);
        two.extend(gz(br#"[]}"#));
        assert_eq!(decode(&two, &index(), "o").unwrap().records, 0);
    }

    /// The three ways through the decoder: split in memory, split while streaming, exact parse.
    fn all_ways(json: &[u8], limits: DecodeLimits) -> [Result<Decoded, String>; 3] {
        let i = index();
        [
            decode_json_with(json, &i, "o", limits),
            decode_stream(&gz(json), &i, "o", limits),
            decode_exact(json, &i, "o", limits),
        ]
    }

    #[test]
    fn fast_streaming_and_exact_agree() {
        let doc = doc();
        let [fast, stream, exact] = all_ways(doc.as_bytes(), DecodeLimits::default());
        assert_eq!(fast, exact);
        assert_eq!(stream, exact);
        // Pretty-printed and with a KMS source spelled with escapes: still the same uses.
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        let escaped = doc.replacen("kms.amazonaws.com", "kms\\u002eamazonaws.com", 1);
        for d in [pretty, escaped] {
            let [fast, stream, exact] = all_ways(d.as_bytes(), DecodeLimits::default());
            // The use and the denied call's attempt.
            assert_eq!(exact.as_ref().unwrap().uses.len(), 2, "{d}");
            assert_eq!(fast, exact);
            assert_eq!(stream, exact);
        }
    }

    #[test]
    fn whole_and_streaming_inflate_agree() {
        let doc = doc();
        let one = gz(doc.as_bytes());
        let limits = DecodeLimits::default();
        assert_eq!(
            with_inflated(&one, limits, <[u8]>::to_vec).unwrap(),
            doc.as_bytes()
        );
        // The buffer is reused: a smaller object after a larger one is exactly itself.
        let small = r#"{"Records":[]}"#;
        let got = with_inflated(&gz(small.as_bytes()), limits, <[u8]>::to_vec);
        assert_eq!(got.as_deref(), Some(small.as_bytes()));
        // Two members: libdeflate stops after the first, so the streaming path must answer.
        let (a, b) = doc.split_at(doc.len() / 2);
        let mut two = gz(a.as_bytes());
        two.extend(gz(b.as_bytes()));
        assert_eq!(with_inflated(&two, limits, <[u8]>::to_vec), None);
        assert_eq!(inflated_len(&two).unwrap(), doc.len() as u64);
        assert_eq!(
            decode(&two, &index(), "o").unwrap(),
            decode(&one, &index(), "o").unwrap()
        );
        // A trailer that lies about the size: the streaming path checks and reports it.
        let mut lying = one.clone();
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&7u32.to_le_bytes());
        assert!(
            decode(&lying, &index(), "o")
                .unwrap_err()
                .starts_with("gzip:"),
            "a wrong ISIZE is corruption"
        );
    }

    #[test]
    fn a_gzip_bomb_is_cut_off_at_the_cap() {
        // One endless string: 64 MiB gzips to about 64 KiB; with a 16 MiB cap it must stop there.
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(br#"{"Records":[{"x":""#).unwrap();
        let zeros = vec![b'a'; 1 << 20];
        for _ in 0..64 {
            e.write_all(&zeros).unwrap();
        }
        let bomb = e.finish().unwrap();
        let limits = DecodeLimits {
            max_inflated: 16 << 20,
            ..DecodeLimits::default()
        };
        let err = decode_with(&bomb, &index(), "o", limits).unwrap_err();
        assert!(err.contains("more than 16 MiB"), "{err}");
    }

    #[test]
    fn an_oversized_record_is_malformed_in_every_path() {
        let big = format!(
            r#"{{"Records":[{{"eventSource":"kms.amazonaws.com","x":"{}"}},{}]}}"#,
            "a".repeat(3000),
            &doc()[12..doc().len() - 2]
        );
        let limits = DecodeLimits {
            max_record: 2048,
            ..DecodeLimits::default()
        };
        let [fast, stream, exact] = all_ways(big.as_bytes(), limits);
        let exact = exact.unwrap();
        assert_eq!((exact.records, exact.malformed_records), (5, 2));
        assert_eq!(fast.unwrap(), exact);
        assert_eq!(stream.unwrap(), exact);
    }

    #[test]
    fn a_document_in_another_shape_is_read_exactly_or_refused() {
        // Another top-level key: the splitter refuses, the exact parse reads it.
        let other = doc().replacen("{\"Records\"", "{\"Extra\":1,\"Records\"", 1);
        let [fast, stream, exact] = all_ways(other.as_bytes(), DecodeLimits::default());
        assert_eq!(fast, exact);
        assert_eq!(exact.unwrap().uses.len(), 2);
        let err = stream.unwrap_err();
        assert!(
            err.starts_with("not a CloudTrail log file: `\"Extra\""),
            "{err}"
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

    proptest::proptest! {
        /// The forward-only search answers as a search of each range by itself would.
        #[test]
        fn searching_ahead_agrees_with_searching_each_range(
            hay in "[ab]{0,200}",
            cuts in proptest::collection::btree_set(0usize..200, 0..20),
        ) {
            let hay = hay.as_bytes();
            let finder = memmem::Finder::new(b"ab");
            let mut ahead = Ahead::new(&finder, hay);
            let cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= hay.len()).collect();
            // Ranges in increasing order, some skipped, some adjacent.
            for (i, w) in cuts.windows(2).enumerate() {
                if i % 3 == 2 {
                    continue;
                }
                let r = w[0]..w[1];
                let want = memmem::find(&hay[r.clone()], b"ab").is_some();
                proptest::prop_assert_eq!(ahead.occurs_in(r.clone()), want, "{:?}", r);
            }
        }
    }
}
