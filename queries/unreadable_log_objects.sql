-- Log objects keytrail could not read, and why. Each one weakens the verdicts of the keys of
-- its account and region whose backfill window covers its delivery day.
SELECT account_id, region, delivery_date, object, size_bytes, reason
FROM scan_manifest
WHERE status = 'unreadable'
ORDER BY account_id, region, delivery_date, object;
