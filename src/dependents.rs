//! dependents: what a key's uses say depends on it. AWS services that encrypt on a user's behalf
//! name the resource in the encryption context of their KMS calls, each in its documented way
//! (the README lists the sources); where no resource is named, the calling service is the
//! dependent (`invokedBy`). Context keys that no rule knows are kept as they are, as `context`
//! dependents (`key=value`), never dropped. Pure.

use crate::model::Instant;
use std::collections::{BTreeMap, BTreeSet};

/// A resource (or service) that one use names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Named {
    /// `s3`, `ebs`, `rds`, `dynamodb`, `secretsmanager`, `lambda`, `cloudtrail`; `context` for an
    /// unknown context key; the service's name (`invokedBy` without `.amazonaws.com`) for a
    /// caller that names nothing.
    pub service: String,
    pub resource: String,
}

/// Context keys that name a resource: (key, service). The value is the resource, except for
/// `aws:s3:arn`, which may name an object: its bucket is the dependent.
const RESOURCE_KEYS: [(&str, &str); 7] = [
    // S3 SSE-KMS: the object's ARN, or the bucket's with an S3 Bucket Key.
    ("aws:s3:arn", "s3"),
    // EBS: the volume (or snapshot) id.
    ("aws:ebs:id", "ebs"),
    // RDS: the DB instance id (with `aws:ebs:id` when EBS works for it).
    ("aws:rds:db-id", "rds"),
    // DynamoDB: the table (with `aws:dynamodb:subscriberId`, the account).
    ("aws:dynamodb:tableName", "dynamodb"),
    // Secrets Manager: the secret (with `SecretVersionId`).
    ("SecretARN", "secretsmanager"),
    // Lambda: the function whose environment variables are encrypted.
    ("aws:lambda:FunctionArn", "lambda"),
    // CloudTrail: the trail (with `aws:s3:arn`, the log object it delivers).
    ("aws:cloudtrail:arn", "cloudtrail"),
];

/// Context keys that accompany a resource key and name nothing of their own.
const COMPANION_KEYS: [&str; 2] = ["aws:dynamodb:subscriberId", "SecretVersionId"];

/// The bucket of an S3 ARN (`arn:aws:s3:::bucket/key` → `arn:aws:s3:::bucket`).
fn bucket_of(arn: &str) -> &str {
    match arn.find(":::") {
        Some(at) => match arn[at + 3..].find('/') {
            Some(slash) => &arn[..at + 3 + slash],
            None => arn,
        },
        None => arn,
    }
}

/// What one use names: the resources in its encryption context (`context`, the JSON object as
/// CloudTrail logged it), or else the service that called (`invoked_by`).
pub fn named_by(context: Option<&str>, invoked_by: Option<&str>) -> Vec<Named> {
    let mut out = Vec::new();
    let pairs: BTreeMap<String, serde_json::Value> = context
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    for (key, value) in &pairs {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if let Some((_, service)) = RESOURCE_KEYS.iter().find(|(k, _)| k == key) {
            let resource = if *service == "s3" {
                bucket_of(&text).to_string()
            } else {
                text
            };
            out.push(Named {
                service: service.to_string(),
                resource,
            });
        } else if !COMPANION_KEYS.contains(&key.as_str()) {
            out.push(Named {
                service: "context".to_string(),
                resource: format!("{key}={text}"),
            });
        }
    }
    let names_a_resource = out.iter().any(|n| n.service != "context");
    if !names_a_resource {
        if let Some(by) = invoked_by.filter(|b| !b.is_empty()) {
            out.push(Named {
                service: by.trim_end_matches(".amazonaws.com").to_string(),
                resource: by.to_string(),
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

/// One use, as far as dependents care.
pub struct Sighting<'a> {
    pub context: Option<&'a str>,
    pub invoked_by: Option<&'a str>,
    pub principal: Option<&'a str>,
    pub time: Instant,
}

/// A key's dependent with what its uses showed of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependent {
    pub named: Named,
    pub first_seen: Instant,
    pub last_seen: Instant,
    pub uses: i64,
    pub principals: Vec<String>,
}

/// The dependents a key's uses name, in (service, resource) order.
pub fn gather<'a>(uses: impl IntoIterator<Item = Sighting<'a>>) -> Vec<Dependent> {
    let mut by: BTreeMap<Named, (Instant, Instant, i64, BTreeSet<String>)> = BTreeMap::new();
    for u in uses {
        for n in named_by(u.context, u.invoked_by) {
            let e = by.entry(n).or_insert((u.time, u.time, 0, BTreeSet::new()));
            e.0 = e.0.min(u.time);
            e.1 = e.1.max(u.time);
            e.2 += 1;
            e.3.extend(u.principal.map(str::to_string));
        }
    }
    by.into_iter()
        .map(
            |(named, (first_seen, last_seen, uses, principals))| Dependent {
                named,
                first_seen,
                last_seen,
                uses,
                principals: principals.into_iter().collect(),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(service: &str, resource: &str) -> Named {
        Named {
            service: service.into(),
            resource: resource.into(),
        }
    }

    // Each context as the service's documentation shows it (sources in the README).

    #[test]
    fn s3_names_the_bucket_of_an_object_or_the_bucket_itself() {
        let object = r#"{"aws:s3:arn":"arn:aws:s3:::amzn-s3-demo-bucket/report.csv"}"#;
        let bucket = r#"{"aws:s3:arn":"arn:aws:s3:::amzn-s3-demo-bucket"}"#;
        for c in [object, bucket] {
            assert_eq!(
                named_by(Some(c), Some("s3.amazonaws.com")),
                vec![n("s3", "arn:aws:s3:::amzn-s3-demo-bucket")]
            );
        }
    }

    #[test]
    fn ebs_rds_dynamodb_secrets_lambda_and_cloudtrail_name_their_resources() {
        let cases: [(&str, Vec<Named>); 6] = [
            (
                r#"{"aws:ebs:id":"vol-13439757"}"#,
                vec![n("ebs", "vol-13439757")],
            ),
            (
                r#"{"aws:rds:db-id":"db-BRG7VYS3SVIFQW7234EJQOM5RQ","aws:ebs:id":"vol-ad8c6542"}"#,
                vec![
                    n("ebs", "vol-ad8c6542"),
                    n("rds", "db-BRG7VYS3SVIFQW7234EJQOM5RQ"),
                ],
            ),
            (
                r#"{"aws:dynamodb:tableName":"Books","aws:dynamodb:subscriberId":"111122223333"}"#,
                vec![n("dynamodb", "Books")],
            ),
            (
                r#"{"SecretARN":"arn:aws:secretsmanager:us-west-2:111122223333:secret:test-secret-a1b2c3","SecretVersionId":"EXAMPLE1-90ab-cdef-fedc-ba987SECRET1"}"#,
                vec![n(
                    "secretsmanager",
                    "arn:aws:secretsmanager:us-west-2:111122223333:secret:test-secret-a1b2c3",
                )],
            ),
            (
                r#"{"aws:lambda:FunctionArn":"arn:aws:lambda:us-east-1:123456789012:function:stop-ec2-go"}"#,
                vec![n(
                    "lambda",
                    "arn:aws:lambda:us-east-1:123456789012:function:stop-ec2-go",
                )],
            ),
            (
                r#"{"aws:cloudtrail:arn":"arn:aws:cloudtrail:us-west-2:111122223333:trail/Default","aws:s3:arn":"arn:aws:s3:::example-bucket-for-CT-logs/AWSLogs/111122223333/"}"#,
                vec![
                    n(
                        "cloudtrail",
                        "arn:aws:cloudtrail:us-west-2:111122223333:trail/Default",
                    ),
                    n("s3", "arn:aws:s3:::example-bucket-for-CT-logs"),
                ],
            ),
        ];
        for (context, want) in cases {
            assert_eq!(
                named_by(Some(context), Some("ec2.amazonaws.com")),
                want,
                "{context}"
            );
        }
    }

    #[test]
    fn unknown_context_keys_are_kept_and_a_caller_service_stands_in_for_no_resource() {
        // An application's own context: kept as it is; the calling service names nothing more.
        assert_eq!(
            named_by(Some(r#"{"department":"finance"}"#), None),
            vec![n("context", "department=finance")]
        );
        // WorkSpaces' directory beside the volume: the volume, and the unknown key kept.
        assert_eq!(
            named_by(
                Some(
                    r#"{"aws:workspaces:sid-directoryid":"[S-1]@[d-1234abcd01]","aws:ebs:id":"vol-1234abcd"}"#
                ),
                None
            ),
            vec![
                n(
                    "context",
                    "aws:workspaces:sid-directoryid=[S-1]@[d-1234abcd01]"
                ),
                n("ebs", "vol-1234abcd"),
            ]
        );
        // No context: the service that called.
        assert_eq!(
            named_by(None, Some("ec2.amazonaws.com")),
            vec![n("ec2", "ec2.amazonaws.com")]
        );
        assert_eq!(
            named_by(
                Some(r#"{"department":"finance"}"#),
                Some("glue.amazonaws.com")
            ),
            vec![
                n("context", "department=finance"),
                n("glue", "glue.amazonaws.com")
            ]
        );
        // A direct caller with no context names nothing; a context that is not an object neither.
        assert!(named_by(None, None).is_empty());
        assert!(named_by(Some("not json"), None).is_empty());
    }

    #[test]
    fn gather_counts_uses_times_and_principals_per_dependent() {
        let t = |h: u32| crate::model::parse_iso(&format!("2026-02-01T{h:02}:00:00Z")).unwrap();
        let ctx = r#"{"aws:s3:arn":"arn:aws:s3:::b/1"}"#;
        let ctx2 = r#"{"aws:s3:arn":"arn:aws:s3:::b/2"}"#;
        let got = gather([
            Sighting {
                context: Some(ctx2),
                invoked_by: None,
                principal: Some("p2"),
                time: t(9),
            },
            Sighting {
                context: Some(ctx),
                invoked_by: None,
                principal: Some("p1"),
                time: t(3),
            },
            Sighting {
                context: None,
                invoked_by: Some("ec2.amazonaws.com"),
                principal: Some("ec2.amazonaws.com"),
                time: t(5),
            },
        ]);
        assert_eq!(
            got,
            vec![
                Dependent {
                    named: n("ec2", "ec2.amazonaws.com"),
                    first_seen: t(5),
                    last_seen: t(5),
                    uses: 1,
                    principals: vec!["ec2.amazonaws.com".into()],
                },
                Dependent {
                    named: n("s3", "arn:aws:s3:::b"),
                    first_seen: t(3),
                    last_seen: t(9),
                    uses: 2,
                    principals: vec!["p1".into(), "p2".into()],
                },
            ]
        );
    }
}
