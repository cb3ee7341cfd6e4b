//! The fast path (structural split + byte prefilter + parse of candidates only) and the streaming
//! path must agree with the exact parse (serde_json over the whole document, every record's text
//! checked) on every object of a synth archive, as written and re-laid-out.

use crate::common::{files, synth};
use flate2::read::MultiGzDecoder;
use keytrail::config::DecodeLimits as Limits;
use keytrail::inventory::read_snapshot;
use keytrail::scan::decode::{decode, decode_exact, decode_json, decode_stream};
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

/// A record's attribution does not depend on the object it arrived in: the records of a synth
/// archive regrouped into other objects (other neighbours, other order, other sizes) give the
/// same uses — only `log_object` differs — and the same record counts.
#[test]
fn a_records_attribution_does_not_depend_on_the_object_it_arrived_in() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), &["--seed", "4242"]);
    let keys = read_snapshot(&dir.path().join("usage.jsonl")).unwrap();
    let index = KeyIndex::new(keys.iter().map(|k| (&k.arn, k.aliases.as_slice())));
    let mut records: Vec<serde_json::Value> = Vec::new();
    let mut want = Vec::new();
    let (mut want_records, mut want_malformed, mut want_unattributable) = (0, 0, 0);
    for path in files(&dir.path().join("logs")) {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.to_string_lossy().to_string();
        let Ok(d) = decode(&bytes, &index, &name) else {
            continue;
        };
        let mut json = Vec::new();
        MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut json)
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
        records.extend(doc["Records"].as_array().unwrap().iter().cloned());
        want_records += d.records;
        want_malformed += d.malformed_records;
        want_unattributable += d.unattributable;
        want.extend(d.uses.into_iter().map(|mut u| {
            u.log_object.clear();
            u
        }));
    }
    let key = |u: &keytrail::scan::record::UseCopy| format!("{u:?}");
    want.sort_by_key(key);
    assert!(want.len() > 50 && records.len() > 1000);

    let mut runner = TestRunner::new(Config {
        cases: 8,
        ..Config::default()
    });
    let n = records.len();
    let regroup = (
        Just(()).prop_perturb(move |_, mut rng| {
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
            order
        }),
        proptest::collection::vec(1usize..400, 1..64),
    );
    runner
        .run(&regroup, |(order, sizes)| {
            let mut got = Vec::new();
            let (mut got_records, mut got_malformed, mut got_unattributable) = (0, 0, 0);
            let mut rest = &order[..];
            let mut i = 0;
            while !rest.is_empty() {
                let take = sizes[i % sizes.len()].min(rest.len());
                let group: Vec<&serde_json::Value> =
                    rest[..take].iter().map(|&r| &records[r]).collect();
                rest = &rest[take..];
                i += 1;
                let json = serde_json::to_vec(&serde_json::json!({ "Records": group })).unwrap();
                let name = format!("regrouped-{i}.json.gz");
                let d = decode_json(&json, &index, &name).unwrap();
                got_records += d.records;
                got_malformed += d.malformed_records;
                got_unattributable += d.unattributable;
                got.extend(
                    d.uses
                        .into_iter()
                        .map(|mut u| {
                            prop_assert_eq!(&u.log_object, &name);
                            u.log_object.clear();
                            Ok(u)
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                );
            }
            got.sort_by_key(key);
            prop_assert_eq!(got_records, want_records);
            prop_assert_eq!(got_malformed, want_malformed);
            prop_assert_eq!(got_unattributable, want_unattributable);
            prop_assert_eq!(&got, &want);
            Ok(())
        })
        .unwrap();
}

/// Records in the shapes AWS publishes (`tests/data/real/`, each with its source): every tracked
/// operation family, failed calls, services acting for a user or on their own, ReEncrypt's two
/// contexts, a caller's copy, records without `recipientAccountId`, `tlsDetails` or `userAgent`,
/// event versions 1.02 to 1.11 — each read as worked out by hand in the file.
#[test]
fn records_in_the_shapes_aws_publishes_are_read_as_worked_out_by_hand() {
    use keytrail::model::KeyArn;
    use serde_json::{json, Value};
    let path = crate::common::repo().join("tests/data/real/records.json");
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // Every key a record names is in scope, so that a record that is no use is none on its merits.
    let arns: std::collections::BTreeSet<String> = cases
        .iter()
        .flat_map(|c| {
            c["record"]["resources"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|r| r["ARN"].as_str().unwrap().to_string())
        .collect();
    let keys: Vec<KeyArn> = arns.iter().map(|a| KeyArn::parse(a).unwrap()).collect();
    let index = KeyIndex::new(keys.iter().map(|k| (k, &[][..])));
    for case in &cases {
        let doc = serde_json::to_vec(&json!({ "Records": [case["record"]] })).unwrap();
        let name = case["case"].as_str().unwrap();
        let decoded = decode_json(&doc, &index, "real").unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded.kms_records, 1, "{name}");
        assert_eq!(decoded.malformed_records, 0, "{name}");
        // A failed call is an attempt on the key it names, carrying its errorCode — never a use.
        let attempts: Vec<(&str, &str)> = decoded
            .uses
            .iter()
            .filter_map(|u| Some((u.key.as_str(), u.error_code.as_deref()?)))
            .collect();
        let want_attempts: Vec<(&str, &str)> = match case["record"]["errorCode"].as_str() {
            Some(code) => case["record"]["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| (r["ARN"].as_str().unwrap(), code))
                .collect(),
            None => Vec::new(),
        };
        assert_eq!(attempts, want_attempts, "{name}");
        let got: Vec<Value> = decoded
            .uses
            .iter()
            .filter(|u| u.error_code.is_none())
            .map(|u| {
                json!({
                    "key": u.key.as_str(),
                    "role": u.role.as_str(),
                    "operation": u.operation,
                    "event_id": u.event_id,
                    "principal": u.principal_arn.as_deref()
                        .or(u.invoked_by.as_deref())
                        .or(u.principal_account.as_deref()),
                    "recipient": u.recipient_account_id,
                    "context": u.encryption_context,
                })
            })
            .collect();
        assert_eq!(Value::Array(got), case["uses"], "{name}");
    }
    // Every operation KMS tracks is among them, as a use.
    let used: std::collections::BTreeSet<&str> = cases
        .iter()
        .flat_map(|c| c["uses"].as_array().unwrap())
        .map(|u| u["operation"].as_str().unwrap())
        .collect();
    for op in keytrail::model::TRACKED_OPERATIONS {
        assert!(used.contains(op), "no record of {op}");
    }
}
