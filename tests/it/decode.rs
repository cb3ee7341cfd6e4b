//! The fast path (structural split + byte prefilter + parse of candidates only) and the streaming
//! path must agree with the exact parse (serde_json over the whole document, every record's text
//! checked) on every object of a synth archive, as written and re-laid-out.

use crate::common::{files, synth};
use flate2::read::MultiGzDecoder;
use keytrail::inventory::read_snapshot;
use keytrail::scan::decode::{decode, decode_exact, decode_json, decode_stream, Limits};
use keytrail::scan::record::KeyIndex;
use std::io::Read;

#[test]
fn fast_and_streaming_paths_agree_with_the_exact_parse_on_every_object() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), &["--seed", "2024"]);
    let keys = read_snapshot(&dir.path().join("usage.jsonl")).unwrap();
    let index = KeyIndex::new(keys.iter().map(|k| (&k.arn, k.aliases.as_slice())));
    let paths: Vec<_> = files(&dir.path().join("logs"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
        .collect();
    let limits = Limits::default();
    let (mut read, mut unreadable, mut uses, mut kms) = (0, 0, 0, 0);
    for path in &paths {
        let name = path.to_string_lossy().to_string();
        let bytes = std::fs::read(path).unwrap();
        let mut json = Vec::new();
        let inflated = MultiGzDecoder::new(&bytes[..]).read_to_end(&mut json);
        let exact = inflated
            .map_err(|e| e.to_string())
            .and_then(|_| decode_exact(&json, &index, &name, limits));
        let fast = decode(&bytes, &index, &name);
        let stream = decode_stream(&bytes, &index, &name, limits);
        match &exact {
            Ok(want) => {
                read += 1;
                uses += want.uses.len();
                kms += want.kms_records;
                assert_eq!(fast.as_ref(), Ok(want), "fast path, {name}");
                assert_eq!(stream.as_ref(), Ok(want), "streaming path, {name}");
                // The same records laid out differently (pretty-printed, keys reordered).
                let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
                let pretty = serde_json::to_vec_pretty(&v).unwrap();
                let relaid = decode_json(&pretty, &index, &name).unwrap();
                assert_eq!(&relaid, want, "pretty-printed {name}");
            }
            Err(_) => {
                unreadable += 1;
                assert!(fast.is_err(), "fast path read an unreadable {name}");
                assert!(stream.is_err(), "streaming path read an unreadable {name}");
            }
        }
    }
    // The archive exercised what it should: many objects, KMS records, uses, and corruption.
    assert!(read > 100, "{read} objects read");
    assert!(kms > 100 && uses > 50, "{kms} KMS records, {uses} uses");
    assert!(unreadable >= 3, "{unreadable} unreadable objects");
}
