-- keytrail key_dependents: per key, each resource its uses found in the logs name as depending on
-- it — from the encryption context AWS services put in their KMS calls (an S3 bucket, an EBS
-- volume, an RDS instance, a DynamoDB table, a Secrets Manager secret, a Lambda function, a
-- trail), or the calling service where none is named; unknown context keys are kept as `context`
-- rows (`key=value`). Partitioned like kms_events: list your accounts and regions.
CREATE EXTERNAL TABLE IF NOT EXISTS key_dependents (
  key_arn     string,
  service     string,
  resource    string,
  first_seen  timestamp,
  last_seen   timestamp,
  uses        bigint,
  principals  array<string>
)
PARTITIONED BY (account_id string, region string)
STORED AS PARQUET
LOCATION 's3://REPORT-BUCKET/keytrail/key_dependents/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.account_id.type' = 'enum',
  'projection.account_id.values' = '111122223333,044455556666',
  'projection.region.type' = 'enum',
  'projection.region.values' = 'us-east-1,eu-west-1',
  'storage.location.template' = 's3://REPORT-BUCKET/keytrail/key_dependents/account_id=${account_id}/region=${region}/'
);
