//! trails: which CloudTrail trails deliver to the archive being scanned, and whether they log
//! what keytrail looks for. `DescribeTrails` (in every region of the plan, shadow trails
//! included, deduplicated by ARN) and `GetEventSelectors` (in the trail's home region) are the
//! AWS edge; deciding what a trail's selectors let through is pure (`kms_coverage`), and so is
//! turning trails into gaps in the evidence of an account and region (`gaps_for`).
//!
//! A trail's selectors are read as they are today: they do not prove what was logged in the past
//! (changes are themselves `PutEventSelectors` events), and the summary says so.

use crate::aws::Aws;
use crate::config::{Config, Logs, Usage};
use crate::model::Warnings;
use crate::model::TRACKED_OPERATIONS;
use crate::tracking::TrackedKey;
use std::collections::BTreeMap;

/// A basic event selector, reduced to what decides whether KMS calls are logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicSelector {
    pub include_management_events: bool,
    /// `All`, `ReadOnly` or `WriteOnly`.
    pub read_write_type: String,
    pub exclude_management_event_sources: Vec<String>,
}

/// One field condition of an advanced event selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub field: String,
    pub equals: Vec<String>,
    pub starts_with: Vec<String>,
    pub ends_with: Vec<String>,
    pub not_equals: Vec<String>,
    pub not_starts_with: Vec<String>,
    pub not_ends_with: Vec<String>,
}

/// Whether a trail logs successful KMS cryptographic calls.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Coverage {
    /// Every tracked KMS operation, from every caller.
    Full,
    /// Some tracked KMS calls are not logged, or may not be; why.
    Partial(String),
    /// No KMS cryptographic calls are logged; why.
    None(String),
}

/// What a trail's selectors let through, for the 14 tracked KMS operations (management events,
/// read-only). Events are logged when any selector accepts them.
pub fn kms_coverage(basic: &[BasicSelector], advanced: &[Vec<FieldSelector>]) -> Coverage {
    if !advanced.is_empty() {
        let accepted: Vec<&str> = TRACKED_OPERATIONS
            .iter()
            .copied()
            .filter(|op| advanced.iter().any(|sel| accepts(sel, op) == Some(true)))
            .collect();
        let unsure = advanced.iter().any(|sel| {
            TRACKED_OPERATIONS
                .iter()
                .any(|op| accepts(sel, op).is_none())
        });
        return match (accepted.len(), unsure) {
            (n, false) if n == TRACKED_OPERATIONS.len() => Coverage::Full,
            (0, false) => Coverage::None("its advanced event selectors exclude KMS management read events".into()),
            (_, true) if accepted.len() < TRACKED_OPERATIONS.len() => Coverage::Partial(
                "its advanced event selectors filter on fields (such as userIdentity.arn) that may exclude some KMS calls".into(),
            ),
            (_, true) => Coverage::Full,
            _ => Coverage::Partial(format!(
                "its advanced event selectors log only some KMS operations ({})",
                accepted.join(", ")
            )),
        };
    }
    if basic.is_empty() {
        // A trail without selectors logs all management events (CloudTrail's default).
        return Coverage::Full;
    }
    let logs_kms_reads = basic.iter().any(|s| {
        s.include_management_events
            && s.read_write_type != "WriteOnly"
            && !s
                .exclude_management_event_sources
                .iter()
                .any(|e| e == "kms.amazonaws.com")
    });
    if logs_kms_reads {
        return Coverage::Full;
    }
    let why = if basic.iter().all(|s| !s.include_management_events) {
        "its event selectors do not include management events"
    } else if basic
        .iter()
        .all(|s| s.read_write_type == "WriteOnly" || !s.include_management_events)
    {
        "its event selectors log only write events (KMS cryptographic calls are read events)"
    } else {
        "its event selectors exclude kms.amazonaws.com management events"
    };
    Coverage::None(why.into())
}

/// Whether an advanced selector accepts a successful tracked KMS call `op`: `Some(true/false)`,
/// or `None` when a condition is on a field whose value depends on the call (such as the caller).
fn accepts(sel: &[FieldSelector], op: &str) -> Option<bool> {
    let mut unsure = false;
    for f in sel {
        let value = match f.field.as_str() {
            "eventCategory" => "Management",
            "eventSource" => "kms.amazonaws.com",
            "readOnly" => "true",
            "eventName" => op,
            "eventType" => "AwsApiCall",
            _ => {
                // Conditions on other fields: a data-event selector (resources.type) does not
                // accept management events; anything else depends on the call.
                if f.field == "resources.type" || f.field == "resources.ARN" {
                    return Some(false);
                }
                unsure = true;
                continue;
            }
        };
        let ok = (f.equals.is_empty() || f.equals.iter().any(|v| v == value))
            && (f.starts_with.is_empty()
                || f.starts_with.iter().any(|v| value.starts_with(v.as_str())))
            && (f.ends_with.is_empty() || f.ends_with.iter().any(|v| value.ends_with(v.as_str())))
            && !f.not_equals.iter().any(|v| v == value)
            && !f
                .not_starts_with
                .iter()
                .any(|v| value.starts_with(v.as_str()))
            && !f.not_ends_with.iter().any(|v| value.ends_with(v.as_str()));
        if !ok {
            return Some(false);
        }
    }
    if unsure {
        None
    } else {
        Some(true)
    }
}

/// A trail, as far as the evidence is concerned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Trail {
    pub arn: String,
    pub account: String,
    pub home_region: String,
    pub bucket: String,
    /// `S3KeyPrefix`, empty or ending with `/`.
    pub prefix: String,
    pub multi_region: bool,
    pub organization: bool,
    /// `LogFileValidationEnabled`: the trail writes signed digests.
    pub log_file_validation: bool,
    pub coverage: Coverage,
}

impl Trail {
    /// Whether this trail's logs would hold calls received by `account` in `region`.
    fn covers(&self, account: &str, region: &str) -> bool {
        (self.organization || self.account == account)
            && (self.multi_region || self.home_region == region)
    }
}

/// Why the logs of `account`/`region` delivered by `trails` (those delivering to the scanned
/// archive) may lack KMS calls; empty when some trail logs them all.
pub fn gaps_for(trails: &[Trail], account: &str, region: &str) -> Vec<String> {
    let covering: Vec<&Trail> = trails
        .iter()
        .filter(|t| t.covers(account, region))
        .collect();
    if covering.iter().any(|t| t.coverage == Coverage::Full) {
        return Vec::new();
    }
    if covering.is_empty() {
        let which: Vec<String> = trails
            .iter()
            .map(|t| {
                let scope = if t.multi_region {
                    "all regions".to_string()
                } else {
                    format!("only {}", t.home_region)
                };
                let accounts = if t.organization {
                    "the organization".to_string()
                } else {
                    format!("account {}", t.account)
                };
                format!("{} logs {scope} of {accounts}", t.arn)
            })
            .collect();
        return vec![format!(
            "no trail delivering to this archive logs {account}/{region} ({})",
            which.join("; ")
        )];
    }
    covering
        .iter()
        .map(|t| match &t.coverage {
            Coverage::None(why) | Coverage::Partial(why) => {
                format!("trail {} may not log KMS calls: {why}", t.arn)
            }
            Coverage::Full => unreachable!("handled above"),
        })
        .collect()
}

/// The trails delivering to `bucket`/`prefix` (every trail when `bucket` is `None`), found from
/// every region in `regions`, with their selectors.
pub async fn discover(
    aws: &Aws,
    regions: &[String],
    bucket: Option<&str>,
    prefix: &str,
) -> anyhow::Result<Vec<Trail>> {
    let mut found: BTreeMap<String, aws_sdk_cloudtrail::types::Trail> = BTreeMap::new();
    for region in regions {
        let out = aws
            .cloudtrail(region)
            .describe_trails()
            .include_shadow_trails(true)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "DescribeTrails in {region} failed: {}",
                    crate::aws::explain(&e)
                )
            })?;
        for t in out.trail_list() {
            if let Some(arn) = t.trail_arn() {
                found.entry(arn.to_string()).or_insert_with(|| t.clone());
            }
        }
    }
    let mut trails = Vec::new();
    for (arn, t) in found {
        let Some(b) = t.s3_bucket_name() else {
            continue;
        };
        let p = t
            .s3_key_prefix()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
            .map_or(String::new(), |p| format!("{p}/"));
        if bucket.is_some_and(|want| want != b)
            || (bucket.is_some() && !prefix.starts_with(&p) && !p.starts_with(prefix))
        {
            continue;
        }
        let home = t.home_region().unwrap_or_default().to_string();
        let sel = aws
            .cloudtrail(&home)
            .get_event_selectors()
            .trail_name(&arn)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "GetEventSelectors {arn} failed: {}",
                    crate::aws::explain(&e)
                )
            })?;
        let basic: Vec<BasicSelector> = sel
            .event_selectors()
            .iter()
            .map(|s| BasicSelector {
                include_management_events: s.include_management_events().unwrap_or(true),
                read_write_type: s
                    .read_write_type()
                    .map_or("All".to_string(), |r| r.as_str().to_string()),
                exclude_management_event_sources: s.exclude_management_event_sources().to_vec(),
            })
            .collect();
        let advanced: Vec<Vec<FieldSelector>> = sel
            .advanced_event_selectors()
            .iter()
            .map(|a| {
                a.field_selectors()
                    .iter()
                    .map(|f| FieldSelector {
                        field: f.field().to_string(),
                        equals: f.equals().to_vec(),
                        starts_with: f.starts_with().to_vec(),
                        ends_with: f.ends_with().to_vec(),
                        not_equals: f.not_equals().to_vec(),
                        not_starts_with: f.not_starts_with().to_vec(),
                        not_ends_with: f.not_ends_with().to_vec(),
                    })
                    .collect()
            })
            .collect();
        trails.push(Trail {
            account: arn.split(':').nth(4).unwrap_or_default().to_string(),
            arn,
            home_region: home,
            bucket: b.to_string(),
            prefix: p,
            multi_region: t.is_multi_region_trail().unwrap_or(false),
            organization: t.is_organization_trail().unwrap_or(false),
            log_file_validation: t.log_file_validation_enabled().unwrap_or(false),
            coverage: kms_coverage(&basic, &advanced),
        });
    }
    Ok(trails)
}

/// The trails stage's value: the archive to read (`--logs`, resolved when it was `auto`) and the
/// trails that deliver to it, when they were read.
#[derive(Debug, Clone)]
pub struct Destination {
    pub logs: Logs,
    pub trails: Option<Vec<Trail>>,
}

impl Destination {
    pub fn trails(&self) -> Option<&[Trail]> {
        self.trails.as_deref()
    }
}

/// Where the logs are and which trails deliver them. A live run reads the trails of the keys'
/// regions (to find the archive for `--logs auto`, and to check what they log); a snapshot replay
/// stays off the CloudTrail API unless it must find the archive.
pub async fn review(
    cfg: &Config,
    aws: Option<&Aws>,
    keys: &[TrackedKey],
    warnings: &mut Warnings,
) -> anyhow::Result<Destination> {
    let regions = key_regions(keys);
    let (logs, trails) = match (aws, &cfg.usage, &cfg.logs) {
        (Some(aws), _, Logs::Auto) => {
            let found = discover(aws, &regions, None, "").await?;
            let logs = trail_destination(&found, &regions)?;
            let trails = review_trails(Ok(found), &logs, warnings);
            (logs, trails)
        }
        (Some(aws), Usage::Aws, logs) => {
            let (bucket, prefix) = match logs {
                Logs::S3 { bucket, prefix } => (Some(bucket.as_str()), prefix.as_str()),
                Logs::Local(_) | Logs::Auto => (None, ""),
            };
            let found = discover(aws, &regions, bucket, prefix).await;
            (logs.clone(), review_trails(found, logs, warnings))
        }
        (_, _, Logs::Auto) => anyhow::bail!("--logs auto needs the AWS configuration"),
        (_, _, logs) => (logs.clone(), None),
    };
    Ok(Destination { logs, trails })
}

/// The trails that deliver to the archive, with a warning per trail that limits the evidence;
/// `None` (and a warning) when there are none or they could not be read.
fn review_trails(
    found: anyhow::Result<Vec<Trail>>,
    logs: &Logs,
    warnings: &mut Warnings,
) -> Option<Vec<Trail>> {
    match found {
        Ok(found) if found.is_empty() => {
            warnings.push(format!(
                "no trail delivers to {logs}; whether it logged KMS calls was not checked"
            ));
            None
        }
        Ok(found) => {
            for t in &found {
                if let Coverage::None(why) | Coverage::Partial(why) = &t.coverage {
                    warnings.push(format!("trail {} may not log KMS calls: {why}", t.arn));
                }
            }
            warnings.push(
                "trail event selectors were checked as they are today; earlier changes (PutEventSelectors) are not visible",
            );
            Some(found)
        }
        Err(e) => {
            warnings.push(format!(
                "trails not checked ({e:#}); verdicts assume the archive's trail logged KMS calls"
            ));
            None
        }
    }
}

fn key_regions(keys: &[TrackedKey]) -> Vec<String> {
    let mut regions: Vec<String> = keys.iter().map(|k| k.arn.region().to_string()).collect();
    regions.sort();
    regions.dedup();
    regions
}

/// `--logs auto`: the one S3 location the trails of the keys' regions deliver to.
fn trail_destination(found: &[Trail], regions: &[String]) -> anyhow::Result<Logs> {
    let mut places: Vec<(String, String)> = found
        .iter()
        .map(|t| (t.bucket.clone(), t.prefix.clone()))
        .collect();
    places.sort();
    places.dedup();
    match &places[..] {
        [(bucket, prefix)] => Ok(Logs::S3 {
            bucket: bucket.clone(),
            prefix: prefix.clone(),
        }),
        [] => anyhow::bail!(
            "--logs auto: no trail in {} delivers to S3; pass --logs s3://...",
            regions.join(", ")
        ),
        many => {
            anyhow::bail!(
            "--logs auto: the trails deliver to {} places ({}); pass the one to scan with --logs",
            many.len(),
            many.iter().map(|(b, p)| format!("s3://{b}/{p}")).collect::<Vec<_>>().join(", ")
        )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(include: bool, rw: &str, exclude: &[&str]) -> BasicSelector {
        BasicSelector {
            include_management_events: include,
            read_write_type: rw.into(),
            exclude_management_event_sources: exclude.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn field(name: &str, equals: &[&str], not_equals: &[&str]) -> FieldSelector {
        FieldSelector {
            field: name.into(),
            equals: equals.iter().map(|s| s.to_string()).collect(),
            not_equals: not_equals.iter().map(|s| s.to_string()).collect(),
            ..FieldSelector::default()
        }
    }

    fn kind(c: &Coverage) -> &'static str {
        match c {
            Coverage::Full => "full",
            Coverage::Partial(_) => "partial",
            Coverage::None(_) => "none",
        }
    }

    #[test]
    fn which_selectors_log_kms_calls() {
        let mgmt = field("eventCategory", &["Management"], &[]);
        type Case<'a> = (
            &'a str,
            Vec<BasicSelector>,
            Vec<Vec<FieldSelector>>,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            ("no selectors: CloudTrail's default", vec![], vec![], "full"),
            (
                "all management events",
                vec![basic(true, "All", &[])],
                vec![],
                "full",
            ),
            (
                "read-only management events",
                vec![basic(true, "ReadOnly", &[])],
                vec![],
                "full",
            ),
            (
                "write only",
                vec![basic(true, "WriteOnly", &[])],
                vec![],
                "none",
            ),
            (
                "management events off",
                vec![basic(false, "All", &[])],
                vec![],
                "none",
            ),
            (
                "KMS excluded",
                vec![basic(true, "All", &["kms.amazonaws.com"])],
                vec![],
                "none",
            ),
            (
                "RDS Data excluded only",
                vec![basic(true, "All", &["rdsdata.amazonaws.com"])],
                vec![],
                "full",
            ),
            (
                "one of two selectors logs KMS",
                vec![basic(true, "WriteOnly", &[]), basic(true, "ReadOnly", &[])],
                vec![],
                "full",
            ),
            (
                "advanced: all management",
                vec![],
                vec![vec![mgmt.clone()]],
                "full",
            ),
            (
                "advanced: KMS excluded",
                vec![],
                vec![vec![
                    mgmt.clone(),
                    field("eventSource", &[], &["kms.amazonaws.com"]),
                ]],
                "none",
            ),
            (
                "advanced: write only",
                vec![],
                vec![vec![mgmt.clone(), field("readOnly", &["false"], &[])]],
                "none",
            ),
            (
                "advanced: data events only",
                vec![],
                vec![vec![
                    field("eventCategory", &["Data"], &[]),
                    field("resources.type", &["AWS::S3::Object"], &[]),
                ]],
                "none",
            ),
            (
                "advanced: Decrypt excluded",
                vec![],
                vec![vec![mgmt.clone(), field("eventName", &[], &["Decrypt"])]],
                "partial",
            ),
            (
                "advanced: callers filtered",
                vec![],
                vec![vec![
                    mgmt.clone(),
                    field("userIdentity.arn", &[], &["arn:aws:iam::1:role/x"]),
                ]],
                "partial",
            ),
            (
                "advanced: KMS excluded, and another selector for all",
                vec![],
                vec![
                    vec![
                        mgmt.clone(),
                        field("eventSource", &[], &["kms.amazonaws.com"]),
                    ],
                    vec![mgmt.clone()],
                ],
                "full",
            ),
        ];
        for (name, b, a, want) in cases {
            assert_eq!(kind(&kms_coverage(&b, &a)), want, "case {name}");
        }
    }

    fn trail(account: &str, home: &str, multi: bool, org: bool, coverage: Coverage) -> Trail {
        Trail {
            arn: format!("arn:aws:cloudtrail:{home}:{account}:trail/t"),
            account: account.into(),
            home_region: home.into(),
            bucket: "b".into(),
            prefix: String::new(),
            multi_region: multi,
            organization: org,
            log_file_validation: false,
            coverage,
        }
    }

    #[test]
    fn limits_per_account_and_region() {
        let a = "111122223333";
        let b = "444455556666";
        let full_org = trail(a, "us-east-1", true, true, Coverage::Full);
        assert!(gaps_for(std::slice::from_ref(&full_org), b, "eu-west-1").is_empty());
        let single = trail(a, "us-east-1", false, false, Coverage::Full);
        assert!(gaps_for(std::slice::from_ref(&single), a, "us-east-1").is_empty());
        let l = gaps_for(std::slice::from_ref(&single), a, "eu-west-1");
        assert!(
            l[0].contains("logs only us-east-1 of account 111122223333"),
            "{l:?}"
        );
        let l = gaps_for(std::slice::from_ref(&single), b, "us-east-1");
        assert_eq!(l.len(), 1, "{l:?}");
        let no_kms = trail(
            a,
            "us-east-1",
            true,
            true,
            Coverage::None("its event selectors exclude kms".into()),
        );
        let l = gaps_for(std::slice::from_ref(&no_kms), b, "eu-west-1");
        assert!(
            l[0].contains("may not log KMS calls: its event selectors exclude kms"),
            "{l:?}"
        );
        assert!(
            gaps_for(&[no_kms, full_org], b, "eu-west-1").is_empty(),
            "one full trail is enough"
        );
    }
}
