-- keytrail failed_attempts: one row per failed call on a key found in the logs read — who still
-- tries to use it (DisabledException: the key is disabled; KMSInvalidStateException: pending
-- deletion or otherwise unusable; AccessDeniedException, NotFoundException, IncorrectKeyException,
-- ...). Partitioned like kms_events: list your accounts and regions.
CREATE EXTERNAL TABLE IF NOT EXISTS failed_attempts (
  key_arn               string,
  key_role              string,
  event_id              string,
  event_time            timestamp,
  operation             string,
  error_code            string,
  error_message         string,
  principal_arn         string,
  principal_account     string,
  invoked_by            string,
  source_ip             string,
  user_agent            string,
  recipient_account_id  string,
  log_object            string
)
PARTITIONED BY (account_id string, region string)
STORED AS PARQUET
LOCATION 's3://REPORT-BUCKET/keytrail/failed_attempts/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.account_id.type' = 'enum',
  'projection.account_id.values' = '111122223333,044455556666',
  'projection.region.type' = 'enum',
  'projection.region.values' = 'us-east-1,eu-west-1',
  'storage.location.template' = 's3://REPORT-BUCKET/keytrail/failed_attempts/account_id=${account_id}/region=${region}/'
);
