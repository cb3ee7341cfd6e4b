//! report::integrity: the `integrity/` table, one row per digest-chain finding; columns in the
//! order of `queries/ddl/integrity.sql`.

use super::columns::{date, s};
use crate::integrity::Finding;
use polars::prelude::*;

pub(super) fn integrity_frame(f: &[Finding]) -> PolarsResult<DataFrame> {
    DataFrame::new(
        f.len(),
        vec![
            s(
                "object",
                f.iter().map(|x| Some(x.object.as_str())).collect(),
            ),
            s("kind", f.iter().map(|x| Some(x.kind.as_str())).collect()),
            s(
                "detail",
                f.iter().map(|x| Some(x.detail.as_str())).collect(),
            ),
            s(
                "account_id",
                f.iter().map(|x| Some(x.account_id.as_str())).collect(),
            ),
            s(
                "region",
                f.iter().map(|x| Some(x.region.as_str())).collect(),
            ),
            date(
                "first_day",
                f.iter()
                    .map(|x| x.days.first().copied().unwrap_or_default())
                    .collect(),
            )?,
            date(
                "last_day",
                f.iter()
                    .map(|x| x.days.last().copied().unwrap_or_default())
                    .collect(),
            )?,
        ],
    )
}
