-- keytrail scan_manifest: one row per log object considered (read, skipped and why, or
-- unreadable and why).
CREATE EXTERNAL TABLE IF NOT EXISTS scan_manifest (
  object               string,
  size_bytes           bigint,
  status               string,
  reason               string,
  records              bigint,
  kms_records          bigint,
  malformed_records    bigint,
  unattributable_uses  bigint,
  account_id           string,
  region               string,
  delivery_date        date,
  sha256               string
)
STORED AS PARQUET
LOCATION 's3://REPORT-BUCKET/keytrail/scan_manifest/';
