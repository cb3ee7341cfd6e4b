//! archive::s3::direct: one GetObject attempt beneath the SDK's orchestrator, for the scan's many
//! small objects. The SDK spends ~85 µs of CPU on each request before and after the bytes move
//! (interceptors, runtime plugins, endpoint rules and auth-scheme resolution, config bags —
//! `get_path_bench`), more than it takes to inflate and scan a small log. This path does per
//! request only what a GET needs, with the SDK's own parts:
//!
//! - where to send it: the SDK works it out once per bucket, by presigning a GetObject (its
//!   endpoint rules, path- or virtual-hosted style, FIPS, dual-stack, `AWS_ENDPOINT_URL_S3`,
//!   the bucket's region). An endpoint signed otherwise than plain SigV4 (S3 Express sessions,
//!   SigV4a) is left to the SDK path.
//! - the request: the same as the SDK's on the wire — the key label-encoded as the SDK does,
//!   `?x-id=GetObject`, signed by the SDK's SigV4 signer with S3's settings.
//! - the connection: the SDK's own HTTP connector (rustls on aws-lc, `HTTPS_PROXY`/`NO_PROXY`
//!   as the SDK reads them, its pool, the configured connect and read timeouts).
//! - credentials: the SDK's provider chain, asked again five minutes before they expire.
//! - errors: S3's XML error read by the SDK's XML decoder, classified as the SDK path's are.
//!
//! `KEYTRAIL_S3_GET=sdk` sends every GET through the SDK instead.

use super::Fault;
use crate::aws::innermost;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::body::SdkBody;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The key presigned to learn the bucket's URL; never fetched.
const PROBE: &str = "keytrail-endpoint-probe";

/// Credentials are asked for again when they expire within this.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// The most of an error answer's body read for its code and message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// The most buffer set aside up front for a body, whatever its Content-Length says.
const PREALLOCATE_LIMIT: usize = 64 << 20;

/// One bucket's GET path.
pub struct Direct {
    connector: aws_smithy_http_client::Connector,
    /// What the connector was made with, for a scan worker's own ([`Direct::for_worker`]).
    settings: HttpConnectorSettings,
    /// The bucket's URL, no trailing `/`: `https://bucket.s3.eu-west-1.amazonaws.com` or, path-style,
    /// `http://127.0.0.1:5000/bucket`.
    base: String,
    /// The signing region and service of the endpoint.
    region: String,
    service: String,
    credentials: Arc<Credentials>,
    /// Where credentials are asked for, when this is a scan worker's (the runtime that outlives
    /// the scan, so the provider's own connections are not left on a worker's).
    home: Option<tokio::runtime::Handle>,
    /// The whole attempt's limit (the SDK's operation attempt timeout).
    attempt_timeout: Option<Duration>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("base", &self.base)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// What one attempt answered: the body and its `x-amz-meta-signature`, or the fault and what to
/// say of it.
pub type Attempt = Result<(Vec<u8>, Option<String>), (Fault, String)>;

impl Direct {
    /// The GET path of `bucket` for `client`, or why it is the SDK's instead.
    pub async fn new(
        client: &aws_sdk_s3::Client,
        credentials: Option<SharedCredentialsProvider>,
        bucket: &str,
    ) -> Result<Direct, String> {
        let conf = client.config();
        let presigned = client
            .get_object()
            .bucket(bucket)
            .key(PROBE)
            .presigned(
                aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(60))
                    .map_err(|e| e.to_string())?,
            )
            .await
            .map_err(|e| format!("presigning failed: {e}"))?;
        let (base, region, service) = endpoint_of(presigned.uri())?;
        let timeouts = conf.timeout_config();
        let mut settings = HttpConnectorSettings::builder();
        if let Some(t) = timeouts.and_then(|t| t.connect_timeout()) {
            settings = settings.connect_timeout(t);
        }
        if let Some(t) = timeouts.and_then(|t| t.read_timeout()) {
            settings = settings.read_timeout(t);
        }
        let settings = settings.build();
        let provider = credentials.ok_or("no credentials provider")?;
        Ok(Direct {
            connector: connector(&settings),
            settings,
            base,
            region,
            service,
            credentials: Arc::new(Credentials::new(provider)),
            home: None,
            attempt_timeout: timeouts.and_then(|t| t.operation_attempt_timeout()),
        })
    }

    /// The same path for a scan worker on a runtime of its own: a connector (and so a pool of
    /// connections) of its own, the credentials shared and asked for on `home`.
    pub fn for_worker(&self, home: &tokio::runtime::Handle) -> Direct {
        Direct {
            connector: connector(&self.settings),
            settings: self.settings.clone(),
            base: self.base.clone(),
            region: self.region.clone(),
            service: self.service.clone(),
            credentials: self.credentials.clone(),
            home: Some(home.clone()),
            attempt_timeout: self.attempt_timeout,
        }
    }

    /// One GetObject of `key`.
    pub async fn get(&self, key: &str) -> Attempt {
        match self.attempt_timeout {
            None => self.attempt(key).await,
            // Boxed, as the rarer case: the scan moves one of these futures into a heap task per
            // object, and the timer is ~160 of its ~930 bytes (`size_of_val`, by hand).
            Some(limit) => Box::pin(tokio::time::timeout(limit, self.attempt(key)))
                .await
                .unwrap_or_else(|_| {
                    Err((
                        Fault::Transient,
                        format!("GetObject failed: no answer within {limit:?}"),
                    ))
                }),
        }
    }

    async fn attempt(&self, key: &str) -> Attempt {
        let failed = |fault, why: String| Err((fault, format!("GetObject failed: {why}")));
        let identity = match self.credentials.fresh() {
            Some(i) => i,
            // Boxed: asked again only as they near expiry.
            None => match Box::pin(self.credentials.get(self.home.as_ref())).await {
                Ok(i) => i,
                Err(why) => return failed(Fault::Final, why),
            },
        };
        // The identity and the URL are not kept across the request's awaits.
        let request = match self.request(key, identity) {
            Ok(r) => r,
            Err(why) => return failed(Fault::Final, why),
        };
        let response = match self.connector.call(request).await {
            Ok(r) => r,
            Err(e) => return failed(Fault::Transient, innermost(&e)),
        };
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).map(str::to_string);
        let expected = header("content-length").and_then(|n| n.parse::<usize>().ok());
        let signature = header("x-amz-meta-signature");
        let body = response.into_body();
        if (200..300).contains(&status) {
            return match read_body(body, expected, usize::MAX).await {
                Err(why) => Err((Fault::Transient, format!("reading the body failed: {why}"))),
                Ok(body) => super::whole(body, expected, signature),
            };
        }
        // An error: S3 says which in an XML body (none to a HEAD, some proxies none at all).
        let text = read_body(body, None, ERROR_BODY_LIMIT)
            .await
            .unwrap_or_default();
        let (code, message) = error_of(&text);
        let fault = super::classify(status, code.as_deref());
        let why = match (code, message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c,
            _ => format!("HTTP {status} without an error code"),
        };
        failed(fault, why)
    }

    /// The signed GET of `key`.
    fn request(
        &self,
        key: &str,
        identity: Identity,
    ) -> Result<aws_smithy_runtime_api::http::Request, String> {
        let url = format!(
            "{}/{}?x-id=GetObject",
            self.base,
            aws_smithy_http::label::fmt_string(
                key,
                aws_smithy_http::label::EncodingStrategy::Greedy
            )
        );
        self.signed(&url, &identity)
    }

    /// The GET of `url`, signed as the SDK signs S3's requests: SigV4, the payload's hash in
    /// `x-amz-content-sha256`, the path encoded once and not normalized.
    fn signed(
        &self,
        url: &str,
        identity: &Identity,
    ) -> Result<aws_smithy_runtime_api::http::Request, String> {
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(identity)
            .region(&self.region)
            .name(&self.service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let user_agent = concat!("keytrail/", env!("CARGO_PKG_VERSION"));
        let signable =
            SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(&[]))
                .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("signing failed: {e}"))?
            .into_parts();
        let mut request = http::Request::builder()
            .method("GET")
            .uri(url)
            .header("user-agent", user_agent)
            .body(SdkBody::empty())
            .map_err(|e| e.to_string())?;
        instructions.apply_to_request_http1x(&mut request);
        aws_smithy_runtime_api::http::Request::try_from(request).map_err(|e| e.to_string())
    }
}

/// The SDK's HTTP connector as the SDK makes it: rustls on aws-lc, the proxy from the
/// environment, `settings`' timeouts.
fn connector(settings: &HttpConnectorSettings) -> aws_smithy_http_client::Connector {
    aws_smithy_http_client::Connector::builder()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .connector_settings(settings.clone())
        .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
        .proxy_config(aws_smithy_http_client::proxy::ProxyConfig::from_env())
        .build()
}

/// A body read into one buffer, sized by its Content-Length where it says one (up to
/// [`PREALLOCATE_LIMIT`]): one copy from the connection's buffers. Reading stops once `limit`
/// bytes are held (the rest of the body is not wanted).
async fn read_body(
    mut body: SdkBody,
    expected: Option<usize>,
    limit: usize,
) -> Result<Vec<u8>, String> {
    use http_body_util::BodyExt;
    let mut out = Vec::with_capacity(expected.unwrap_or(0).min(PREALLOCATE_LIMIT));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| innermost(&*e))?;
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data[..data.len().min(limit - out.len())]);
            if out.len() == limit {
                break;
            }
        }
    }
    Ok(out)
}

/// The bucket's URL and the signing region and service, from a presigned GetObject of [`PROBE`]
/// — or why its signing is not plain SigV4.
fn endpoint_of(presigned: &str) -> Result<(String, String, String), String> {
    let (path, query) = presigned.split_once('?').unwrap_or((presigned, ""));
    let base = path
        .strip_suffix(&format!("/{PROBE}"))
        .ok_or_else(|| format!("unexpected presigned URL {path}"))?;
    let mut algorithm = None;
    let mut scope = None;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
        match name {
            "X-Amz-Algorithm" => algorithm = Some(value.into_owned()),
            "X-Amz-Credential" => scope = Some(value.into_owned()),
            // An S3 Express session, signed with its own credentials.
            n if n.eq_ignore_ascii_case("x-amz-s3session-token") => {
                return Err("the bucket takes S3 Express sessions".into())
            }
            _ => {}
        }
    }
    if algorithm.as_deref() != Some("AWS4-HMAC-SHA256") {
        return Err(format!("the endpoint signs with {algorithm:?}, not SigV4"));
    }
    // AKID/yyyymmdd/region/service/aws4_request
    let parts: Vec<&str> = scope.as_deref().unwrap_or_default().split('/').collect();
    match parts.as_slice() {
        [.., region, service, "aws4_request"] if !region.is_empty() => {
            Ok((base.to_string(), region.to_string(), service.to_string()))
        }
        _ => Err(format!("unexpected credential scope {scope:?}")),
    }
}

/// S3's error `Code` and `Message`, from its XML error body (`<Error><Code>…`), read as the SDK
/// reads them.
fn error_of(body: &[u8]) -> (Option<String>, Option<String>) {
    use aws_smithy_xml::decode::{try_data, Document};
    let (mut code, mut message) = (None, None);
    let Ok(mut doc) = Document::try_from(body) else {
        return (None, None);
    };
    let Ok(mut root) = doc.root_element() else {
        return (None, None);
    };
    while let Some(mut tag) = root.next_tag() {
        match tag.start_el().local() {
            "Code" => code = try_data(&mut tag).ok().map(|c| c.to_string()),
            "Message" => message = try_data(&mut tag).ok().map(|m| m.to_string()),
            _ => {}
        }
    }
    (code, message)
}

/// The credentials of a provider, asked for once and again only as they near expiry; one
/// refresh at a time.
struct Credentials {
    provider: SharedCredentialsProvider,
    held: std::sync::RwLock<Option<Identity>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl Credentials {
    fn new(provider: SharedCredentialsProvider) -> Credentials {
        Credentials {
            provider,
            held: Default::default(),
            refreshing: Default::default(),
        }
    }

    fn fresh(&self) -> Option<Identity> {
        let held = self.held.read().unwrap_or_else(|e| e.into_inner());
        held.as_ref()
            .filter(|i| {
                i.expiration()
                    .is_none_or(|at| at > SystemTime::now() + REFRESH_BEFORE)
            })
            .cloned()
    }

    /// Fresh credentials, asked for on `home` when given.
    async fn get(&self, home: Option<&tokio::runtime::Handle>) -> Result<Identity, String> {
        if let Some(i) = self.fresh() {
            return Ok(i);
        }
        let _one = self.refreshing.lock().await;
        if let Some(i) = self.fresh() {
            return Ok(i);
        }
        let provider = self.provider.clone();
        let asked = async move {
            provider
                .provide_credentials()
                .await
                .map_err(|e| innermost(&e))
        };
        let creds = match home {
            None => asked.await?,
            Some(home) => home
                .spawn(asked)
                .await
                .map_err(|e| format!("asking for credentials: {e}"))??,
        };
        let identity = Identity::from(creds);
        *self.held.write().unwrap_or_else(|e| e.into_inner()) = Some(identity.clone());
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_comes_from_a_presigned_url() {
        // As the SDK presigns, virtual-hosted and path-style (hand-written from AWS's
        // documented format, not produced by the code under test).
        let hosted = "https://trail-logs.s3.eu-west-1.amazonaws.com/keytrail-endpoint-probe?x-id=GetObject&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261129%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20261129T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=abc";
        assert_eq!(
            endpoint_of(hosted).unwrap(),
            (
                "https://trail-logs.s3.eu-west-1.amazonaws.com".to_string(),
                "eu-west-1".to_string(),
                "s3".to_string()
            )
        );
        let path = "http://127.0.0.1:5000/trail-logs/keytrail-endpoint-probe?x-id=GetObject&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=test%2F20261129%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=abc";
        assert_eq!(
            endpoint_of(path).unwrap().0,
            "http://127.0.0.1:5000/trail-logs"
        );
        let express = format!("{hosted}&X-Amz-S3session-Token=xyz");
        assert!(endpoint_of(&express).unwrap_err().contains("S3 Express"));
        let sigv4a = hosted.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256");
        assert!(endpoint_of(&sigv4a).unwrap_err().contains("not SigV4"));
    }

    /// A provider that counts its calls and hands out credentials expiring `lasting` from now.
    #[derive(Debug)]
    struct Counting {
        calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        lasting: Option<Duration>,
        /// The threads it was asked on.
        on: std::sync::Arc<std::sync::Mutex<Vec<std::thread::ThreadId>>>,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.on.lock().unwrap().push(std::thread::current().id());
            let creds = aws_credential_types::Credentials::new(
                format!("AKID{n}"),
                "secret",
                None,
                self.lasting.map(|d| SystemTime::now() + d),
                "test",
            );
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(creds))
        }
    }

    #[tokio::test]
    async fn credentials_are_asked_for_once_and_again_only_near_their_expiry() {
        for (lasting, asked) in [
            // Static credentials, and credentials good for an hour: asked for once.
            (None, 1),
            (Some(Duration::from_secs(3600)), 1),
            // Within REFRESH_BEFORE of their expiry: asked for every time.
            (Some(Duration::from_secs(60)), 5),
        ] {
            let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let creds = Credentials::new(SharedCredentialsProvider::new(Counting {
                calls: calls.clone(),
                lasting,
                on: Default::default(),
            }));
            for _ in 0..5 {
                creds.get(None).await.unwrap();
            }
            assert_eq!(
                calls.load(std::sync::atomic::Ordering::SeqCst),
                asked,
                "{lasting:?}"
            );
        }
    }

    /// A scan worker on a runtime of its own has its credentials asked for on the home runtime
    /// (here the test's), whose thread keeps driving it.
    #[tokio::test]
    async fn a_worker_asks_for_credentials_on_the_home_runtime() {
        let on = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let creds =
            std::sync::Arc::new(Credentials::new(SharedCredentialsProvider::new(Counting {
                calls: Default::default(),
                lasting: Some(Duration::from_secs(60)),
                on: on.clone(),
            })));
        let home = tokio::runtime::Handle::current();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let worker = {
            let creds = creds.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let got = rt.block_on(async {
                    let a = creds.get(Some(&home)).await.unwrap();
                    let b = creds.get(Some(&home)).await.unwrap();
                    (a, b)
                });
                let _ = tx.send((got, std::thread::current().id()));
            })
        };
        let ((a, b), worker_thread) = rx.await.unwrap();
        worker.join().unwrap();
        let key = |i: &Identity| {
            i.data::<aws_credential_types::Credentials>()
                .unwrap()
                .access_key_id()
                .to_string()
        };
        // Near expiry: asked twice, both times on this thread.
        assert_eq!((key(&a), key(&b)), ("AKID0".into(), "AKID1".into()));
        let me = std::thread::current().id();
        assert_ne!(worker_thread, me);
        assert_eq!(*on.lock().unwrap(), [me, me]);
    }

    /// The SDK's own presigning (no request is sent) decides the URL: virtual-hosted in the
    /// bucket's region, FIPS when asked, path-style on a custom endpoint.
    #[tokio::test]
    async fn the_sdk_decides_where_the_gets_go() {
        let creds = SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        ));
        let client = |b: aws_sdk_s3::config::Builder| {
            aws_sdk_s3::Client::from_conf(
                b.behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                    .credentials_provider(creds.clone())
                    .region(aws_sdk_s3::config::Region::new("eu-west-1"))
                    .build(),
            )
        };
        let base = |d: &Direct| (d.base.clone(), d.region.clone(), d.service.clone());
        let plain = Direct::new(
            &client(aws_sdk_s3::Config::builder()),
            Some(creds.clone()),
            "trail-logs",
        )
        .await
        .unwrap();
        assert_eq!(
            base(&plain),
            (
                "https://trail-logs.s3.eu-west-1.amazonaws.com".into(),
                "eu-west-1".into(),
                "s3".into()
            )
        );
        let fips = Direct::new(
            &client(aws_sdk_s3::Config::builder().use_fips(true)),
            Some(creds.clone()),
            "trail-logs",
        )
        .await
        .unwrap();
        assert_eq!(
            fips.base,
            "https://trail-logs.s3-fips.eu-west-1.amazonaws.com"
        );
        let custom = Direct::new(
            &client(
                aws_sdk_s3::Config::builder()
                    .endpoint_url("http://127.0.0.1:5000")
                    .force_path_style(true),
            ),
            Some(creds.clone()),
            "trail-logs",
        )
        .await
        .unwrap();
        assert_eq!(custom.base, "http://127.0.0.1:5000/trail-logs");
        assert!(
            Direct::new(&client(aws_sdk_s3::Config::builder()), None, "trail-logs")
                .await
                .is_err()
        );
    }

    #[test]
    fn an_s3_error_body_gives_its_code_and_message() {
        // S3's documented error response (REST error responses, AWS's S3 API reference).
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>NoSuchKey</Code>
  <Message>The resource you requested does not exist</Message>
  <Resource>/mybucket/myfoto.jpg</Resource>
  <RequestId>4442587FB7D0A2F9</RequestId>
</Error>"#;
        assert_eq!(
            error_of(body),
            (
                Some("NoSuchKey".to_string()),
                Some("The resource you requested does not exist".to_string())
            )
        );
        assert_eq!(error_of(b""), (None, None));
        assert_eq!(error_of(b"<html>proxy error</html>"), (None, None));
    }
}
