-- What depends on a key, as its uses in the logs show: the buckets, volumes, databases, tables,
-- secrets, functions and trails whose data it protects, or the services that called it. A
-- resource that is absent here was not seen in the uses found — not proof that none depends on
-- the key (a backfill only sees the window it read). Parameter: the key's ARN.
SELECT service, resource, first_seen, last_seen, uses, principals
FROM key_dependents
WHERE key_arn = ?
ORDER BY service, resource;
