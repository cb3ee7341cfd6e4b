//! report::key_usage: the `key_usage/` table, one row per key, its columns in the order of
//! `queries/ddl/key_usage.sql`. The frame is one long column list, on purpose: it reads like the DDL.

use super::columns::{list, s, ts};
use crate::correlate::KeyUsage;
use polars::prelude::*;

pub(super) fn key_usage_frame(f: &[KeyUsage]) -> PolarsResult<DataFrame> {
    let lu = |g: fn(&crate::inventory::LastUsage) -> Option<&str>| -> Vec<Option<&str>> {
        f.iter()
            .map(|x| x.key.last_usage.as_ref().and_then(g))
            .collect()
    };
    // Each key's dependent services, distinct and sorted.
    let services: Vec<Vec<String>> = f
        .iter()
        .map(|x| {
            let set: std::collections::BTreeSet<&str> = x
                .dependents
                .iter()
                .map(|d| d.named.service.as_str())
                .collect();
            set.into_iter().map(str::to_string).collect()
        })
        .collect();
    DataFrame::new(
        f.len(),
        vec![
            s(
                "key_arn",
                f.iter().map(|x| Some(x.key.arn.as_str())).collect(),
            ),
            s(
                "key_id",
                f.iter().map(|x| Some(x.key.arn.key_id())).collect(),
            ),
            s(
                "account_id",
                f.iter().map(|x| Some(x.key.arn.account())).collect(),
            ),
            s(
                "region",
                f.iter().map(|x| Some(x.key.arn.region())).collect(),
            ),
            list(
                "aliases",
                f.iter().map(|x| x.key.aliases.as_slice()).collect(),
            ),
            s(
                "key_state",
                f.iter().map(|x| x.key.key_state.as_deref()).collect(),
            ),
            s(
                "key_manager",
                f.iter().map(|x| x.key.key_manager.as_deref()).collect(),
            ),
            Column::new(
                "multi_region".into(),
                f.iter().map(multi_region).collect::<Vec<_>>(),
            ),
            ts(
                "key_creation_date",
                f.iter().map(|x| x.key.creation).collect(),
            )?,
            ts(
                "tracking_start_date",
                f.iter().map(|x| x.key.tracking_start).collect(),
            )?,
            s(
                "tracking_status",
                f.iter().map(|x| Some(x.status.as_str())).collect(),
            ),
            s("last_usage_operation", lu(|u| u.operation.as_deref())),
            ts(
                "last_usage_time",
                f.iter()
                    .map(|x| x.key.last_usage.as_ref().map(|u| u.timestamp))
                    .collect(),
            )?,
            s("last_usage_event_id", lu(|u| u.event_id.as_deref())),
            s(
                "last_usage_kms_request_id",
                lu(|u| u.kms_request_id.as_deref()),
            ),
            Column::new(
                "last_usage_event_found".into(),
                f.iter()
                    .map(|x| x.last_usage_event_found)
                    .collect::<Vec<_>>(),
            ),
            s(
                "last_usage_principal",
                f.iter()
                    .map(|x| x.last_usage_principal.as_deref())
                    .collect(),
            ),
            s(
                "last_usage_source_ip",
                f.iter()
                    .map(|x| x.last_usage_source_ip.as_deref())
                    .collect(),
            ),
            s(
                "last_usage_user_agent",
                f.iter()
                    .map(|x| x.last_usage_user_agent.as_deref())
                    .collect(),
            ),
            ts(
                "backfill_window_start",
                f.iter().map(|x| x.window.map(|w| w.start)).collect(),
            )?,
            ts(
                "backfill_window_end",
                f.iter().map(|x| x.window.map(|w| w.end)).collect(),
            )?,
            Column::new(
                "pre_tracking_use_count".into(),
                f.iter()
                    .map(|x| x.pre_tracking_use_count)
                    .collect::<Vec<i64>>(),
            ),
            ts(
                "pre_tracking_first_use",
                f.iter().map(|x| x.pre_tracking_first_use).collect(),
            )?,
            ts(
                "pre_tracking_last_use",
                f.iter().map(|x| x.pre_tracking_last_use).collect(),
            )?,
            s(
                "pre_tracking_last_operation",
                f.iter()
                    .map(|x| x.pre_tracking_last_operation.as_deref())
                    .collect(),
            ),
            s(
                "pre_tracking_last_event_id",
                f.iter()
                    .map(|x| x.pre_tracking_last_event_id.as_deref())
                    .collect(),
            ),
            list(
                "pre_tracking_principals",
                f.iter()
                    .map(|x| x.pre_tracking_principals.as_slice())
                    .collect(),
            ),
            Column::new(
                "coverage_days_expected".into(),
                f.iter()
                    .map(|x| x.coverage_days_expected)
                    .collect::<Vec<Option<i64>>>(),
            ),
            Column::new(
                "coverage_days_read".into(),
                f.iter()
                    .map(|x| x.coverage_days_read)
                    .collect::<Vec<Option<i64>>>(),
            ),
            Column::new(
                "unreadable_objects".into(),
                f.iter().map(|x| x.unreadable_objects).collect::<Vec<i64>>(),
            ),
            s(
                "verdict",
                f.iter().map(|x| Some(x.verdict.as_str())).collect(),
            ),
            s(
                "verdict_reason",
                f.iter().map(|x| Some(x.verdict_reason.as_str())).collect(),
            ),
            s(
                "integrity_status",
                f.iter().map(|x| Some(x.integrity_status)).collect(),
            ),
            Column::new(
                "integrity_failures".into(),
                f.iter().map(|x| x.integrity_failures).collect::<Vec<i64>>(),
            ),
            Column::new(
                "dependents".into(),
                f.iter()
                    .map(|x| x.dependents.len() as i64)
                    .collect::<Vec<i64>>(),
            ),
            list(
                "dependent_services",
                services.iter().map(Vec::as_slice).collect(),
            ),
            Column::new(
                "failed_attempts".into(),
                f.iter().map(|x| x.failed_attempts).collect::<Vec<i64>>(),
            ),
            ts(
                "last_failed_attempt",
                f.iter().map(|x| x.last_failed_attempt).collect(),
            )?,
        ],
    )
}

/// `multi_region` from `DescribeKey`, else from the key id (`mrk-` ids are multi-Region keys).
fn multi_region(f: &KeyUsage) -> bool {
    f.key
        .multi_region
        .unwrap_or_else(|| f.key.arn.key_id().starts_with("mrk-"))
}
