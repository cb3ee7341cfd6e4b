-- Keys for which keytrail could not reach a verdict, and why: the archive starts after key
-- creation, days without readable logs, unreadable objects, GetKeyLastUsage errors, ...
SELECT key_arn, account_id, region, tracking_status,
       coverage_days_expected, coverage_days_read, unreadable_objects,
       verdict_reason
FROM key_usage
WHERE verdict = 'inconclusive'
ORDER BY account_id, region, key_arn;
