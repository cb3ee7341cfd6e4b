-- Keys used by principals of another account than the key's own. To see only callers from
-- outside your organization, add: AND e.principal_account NOT IN ('<member account>', ...).
SELECT e.key_arn,
       e.account_id AS key_account,
       e.principal_account AS caller_account,
       count(DISTINCT e.event_id) AS uses,
       min(e.event_time) AS first_use,
       max(e.event_time) AS last_use
FROM kms_events e
WHERE e.principal_account IS NOT NULL
  AND e.principal_account <> e.account_id
GROUP BY e.key_arn, e.account_id, e.principal_account
ORDER BY e.key_arn, caller_account;
