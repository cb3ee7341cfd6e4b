//! aws: the one place keytrail builds AWS clients. It loads the SDK configuration once — the
//! standard credential chain, `--profile`, `--region`, and the `AWS_ENDPOINT_URL` /
//! `AWS_ENDPOINT_URL_<SERVICE>` overrides, which the SDK honours by itself — and sets the retry
//! policy (adaptive, for throttling) and timeouts for every client. With a custom S3 endpoint,
//! buckets are addressed path-style, as S3-compatible servers expect.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use std::time::Duration;

/// Where no region is configured at all, S3 calls need one to sign with.
const FALLBACK_REGION: &str = "us-east-1";

#[derive(Debug, Clone)]
pub struct Aws {
    pub sdk: SdkConfig,
    /// No region was configured anywhere (flag, profile, environment): `FALLBACK_REGION` is used.
    pub region_fallback: bool,
}

/// Who the base credentials are (STS `GetCallerIdentity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account: String,
    /// `aws`, `aws-cn`, `aws-us-gov`: the partition of role ARNs.
    pub partition: String,
}

/// Loads the shared configuration. `profile` and `region` come from the command line and win
/// over the environment.
pub async fn load(profile: Option<&str>, region: Option<&str>) -> Aws {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::adaptive()
                .with_max_attempts(10)
                .with_max_backoff(Duration::from_secs(20)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(60))
                .operation_attempt_timeout(Duration::from_secs(300))
                .build(),
        );
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_string()));
    }
    let mut sdk = loader.load().await;
    let region_fallback = sdk.region().is_none();
    if region_fallback {
        sdk = sdk
            .into_builder()
            .region(Region::from_static(FALLBACK_REGION))
            .build();
    }
    Aws {
        sdk,
        region_fallback,
    }
}

/// One line a person can act on for an SDK error: the service's code and message, or what kept
/// the request from being sent (no credentials, an endpoint not reached) — never the SDK's
/// debug structure.
pub fn explain<E>(
    e: &aws_sdk_kms::error::SdkError<E, aws_sdk_kms::config::http::HttpResponse>,
) -> String
where
    E: std::error::Error + aws_sdk_kms::error::ProvideErrorMetadata + 'static,
{
    use aws_sdk_kms::error::SdkError;
    match e {
        SdkError::ServiceError(se) => match (se.err().code(), se.err().message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            _ => format!("HTTP {} without an error code", se.raw().status().as_u16()),
        },
        _ => {
            let first = innermost(e);
            if first.to_lowercase().contains("credentials") {
                format!("{} — set AWS_PROFILE or --profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (an expired SSO session needs `aws sso login`)", first.trim_end_matches(['.', ':', ' ']).trim_end_matches(". Attempted"))
            } else {
                first
            }
        }
    }
}

/// The innermost cause of an error, which says it best ("no credentials in the chain",
/// "connection refused"), on one line (the SDK's own text can span lines: the chain's every
/// provider).
pub fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    text.lines().next().unwrap_or_default().trim().to_string()
}

/// Whether an endpoint override applies to `service` (`S3`, `KMS`, `CLOUDTRAIL`).
pub fn custom_endpoint(service: &str) -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    set(&format!("AWS_ENDPOINT_URL_{service}")) || set("AWS_ENDPOINT_URL")
}

impl Aws {
    /// An S3 client for a bucket in `region` (the configured one when `None`). Its retries are
    /// the standard mode's, per request, not the adaptive mode's client-wide rate limiter: a scan
    /// keeps 32 GETs in flight across many prefixes, and with one SlowDown in ten the limiter
    /// slowed the fault test's run forty-fold while plain backoff kept it near the clean speed.
    pub fn s3(&self, region: Option<&str>) -> aws_sdk_s3::Client {
        let mut b = aws_sdk_s3::config::Builder::from(&self.sdk).retry_config(
            RetryConfig::standard()
                .with_max_attempts(10)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(20)),
        );
        if custom_endpoint("S3") {
            b = b.force_path_style(true);
        }
        if let Some(r) = region {
            b = b.region(Region::new(r.to_string()));
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }

    /// A KMS client for `region`, with the shared retry policy.
    pub fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        let conf =
            aws_sdk_kms::config::Builder::from(&self.sdk).region(Region::new(region.to_string()));
        aws_sdk_kms::Client::from_conf(conf.build())
    }

    /// A KMS client without SDK retries, for calls whose caller paces and retries every attempt
    /// itself (`GetKeyLastUsage`: its quota is about 5 requests per second).
    pub fn kms_no_retry(&self, region: &str) -> aws_sdk_kms::Client {
        let conf = aws_sdk_kms::config::Builder::from(&self.sdk)
            .region(Region::new(region.to_string()))
            .retry_config(RetryConfig::disabled());
        aws_sdk_kms::Client::from_conf(conf.build())
    }

    /// An Account client (a global service, signed for us-east-1).
    pub fn account(&self) -> aws_sdk_account::Client {
        let conf = aws_sdk_account::config::Builder::from(&self.sdk)
            .region(Region::from_static(FALLBACK_REGION));
        aws_sdk_account::Client::from_conf(conf.build())
    }

    /// A CloudTrail client for `region`.
    pub fn cloudtrail(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        let conf = aws_sdk_cloudtrail::config::Builder::from(&self.sdk)
            .region(Region::new(region.to_string()));
        aws_sdk_cloudtrail::Client::from_conf(conf.build())
    }

    /// The base credentials' account and partition.
    pub async fn caller(&self) -> Result<Caller, String> {
        let conf = aws_sdk_sts::config::Builder::from(&self.sdk);
        let out = aws_sdk_sts::Client::from_conf(conf.build())
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| format!("sts:GetCallerIdentity failed: {}", explain(&e)))?;
        let account = out
            .account()
            .ok_or("sts:GetCallerIdentity answered without Account")?
            .to_string();
        let partition = out
            .arn()
            .and_then(|a| a.split(':').nth(1))
            .unwrap_or("aws")
            .to_string();
        Ok(Caller { account, partition })
    }

    /// An Organizations client (a global service, signed for us-east-1).
    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        let conf = aws_sdk_organizations::config::Builder::from(&self.sdk)
            .region(Region::from_static(FALLBACK_REGION));
        aws_sdk_organizations::Client::from_conf(conf.build())
    }

    /// This configuration with the credentials of `role_arn`, assumed with these credentials.
    /// The first credentials are fetched now, so a role that cannot be assumed fails here with
    /// its reason; later ones are fetched by the SDK's credentials cache before they expire, so
    /// a long inventory outlives any one session.
    pub async fn assume(&self, role_arn: &str, external_id: Option<&str>) -> Result<Aws, String> {
        use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
        let mut builder = aws_config::sts::AssumeRoleProvider::builder(role_arn)
            .session_name("keytrail-inventory")
            .configure(&self.sdk);
        if let Some(id) = external_id {
            builder = builder.external_id(id);
        }
        let provider = builder.build().await;
        let first = provider.provide_credentials().await.map_err(|e| {
            let mut text = e.to_string();
            let mut cause: &dyn std::error::Error = &e;
            while let Some(next) = cause.source() {
                cause = next;
                text = cause.to_string();
            }
            format!("sts:AssumeRole on {role_arn} failed: {text}")
        })?;
        let sdk = self
            .sdk
            .clone()
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(Primed {
                first: std::sync::Mutex::new(Some(first)),
                then: provider,
            }))
            // One cache for every client of this account: one session, refreshed once, not
            // one AssumeRole per client.
            .identity_cache(aws_config::identity::IdentityCache::lazy().build())
            .build();
        Ok(Aws {
            sdk,
            region_fallback: self.region_fallback,
        })
    }

    pub fn region(&self) -> &str {
        self.sdk.region().map_or(FALLBACK_REGION, |r| r.as_ref())
    }
}

/// An assumed role's credentials provider that hands out the session already fetched (to check
/// the role) first, and asks STS again only when the SDK's cache needs a fresh one.
#[derive(Debug)]
struct Primed {
    first: std::sync::Mutex<Option<aws_credential_types::Credentials>>,
    then: aws_config::sts::AssumeRoleProvider,
}

impl aws_credential_types::provider::ProvideCredentials for Primed {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let first = self.first.lock().unwrap_or_else(|e| e.into_inner()).take();
        match first {
            Some(c) => aws_credential_types::provider::future::ProvideCredentials::ready(Ok(c)),
            None => self.then.provide_credentials(),
        }
    }
}

/// A session per account examined: the base configuration for the caller's own account, an
/// assumed role's for the others.
#[derive(Debug, Clone)]
pub struct Sessions {
    base: Aws,
    by_account: std::collections::BTreeMap<String, Aws>,
}

impl Sessions {
    pub fn new(base: Aws) -> Sessions {
        Sessions {
            base,
            by_account: Default::default(),
        }
    }

    pub fn insert(&mut self, account: &str, aws: Aws) {
        self.by_account.insert(account.to_string(), aws);
    }

    /// The session of `account` (the base one for an account not entered).
    pub fn of(&self, account: &str) -> &Aws {
        self.by_account.get(account).unwrap_or(&self.base)
    }
}
