-- keytrail key_usage: one row per KMS key. Replace the LOCATION with where the report's
-- key_usage/ folder is (s3://bucket/prefix/key_usage/). coverage_days_expected / coverage_days_read
-- are NULL for a key without a backfill window (nothing was measured), not 0.
CREATE EXTERNAL TABLE IF NOT EXISTS key_usage (
  key_arn                      string,
  key_id                       string,
  account_id                   string,
  region                       string,
  aliases                      array<string>,
  key_state                    string,
  key_manager                  string,
  multi_region                 boolean,
  key_creation_date            timestamp,
  tracking_start_date          timestamp,
  tracking_status              string,
  last_usage_operation         string,
  last_usage_time              timestamp,
  last_usage_event_id          string,
  last_usage_kms_request_id    string,
  last_usage_event_found       boolean,
  last_usage_principal         string,
  last_usage_source_ip         string,
  last_usage_user_agent        string,
  backfill_window_start        timestamp,
  backfill_window_end          timestamp,
  pre_tracking_use_count       bigint,
  pre_tracking_first_use       timestamp,
  pre_tracking_last_use        timestamp,
  pre_tracking_last_operation  string,
  pre_tracking_last_event_id   string,
  pre_tracking_principals      array<string>,
  coverage_days_expected       bigint,
  coverage_days_read           bigint,
  unreadable_objects           bigint,
  verdict                      string,
  verdict_reason               string,
  integrity_status             string,
  integrity_failures           bigint,
  dependents                   bigint,
  dependent_services           array<string>
)
STORED AS PARQUET
LOCATION 's3://REPORT-BUCKET/keytrail/key_usage/';
