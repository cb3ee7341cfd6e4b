//! report::kms_events: the `kms_events/` table, one row per use, written per
//! `account_id=`/`region=` partition; columns in the order of `queries/ddl/kms_events.sql`.

use super::columns::{s, ts};
use crate::correlate::Use;
use polars::prelude::*;

/// One partition of `kms_events`; `account_id` and `region` are the partition folders.
pub(super) fn kms_events_frame(u: &[&Use]) -> PolarsResult<DataFrame> {
    DataFrame::new(
        u.len(),
        vec![
            s("key_arn", u.iter().map(|x| Some(x.key.as_str())).collect()),
            s(
                "key_role",
                u.iter().map(|x| Some(x.role.as_str())).collect(),
            ),
            s(
                "event_id",
                u.iter().map(|x| Some(x.event_id.as_str())).collect(),
            ),
            s(
                "shared_event_id",
                u.iter().map(|x| x.shared_event_id.as_deref()).collect(),
            ),
            s(
                "caller_event_id",
                u.iter().map(|x| x.caller_event_id.as_deref()).collect(),
            ),
            ts("event_time", u.iter().map(|x| Some(x.event_time)).collect())?,
            s(
                "operation",
                u.iter().map(|x| Some(x.operation.as_str())).collect(),
            ),
            s(
                "principal_arn",
                u.iter().map(|x| x.principal_arn.as_deref()).collect(),
            ),
            s(
                "principal_type",
                u.iter().map(|x| x.principal_type.as_deref()).collect(),
            ),
            s(
                "principal_account",
                u.iter().map(|x| x.principal_account.as_deref()).collect(),
            ),
            s(
                "invoked_by",
                u.iter().map(|x| x.invoked_by.as_deref()).collect(),
            ),
            s(
                "source_ip",
                u.iter().map(|x| x.source_ip.as_deref()).collect(),
            ),
            s(
                "user_agent",
                u.iter().map(|x| x.user_agent.as_deref()).collect(),
            ),
            s(
                "encryption_context",
                u.iter().map(|x| x.encryption_context.as_deref()).collect(),
            ),
            s(
                "recipient_account_id",
                u.iter()
                    .map(|x| x.recipient_account_id.as_deref())
                    .collect(),
            ),
            s(
                "log_object",
                u.iter().map(|x| Some(x.log_object.as_str())).collect(),
            ),
            s(
                "resolved_by",
                u.iter().map(|x| Some(x.resolved_by.as_str())).collect(),
            ),
        ],
    )
}
