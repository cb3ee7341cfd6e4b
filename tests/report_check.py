"""Checks a keytrail report with engines independent of keytrail (pyarrow, DuckDB).

usage: report_check.py REPORT_DIR TRUTH_JSON QUERIES_DIR LOGS_DIR

1. Parquet schema: every table's column names, in order, are those of its Athena DDL, and each
   column's type matches the DDL type (timestamps as INT64 TIMESTAMP(MILLIS, UTC-adjusted)).
2. Every investigation query in QUERIES_DIR runs on DuckDB over the report, and its answer
   matches the generator's ground truth (TRUTH_JSON), which is computed without keytrail.
Prints one line per check and a closing 'N passed, N failed'; exits 1 on any failure.
"""
import glob
import json
import os
import re
import sys

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

report, truth_path, queries, logs = sys.argv[1:5]
truth = json.load(open(truth_path))
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok     " if ok else "FAILED ") + name + ("" if ok else ": " + detail))


def ddl_columns(path):
    """(name, type) of the columns of a CREATE EXTERNAL TABLE, partition columns last."""
    text = open(path).read()
    body = re.search(r"\((.*?)\)\s*(PARTITIONED|STORED)", text, re.S).group(1)
    cols = re.findall(r"^\s*(\w+)\s+([\w<>]+)\s*,?\s*$", body, re.M)
    part = re.search(r"PARTITIONED BY \((.*?)\)", text, re.S)
    parts = re.findall(r"(\w+)\s+(\w+)", part.group(1)) if part else []
    return cols, parts


def arrow_matches(ddl_type, t):
    if ddl_type == "string":
        return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
    if ddl_type == "bigint":
        return t == pa.int64()
    if ddl_type == "boolean":
        return t == pa.bool_()
    if ddl_type == "date":
        return t == pa.date32()
    if ddl_type == "timestamp":
        return pa.types.is_timestamp(t) and t.unit == "ms" and t.tz in ("UTC", "+00:00")
    if ddl_type == "array<string>":
        return (pa.types.is_list(t) or pa.types.is_large_list(t)) and arrow_matches("string", t.value_type)
    return False


tables = ["key_usage", "kms_events", "key_dependents", "failed_attempts", "scan_manifest", "accounts"]
if os.path.isdir(f"{report}/integrity"):
    tables.append("integrity")
for table in tables:
    files = sorted(glob.glob(f"{report}/{table}/**/*.parquet", recursive=True))
    check(f"{table}: has Parquet files", bool(files), "none found")
    cols, parts = ddl_columns(os.path.join(queries, "ddl", f"{table}.sql"))
    for f in files:
        schema = pq.read_schema(f)
        names = [n for n in schema.names]
        rel = os.path.relpath(f, report)
        check(f"{rel}: columns are the DDL's", names == [c for c, _ in cols], f"{names} vs {[c for c, _ in cols]}")
        bad = [(c, d, str(schema.field(c).type)) for c, d in cols if c in names and not arrow_matches(d, schema.field(c).type)]
        check(f"{rel}: types are the DDL's", not bad, str(bad))
        pschema = pq.ParquetFile(f).schema
        for i in range(len(pschema)):
            col = pschema.column(i)
            if dict(cols).get(col.name) == "timestamp":
                logical = str(col.logical_type)
                ok = col.physical_type == "INT64" and "isAdjustedToUTC=true" in logical and "milliseconds" in logical
                check(f"{rel}: {col.name} is INT64 TIMESTAMP(MILLIS, UTC)", ok, f"{col.physical_type} {logical}")
        if parts:
            folders = re.findall(r"(\w+)=", rel)
            check(f"{rel}: Hive partitions are the DDL's", folders == [p for p, _ in parts], str(folders))

# The report's own DDL: the templates' columns, and every account and region partition the
# report holds listed in kms_events' projection.
for table in tables:
    own = os.path.join(report, "athena", f"{table}.sql")
    check(f"athena/{table}.sql exists", os.path.exists(own))
    if os.path.exists(own):
        check(f"athena/{table}.sql has the template's columns", ddl_columns(own) == ddl_columns(os.path.join(queries, "ddl", f"{table}.sql")))
for partitioned in ("kms_events", "key_dependents", "failed_attempts"):
    own = open(os.path.join(report, "athena", f"{partitioned}.sql")).read()
    listed = lambda prop: set(re.search(r"'projection\.%s\.values'\s*=\s*'([^']*)'" % prop, own).group(1).split(","))
    for prop, folder in (("account_id", "account_id"), ("region", "region")):
        present = {m for f in glob.glob(f"{report}/{partitioned}/**/*.parquet", recursive=True) for m in re.findall(folder + r"=([^/]+)", f)}
        check(f"athena/{partitioned}.sql projects every {prop} present", present and present <= listed(prop), f"{present} vs {listed(prop)}")

con = duckdb.connect()
con.execute(f"CREATE VIEW key_usage AS SELECT * FROM read_parquet('{report}/key_usage/*.parquet')")
con.execute(
    f"CREATE VIEW kms_events AS SELECT * FROM read_parquet('{report}/kms_events/*/*/*.parquet', "
    "hive_partitioning = true, hive_types_autocast = false)"
)
con.execute(
    f"CREATE VIEW key_dependents AS SELECT * FROM read_parquet('{report}/key_dependents/*/*/*.parquet', "
    "hive_partitioning = true, hive_types_autocast = false)"
)
con.execute(
    f"CREATE VIEW failed_attempts AS SELECT * FROM read_parquet('{report}/failed_attempts/*/*/*.parquet', "
    "hive_partitioning = true, hive_types_autocast = false)"
)
con.execute(f"CREATE VIEW scan_manifest AS SELECT * FROM read_parquet('{report}/scan_manifest/*.parquet')")
con.execute(f"CREATE VIEW accounts AS SELECT * FROM read_parquet('{report}/accounts/*.parquet')")


# Account ids are 12-character strings: one with a leading zero stays one in every table, in the
# Hive partition read as the README's views read it, and in the DDL.
for table in ("key_usage", "kms_events", "scan_manifest", "accounts"):
    ids = [r[0] for r in con.execute(f"SELECT DISTINCT account_id FROM {table}").fetchall()]
    ok = all(isinstance(a, str) and re.fullmatch(r"[0-9]{12}", a) for a in ids) and any(a.startswith("0") for a in ids)
    check(f"{table}.account_id is a 12-character string, leading zeros kept", ok, str(ids))
    ddl = open(os.path.join(queries, "ddl", f"{table}.sql")).read()
    check(f"ddl/{table}.sql declares account_id a string", re.search(r"account_id\s+string", ddl) is not None)


def run(name, params=()):
    sql = open(os.path.join(queries, name)).read()
    cur = con.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def iso(t):
    return None if t is None else t.astimezone(__import__("datetime").timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


keys = truth["keys"]

got = sorted(r["key_arn"] for r in run("keys_safe_to_retire.sql"))
want = sorted(k["key_arn"] for k in keys if k["verdict"] in ("never_used", "no_use_found") and not k["dependents"] and not k["failed_attempts"])
check("keys_safe_to_retire.sql", got == want, f"{got} vs {want}")
tried = [k["key_arn"] for k in keys if k["verdict"] in ("never_used", "no_use_found") and k["failed_attempts"]]
check("keys_safe_to_retire.sql: the truth has unused keys someone still tried, and leaves them out", bool(tried) and not set(tried) & set(got), str(tried))

got = sorted(r["key_arn"] for r in run("keys_with_incomplete_evidence.sql"))
want = sorted(k["key_arn"] for k in keys if k["verdict"] == "inconclusive")
check("keys_with_incomplete_evidence.sql", got == want, f"{got} vs {want}")

used = [k for k in keys if k["verdict"] == "used_before_tracking"]
check("who_used_key_before_tracking.sql: the truth has used keys", bool(used))
for k in used:
    rows = run("who_used_key_before_tracking.sql", [k["key_arn"]])
    got = (sorted(r["principal"] for r in rows), max(iso(r["last_use"]) for r in rows), min(iso(r["first_use"]) for r in rows))
    want = (sorted(k["pre_tracking_principals"]), k["pre_tracking_last_use"], k["pre_tracking_first_use"])
    check(f"who_used_key_before_tracking.sql {k['key_arn']}", got == want, f"{got} vs {want}")

got = sorted((r["key_arn"], r["caller_account"]) for r in run("keys_used_from_other_accounts.sql"))
want = sorted((k["key_arn"], a) for k in keys for a in k["other_account_callers"])
check("keys_used_from_other_accounts.sql", got == want and bool(want), f"{got} vs {want}")

# What breaks if a key is deleted: every dependent the truth says its uses name, and no other.
with_dependents = [k for k in keys if k["dependents"]]
check("what_breaks_if_key_deleted.sql: the truth has keys with dependents", len(with_dependents) > 3)
services = {s for k in keys for s in k["dependent_services"]}
check("the truth's dependents span the documented services", {"s3", "ebs", "rds", "dynamodb", "secretsmanager", "lambda", "context"} <= services, str(services))
for k in keys:
    got = sorted([r["service"], r["resource"]] for r in run("what_breaks_if_key_deleted.sql", [k["key_arn"]]))
    check(f"what_breaks_if_key_deleted.sql {k['key_arn']}", got == sorted(k["dependent_resources"]), f"{got} vs {k['dependent_resources']}")

# Keys still called while disabled or pending deletion: per key, caller and error, how often and
# when last — as the truth's failed attempts say.
got = sorted((r["key_arn"], r["caller"], r["error_code"], r["attempts"], iso(r["last_attempt"])) for r in run("keys_called_while_disabled.sql"))
want = {}
for k in keys:
    for f in k["failed"]:
        if f["error_code"] in ("DisabledException", "KMSInvalidStateException"):
            slot = (k["key_arn"], f["principal"], f["error_code"])
            n, last = want.get(slot, (0, None))
            want[slot] = (n + 1, max(last or f["time"], f["time"]))
want = sorted((a, p, e, n, last) for (a, p, e), (n, last) in want.items())
check("keys_called_while_disabled.sql", got == want and bool(want), f"{got} vs {want}")
check("the truth has failed attempts of another kind too", any(f["error_code"] == "AccessDeniedException" for k in keys for f in k["failed"]))

# The watch query over CloudTrail's own Athena table (no keytrail report): a DuckDB view shaped
# like the table AWS documents, over the readable log objects of the archive, with every key of
# the truth watched; its refusals are the truth's DisabledException attempts.
readable = [os.path.join(logs, r["object"]) for r in pq.read_table(f"{report}/scan_manifest").to_pylist() if r["status"] == "read"]
files = "[" + ",".join("'" + f.replace("'", "''") + "'" for f in readable) + "]"
record = ("STRUCT(eventTime VARCHAR, eventSource VARCHAR, eventName VARCHAR, errorCode VARCHAR, errorMessage VARCHAR, "
          "userIdentity STRUCT(type VARCHAR, arn VARCHAR, accountId VARCHAR, invokedBy VARCHAR), sourceIPAddress VARCHAR, "
          "resources STRUCT(ARN VARCHAR, accountId VARCHAR, type VARCHAR)[])")
con.execute(f"""CREATE VIEW cloudtrail_logs AS
SELECT r.eventTime AS eventtime, r.eventSource AS eventsource, r.eventName AS eventname, r.errorCode AS errorcode,
       r.errorMessage AS errormessage,
       {{'type': r.userIdentity.type, 'arn': r.userIdentity.arn, 'accountid': r.userIdentity.accountId, 'invokedby': r.userIdentity.invokedBy}} AS useridentity,
       r.sourceIPAddress AS sourceipaddress,
       list_transform(r.resources, lambda x: {{'arn': x.ARN, 'accountid': x.accountId, 'type': x.type}}) AS resources
FROM (SELECT unnest(Records) AS r FROM read_json({files}, columns={{'Records': '{record}[]'}}, format='unstructured'))""")
sql = open(os.path.join(queries, "watch_disabled_keys_in_cloudtrail.sql")).read()
watched = ", ".join("('" + k["key_arn"] + "')" for k in keys)
sql, n = re.subn(r"VALUES \('[^']*'\)", "VALUES " + watched, sql)
check("watch_disabled_keys_in_cloudtrail.sql has one watched-keys list", n == 1)
cur = con.execute(sql)
cols = [d[0] for d in cur.description]
got = sorted((r["key_arn"], r["eventtime"], r["caller"], r["errorcode"]) for r in (dict(zip(cols, x)) for x in cur.fetchall()))
# The query has no window: it sees every refusal in the objects read — the generator's refusals
# are all in the keys' windows or in the last days before the snapshot (the Busy keys disabled
# after their last use), which the truth of a --watch-days run counts.
watched_truth = truth["watch"]["keys"]
want = sorted((k["key_arn"], f["time"].replace(".000Z", "Z"), f["principal"], f["error_code"]) for k in watched_truth for f in k["failed"] if f["error_code"] in ("DisabledException", "KMSInvalidStateException"))
check("watch_disabled_keys_in_cloudtrail.sql", got == want and bool(want), f"{got} vs {want}")

got = sorted(r["object"] for r in run("unreadable_log_objects.sql"))
want = sorted(o["object"] for o in truth["objects"] if o["status"] == "unreadable")
check("unreadable_log_objects.sql", got == want and bool(want), f"{got} vs {want}")

# A snapshot names no accounts: every account of its keys is inventoried, and those with keys
# GetKeyLastUsage failed for are the ones not wholly examined.
got = sorted(r["account_id"] for r in run("accounts_not_examined.sql"))
want = sorted({k.split(":")[4] for k in truth["errored_keys"]})
check("accounts_not_examined.sql", got == want and bool(want), f"{got} vs {want}")

passed, failed = results.count(True), results.count(False)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
