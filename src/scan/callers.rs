//! scan::callers: who really made a cross-account call. The key owner's copy of such a call names
//! only the caller's account (`userIdentity.type` `AWSAccount`); the caller's own copy — the same
//! `sharedEventID`, delivered to the caller account's folder of the call's region — names the
//! role session or user, the source IP and the agent. [`wanted`] finds, from a scan's result,
//! the callers' folders to read for the copies it lacks (the event's day and the day after, as
//! records are filed by delivery time); [`keep_wanted`] keeps, of what reading them gave, only
//! those copies — every object stays in the manifest, but no use is counted from them, so a
//! key's row never depends on which other keys were in the run.

use super::ScanResult;
use crate::archive::layout::DayPrefix;
use crate::model::day_of;
use std::collections::BTreeSet;

/// The callers' folders to read, and the calls (`sharedEventID`s) whose caller copies are wanted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub prefixes: BTreeSet<DayPrefix>,
    pub calls: BTreeSet<String>,
}

/// For every owner's copy of a cross-account use in `result` whose caller's copy was not read:
/// the caller account's folders of the call's region on the event's day and the day after.
pub fn wanted(result: &ScanResult) -> Wanted {
    let have: BTreeSet<&str> = result
        .uses
        .iter()
        .filter(|c| c.is_caller_copy())
        .filter_map(|c| c.shared_event_id.as_deref())
        .collect();
    let mut out = Wanted::default();
    for c in result.uses.iter().filter(|c| c.is_owner_copy()) {
        let (Some(call), Some(caller)) = (&c.shared_event_id, &c.principal_account) else {
            continue;
        };
        if caller == c.key.account() || have.contains(call.as_str()) {
            continue;
        }
        let day = day_of(c.event_time);
        for day in [day, day.succ_opt().expect("date in range")] {
            out.prefixes.insert(DayPrefix {
                account: caller.clone(),
                region: c.key.region().to_string(),
                day,
            });
        }
        out.calls.insert(call.clone());
    }
    out
}

/// Of a scan of the callers' folders, every manifest row, but only the caller copies of the
/// `calls` wanted.
pub fn keep_wanted(mut result: ScanResult, calls: &BTreeSet<String>) -> ScanResult {
    result.uses.retain(|c| {
        c.is_caller_copy()
            && c.shared_event_id
                .as_deref()
                .is_some_and(|id| calls.contains(id))
    });
    result.stats.use_copies = result.uses.len() as u64;
    // These folders are read to name the callers of known uses, not for the plan's evidence:
    // failed attempts there are outside what the run set out to read.
    result.failed.clear();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::KeyArn;
    use crate::scan::record::{KeyRole, UseCopy};

    const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn copy(recipient: &str, caller: &str, shared: &str, time: &str) -> UseCopy {
        UseCopy {
            key: KeyArn::parse(KEY).unwrap(),
            role: KeyRole::Key,
            event_id: format!("{recipient}-{shared}"),
            shared_event_id: Some(shared.into()),
            event_time: time.parse().unwrap(),
            operation: "Decrypt".into(),
            principal_arn: None,
            principal_type: Some("AWSAccount".into()),
            principal_account: Some(caller.into()),
            invoked_by: None,
            source_ip: None,
            user_agent: None,
            encryption_context: None,
            recipient_account_id: Some(recipient.into()),
            log_object: format!("{recipient}/{shared}"),
            error_code: None,
            error_message: None,
            resolved_by: Default::default(),
            via_alias: None,
        }
    }

    fn day(account: &str, d: &str) -> DayPrefix {
        DayPrefix {
            account: account.into(),
            region: "eu-west-1".into(),
            day: d.parse().unwrap(),
        }
    }

    #[test]
    fn a_cross_account_use_without_its_caller_copy_wants_the_callers_two_days() {
        let owner = "111122223333";
        let caller = "044455556666";
        let result = ScanResult {
            uses: vec![
                // Late in the day: its caller's copy may be delivered the next day.
                copy(owner, caller, "s1", "2026-02-10T23:58:00Z"),
                // Its caller's copy was read already: nothing to add.
                copy(owner, caller, "s2", "2026-02-11T08:00:00Z"),
                copy(caller, caller, "s2", "2026-02-11T08:00:00Z"),
                // The owner calling its own key is no cross-account call.
                copy(owner, owner, "s3", "2026-02-12T08:00:00Z"),
            ],
            ..ScanResult::default()
        };
        let w = wanted(&result);
        assert_eq!(
            w.prefixes,
            [day(caller, "2026-02-10"), day(caller, "2026-02-11")].into()
        );
        assert_eq!(w.calls, ["s1".to_string()].into());

        let read = ScanResult {
            uses: vec![
                copy(caller, caller, "s1", "2026-02-10T23:58:00Z"),
                // Another call's caller copy, and an owner's copy of a key of the caller's own.
                copy(caller, caller, "s9", "2026-02-10T12:00:00Z"),
                copy(owner, caller, "s8", "2026-02-10T12:00:00Z"),
            ],
            ..ScanResult::default()
        };
        let kept = keep_wanted(read, &w.calls);
        let ids: Vec<&str> = kept.uses.iter().map(|c| c.event_id.as_str()).collect();
        assert_eq!(ids, ["044455556666-s1"]);
        assert_eq!(kept.stats.use_copies, 1);
    }
}
