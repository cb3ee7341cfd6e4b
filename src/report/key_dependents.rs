//! report::key_dependents: the `key_dependents/` table, one row per key and dependent resource
//! (or calling service) its uses found in the logs name, partitioned like `kms_events` by the
//! key's account and region; columns in the order of `queries/ddl/key_dependents.sql`.

use super::columns::{list, s, ts};
use crate::correlate::KeyUsage;
use crate::dependents::Dependent;
use polars::prelude::*;

pub(super) fn key_dependents_frame(rows: &[(&KeyUsage, &Dependent)]) -> PolarsResult<DataFrame> {
    DataFrame::new(
        rows.len(),
        vec![
            s(
                "key_arn",
                rows.iter().map(|(k, _)| Some(k.key.arn.as_str())).collect(),
            ),
            s(
                "service",
                rows.iter()
                    .map(|(_, d)| Some(d.named.service.as_str()))
                    .collect(),
            ),
            s(
                "resource",
                rows.iter()
                    .map(|(_, d)| Some(d.named.resource.as_str()))
                    .collect(),
            ),
            ts(
                "first_seen",
                rows.iter().map(|(_, d)| Some(d.first_seen)).collect(),
            )?,
            ts(
                "last_seen",
                rows.iter().map(|(_, d)| Some(d.last_seen)).collect(),
            )?,
            Column::new(
                "uses".into(),
                rows.iter().map(|(_, d)| d.uses).collect::<Vec<i64>>(),
            ),
            list(
                "principals",
                rows.iter().map(|(_, d)| d.principals.as_slice()).collect(),
            ),
        ],
    )
}
