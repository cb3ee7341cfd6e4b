//! report::failed_attempts: the `failed_attempts/` table, one row per failed call on a key found
//! in the logs read (`DisabledException`, `KMSInvalidStateException`, `AccessDeniedException`,
//! ...), partitioned like `kms_events` by the key's account and region; columns in the order of
//! `queries/ddl/failed_attempts.sql`.

use super::columns::{s, ts};
use crate::scan::record::UseCopy;
use polars::prelude::*;

pub(super) fn failed_attempts_frame(rows: &[&UseCopy]) -> PolarsResult<DataFrame> {
    let text = |g: fn(&UseCopy) -> Option<&str>| -> Vec<Option<&str>> {
        rows.iter().map(|r| g(r)).collect()
    };
    DataFrame::new(
        rows.len(),
        vec![
            s("key_arn", text(|r| Some(r.key.as_str()))),
            s("key_role", text(|r| Some(r.role.as_str()))),
            s("event_id", text(|r| Some(r.event_id.as_str()))),
            ts(
                "event_time",
                rows.iter().map(|r| Some(r.event_time)).collect(),
            )?,
            s("operation", text(|r| Some(r.operation.as_str()))),
            s("error_code", text(|r| r.error_code.as_deref())),
            s("error_message", text(|r| r.error_message.as_deref())),
            s("principal_arn", text(|r| r.principal_arn.as_deref())),
            s(
                "principal_account",
                text(|r| r.principal_account.as_deref()),
            ),
            s("invoked_by", text(|r| r.invoked_by.as_deref())),
            s("source_ip", text(|r| r.source_ip.as_deref())),
            s("user_agent", text(|r| r.user_agent.as_deref())),
            s(
                "recipient_account_id",
                text(|r| r.recipient_account_id.as_deref()),
            ),
            s("log_object", text(|r| Some(r.log_object.as_str()))),
        ],
    )
}
