//! report::columns: Parquet columns as Athena reads them — strings, `TIMESTAMP(MILLIS, UTC)`
//! instants, `DATE` days, lists of strings.

use crate::model::Instant;
use chrono::NaiveDate;
use polars::chunked_array::builder::get_list_builder;
use polars::prelude::*;

pub(super) fn s(name: &str, v: Vec<Option<&str>>) -> Column {
    Column::new(name.into(), v)
}

pub(super) fn ts(name: &str, v: Vec<Option<Instant>>) -> PolarsResult<Column> {
    let millis: Vec<Option<i64>> = v
        .into_iter()
        .map(|t| t.map(|t| t.timestamp_millis()))
        .collect();
    Ok(Series::new(name.into(), millis)
        .cast(&DataType::Datetime(
            TimeUnit::Milliseconds,
            Some(TimeZone::UTC),
        ))?
        .into())
}

pub(super) fn date(name: &str, v: Vec<NaiveDate>) -> PolarsResult<Column> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid");
    let days: Vec<i32> = v
        .into_iter()
        .map(|d| (d - epoch).num_days() as i32)
        .collect();
    Ok(Series::new(name.into(), days).cast(&DataType::Date)?.into())
}

pub(super) fn list(name: &str, v: Vec<&[String]>) -> Column {
    let total = v.iter().map(|l| l.len()).sum();
    let mut b = get_list_builder(&DataType::String, total, v.len(), name.into());
    for l in v {
        let items: Vec<&str> = l.iter().map(String::as_str).collect();
        b.append_series(&Series::new("".into(), items))
            .expect("string list");
    }
    b.finish().into_series().into()
}
