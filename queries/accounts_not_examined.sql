-- Accounts whose keys were not examined, or not all of them: the accounts keytrail could not
-- enter or list (failed), those it skipped (not ACTIVE), and those where GetKeyLastUsage failed
-- for some keys. A report is complete for the organization only when this returns no row.
SELECT account_id, account_name, status, reason, keys, keys_failed
FROM accounts
WHERE status <> 'inventoried' OR keys_failed > 0
ORDER BY status, account_id;
