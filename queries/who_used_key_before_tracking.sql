-- Who used one key before KMS began tracking its usage, from the CloudTrail backfill.
-- Parameter: the key ARN (Athena: EXECUTE ... USING 'arn:aws:kms:...').
SELECT coalesce(e.principal_arn, e.invoked_by, e.principal_account) AS principal,
       count(DISTINCT e.event_id) AS uses,
       min(e.event_time) AS first_use,
       max(e.event_time) AS last_use
FROM kms_events e
JOIN key_usage k ON k.key_arn = e.key_arn
WHERE e.key_arn = ?
  AND e.event_time < k.tracking_start_date
GROUP BY 1
ORDER BY last_use DESC, principal;
