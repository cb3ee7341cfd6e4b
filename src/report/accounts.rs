//! report::accounts: the `accounts/` table, one row per account examined (or that could not be);
//! columns in the order of `queries/ddl/accounts.sql`.

use super::columns::{list, s};
use crate::inventory::accounts::AccountRow;
use polars::prelude::*;

pub(super) fn accounts_frame(rows: &[AccountRow]) -> PolarsResult<DataFrame> {
    let count = |name: &str, f: fn(&AccountRow) -> usize| {
        Column::new(
            name.into(),
            rows.iter().map(|r| f(r) as i64).collect::<Vec<i64>>(),
        )
    };
    DataFrame::new(
        rows.len(),
        vec![
            s(
                "account_id",
                rows.iter().map(|r| Some(r.account.id.as_str())).collect(),
            ),
            s(
                "account_name",
                rows.iter().map(|r| r.account.name.as_deref()).collect(),
            ),
            s(
                "status",
                rows.iter()
                    .map(|r| Some(r.account.status.as_str()))
                    .collect(),
            ),
            s(
                "reason",
                rows.iter().map(|r| r.account.reason.as_deref()).collect(),
            ),
            list(
                "regions",
                rows.iter().map(|r| r.account.regions.as_slice()).collect(),
            ),
            count("keys", |r| r.keys),
            count("keys_failed", |r| r.keys_failed),
        ],
    )
}
