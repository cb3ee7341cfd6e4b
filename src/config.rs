//! config: the validated settings of one run, resolved once from the command line. Stages take
//! `&Config`, never raw flags.

use crate::model::Instant;
use std::path::PathBuf;

/// Which keys get their pre-tracking history reconstructed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackfillScope {
    /// Only keys whose `tracking_status` is `unknown_before_tracking` (the default).
    Unknown,
    /// Every key with a pre-tracking window.
    All,
}

impl BackfillScope {
    pub fn as_str(self) -> &'static str {
        match self {
            BackfillScope::Unknown => "unknown",
            BackfillScope::All => "all",
        }
    }
}

/// Where the CloudTrail archive is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logs {
    /// A local directory with the bucket's layout (an S3 sync).
    Local(PathBuf),
    /// `s3://bucket[/prefix]`; `prefix` is empty or ends with `/`.
    S3 { bucket: String, prefix: String },
    /// `auto`: where the account's trails deliver (live).
    Auto,
}

impl Logs {
    /// `s3://bucket[/prefix]` or a local path.
    pub fn parse(s: &str) -> Result<Logs, String> {
        if s == "auto" {
            return Ok(Logs::Auto);
        }
        let Some(rest) = s.strip_prefix("s3://") else {
            return Ok(Logs::Local(PathBuf::from(s)));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            return Err(format!("--logs {s}: `{bucket}` is not an S3 bucket name"));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        Ok(Logs::S3 {
            bucket: bucket.to_string(),
            prefix,
        })
    }
}

impl Logs {
    /// A local archive must be a directory; checked before anything else runs.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Logs::Local(dir) = self {
            anyhow::ensure!(dir.is_dir(), "--logs {}: no such directory", dir.display());
        }
        Ok(())
    }
}

impl std::fmt::Display for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Logs::Local(p) => write!(f, "{}", p.display()),
            Logs::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Logs::Auto => f.write_str("auto"),
        }
    }
}

/// Where the keys and their `GetKeyLastUsage` answers come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Usage {
    /// A usage snapshot (JSON Lines).
    File(PathBuf),
    /// Live: KMS in `Config::regions`.
    Aws,
}

impl Usage {
    pub fn parse(s: &str) -> Usage {
        if s == "aws" {
            Usage::Aws
        } else {
            Usage::File(PathBuf::from(s))
        }
    }
}

/// Which regions a live run inventories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Regions {
    /// The configured region (from the profile or the environment).
    Configured,
    /// `--regions us-east-1,eu-west-1`: validated, deduplicated, in the order given.
    List(Vec<String>),
    /// `--regions all`: every region enabled for the account (Account `ListRegions`).
    All,
}

impl Regions {
    pub fn parse(s: &str) -> Result<Regions, String> {
        if s == "all" {
            return Ok(Regions::All);
        }
        let mut out: Vec<String> = Vec::new();
        for r in s.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            if !crate::model::is_region(r) {
                return Err(format!("--regions: `{r}` is not a region name"));
            }
            if !out.iter().any(|x| x == r) {
                out.push(r.to_string());
            }
        }
        if out.is_empty() {
            return Err("--regions: no region given".into());
        }
        Ok(Regions::List(out))
    }
}

/// Whether to check CloudTrail's digest chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifyMode {
    /// When the archive holds digests for the planned accounts and regions.
    #[default]
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, Default)]
pub struct Integrity {
    pub mode: VerifyMode,
    /// `--digest-signatures`: digest object key -> hex signature.
    pub signatures: Option<PathBuf>,
    /// `--public-key` files.
    pub public_keys: Vec<PathBuf>,
}

/// What bounds the work and memory one object may take when it is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// An object that inflates to more than this is unreadable (a gzip bomb, or not a log).
    pub max_inflated: u64,
    /// A record larger than this is malformed (CloudTrail's own maximum is 256 KB).
    pub max_record: usize,
    /// Hash each object's inflated bytes (SHA-256), for the digest check (`--verify-integrity`).
    pub hash: bool,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            // CloudTrail writes at most 50 MB of gzip per object; its JSON inflates 10-20x.
            max_inflated: 2 << 30,
            max_record: 1 << 20,
            hash: false,
        }
    }
}

/// Whose keys a live inventory examines (`--accounts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accounts {
    /// The base credentials' own account.
    Own,
    /// Every `ACTIVE` account of the organization (Organizations `ListAccounts`).
    Org,
    /// These accounts.
    List(Vec<String>),
}

impl Accounts {
    pub fn parse(s: &str) -> Result<Accounts, String> {
        match s.trim() {
            "self" => Ok(Accounts::Own),
            "org" => Ok(Accounts::Org),
            list => {
                let mut ids: Vec<String> = list
                    .split(',')
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty())
                    .collect();
                if ids.is_empty() {
                    return Err("--accounts: expected self, org, or account ids".into());
                }
                if let Some(bad) = ids.iter().find(|a| !crate::model::is_account_id(a)) {
                    return Err(format!(
                        "--accounts: {bad:?} is not a 12-digit account id (or self, org)"
                    ));
                }
                ids.sort();
                ids.dedup();
                Ok(Accounts::List(ids))
            }
        }
    }
}

/// How a live run reaches the accounts' keys and the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    pub accounts: Accounts,
    /// The role assumed in every account but the base credentials' own (`--role-name`).
    pub role_name: String,
    /// `--external-id`, when the role's trust policy requires one.
    pub external_id: Option<String>,
    /// Accounts examined at once (`--account-concurrency`).
    pub account_concurrency: usize,
    /// The role the archive is read with (`--logs-role-arn`): an organization trail's bucket
    /// usually lives in a log-archive account.
    pub logs_role_arn: Option<String>,
}

impl Default for Reach {
    fn default() -> Reach {
        Reach {
            accounts: Accounts::Own,
            role_name: DEFAULT_ROLE_NAME.into(),
            external_id: None,
            account_concurrency: 32,
            logs_role_arn: None,
        }
    }
}

/// `--watch-days N` up to `--as-of` (default: when the run started): the last N days are read
/// too, in every region of the keys and every account the archive holds, for who still calls
/// the keys (failed attempts — a disabled key's callers, cross-account ones included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    pub days: u32,
    pub until: Instant,
}

impl Watch {
    /// `[until - days, until)`.
    pub fn bounds(&self) -> (Instant, Instant) {
        (
            self.until - chrono::Duration::days(i64::from(self.days)),
            self.until,
        )
    }
}

/// The member-account role `deploy/` creates.
pub const DEFAULT_ROLE_NAME: &str = "keytrail-audit";

#[derive(Debug, Clone)]
pub struct Config {
    pub usage: Usage,
    /// Whose keys, and through which roles (live mode).
    pub reach: Reach,
    /// Regions to inventory in live mode (`--usage aws`).
    pub regions: Regions,
    /// `GetKeyLastUsage` requests per second per account and region.
    pub kms_rate: f64,
    pub logs: Logs,
    /// The S3 Inventory report the archive's folders are listed from (`--s3-inventory`), instead
    /// of `ListObjectsV2`.
    pub s3_inventory: Option<String>,
    pub out: PathBuf,
    pub backfill: BackfillScope,
    /// Lower bound of every backfill window (`--since`).
    pub since: Option<Instant>,
    /// The recent days read for failed attempts (`--watch-days`, `--as-of`).
    pub watch: Option<Watch>,
    /// The scan's workers, one per core by default ([`cores`]); at least 1.
    pub threads: usize,
    /// S3 objects fetched or being decoded at once.
    pub concurrency: usize,
    /// Compressed bytes of S3 objects held at once, fetched or being decoded
    /// (`--max-in-flight-mib`); one object larger than this is fetched alone.
    pub max_in_flight: u64,
    /// What one object may cost (`--max-inflated-mib`).
    pub limits: DecodeLimits,
    /// AWS profile and region (`--profile`, `--region`); the SDK's defaults when `None`.
    pub profile: Option<String>,
    pub region: Option<String>,
    /// Replace an existing, non-empty `--out`.
    pub overwrite: bool,
    /// The digest check (`--verify-integrity`, `--digest-signatures`, `--public-key`).
    pub integrity: Integrity,
    /// Go on from the checkpoint of an interrupted run with the same archive, keys and limits.
    pub resume: bool,
    /// Show the scan's progress on stderr (when it is a terminal); off with `--quiet`.
    pub progress: bool,
    /// The command line, recorded in `summary.json`.
    pub arguments: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_flag() {
        assert_eq!(Accounts::parse("self"), Ok(Accounts::Own));
        assert_eq!(Accounts::parse("org"), Ok(Accounts::Org));
        assert_eq!(
            Accounts::parse("044455556666, 011122223333,044455556666"),
            Ok(Accounts::List(vec![
                "011122223333".into(),
                "044455556666".into()
            ]))
        );
        assert!(Accounts::parse("44455556666")
            .unwrap_err()
            .contains("12-digit"));
        assert!(Accounts::parse(",").is_err());
    }

    #[test]
    fn logs_locations() {
        let s3 = |b: &str, p: &str| {
            Ok(Logs::S3 {
                bucket: b.into(),
                prefix: p.into(),
            })
        };
        assert_eq!(Logs::parse("s3://org-trail"), s3("org-trail", ""));
        assert_eq!(Logs::parse("s3://org-trail/"), s3("org-trail", ""));
        assert_eq!(
            Logs::parse("s3://org-trail/audit/ct/"),
            s3("org-trail", "audit/ct/")
        );
        assert_eq!(
            Logs::parse("s3://org-trail/audit"),
            s3("org-trail", "audit/")
        );
        assert_eq!(
            Logs::parse("/data/logs"),
            Ok(Logs::Local("/data/logs".into()))
        );
        assert!(Logs::parse("s3://Bad_Bucket/x")
            .unwrap_err()
            .contains("not an S3 bucket name"));
        assert!(Logs::parse("s3://").is_err());
    }
}

#[cfg(test)]
mod region_tests {
    use super::*;

    #[test]
    fn regions() {
        let list = |v: &[&str]| Ok(Regions::List(v.iter().map(|s| s.to_string()).collect()));
        assert_eq!(Regions::parse("all"), Ok(Regions::All));
        assert_eq!(
            Regions::parse("us-east-1, eu-west-1,us-east-1"),
            list(&["us-east-1", "eu-west-1"])
        );
        assert!(Regions::parse("us-east-1,Mars")
            .unwrap_err()
            .contains("`Mars` is not a region name"));
        assert!(Regions::parse(",").is_err());
    }
}

/// The cores this process may run on (the default `--threads`).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
