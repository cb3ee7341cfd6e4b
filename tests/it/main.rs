//! keytrail's integration tests: one binary, so linking happens once. They drive the real
//! `keytrail` binary on synthetic archives and check its report against the generator's ground
//! truth and against an independent engine (DuckDB / pyarrow).

mod architecture;
mod cli;
mod common;
mod decode;
mod deploy;
mod fake_aws;
mod hostile;
mod integrity;
mod live;
mod proxy;
mod report_check;
mod report_html;
mod resume;
mod s3;
mod shards;
mod truth;
