//! records: CloudTrail record JSON as AWS writes it, for the synthetic archive. Uses and other
//! KMS calls are built field by field from the generator's semantic calls; background noise
//! (other services, KMS keys outside the inventory) is built from templates, quickly, because the
//! `large` preset writes millions of records.

use super::rng::Rng;
use super::{Call, CopyKind, Identity, ResourceStyle};
use serde_json::{json, Value};

pub fn iso_secs(t: crate::model::Instant) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn identity_json(id: &Identity) -> Value {
    match id {
        Identity::Role {
            account,
            arn,
            principal_id,
        } => json!({
            "type": "AssumedRole",
            "principalId": principal_id,
            "arn": arn,
            "accountId": account,
            "accessKeyId": "ASIAEXAMPLEKEY000001",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": principal_id.split(':').next().unwrap_or_default(), "arn": arn.replace(":sts::", ":iam::").replace("assumed-role/", "role/").rsplit_once('/').map(|(a, _)| a.to_string()).unwrap_or_default(), "accountId": account, "userName": arn.split('/').nth(1).unwrap_or_default()},
                "attributes": {"creationDate": "2026-01-01T00:00:00Z", "mfaAuthenticated": "false"}
            }
        }),
        Identity::User { account, arn } => json!({
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLEUSER00001",
            "arn": arn,
            "accountId": account,
            "accessKeyId": "AKIAEXAMPLEKEY000001",
            "userName": arn.rsplit('/').next().unwrap_or_default()
        }),
        Identity::Service { invoked_by } => json!({"type": "AWSService", "invokedBy": invoked_by}),
    }
}

/// The encryption context `call` carries (for the key on `side`: `""`, or ReEncrypt's
/// `"source-"` / `"destination-"`), shaped as the service that made it documents it, and the
/// dependents it names — the generator's truth, as (service, resource). An EC2 service call is
/// EBS's; other callers' calls take turns: an S3 object, a Secrets Manager secret, a DynamoDB
/// table, a Lambda function's environment, an RDS instance on its EBS volume, and an
/// application's own context that names no AWS resource.
pub(crate) fn context_of(call: &Call, side: &str) -> (Value, Vec<(&'static str, String)>) {
    let (owner, region, id) = (&call.owner_account, &call.region, call.id);
    if let Identity::Service { invoked_by } = &call.caller {
        if invoked_by == "ec2.amazonaws.com" {
            let volume = format!("vol-{:017x}", 0x5eed_0000 + id % 7);
            return (json!({"aws:ebs:id": volume}), vec![("ebs", volume)]);
        }
    }
    match id % 6 {
        0 => {
            let bucket = format!("arn:aws:s3:::data-{owner}");
            (
                json!({"aws:s3:arn": format!("{bucket}/{side}obj-{id}")}),
                vec![("s3", bucket)],
            )
        }
        1 => {
            let secret = format!(
                "arn:aws:secretsmanager:{region}:{owner}:secret:app-{}-a1B2c3",
                id % 5
            );
            (
                json!({"SecretARN": secret, "SecretVersionId": format!("EXAMPLE1-90ab-cdef-fedc-{id:012}")}),
                vec![("secretsmanager", secret)],
            )
        }
        2 => {
            let table = format!("orders-{}", id % 3);
            (
                json!({"aws:dynamodb:tableName": table, "aws:dynamodb:subscriberId": owner}),
                vec![("dynamodb", table)],
            )
        }
        3 => {
            let function = format!("arn:aws:lambda:{region}:{owner}:function:svc-{}", id % 4);
            (
                json!({"aws:lambda:FunctionArn": function}),
                vec![("lambda", function)],
            )
        }
        4 => {
            let db = format!("db-SYNTH{}", id % 3);
            let volume = format!("vol-{:017x}", 0xdb00_0000 + id % 3);
            (
                json!({"aws:rds:db-id": db, "aws:ebs:id": volume}),
                vec![("ebs", volume), ("rds", db)],
            )
        }
        _ => (
            json!({"department": "finance", "purpose": format!("{side}batch-{}", id % 2)}),
            vec![
                ("context", "department=finance".to_string()),
                ("context", format!("purpose={side}batch-{}", id % 2)),
            ],
        ),
    }
}

/// The dependents keytrail must find for `call`'s use of a key in `role` ("key", "source",
/// "destination"): what its context names, or the calling service where that names no resource.
pub(crate) fn dependents_of(call: &Call, role: &str) -> Vec<(String, String)> {
    let side = match role {
        "source" => "source-",
        "destination" => "destination-",
        _ => "",
    };
    let takes_context = matches!(
        call.op,
        "Encrypt" | "Decrypt" | "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" | "ReEncrypt"
    );
    let mut out: Vec<(String, String)> = if takes_context {
        context_of(call, side)
            .1
            .into_iter()
            .map(|(s, r)| (s.to_string(), r))
            .collect()
    } else {
        Vec::new()
    };
    if out.iter().all(|(s, _)| s == "context") {
        if let Identity::Service { invoked_by } = &call.caller {
            out.push((
                invoked_by.trim_end_matches(".amazonaws.com").to_string(),
                invoked_by.clone(),
            ));
        }
    }
    out
}

/// The record of one delivered copy of `call`.
pub(crate) fn call_record(call: &Call, kind: CopyKind) -> String {
    let cross = call.cross_account();
    let (recipient, event_id, identity) = match kind {
        CopyKind::Owner if cross => (
            call.owner_account.clone(),
            call.owner_event_id.clone(),
            json!({"type": "AWSAccount", "principalId": "AIDAEXAMPLECROSS0001", "accountId": call.caller.account()}),
        ),
        CopyKind::Owner => (
            call.owner_account.clone(),
            call.owner_event_id.clone(),
            identity_json(&call.caller),
        ),
        CopyKind::Caller => (
            call.caller.account().unwrap_or_default().to_string(),
            call.caller_event_id.clone().unwrap_or_default(),
            identity_json(&call.caller),
        ),
    };
    let mut params = serde_json::Map::new();
    if let Some(k) = &call.key_id_param {
        params.insert("keyId".into(), json!(k));
    }
    if let Some(alias) = &call.alias_name {
        // As AWS logs them: the alias's name, and (but for DeleteAlias) the key's bare id.
        params.insert("aliasName".into(), json!(alias));
        if call.op != "DeleteAlias" {
            let key = call.resource_arns.iter().find(|a| a.contains(":key/"));
            let id = key.and_then(|a| a.rsplit('/').next()).unwrap_or_default();
            params.insert("targetKeyId".into(), json!(id));
        }
    }
    if call.op == "ReEncrypt" {
        if let Some(d) = &call.destination_param {
            params.insert("destinationKeyId".into(), json!(d));
        }
    }
    if matches!(
        call.op,
        "Encrypt" | "Decrypt" | "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" | "ReEncrypt"
    ) {
        params.insert("encryptionAlgorithm".into(), json!("SYMMETRIC_DEFAULT"));
        let context = |side: &str| context_of(call, side).0;
        // ReEncrypt names a context per key, as AWS writes it; the others one.
        if call.op == "ReEncrypt" {
            params.insert("sourceEncryptionContext".into(), context("source-"));
            params.insert(
                "destinationEncryptionContext".into(),
                context("destination-"),
            );
        } else {
            params.insert("encryptionContext".into(), context(""));
        }
    }
    if call.op == "GenerateDataKey" {
        params.insert("keySpec".into(), json!("AES_256"));
    }
    let mut r = json!({
        "eventVersion": "1.11",
        "userIdentity": identity,
        "eventTime": iso_secs(call.time),
        "eventSource": "kms.amazonaws.com",
        "eventName": call.op,
        "awsRegion": call.region,
        "sourceIPAddress": call.source_ip,
        "userAgent": call.user_agent,
        "requestParameters": if params.is_empty() { Value::Null } else { Value::Object(params) },
        "responseElements": Value::Null,
        "requestID": call.request_id,
        "eventID": event_id,
        "readOnly": !matches!(call.op, "CreateGrant" | "CreateAlias" | "UpdateAlias" | "DeleteAlias"),
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": recipient,
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": format!("kms.{}.amazonaws.com", call.region)}
    });
    let o = r.as_object_mut().expect("object");
    // Records written in the older shape (resources without `type`) are of event version 1.02:
    // no tlsDetails, managementEvent or eventCategory yet.
    if call.resources == ResourceStyle::Untyped {
        o.insert("eventVersion".into(), json!("1.02"));
        for newer in ["tlsDetails", "managementEvent", "eventCategory"] {
            o.remove(newer);
        }
    }
    if let Some(code) = &call.error_code {
        o.insert("errorCode".into(), json!(code));
        let message = match code.as_str() {
            "DisabledException" => format!("{} is disabled.", call.resource_arns[0]),
            _ => "User is not authorized to perform this operation".to_string(),
        };
        o.insert("errorMessage".into(), json!(message));
    }
    match call.resources {
        ResourceStyle::None => {}
        style => {
            let res: Vec<Value> = call
                .resource_arns
                .iter()
                .map(|arn| {
                    let account = arn.split(':').nth(4).unwrap_or_default();
                    if style == ResourceStyle::Untyped {
                        json!({"accountId": account, "ARN": arn})
                    } else {
                        json!({"accountId": account, "type": "AWS::KMS::Key", "ARN": arn})
                    }
                })
                .collect();
            o.insert("resources".into(), Value::Array(res));
        }
    }
    if cross && call.shared_event_id.is_some() {
        o.insert("sharedEventID".into(), json!(call.shared_event_id));
    }
    r.to_string()
}

const SERVICES: &[(&str, &str, bool)] = &[
    ("s3.amazonaws.com", "ListBuckets", true),
    ("ec2.amazonaws.com", "DescribeInstances", true),
    ("sts.amazonaws.com", "AssumeRole", true),
    ("iam.amazonaws.com", "GetRole", true),
    ("monitoring.amazonaws.com", "PutMetricData", false),
    ("logs.amazonaws.com", "CreateLogStream", false),
    ("lambda.amazonaws.com", "ListFunctions20150331", true),
    ("dynamodb.amazonaws.com", "DescribeTable", true),
    ("ssm.amazonaws.com", "GetParameter", true),
    ("ecr.amazonaws.com", "GetAuthorizationToken", true),
];

const AGENTS: &[&str] = &[
    "aws-sdk-java/2.25.11 Linux/6.1.79 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. md/internal exec-env/AWS_ECS_FARGATE io/sync http/Apache cfg/retry-mode/adaptive",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/macos#23.4.0 md/arch#arm64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#kms.decrypt",
    "aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/kms#1.30.0",
];

pub fn user_agent(rng: &mut Rng) -> String {
    rng.pick(AGENTS).to_string()
}

/// A record that is not a use of any inventory key: another service, or KMS on a key that is not
/// in the inventory (`kms` true).
pub fn noise_record(rng: &mut Rng, account: &str, region: &str, time: &str, kms: bool) -> String {
    let event_id = rng.uuid();
    let request_id = rng.uuid();
    let agent = rng.pick(AGENTS);
    let role = ["app-backend", "etl-nightly", "payments-api", "ci-deployer"]
        [(rng.next_u64() % 4) as usize];
    let session = rng.alnum(10);
    let ip = format!(
        "10.{}.{}.{}",
        rng.next_u64() % 256,
        rng.next_u64() % 256,
        rng.next_u64() % 256
    );
    let (source, name, read_only, params, resources) = if kms {
        let key = format!("arn:aws:kms:{region}:{account}:key/{}", rng.uuid());
        let op =
            ["Decrypt", "GenerateDataKey", "Encrypt", "DescribeKey"][(rng.next_u64() % 4) as usize];
        (
            "kms.amazonaws.com",
            op,
            true,
            format!(
                r#"{{"encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":{{"aws:lambda:FunctionArn":"arn:aws:lambda:{region}:{account}:function:svc-{}"}}}}"#,
                rng.next_u64() % 50
            ),
            format!(
                r#","resources":[{{"accountId":"{account}","type":"AWS::KMS::Key","ARN":"{key}"}}]"#
            ),
        )
    } else {
        let (s, n, ro) = *rng.pick(SERVICES);
        (
            s,
            n,
            ro,
            format!(
                r#"{{"maxResults":{},"filter":"tag:team=platform-{}"}}"#,
                rng.next_u64() % 1000,
                rng.next_u64() % 20
            ),
            String::new(),
        )
    };
    format!(
        r#"{{"eventVersion":"1.11","userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLEROLE00001:{session}","arn":"arn:aws:sts::{account}:assumed-role/{role}/{session}","accountId":"{account}","accessKeyId":"ASIAEXAMPLE{key}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROAEXAMPLEROLE00001","arn":"arn:aws:iam::{account}:role/{role}","accountId":"{account}","userName":"{role}"}},"attributes":{{"creationDate":"{time}","mfaAuthenticated":"false"}}}}}},"eventTime":"{time}","eventSource":"{source}","eventName":"{name}","awsRegion":"{region}","sourceIPAddress":"{ip}","userAgent":"{agent}","requestParameters":{params},"responseElements":null,"requestID":"{request_id}","eventID":"{event_id}","readOnly":{read_only},"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"{account}","eventCategory":"Management","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"{host}.{region}.amazonaws.com"}}{resources}}}"#,
        key = rng.alnum(9).to_uppercase(),
        host = source.split('.').next().unwrap_or_default(),
    )
}
