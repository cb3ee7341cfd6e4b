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
    if sdk.region().is_none() {
        sdk = sdk
            .into_builder()
            .region(Region::from_static(FALLBACK_REGION))
            .build();
    }
    Aws { sdk }
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

    pub fn region(&self) -> &str {
        self.sdk.region().map_or(FALLBACK_REGION, |r| r.as_ref())
    }
}
