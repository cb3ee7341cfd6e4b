//! lookup: the join's fallback. When a key's `CloudTrailEventId` is not in the archive (the
//! archive lags, or misses that day), CloudTrail's `LookupEvents` can still return the record —
//! for events of the last 90 days, at about 2 requests per second per account and region. The
//! record comes back as the same JSON a log file holds, so it goes through the same decoder.

use crate::aws::Aws;
use crate::integrity::live::Evidence;
use crate::inventory::Key;
use crate::model::Warnings;
use crate::scan::decode::decode_json;
use crate::scan::record::{KeyIndex, ResolvedBy, UseCopy};
use crate::tracking::live::Pacer;
use crate::tracking::Tracked;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use std::collections::{BTreeMap, HashSet};

/// What `log_object` says for a record that came from `LookupEvents`.
pub const LOOKUP_SOURCE: &str = "cloudtrail:LookupEvents";

/// `LookupEvents` requests per second per account and region (its quota is 2).
const LOOKUP_RATE: f64 = 2.0;

/// The keys whose last use's event is not among `copies` (so the join needs the fallback).
pub fn missing_events<'k>(
    keys: impl IntoIterator<Item = &'k Key>,
    copies: &[UseCopy],
) -> Vec<(&'k Key, String)> {
    let have: HashSet<&str> = copies.iter().map(|c| c.event_id.as_str()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let id = k.last_usage.as_ref()?.event_id.as_deref()?;
            (!have.contains(id)).then(|| (k, id.to_string()))
        })
        .collect()
}

/// The join's fallback stage: in a live run (`aws` given), the last uses whose events the archive
/// did not hold, from CloudTrail's event history.
pub async fn fill(
    mut evidence: Evidence,
    aws: Option<&Aws>,
    tracked: &Tracked,
    index: &KeyIndex,
    warnings: &mut Warnings,
) -> Evidence {
    let Some(aws) = aws else {
        return evidence;
    };
    let missing = missing_events(tracked.keys(), &evidence.scan.uses);
    if !missing.is_empty() {
        evidence.history = lookup(aws, &missing, index, warnings).await;
    }
    evidence
}

/// Looks up each missing event in its key's region and decodes what comes back into use copies.
/// Events CloudTrail no longer has (older than 90 days) are simply not found; failures become
/// warnings.
pub async fn lookup(
    aws: &Aws,
    wanted: &[(&Key, String)],
    index: &KeyIndex,
    warnings: &mut Warnings,
) -> Vec<UseCopy> {
    let mut pacers: BTreeMap<&str, Pacer> = BTreeMap::new();
    let mut out = Vec::new();
    for (key, event_id) in wanted {
        let region = key.arn.region();
        let pacer = pacers
            .entry(region)
            .or_insert_with(|| Pacer::per_second(LOOKUP_RATE));
        pacer.wait().await;
        let attr = LookupAttribute::builder()
            .attribute_key(LookupAttributeKey::EventId)
            .attribute_value(event_id)
            .build()
            .expect("key and value are set");
        match aws
            .cloudtrail(region)
            .lookup_events()
            .lookup_attributes(attr)
            .send()
            .await
        {
            Ok(resp) => {
                for ev in resp.events() {
                    let Some(json) = ev.cloud_trail_event() else {
                        continue;
                    };
                    let doc = format!("{{\"Records\":[{json}]}}");
                    match decode_json(doc.as_bytes(), index, LOOKUP_SOURCE) {
                        // KMS named this event as the key's last use: an alias-only record's
                        // key is that key (the one the alias pointed at then).
                        Ok(d) => {
                            out.extend(d.uses.into_iter().filter_map(|mut u| match &u.via_alias {
                                _ if u.is_alias_move() => None,
                                Some(_) => {
                                    u.key = key.arn.clone();
                                    u.resolved_by = ResolvedBy::AliasAtEventTime;
                                    Some(u)
                                }
                                None => Some(u),
                            }))
                        }
                        Err(e) => warnings
                            .push(format!("LookupEvents {event_id}: unreadable record: {e}")),
                    }
                }
            }
            Err(e) => warnings.push(format!(
                "LookupEvents {event_id} in {region} failed: {}",
                crate::aws::explain(&e)
            )),
        }
    }
    out
}
