//! Fuzz target: bytes → records → attributed uses, through every path the scan has.
//!
//! The first byte picks the input's form: even — a gzip object, decoded as the scan does (whole
//! inflate or streaming, with small caps so bombs are cheap), and through the streaming path on
//! its own; odd — the inflated JSON, decoded by the fast path (structural splitter + prefilter)
//! and by the exact serde parse. Properties: no panic, no runaway memory, and wherever the exact
//! parse reads a document, the fast and streaming paths read it to the same result.
#![no_main]

#[allow(dead_code)]
#[path = "../../../src/model.rs"]
mod model;
#[allow(dead_code)]
#[path = "../../../src/config.rs"]
mod config;
#[allow(dead_code)]
#[path = "../../../src/scan"]
mod scan {
    pub mod decode;
    pub mod record;
    pub mod split;
}

use flate2::{write::GzEncoder, Compression};
use libfuzzer_sys::fuzz_target;
use config::DecodeLimits as Limits;
use scan::decode::{decode_exact, decode_json, decode_object, decode_stream};
use scan::record::KeyIndex;
use std::io::Write;
use std::sync::OnceLock;

/// The keys of the bundled samples (with their aliases), so that seeds derived from
/// `samples/logs` attribute uses.
fn index() -> &'static KeyIndex {
    static INDEX: OnceLock<(Vec<(model::KeyArn, Vec<String>)>, KeyIndex)> = OnceLock::new();
    let (_, index) = INDEX.get_or_init(|| {
        let mut keys = Vec::new();
        for line in include_str!("../../../samples/usage.jsonl").lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let arn = v["KeyMetadata"]["Arn"]
                .as_str()
                .or(v["KeyId"].as_str())
                .unwrap();
            let Ok(arn) = model::KeyArn::parse(arn) else {
                continue;
            };
            let aliases: Vec<String> = v["Aliases"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().or(x["AliasName"].as_str()))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            keys.push((arn, aliases));
        }
        let index = KeyIndex::new(keys.iter().map(|(k, a)| (k, a.as_slice())));
        (keys, index)
    });
    index
}

const LIMITS: Limits = Limits {
    max_inflated: 8 << 20,
    max_record: 64 << 10,
    hash: true,
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let index = index();
    let name = "fuzz.json.gz";
    if mode % 2 == 0 {
        let (whole, hash) = decode_object(body, index, name, LIMITS);
        let stream = decode_stream(body, index, name, LIMITS);
        if let (Ok(a), Ok(b)) = (&whole, &stream) {
            assert_eq!(a, b, "whole and streaming decodes differ");
        }
        if whole.is_ok() {
            assert!(hash.is_some(), "a readable object has its hash");
        }
    } else {
        let exact = decode_exact(body, index, name, LIMITS);
        let fast = decode_json(body, index, name);
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(body).unwrap();
        let stream = decode_stream(&gz.finish().unwrap(), index, name, LIMITS);
        if let Ok(want) = &exact {
            if body.len() < LIMITS.max_record {
                assert_eq!(
                    fast.as_ref(),
                    Ok(want),
                    "fast path differs from the exact parse"
                );
                assert_eq!(
                    stream.as_ref(),
                    Ok(want),
                    "streaming differs from the exact parse"
                );
            }
        }
    }
});
