-- keytrail kms_events: one row per use found (after deduplication), partitioned by the key's
-- account and region. resolved_by says how the record named the key: resources, key_arn,
-- key_id, alias_at_event_time (the alias as its CreateAlias/UpdateAlias/DeleteAlias records in
-- the logs had it then) or alias_today. Partition projection needs every value listed: put your accounts and
-- regions in the two `values` lists (account ids as written, leading zeros kept: they are strings),
-- and the report's location in LOCATION and the template.
CREATE EXTERNAL TABLE IF NOT EXISTS kms_events (
  key_arn               string,
  key_role              string,
  event_id              string,
  shared_event_id       string,
  caller_event_id       string,
  event_time            timestamp,
  operation             string,
  principal_arn         string,
  principal_type        string,
  principal_account     string,
  invoked_by            string,
  source_ip             string,
  user_agent            string,
  encryption_context    string,
  recipient_account_id  string,
  log_object            string,
  resolved_by           string
)
PARTITIONED BY (account_id string, region string)
STORED AS PARQUET
LOCATION 's3://REPORT-BUCKET/keytrail/kms_events/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.account_id.type' = 'enum',
  'projection.account_id.values' = '111122223333,044455556666',
  'projection.region.type' = 'enum',
  'projection.region.values' = 'us-east-1,eu-west-1',
  'storage.location.template' = 's3://REPORT-BUCKET/keytrail/kms_events/account_id=${account_id}/region=${region}/'
);
