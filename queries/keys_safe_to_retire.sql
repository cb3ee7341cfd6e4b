-- Keys with no evidence of any use: created after KMS began tracking and never used since, or
-- no use found in a complete CloudTrail backfill from key creation — and nothing seen depending
-- on them, and nobody seen trying them (a refused call is someone who would break). Customer-
-- managed keys only (AWS-managed keys cannot be deleted). AWS advises against deleting on
-- last-usage data alone: disable the key first and watch CloudTrail for DisabledException before
-- scheduling deletion.
SELECT key_arn, account_id, region, aliases, key_state, verdict, verdict_reason
FROM key_usage
WHERE verdict IN ('never_used', 'no_use_found')
  AND coalesce(key_manager, 'CUSTOMER') = 'CUSTOMER'
  AND coalesce(key_state, '') NOT IN ('PendingDeletion', 'PendingReplicaDeletion')
  AND coalesce(dependents, 0) = 0
  AND coalesce(failed_attempts, 0) = 0
ORDER BY account_id, region, key_arn;
