//! report::scan_manifest: the `scan_manifest/` table, one row per object considered; columns in
//! the order of `queries/ddl/scan_manifest.sql`.

use super::columns::{date, s};
use crate::scan::ManifestRow;
use polars::prelude::*;

pub(super) fn manifest_frame(m: &[ManifestRow]) -> PolarsResult<DataFrame> {
    let n = |g: fn(&ManifestRow) -> u64| -> Column {
        Column::new(
            "".into(),
            m.iter().map(|r| g(r) as i64).collect::<Vec<i64>>(),
        )
    };
    DataFrame::new(
        m.len(),
        vec![
            s(
                "object",
                m.iter().map(|r| Some(r.object.as_str())).collect(),
            ),
            n(|r| r.size_bytes).with_name("size_bytes".into()),
            s(
                "status",
                m.iter().map(|r| Some(r.status.as_str())).collect(),
            ),
            s("reason", m.iter().map(|r| r.reason.as_deref()).collect()),
            n(|r| r.records).with_name("records".into()),
            n(|r| r.kms_records).with_name("kms_records".into()),
            n(|r| r.malformed_records).with_name("malformed_records".into()),
            n(|r| r.unattributable_uses).with_name("unattributable_uses".into()),
            s(
                "account_id",
                m.iter().map(|r| Some(r.account_id.as_str())).collect(),
            ),
            s(
                "region",
                m.iter().map(|r| Some(r.region.as_str())).collect(),
            ),
            date("delivery_date", m.iter().map(|r| r.delivery_date).collect())?,
            s("sha256", m.iter().map(|r| r.sha256.as_deref()).collect()),
        ],
    )
}
