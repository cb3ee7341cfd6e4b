-- Watch, in the CloudTrail table itself, who still calls keys you disabled or scheduled for
-- deletion: every KMS call on them that KMS refused for the key's state. For the table AWS
-- documents for Athena ("Creating the table for CloudTrail logs in Athena": `cloudtrail_logs`,
-- `resources array<struct<arn, accountid, type>>`); it needs no keytrail report, so it can run
-- every day after you disable a key. Put the keys in `watched` and, on a partitioned table, a
-- predicate on its date partition to bound what is scanned.
WITH watched(arn) AS (
  VALUES ('arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab')
)
SELECT r.arn AS key_arn, eventtime, eventname, errorcode, errormessage,
       coalesce(useridentity.arn, useridentity.invokedby, useridentity.accountid) AS caller,
       sourceipaddress
FROM cloudtrail_logs
CROSS JOIN UNNEST(resources) AS t(r)
WHERE eventsource = 'kms.amazonaws.com'
  AND errorcode IN ('DisabledException', 'KMSInvalidStateException')
  AND r.arn IN (SELECT arn FROM watched)
ORDER BY key_arn, eventtime;
