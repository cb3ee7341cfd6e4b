//! KMS and CloudTrail endpoints on loopback that speak the real wire protocol (JSON 1.1 over
//! `POST /`, `X-Amz-Target: TrentService.<Operation>` / `CloudTrail_20131101.<Operation>`,
//! epoch-number timestamps, `{"__type": ...}` errors), because no emulator implements
//! `GetKeyLastUsage` yet. It serves the keys of a synth usage snapshot and a configured set of
//! trails, can inject throttling, a 500 and per-key denials, and records every request.
//!
//! It is also STS (query protocol, XML answers, as the real STS: `GetCallerIdentity`,
//! `AssumeRole`) and Organizations (`ListAccounts`, JSON 1.1, paginated): KMS answers each
//! request for the account whose credentials signed it — the access key in the SigV4
//! `Credential=` scope: `testing` is the base account, `ASIA<account>…` a session of that
//! account's role — so the SDK's own assume-role path is what is exercised.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One request as the endpoint saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub operation: String,
    pub region: String,
    pub key_id: Option<String>,
    /// The account whose credentials signed the request.
    pub account: String,
    /// The access key that signed it.
    pub access_key: String,
}

/// The account the base credentials (`testing`) belong to.
pub const BASE_ACCOUNT: &str = "111122223333";

/// An organization as `ListAccounts` lists it, and how its members' roles answer.
#[derive(Debug, Default, Clone)]
pub struct Org {
    /// (id, name, State).
    pub accounts: Vec<(String, String, String)>,
    /// Accounts whose role denies `sts:AssumeRole`.
    pub deny_assume: Vec<String>,
    /// The external id every role's trust policy requires, if any.
    pub external_id: Option<String>,
    /// Seconds an assumed session lasts (3600 unless set); KMS refuses expired sessions.
    pub session_seconds: Option<i64>,
}

#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// The first N `GetKeyLastUsage` requests answer 400 ThrottlingException.
    pub throttle_first: usize,
    /// This key's first `GetKeyLastUsage` answers 500.
    pub fail_once: Option<String>,
}

/// A trail as `DescribeTrails` lists it, and its `GetEventSelectors` answer.
#[derive(Debug, Clone)]
pub struct FakeTrail {
    pub trail: Value,
    pub selectors: Value,
}

impl FakeTrail {
    /// An organization trail of account 111122223333, home us-east-1, delivering to `bucket`.
    pub fn org(bucket: &str, multi_region: bool, selectors: Value) -> FakeTrail {
        FakeTrail {
            trail: json!({
                "Name": "org-trail", "S3BucketName": bucket, "IsMultiRegionTrail": multi_region,
                "HomeRegion": "us-east-1", "TrailARN": "arn:aws:cloudtrail:us-east-1:111122223333:trail/org-trail",
                "LogFileValidationEnabled": true, "IsOrganizationTrail": true, "HasCustomEventSelectors": true,
            }),
            selectors,
        }
    }
}

struct State {
    /// Snapshot lines, by (account, region).
    keys: HashMap<(String, String), Vec<Value>>,
    trails: Vec<FakeTrail>,
    /// Records `LookupEvents` can return, by `eventID`.
    events: HashMap<String, String>,
    faults: Faults,
    /// `ListPublicKeys` entries (`Value` base64, `Fingerprint`, validity).
    public_keys: Vec<Value>,
    seen: Vec<Seen>,
    glu_count: usize,
    failed_once: bool,
    org: Org,
    /// Issued session access keys and when they expire.
    sessions: HashMap<String, chrono::DateTime<chrono::Utc>>,
}

pub struct FakeAws {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    _rt: tokio::runtime::Runtime,
}

/// Epoch seconds from a snapshot timestamp (number or ISO-8601 string).
fn epoch(v: &Value) -> Value {
    match v {
        Value::String(s) => {
            let t = chrono::DateTime::parse_from_rfc3339(s).unwrap();
            json!(t.timestamp_millis() as f64 / 1000.0)
        }
        other => other.clone(),
    }
}

fn arn_of(line: &Value) -> String {
    line["KeyMetadata"]["Arn"].as_str().unwrap().to_string()
}

impl FakeAws {
    pub fn start(snapshot: &str, faults: Faults, trails: Vec<FakeTrail>) -> FakeAws {
        let keys: Vec<Value> = snapshot
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut by_scope: HashMap<(String, String), Vec<Value>> = HashMap::new();
        for k in keys {
            let arn = arn_of(&k);
            let parts: Vec<&str> = arn.split(':').collect();
            by_scope
                .entry((parts[4].to_string(), parts[3].to_string()))
                .or_default()
                .push(k);
        }
        let state = Arc::new(Mutex::new(State {
            keys: by_scope,
            trails,
            events: HashMap::new(),
            faults,
            public_keys: Vec::new(),
            seen: Vec::new(),
            glu_count: 0,
            failed_once: false,
            org: Org::default(),
            sessions: HashMap::new(),
        }));
        let st = state.clone();
        let (endpoint, rt) = crate::common::serve(move || {
            let st = st.clone();
            hyper::service::service_fn(move |req| handle(st.clone(), req))
        });
        FakeAws {
            endpoint,
            state,
            _rt: rt,
        }
    }

    /// Makes Organizations and STS answer for this organization.
    pub fn set_org(&self, org: Org) {
        self.state.lock().unwrap().org = org;
    }

    /// Makes `LookupEvents` know these records (by `eventID`).
    pub fn add_events(&self, events: HashMap<String, String>) {
        self.state.lock().unwrap().events.extend(events);
    }

    /// Makes `ListPublicKeys` return this key (DER) with this fingerprint, valid all along.
    pub fn add_public_key(&self, der: &[u8], fingerprint: &str) {
        self.state.lock().unwrap().public_keys.push(json!({
            "Value": base64(der),
            "Fingerprint": fingerprint,
            "ValidityStartTime": 1.7e9,
            "ValidityEndTime": 1.9e9,
        }));
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-requestid", "00000000-0000-4000-8000-000000000000")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    reply(status, json!({"__type": kind, "message": message}))
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // The region is in the SigV4 credential scope: Credential=AKID/20260101/<region>/kms/aws4_request.
    let region = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or_default()
        .to_string();
    let access_key = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_string();
    let account = match access_key.strip_prefix("ASIA") {
        Some(rest) if rest.len() >= 12 => rest[..12].to_string(),
        _ => BASE_ACCOUNT.to_string(),
    };
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    // STS speaks the query protocol: a form body naming its Action.
    let form: HashMap<String, String> = form_urlencoded(&body);
    let input: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
    // Account is a REST-JSON service: the operation is in the path.
    let op = match path.as_str() {
        "/listRegions" => "ListRegions".to_string(),
        _ if form.contains_key("Action") => form["Action"].clone(),
        _ => target.rsplit('.').next().unwrap_or(&target).to_string(),
    };
    let key_id = input["KeyId"].as_str().map(str::to_string);
    let mut st = state.lock().unwrap();
    st.seen.push(Seen {
        at: Instant::now(),
        operation: op.clone(),
        region: region.clone(),
        key_id: key_id.clone(),
        account: account.clone(),
        access_key: access_key.clone(),
    });
    if let Some(expiry) = st.sessions.get(&access_key) {
        if *expiry <= chrono::Utc::now() {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                "ExpiredTokenException",
                "The security token included in the request is expired",
            ));
        }
    }
    if op == "AssumeRole" || op == "GetCallerIdentity" {
        return Ok(sts(&mut st, &op, &form, &account));
    }
    // Each account sees its own keys (listed whole only by the List operations).
    let scope = (account.clone(), region.clone());
    let in_region: Vec<Value> = match op.as_str() {
        "ListKeys" | "ListAliases" => st.keys.get(&scope).cloned().unwrap_or_default(),
        _ => Vec::new(),
    };
    let found = key_id.as_deref().and_then(|id| {
        st.keys
            .get(&scope)?
            .iter()
            .find(|k| k["KeyMetadata"]["Arn"] == id || k["KeyMetadata"]["KeyId"] == id)
    });
    let found = found.cloned();
    let find = |_: &str| found.clone();
    // Small pages, so that pagination is exercised.
    let page = |items: Vec<Value>, marker: &Value, key: &str| {
        let start: usize = marker.as_str().and_then(|m| m.parse().ok()).unwrap_or(0);
        let end = (start + 7).min(items.len());
        let mut out = json!({ key: items[start..end].to_vec(), "Truncated": end < items.len() });
        if end < items.len() {
            out["NextMarker"] = json!(end.to_string());
        }
        out
    };
    let resp = match op.as_str() {
        "ListKeys" => {
            let items = in_region
                .iter()
                .map(|k| json!({"KeyId": k["KeyMetadata"]["KeyId"], "KeyArn": arn_of(k)}))
                .collect();
            reply(StatusCode::OK, page(items, &input["Marker"], "Keys"))
        }
        "ListAliases" => {
            let mut items: Vec<Value> = Vec::new();
            for k in &in_region {
                for a in k["Aliases"].as_array().unwrap() {
                    let (acct, reg) = (
                        k["KeyMetadata"]["AWSAccountId"].as_str().unwrap(),
                        region.as_str(),
                    );
                    items.push(json!({"AliasName": a, "AliasArn": format!("arn:aws:kms:{reg}:{acct}:{}", a.as_str().unwrap()), "TargetKeyId": k["KeyMetadata"]["KeyId"]}));
                }
            }
            // An AWS-predefined alias has no target key.
            items.push(json!({"AliasName": "alias/aws/redshift", "AliasArn": format!("arn:aws:kms:{region}:111122223333:alias/aws/redshift")}));
            reply(StatusCode::OK, page(items, &input["Marker"], "Aliases"))
        }
        "DescribeKey" => match key_id.as_deref().and_then(find) {
            Some(k) => {
                let mut meta = k["KeyMetadata"].clone();
                meta["CreationDate"] = epoch(&meta["CreationDate"]);
                reply(StatusCode::OK, json!({"KeyMetadata": meta}))
            }
            None => error(
                StatusCode::BAD_REQUEST,
                "NotFoundException",
                "Key does not exist",
            ),
        },
        "GetKeyLastUsage" => {
            st.glu_count += 1;
            let id = key_id.clone().unwrap_or_default();
            if st.glu_count <= st.faults.throttle_first {
                error(
                    StatusCode::BAD_REQUEST,
                    "ThrottlingException",
                    "Rate exceeded",
                )
            } else if st.faults.fail_once.as_deref() == Some(id.as_str()) && !st.failed_once {
                st.failed_once = true;
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "KMSInternalException",
                    "internal error",
                )
            } else {
                match find(&id) {
                    None => error(
                        StatusCode::BAD_REQUEST,
                        "NotFoundException",
                        "Key does not exist",
                    ),
                    Some(k) if k.get("Error").is_some() => {
                        let e = k["Error"].as_str().unwrap();
                        let (kind, msg) = e.split_once(": ").unwrap_or((e, ""));
                        error(StatusCode::BAD_REQUEST, kind, msg)
                    }
                    Some(k) => {
                        let mut usage = k["KeyLastUsage"].clone();
                        if let Some(t) = usage.get("Timestamp").cloned() {
                            usage["Timestamp"] = epoch(&t);
                        }
                        reply(
                            StatusCode::OK,
                            json!({
                                "KeyId": arn_of(&k), "KeyLastUsage": usage,
                                "TrackingStartDate": epoch(&k["TrackingStartDate"]),
                                "KeyCreationDate": epoch(&k["KeyCreationDate"]),
                            }),
                        )
                    }
                }
            }
        }
        "ListRegions" => {
            let all = [
                ("us-east-1", "ENABLED_BY_DEFAULT"),
                ("eu-west-1", "ENABLED_BY_DEFAULT"),
                ("ap-east-1", "DISABLED"),
            ];
            let wanted: Vec<&str> = input["RegionOptStatusContains"]
                .as_array()
                .map_or(vec![], |a| a.iter().filter_map(|v| v.as_str()).collect());
            let regions: Vec<Value> = all
                .iter()
                .filter(|(_, status)| wanted.is_empty() || wanted.contains(status))
                .map(|(name, status)| json!({"RegionName": name, "RegionOptStatus": status}))
                .collect();
            reply(StatusCode::OK, json!({"Regions": regions}))
        }
        "LookupEvents" => {
            let id = input["LookupAttributes"][0]["AttributeValue"]
                .as_str()
                .unwrap_or_default();
            let events: Vec<Value> = match (
                input["LookupAttributes"][0]["AttributeKey"].as_str(),
                st.events.get(id),
            ) {
                (Some("EventId"), Some(record)) => {
                    vec![json!({"EventId": id, "CloudTrailEvent": record})]
                }
                _ => vec![],
            };
            reply(StatusCode::OK, json!({"Events": events}))
        }
        "ListPublicKeys" => reply(
            StatusCode::OK,
            json!({"PublicKeyList": st.public_keys.clone()}),
        ),
        "DescribeTrails" => {
            // A multi-region trail shows in every region (as a shadow outside its home).
            let list: Vec<Value> = st
                .trails
                .iter()
                .filter(|t| {
                    t.trail["IsMultiRegionTrail"] == true
                        || t.trail["HomeRegion"] == region.as_str()
                })
                .map(|t| t.trail.clone())
                .collect();
            reply(StatusCode::OK, json!({"trailList": list}))
        }
        "GetEventSelectors" => {
            let name = input["TrailName"].as_str().unwrap_or_default();
            match st
                .trails
                .iter()
                .find(|t| t.trail["TrailARN"] == name || t.trail["Name"] == name)
            {
                Some(t) if t.trail["HomeRegion"] == region.as_str() => {
                    let mut out = t.selectors.clone();
                    out["TrailARN"] = t.trail["TrailARN"].clone();
                    reply(StatusCode::OK, out)
                }
                Some(_) => error(
                    StatusCode::BAD_REQUEST,
                    "TrailNotFoundException",
                    "call it in the trail's home region",
                ),
                None => error(
                    StatusCode::BAD_REQUEST,
                    "TrailNotFoundException",
                    "Unknown trail",
                ),
            }
        }
        "ListAccounts" => {
            // Pages of two, and an empty page with a NextToken before the last one, as
            // Organizations may answer.
            let all: Vec<Value> = st
                .org
                .accounts
                .iter()
                .map(|(id, name, state)| {
                    json!({
                        "Id": id, "Name": name, "State": state,
                        "Arn": format!("arn:aws:organizations::{BASE_ACCOUNT}:account/o-exampleorgid/{id}"),
                        "Email": format!("{name}@example.com"), "JoinedMethod": "CREATED",
                        "JoinedTimestamp": 1.6e9,
                        // The retiring field, deliberately contradicting State.
                        "Status": "ACTIVE",
                    })
                })
                .collect();
            let mut pages: Vec<Vec<Value>> = all.chunks(2).map(<[Value]>::to_vec).collect();
            if pages.len() >= 2 {
                pages.insert(pages.len() - 1, Vec::new());
            }
            let at: usize = input["NextToken"]
                .as_str()
                .and_then(|t| t.strip_prefix("page-"))
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let items = pages.get(at).cloned().unwrap_or_default();
            let next = (at + 1 < pages.len()).then_some(at + 1);
            let mut out = json!({ "Accounts": items });
            if let Some(n) = next {
                out["NextToken"] = json!(format!("page-{n}"));
            }
            reply(StatusCode::OK, out)
        }
        other => error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!("{other} is not served here"),
        ),
    };
    Ok(resp)
}

/// STS's answers, in its XML.
fn sts(
    st: &mut State,
    op: &str,
    form: &HashMap<String, String>,
    account: &str,
) -> Response<Full<Bytes>> {
    let xml = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", "text/xml")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let ns = "https://sts.amazonaws.com/doc/2011-06-15/";
    let denied = |msg: String| {
        xml(
            StatusCode::FORBIDDEN,
            format!(
                "<ErrorResponse xmlns=\"{ns}\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{msg}</Message></Error><RequestId>00000000-0000-4000-8000-000000000001</RequestId></ErrorResponse>"
            ),
        )
    };
    if op == "GetCallerIdentity" {
        return xml(
            StatusCode::OK,
            format!(
                "<GetCallerIdentityResponse xmlns=\"{ns}\"><GetCallerIdentityResult><Arn>arn:aws:iam::{account}:user/auditor</Arn><UserId>AIDAEXAMPLEAUDITOR</UserId><Account>{account}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>00000000-0000-4000-8000-000000000002</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
            ),
        );
    }
    let role = form.get("RoleArn").cloned().unwrap_or_default();
    let target = role.split(':').nth(4).unwrap_or_default().to_string();
    let who = format!("User: arn:aws:iam::{account}:user/auditor is not authorized to perform: sts:AssumeRole on resource: {role}");
    if st.org.deny_assume.contains(&target)
        || st.org.external_id.as_ref() != form.get("ExternalId")
        || !role.starts_with("arn:aws:iam::")
    {
        return denied(who);
    }
    let n = st.sessions.len();
    let key = format!("ASIA{target}{n:06}");
    let expires =
        chrono::Utc::now() + chrono::Duration::seconds(st.org.session_seconds.unwrap_or(3600));
    st.sessions.insert(key.clone(), expires);
    let session = form.get("RoleSessionName").cloned().unwrap_or_default();
    let role_name = role.rsplit('/').next().unwrap_or_default();
    xml(
        StatusCode::OK,
        format!(
            "<AssumeRoleResponse xmlns=\"{ns}\"><AssumeRoleResult><Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>secret{n}</SecretAccessKey><SessionToken>token{n}</SessionToken><Expiration>{}</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:{session}</AssumedRoleId><Arn>arn:aws:sts::{target}:assumed-role/{role_name}/{session}</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>00000000-0000-4000-8000-000000000003</RequestId></ResponseMetadata></AssumeRoleResponse>",
            expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
    )
}

/// A form body (`a=b&c=d`, percent-encoded) as a map.
fn form_urlencoded(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    if !text.contains("Action=") {
        return HashMap::new();
    }
    let decode = |s: &str| -> String {
        let s = s.replace('+', " ");
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).to_string()
    };
    text.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// Requests per operation, for assertions.
pub fn count_by_operation(seen: &[Seen]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for s in seen {
        *m.entry(s.operation.clone()).or_default() += 1;
    }
    m
}

/// Standard base64, as the JSON protocols carry blobs.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
