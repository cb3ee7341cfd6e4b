//! report::athena: the report's own Athena DDL (`athena/<table>.sql`), from the templates in
//! `queries/ddl/` with `LOCATION` set to where the report was written and `kms_events`' partition
//! projection listing the accounts and regions the report holds — so an organization's 300
//! accounts are never typed by hand. A report written locally keeps the template's
//! `s3://REPORT-BUCKET/keytrail/` and says where to upload it.

use super::ReportError;
use std::collections::BTreeSet;
use std::path::Path;

const TEMPLATES: [(&str, &str); 7] = [
    ("key_usage", include_str!("../../queries/ddl/key_usage.sql")),
    (
        "kms_events",
        include_str!("../../queries/ddl/kms_events.sql"),
    ),
    (
        "key_dependents",
        include_str!("../../queries/ddl/key_dependents.sql"),
    ),
    (
        "failed_attempts",
        include_str!("../../queries/ddl/failed_attempts.sql"),
    ),
    (
        "scan_manifest",
        include_str!("../../queries/ddl/scan_manifest.sql"),
    ),
    ("integrity", include_str!("../../queries/ddl/integrity.sql")),
    ("accounts", include_str!("../../queries/ddl/accounts.sql")),
];

const PLACEHOLDER: &str = "s3://REPORT-BUCKET/keytrail/";

/// The DDL of `table` for a report at `location` (`s3://bucket/prefix/`, or `None` for a local
/// report at `local`), with these accounts and regions in the partition projection.
pub fn ddl(
    template: &str,
    location: Option<&str>,
    local: &str,
    accounts: &BTreeSet<String>,
    regions: &BTreeSet<String>,
) -> String {
    let mut out = String::new();
    let text = match location {
        Some(l) => {
            let l = if l.ends_with('/') {
                l.to_string()
            } else {
                format!("{l}/")
            };
            template.replace(PLACEHOLDER, &l)
        }
        None => {
            out.push_str(&format!(
                "-- This report was written to {local}: upload it with aws s3 sync {local} s3://REPORT-BUCKET/keytrail/\n-- and replace s3://REPORT-BUCKET/keytrail/ below with where it is.\n"
            ));
            template.to_string()
        }
    };
    let join = |v: &BTreeSet<String>| v.iter().cloned().collect::<Vec<_>>().join(",");
    for line in text.lines() {
        let t = line.trim_start();
        let values = if t.starts_with("'projection.account_id.values'") {
            Some(join(accounts))
        } else if t.starts_with("'projection.region.values'") {
            Some(join(regions))
        } else {
            None
        };
        match values {
            Some(v) => {
                let (name, _) = line.split_once('=').expect("a property line");
                let comma = if line.trim_end().ends_with(',') {
                    ","
                } else {
                    ""
                };
                out.push_str(&format!("{name}= '{v}'{comma}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Writes `athena/<table>.sql` for every table in `dir`.
pub fn write(
    dir: &Path,
    location: Option<&str>,
    local: &str,
    accounts: &BTreeSet<String>,
    regions: &BTreeSet<String>,
) -> Result<(), ReportError> {
    let athena = dir.join("athena");
    std::fs::create_dir_all(&athena).map_err(|source| ReportError::Io {
        path: athena.clone(),
        source,
    })?;
    for (table, template) in TEMPLATES {
        if !dir.join(table).exists() {
            continue;
        }
        let path = athena.join(format!("{table}.sql"));
        std::fs::write(&path, ddl(template, location, local, accounts, regions))
            .map_err(|source| ReportError::Io { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_location_and_the_projection_values_are_the_reports() {
        let accounts: BTreeSet<String> = ["011122223333".into(), "444455556666".into()].into();
        let regions: BTreeSet<String> = ["ap-south-1".into()].into();
        let sql = ddl(
            TEMPLATES[1].1,
            Some("s3://b/runs/r1"),
            "",
            &accounts,
            &regions,
        );
        assert!(
            sql.contains("LOCATION 's3://b/runs/r1/kms_events/'"),
            "{sql}"
        );
        assert!(
            sql.contains("'projection.account_id.values' = '011122223333,444455556666',"),
            "{sql}"
        );
        assert!(
            sql.contains("'projection.region.values' = 'ap-south-1',"),
            "{sql}"
        );
        assert!(sql.contains("'storage.location.template' = 's3://b/runs/r1/kms_events/account_id=${account_id}/region=${region}/'"), "{sql}");
        assert!(!sql.contains("REPORT-BUCKET"));
        let local = ddl(TEMPLATES[0].1, None, "/data/report", &accounts, &regions);
        assert!(local.starts_with("-- This report was written to /data/report"));
        assert!(local.contains("LOCATION 's3://REPORT-BUCKET/keytrail/key_usage/'"));
    }
}
