//! aliases: which key a record meant when it named its key only through an alias. An alias is a
//! pointer that moves (`UpdateAlias`), disappears (`DeleteAlias`) and comes back
//! (`CreateAlias`); a call made through it used the key it pointed at *then*. The scan keeps one
//! copy of such a call, its key a stand-in of the alias's account and region, and every alias
//! change it reads; this decides, once everything is read, from the alias's history in those same
//! logs. Pure.
//!
//! For a call at time `t` through alias `a` (in its account and region):
//! - the last change of `a` at or before `t` says where it pointed (`alias_at_event_time`;
//!   CloudTrail's times are whole seconds, so a change in the same second counts as earlier);
//! - before the first change read: a `DeleteAlias` names the key it pointed at until then
//!   (`alias_at_event_time`); an `UpdateAlias` does not name the key it pointed at before, so
//!   today's alias is taken (`alias_today`) — unless today's key is the one the update pointed
//!   it *to*, which it then certainly did not point at before; a `CreateAlias` says it did not
//!   exist. In the last two cases the key is unknown;
//! - no change read at all: today's alias (`alias_today`).
//!
//! A successful call whose key is unknown could have been a use of any key of that account and
//! region: it is counted as an unattributable use of its object, as a call that names no key is,
//! so that the verdicts that depend on it say so.

use super::record::{KeyIndex, ResolvedBy, UseCopy};
use super::ScanResult;
use crate::model::{Instant, KeyArn};
use std::collections::{HashMap, HashSet};

/// Where an alias pointed at some time.
#[derive(Debug, PartialEq)]
enum Pointed {
    At(KeyArn, ResolvedBy),
    /// At no in-scope key (or at nothing).
    Elsewhere,
    /// The logs read cannot say.
    Unknown,
}

/// One alias's changes, in time order.
type History<'a> = HashMap<(&'a str, &'a str, &'a str), Vec<&'a UseCopy>>;

fn history(moves: &[UseCopy]) -> History<'_> {
    let mut h: History<'_> = HashMap::new();
    for m in moves {
        let Some(name) = m.via_alias.as_deref() else {
            continue;
        };
        h.entry((m.key.account(), m.key.region(), name))
            .or_default()
            .push(m);
    }
    for changes in h.values_mut() {
        changes.sort_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)));
        // The same record delivered by two trails (an organization's and the account's own).
        changes.dedup_by(|b, a| a.event_id == b.event_id);
    }
    h
}

fn pointed(
    h: &History<'_>,
    today: &KeyIndex,
    (account, region, name): (&str, &str, &str),
    t: Instant,
) -> Pointed {
    let now = || match today.alias_today(account, region, name) {
        Some(k) => Pointed::At(k.clone(), ResolvedBy::AliasToday),
        None => Pointed::Elsewhere,
    };
    let Some(changes) = h.get(&(account, region, name)) else {
        return now();
    };
    let before = changes.partition_point(|m| m.event_time <= t);
    if before > 0 {
        let last = changes[before - 1];
        return match last.operation.as_str() {
            "DeleteAlias" => Pointed::Elsewhere,
            _ => Pointed::At(last.key.clone(), ResolvedBy::AliasAtEventTime),
        };
    }
    let first = changes[0];
    match first.operation.as_str() {
        "DeleteAlias" => Pointed::At(first.key.clone(), ResolvedBy::AliasAtEventTime),
        "UpdateAlias" => match now() {
            Pointed::At(k, _) if k == first.key => Pointed::Unknown,
            other => other,
        },
        _ => Pointed::Unknown,
    }
}

/// Gives each alias-only record's copy the key its alias pointed at when the call was made, and
/// says how (`resolved_by`); drops those whose alias pointed at no in-scope key then, and counts
/// the successful ones whose key is unknown as unattributable uses of their objects. Call once,
/// when every object is read.
pub fn resolve(result: &mut ScanResult, today: &KeyIndex) {
    let h = history(&result.alias_moves);
    let mut unknown: HashSet<(String, String)> = HashSet::new();
    let mut decide = |list: &mut Vec<UseCopy>, failed: bool| {
        list.retain_mut(|c| {
            let Some(name) = c.via_alias.as_deref() else {
                return true;
            };
            let place = (c.key.account(), c.key.region(), name);
            match pointed(&h, today, place, c.event_time) {
                // The alias's key then, if it is one of the run's keys.
                Pointed::At(k, by) if today.get(k.as_str()).is_some() => {
                    c.key = k;
                    c.resolved_by = by;
                    true
                }
                Pointed::Unknown if !failed => {
                    unknown.insert((c.log_object.clone(), c.event_id.clone()));
                    false
                }
                _ => false,
            }
        });
    };
    decide(&mut result.uses, false);
    decide(&mut result.failed, true);
    let mut per_object: HashMap<&str, u64> = HashMap::new();
    for (object, _) in &unknown {
        *per_object.entry(object.as_str()).or_default() += 1;
    }
    for row in &mut result.manifest {
        if let Some(n) = per_object.get(row.object.as_str()) {
            row.unattributable_uses += n;
            result.stats.unattributable_uses += n;
        }
    }
    result.stats.use_copies = result.uses.len() as u64;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_iso;
    use crate::scan::record::{attribute, use_copies, KeyRole, Record};

    const A: &str = "111122223333";
    const OLD: &str = "arn:aws:kms:us-east-1:111122223333:key/old";
    const NEW: &str = "arn:aws:kms:us-east-1:111122223333:key/new";

    /// The run's keys: OLD and NEW in the same place; today `alias/app` points at NEW.
    fn index() -> KeyIndex {
        let old = KeyArn::parse(OLD).unwrap();
        let new = KeyArn::parse(NEW).unwrap();
        let app = vec!["alias/app".to_string()];
        KeyIndex::new([(&old, &[][..]), (&new, app.as_slice())])
    }

    fn record(json: &str) -> Record<'_> {
        serde_json::from_str(json).unwrap()
    }

    /// An alias change as CloudTrail logs it: the alias's ARN and the key's in `resources`.
    fn change(op: &str, id: &str, time: &str, key: Option<&str>) -> UseCopy {
        let res = key.map_or(String::new(), |k| {
            format!(r#","resources":[{{"ARN":"arn:aws:kms:us-east-1:{A}:alias/app","type":"AWS::KMS::Key"}},{{"ARN":"{k}","type":"AWS::KMS::Key"}}]"#)
        });
        let json = format!(
            r#"{{"eventTime":"{time}","eventSource":"kms.amazonaws.com","eventName":"{op}","awsRegion":"us-east-1","recipientAccountId":"{A}","eventID":"{id}","requestParameters":{{"aliasName":"alias/app"}}{res}}}"#
        );
        super::super::record::alias_move(&record(&json), &index(), "log").expect("a change")
    }

    /// The copy of a Decrypt through `alias/app` (no resources), its key a stand-in.
    fn call(id: &str, time: &str, error: bool) -> Vec<UseCopy> {
        let err = if error {
            r#","errorCode":"DisabledException""#
        } else {
            ""
        };
        let json = format!(
            r#"{{"eventTime":"{time}","eventSource":"kms.amazonaws.com","eventName":"Decrypt","awsRegion":"us-east-1","recipientAccountId":"{A}","eventID":"{id}","requestParameters":{{"keyId":"alias/app"}}{err}}}"#
        );
        let r = record(&json);
        let mut keys = Vec::new();
        attribute(&r, &index(), &mut keys);
        use_copies(&r, &keys, &format!("log-{id}")).unwrap()
    }

    fn resolved(
        moves: Vec<UseCopy>,
        calls: Vec<Vec<UseCopy>>,
    ) -> (Vec<(String, String, &'static str)>, ScanResult) {
        let mut result = ScanResult {
            uses: calls.into_iter().flatten().collect(),
            alias_moves: moves,
            manifest: ["log-c1", "log-c2", "log-c3"]
                .iter()
                .map(|o| crate::scan::ManifestRow {
                    object: o.to_string(),
                    size_bytes: 1,
                    status: crate::scan::ObjectStatus::Read,
                    reason: None,
                    records: 1,
                    kms_records: 1,
                    malformed_records: 0,
                    unattributable_uses: 0,
                    account_id: A.into(),
                    region: "us-east-1".into(),
                    delivery_date: parse_iso("2026-02-01T00:00:00Z").unwrap().date_naive(),
                    archived: false,
                    sha256: None,
                })
                .collect(),
            ..ScanResult::default()
        };
        result.settle();
        resolve(&mut result, &index());
        let got = result
            .uses
            .iter()
            .map(|u| {
                (
                    u.event_id.clone(),
                    u.key.as_str().to_string(),
                    u.resolved_by.as_str(),
                )
            })
            .collect();
        (got, result)
    }

    fn at(id: &str, key: &str, by: &'static str) -> (String, String, &'static str) {
        (id.into(), key.into(), by)
    }

    #[test]
    fn a_call_through_an_alias_uses_the_key_it_pointed_at_then() {
        let moves = vec![
            change("CreateAlias", "m1", "2026-02-01T00:00:00Z", Some(OLD)),
            change("UpdateAlias", "m2", "2026-02-10T12:00:00Z", Some(NEW)),
        ];
        let (got, r) = resolved(
            moves,
            vec![
                call("c1", "2026-02-05T00:00:00Z", false),
                // The same second as the change: after it.
                call("c2", "2026-02-10T12:00:00Z", false),
                call("c3", "2026-02-20T00:00:00Z", false),
            ],
        );
        assert_eq!(
            got,
            vec![
                at("c1", OLD, "alias_at_event_time"),
                at("c2", NEW, "alias_at_event_time"),
                at("c3", NEW, "alias_at_event_time"),
            ]
        );
        assert_eq!(r.stats.unattributable_uses, 0);
        assert_eq!(r.stats.use_copies, 3);
    }

    #[test]
    fn without_changes_read_the_alias_is_taken_as_it_points_today() {
        let (got, _) = resolved(vec![], vec![call("c1", "2026-02-05T00:00:00Z", false)]);
        assert_eq!(got, vec![at("c1", NEW, "alias_today")]);
    }

    #[test]
    fn before_the_first_change_read() {
        // A DeleteAlias names the key the alias pointed at until then.
        let del = vec![change(
            "DeleteAlias",
            "m1",
            "2026-02-10T00:00:00Z",
            Some(OLD),
        )];
        let (got, _) = resolved(
            del,
            vec![
                call("c1", "2026-02-05T00:00:00Z", false),
                call("c2", "2026-02-11T00:00:00Z", false),
            ],
        );
        assert_eq!(
            got,
            vec![at("c1", OLD, "alias_at_event_time")],
            "after the delete: no key"
        );

        // An UpdateAlias to today's key: before it the alias pointed elsewhere, at a key the
        // logs do not name — unknown, counted as an unattributable use of its object.
        let upd = vec![change(
            "UpdateAlias",
            "m1",
            "2026-02-10T00:00:00Z",
            Some(NEW),
        )];
        let (got, r) = resolved(upd, vec![call("c1", "2026-02-05T00:00:00Z", false)]);
        assert_eq!(got, vec![]);
        assert_eq!(r.stats.unattributable_uses, 1);
        let row = r.manifest.iter().find(|m| m.object == "log-c1").unwrap();
        assert_eq!(row.unattributable_uses, 1);

        // An UpdateAlias to another key than today's: today's alias is the fallback.
        let upd = vec![change(
            "UpdateAlias",
            "m1",
            "2026-02-10T00:00:00Z",
            Some(OLD),
        )];
        let (got, _) = resolved(upd, vec![call("c1", "2026-02-05T00:00:00Z", false)]);
        assert_eq!(got, vec![at("c1", NEW, "alias_today")]);

        // A CreateAlias: the alias did not exist before it (as far as the logs say).
        let create = vec![change(
            "CreateAlias",
            "m1",
            "2026-02-10T00:00:00Z",
            Some(OLD),
        )];
        let (got, r) = resolved(create, vec![call("c1", "2026-02-05T00:00:00Z", false)]);
        assert_eq!(got, vec![]);
        assert_eq!(r.stats.unattributable_uses, 1);
    }

    #[test]
    fn failed_calls_through_an_alias_are_attempts_on_the_key_it_pointed_at() {
        let moves = vec![change(
            "UpdateAlias",
            "m1",
            "2026-02-10T00:00:00Z",
            Some(NEW),
        )];
        let mut result = ScanResult {
            uses: call("c1", "2026-02-12T00:00:00Z", true),
            alias_moves: moves,
            ..ScanResult::default()
        };
        result.settle();
        resolve(&mut result, &index());
        let got: Vec<&str> = result.failed.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(got, vec![NEW]);
        assert_eq!(result.failed[0].role, KeyRole::Key);
        assert_eq!(
            result.stats.unattributable_uses, 0,
            "a failed call is no use"
        );
    }

    #[test]
    fn a_change_delivered_twice_is_one_change() {
        let mut twice = change("UpdateAlias", "m1", "2026-02-10T00:00:00Z", Some(OLD));
        twice.log_object = "org-trail-copy".into();
        let moves = vec![
            change("CreateAlias", "m0", "2026-02-01T00:00:00Z", Some(NEW)),
            change("UpdateAlias", "m1", "2026-02-10T00:00:00Z", Some(OLD)),
            twice,
        ];
        let (got, _) = resolved(moves, vec![call("c1", "2026-02-11T00:00:00Z", false)]);
        assert_eq!(got, vec![at("c1", OLD, "alias_at_event_time")]);
    }
}
