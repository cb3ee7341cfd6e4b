//! tracking: what `GetKeyLastUsage` says about each key, reduced to one of the API's own cases.
//! The classification is pure: it reads the answers on each `Key` (from a snapshot, or asked
//! by [`live`]) and never calls AWS. It does not decide verdicts — those need the backfill
//! (`correlate`).

pub mod live;

use crate::inventory::{Account, Inventory, Key, Source};

/// A key with its `GetKeyLastUsage` answers and the case they put it in.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedKey {
    pub key: Key,
    pub status: TrackingStatus,
}

/// A key reads as its inventory entry.
impl std::ops::Deref for TrackedKey {
    type Target = Key;
    fn deref(&self) -> &Key {
        &self.key
    }
}

/// The tracking stage's value: every key with its case, sorted by ARN, and where the answers
/// came from.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub keys: Vec<TrackedKey>,
    /// The accounts examined (the inventory's).
    pub accounts: Vec<Account>,
    pub source: Source,
}

impl Tracked {
    /// Classifies an inventory whose keys carry their answers.
    pub fn of(inventory: Inventory) -> Tracked {
        Tracked {
            keys: track(inventory.keys),
            accounts: inventory.accounts,
            source: inventory.source,
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter().map(|t| &t.key)
    }
}

/// Each key with its case.
pub fn track(keys: Vec<Key>) -> Vec<TrackedKey> {
    keys.into_iter()
        .map(|key| TrackedKey {
            status: classify(&key),
            key,
        })
        .collect()
}

/// The key's case, from the API's own definition
/// (<https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyLastUsage.html>).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TrackingStatus {
    /// `KeyLastUsage.Timestamp` is set.
    UsedSinceTracking,
    /// No last use and `KeyCreationDate >= TrackingStartDate`: nothing to backfill.
    UnusedSinceCreation,
    /// No last use and the key predates tracking: only the CloudTrail archive can tell.
    UnknownBeforeTracking,
    /// `GetKeyLastUsage` failed for this key.
    Error,
}

impl TrackingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackingStatus::UsedSinceTracking => "used_since_tracking",
            TrackingStatus::UnusedSinceCreation => "unused_since_creation",
            TrackingStatus::UnknownBeforeTracking => "unknown_before_tracking",
            TrackingStatus::Error => "error",
        }
    }
}

pub fn classify(key: &Key) -> TrackingStatus {
    if key.error.is_some() {
        return TrackingStatus::Error;
    }
    if key.last_usage.is_some() {
        return TrackingStatus::UsedSinceTracking;
    }
    match (key.creation, key.tracking_start) {
        (Some(created), Some(start)) if created >= start => TrackingStatus::UnusedSinceCreation,
        (Some(_), Some(_)) => TrackingStatus::UnknownBeforeTracking,
        // The inventory guarantees both dates when there is no error.
        _ => TrackingStatus::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::parse_line;

    fn check(line: &str, expected: TrackingStatus) {
        let key = parse_line(line).unwrap();
        assert_eq!(classify(&key), expected, "case {line}");
    }

    #[test]
    fn the_three_cases_and_error() {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/k1";
        check(
            &format!(
                r#"{{"KeyId":"{arn}","KeyLastUsage":{{"Timestamp":1776000000,"Operation":"Sign"}},"TrackingStartDate":1775000000,"KeyCreationDate":1700000000}}"#
            ),
            TrackingStatus::UsedSinceTracking,
        );
        // Used, and created after tracking began: still "used".
        check(
            &format!(
                r#"{{"KeyId":"{arn}","KeyLastUsage":{{"Timestamp":1776000000}},"TrackingStartDate":1775500000,"KeyCreationDate":1775500000}}"#
            ),
            TrackingStatus::UsedSinceTracking,
        );
        // `{}` is not a use; creation equal to tracking start is "unused since creation".
        check(
            &format!(
                r#"{{"KeyId":"{arn}","KeyLastUsage":{{}},"TrackingStartDate":1775500000,"KeyCreationDate":1775500000}}"#
            ),
            TrackingStatus::UnusedSinceCreation,
        );
        check(
            &format!(
                r#"{{"KeyId":"{arn}","KeyLastUsage":{{"Operation":null,"Timestamp":null}},"TrackingStartDate":1775000000,"KeyCreationDate":1774999999.9}}"#
            ),
            TrackingStatus::UnknownBeforeTracking,
        );
        check(
            &format!(r#"{{"KeyId":"{arn}","Error":"ThrottlingException"}}"#),
            TrackingStatus::Error,
        );
    }
}
