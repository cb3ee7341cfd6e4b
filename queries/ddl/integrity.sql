-- keytrail integrity: one row per finding of the CloudTrail digest check (written when the check
-- ran). kind: log_missing | log_unlisted | log_modified | digest_missing | digest_moved |
-- digest_hash_mismatch | digest_bad_signature | public_key_not_found — each a failure — or
-- chain_restart (informational: the chain starts again after logging or validation was off; no
-- digest covers first_day..last_day). first_day..last_day: the delivery days concerned.
CREATE EXTERNAL TABLE IF NOT EXISTS integrity (
  object      string,
  kind        string,
  detail      string,
  account_id  string,
  region      string,
  first_day   date,
  last_day    date
)
STORED AS PARQUET
LOCATION 's3://REPORT-BUCKET/keytrail/integrity/';
