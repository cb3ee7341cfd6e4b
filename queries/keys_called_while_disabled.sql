-- Keys that callers still try to use although they are disabled or pending deletion: retiring
-- them would break whoever is calling. One row per key and caller, with the error, how often and
-- when last.
SELECT key_arn, account_id, region, coalesce(principal_arn, invoked_by, principal_account) AS caller,
       error_code, count(*) AS attempts, max(event_time) AS last_attempt
FROM failed_attempts
WHERE error_code IN ('DisabledException', 'KMSInvalidStateException')
GROUP BY key_arn, account_id, region, coalesce(principal_arn, invoked_by, principal_account), error_code
ORDER BY account_id, region, key_arn, caller, error_code;
