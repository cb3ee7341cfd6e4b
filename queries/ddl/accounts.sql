-- keytrail accounts: one row per account the run examined or meant to. status: inventoried (its
-- keys were listed in `regions`) | skipped (an organization account that is not ACTIVE; reason
-- names its state) | failed (its role could not be assumed, or its keys could not be listed;
-- reason says why — its keys were not examined). keys: keys inventoried in it; keys_failed: of
-- them, those GetKeyLastUsage failed for. account_id is a 12-character string (ids can start
-- with 0).
CREATE EXTERNAL TABLE IF NOT EXISTS accounts (
  account_id    string,
  account_name  string,
  status        string,
  reason        string,
  regions       array<string>,
  keys          bigint,
  keys_failed   bigint
)
STORED AS PARQUET
LOCATION 's3://REPORT-BUCKET/keytrail/accounts/';
