//! record: one CloudTrail record and the rules that decide whether it is a use of a KMS key, and
//! of which key. Pure. These rules are the product's definition of "use"; each one comes from
//! the README's "Tracking status and verdicts" (what counts as a use) and AWS's CloudTrail record
//! contents for KMS (<https://docs.aws.amazon.com/kms/latest/developerguide/logging-using-cloudtrail.html>).

use crate::model::{parse_iso, Instant, KeyArn};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;

pub const KMS_EVENT_SOURCE: &str = "kms.amazonaws.com";

pub use crate::model::TRACKED_OPERATIONS;

pub fn is_tracked_operation(name: &str) -> bool {
    TRACKED_OPERATIONS.contains(&name)
}

/// The fields of a CloudTrail record that keytrail reads; everything else is ignored unparsed.
/// Strings are borrowed from the record's bytes (owned only where they hold escapes), so reading
/// a record allocates next to nothing.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record<'a> {
    #[serde(borrow)]
    pub event_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub event_source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub event_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub aws_region: Option<Cow<'a, str>>,
    #[serde(rename = "sourceIPAddress", borrow)]
    pub source_ip_address: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub user_agent: Option<Cow<'a, str>>,
    /// Any JSON: present and not null means the call failed (a string names why).
    #[serde(borrow)]
    pub error_code: Option<&'a RawValue>,
    #[serde(borrow)]
    pub error_message: Option<Cow<'a, str>>,
    #[serde(rename = "eventID", borrow)]
    pub event_id: Option<Cow<'a, str>>,
    #[serde(rename = "sharedEventID", borrow)]
    pub shared_event_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub user_identity: Option<UserIdentity<'a>>,
    #[serde(borrow)]
    pub request_parameters: Option<RequestParameters<'a>>,
    #[serde(borrow)]
    pub resources: Option<Vec<Resource<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub invoked_by: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestParameters<'a> {
    #[serde(borrow)]
    pub key_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub destination_key_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub encryption_context: Option<&'a RawValue>,
    /// ReEncrypt's contexts: the source key's and the destination key's (it has no
    /// `encryptionContext`).
    #[serde(borrow)]
    pub source_encryption_context: Option<&'a RawValue>,
    #[serde(borrow)]
    pub destination_encryption_context: Option<&'a RawValue>,
    /// CreateAlias / UpdateAlias / DeleteAlias: the alias (`alias/<name>`) and its new key.
    #[serde(borrow)]
    pub alias_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub target_key_id: Option<Cow<'a, str>>,
}

impl RequestParameters<'_> {
    /// The encryption context the call used with the key in `role`.
    fn context_for(&self, role: KeyRole) -> Option<&RawValue> {
        let own = match role {
            KeyRole::Key => None,
            KeyRole::Source => self.source_encryption_context,
            KeyRole::Destination => self.destination_encryption_context,
        };
        own.or(self.encryption_context)
    }
}

#[derive(Debug, Deserialize)]
pub struct Resource<'a> {
    #[serde(rename = "ARN", borrow)]
    pub arn: Option<Cow<'a, str>>,
    #[serde(rename = "accountId", borrow)]
    pub account_id: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow)]
    pub kind: Option<Cow<'a, str>>,
}

/// An owned copy of a borrowed field.
fn owned(field: &Option<Cow<'_, str>>) -> Option<String> {
    field.as_deref().map(str::to_string)
}

/// What a use is called in `kms_events.key_role`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum KeyRole {
    Key,
    Source,
    Destination,
}

impl KeyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Key => "key",
            KeyRole::Source => "source",
            KeyRole::Destination => "destination",
        }
    }
}

/// The keys a run cares about, and how to resolve the names a caller may have passed.
#[derive(Debug, Default)]
pub struct KeyIndex {
    arns: HashMap<String, KeyArn>,
    /// (account, region, alias name) -> key. Aliases are per account and region.
    aliases: HashMap<(String, String, String), KeyArn>,
    /// (account, region, key id) -> key.
    ids: HashMap<(String, String, String), KeyArn>,
    /// (account, region) -> the first key there: the stand-in of an alias-only record until
    /// `scan::aliases` decides which key the alias meant.
    places: HashMap<(String, String), KeyArn>,
}

/// How a record's key was found (`kms_events.resolved_by`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ResolvedBy {
    /// `resources[].ARN` named it.
    #[default]
    Resources,
    /// `requestParameters.keyId` held its ARN.
    KeyArn,
    /// `requestParameters.keyId` held its bare id (caller's own account and region).
    KeyId,
    /// An alias, as the `CreateAlias`/`UpdateAlias`/`DeleteAlias` records read had it pointing
    /// at the event's time.
    AliasAtEventTime,
    /// An alias, as it points today (no alias record read says otherwise for that time).
    AliasToday,
}

impl ResolvedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ResolvedBy::Resources => "resources",
            ResolvedBy::KeyArn => "key_arn",
            ResolvedBy::KeyId => "key_id",
            ResolvedBy::AliasAtEventTime => "alias_at_event_time",
            ResolvedBy::AliasToday => "alias_today",
        }
    }
}

/// What a caller's `keyId` named, resolved as far as a single record allows.
#[derive(Debug, PartialEq)]
pub enum Named<'i> {
    Key(&'i KeyArn, ResolvedBy),
    /// An alias of an account and region where in-scope keys live: which key it meant depends
    /// on when (see `scan::aliases`). `stand_in`, a key of that account and region, holds the
    /// place until then.
    Alias {
        name: String,
        stand_in: &'i KeyArn,
    },
    Nothing,
}

/// One key a record is attributed to: the key, its role in the call, how it was found, and for a
/// record that named it only through an alias, that alias (`alias/<name>`) — then the key is a
/// stand-in of the alias's account and region until the alias's history decides.
#[derive(Debug, Clone, PartialEq)]
pub struct Attributed {
    pub key: KeyArn,
    pub role: KeyRole,
    pub by: ResolvedBy,
    pub alias: Option<String>,
}

impl KeyIndex {
    pub fn new<'k>(keys: impl IntoIterator<Item = (&'k KeyArn, &'k [String])>) -> KeyIndex {
        let mut index = KeyIndex::default();
        for (arn, aliases) in keys {
            let (acct, region) = (arn.account().to_string(), arn.region().to_string());
            index.arns.insert(arn.as_str().to_string(), arn.clone());
            index.ids.insert(
                (acct.clone(), region.clone(), arn.key_id().to_string()),
                arn.clone(),
            );
            index
                .places
                .entry((acct.clone(), region.clone()))
                .or_insert_with(|| arn.clone());
            for alias in aliases {
                index
                    .aliases
                    .insert((acct.clone(), region.clone(), alias.clone()), arn.clone());
            }
        }
        index
    }

    pub fn get(&self, arn: &str) -> Option<&KeyArn> {
        self.arns.get(arn)
    }

    /// The in-scope key an alias points at today (the inventory's aliases).
    pub fn alias_today(&self, account: &str, region: &str, name: &str) -> Option<&KeyArn> {
        self.aliases
            .get(&(account.to_string(), region.to_string(), name.to_string()))
    }

    /// Whether any in-scope key lives in `account`/`region`.
    pub fn has_place(&self, account: &str, region: &str) -> bool {
        self.places
            .contains_key(&(account.to_string(), region.to_string()))
    }

    /// Resolves `requestParameters.keyId` as KMS would for a caller in `account`/`region`: a key
    /// ARN; a bare key id (which KMS only accepts for keys in the caller's own account and
    /// region); an alias name or alias ARN, whose key depends on the time (`Named::Alias`).
    pub fn resolve(&self, key_id: &str, account: &str, region: &str) -> Named<'_> {
        let alias = |a: &str, r: &str, name: &str| match self.places.get(&(a.into(), r.into())) {
            Some(stand_in) => Named::Alias {
                name: name.into(),
                stand_in,
            },
            None => Named::Nothing,
        };
        if let Some(rest) = key_id.strip_prefix("arn:") {
            // arn:<partition>:kms:<region>:<account>:alias/<name>
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            if let [_, "kms", r, a, res] = parts[..] {
                if res.starts_with("alias/") {
                    return alias(a, r, res);
                }
            }
            return self
                .arns
                .get(key_id)
                .map_or(Named::Nothing, |k| Named::Key(k, ResolvedBy::KeyArn));
        }
        if key_id.starts_with("alias/") {
            return alias(account, region, key_id);
        }
        let k = (account.to_string(), region.to_string(), key_id.to_string());
        self.ids
            .get(&k)
            .map_or(Named::Nothing, |k| Named::Key(k, ResolvedBy::KeyId))
    }
}

/// Why a KMS record was not attributed to any in-scope key (counted, never silently dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribution {
    /// A successful tracked call; these keys were used, with these roles.
    Uses,
    /// Not a use: failed call, non-cryptographic operation, not KMS.
    NotAUse,
    /// A successful tracked call that names no key at all (no resources, no keyId).
    Unattributable,
    /// A tracked call that failed (`errorCode`): an attempt to use these keys, not a use.
    Failed,
}

/// Decides whether `r` is a use, and of which in-scope keys.
///
/// - only `kms.amazonaws.com` and one of the 14 tracked operations; with an `errorCode` it is a
///   failed attempt on the keys it names (`Failed`), not a use;
/// - the key is `resources[].ARN` (its `type` may be absent); ReEncrypt lists source then
///   destination;
/// - only when `resources` names no key: `requestParameters.keyId` (and for ReEncrypt
///   `destinationKeyId`), resolved in the recipient account and the record's region; through an
///   alias, one copy with a stand-in key of the alias's account and region (one copy whatever
///   the number of keys there), which `scan::aliases::resolve` gives the key the alias pointed
///   at when the call was made.
pub fn attribute(r: &Record<'_>, index: &KeyIndex, out: &mut Vec<Attributed>) -> Attribution {
    out.clear();
    let tracked = r.event_source.as_deref() == Some(KMS_EVENT_SOURCE)
        && r.event_name.as_deref().is_some_and(is_tracked_operation);
    if !tracked {
        return Attribution::NotAUse;
    }
    let failed = r.error_code.is_some();
    let reencrypt = r.event_name.as_deref() == Some("ReEncrypt");
    let role_at = |i: usize| match (reencrypt, i) {
        (false, _) => KeyRole::Key,
        (true, 0) => KeyRole::Source,
        (true, _) => KeyRole::Destination,
    };
    let named: Vec<&str> = r
        .resources
        .iter()
        .flatten()
        .filter(|res| res.kind.as_deref().is_none_or(|t| t == "AWS::KMS::Key"))
        .filter_map(|res| res.arn.as_deref())
        .filter(|arn| arn.contains(":key/"))
        .collect();
    let found = if failed {
        Attribution::Failed
    } else {
        Attribution::Uses
    };
    if !named.is_empty() {
        for (i, arn) in named.iter().enumerate() {
            if let Some(k) = index.get(arn) {
                out.push(Attributed {
                    key: k.clone(),
                    role: role_at(i),
                    by: ResolvedBy::Resources,
                    alias: None,
                });
            }
        }
        return found;
    }
    let account = r.recipient_account_id.as_deref().unwrap_or_default();
    let region = r.aws_region.as_deref().unwrap_or_default();
    let params = r.request_parameters.as_ref();
    let passed: Vec<(Option<&str>, KeyRole)> = if reencrypt {
        // ReEncrypt carries the destination but not the source key id.
        vec![(
            params.and_then(|p| p.destination_key_id.as_deref()),
            KeyRole::Destination,
        )]
    } else {
        vec![(params.and_then(|p| p.key_id.as_deref()), KeyRole::Key)]
    };
    if passed.iter().all(|(id, _)| id.is_none()) {
        // A failed call that names no key is nobody's attempt; only a success can be a use.
        return if failed {
            Attribution::NotAUse
        } else {
            Attribution::Unattributable
        };
    }
    for (id, role) in passed {
        match id.map_or(Named::Nothing, |id| index.resolve(id, account, region)) {
            Named::Key(k, by) => out.push(Attributed {
                key: k.clone(),
                role,
                by,
                alias: None,
            }),
            Named::Alias { name, stand_in } => out.push(Attributed {
                key: stand_in.clone(),
                role,
                // Until the alias's history decides (scan::aliases).
                by: ResolvedBy::AliasToday,
                alias: Some(name),
            }),
            Named::Nothing => {}
        }
    }
    found
}

/// One delivered copy of a use, with the fields the report needs, owned.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UseCopy {
    pub key: KeyArn,
    pub role: KeyRole,
    pub event_id: String,
    pub shared_event_id: Option<String>,
    pub event_time: Instant,
    pub operation: String,
    pub principal_arn: Option<String>,
    pub principal_type: Option<String>,
    pub principal_account: Option<String>,
    pub invoked_by: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub encryption_context: Option<String>,
    pub recipient_account_id: Option<String>,
    pub log_object: String,
    /// A failed call's `errorCode` and `errorMessage`: an attempt, not a use (`failed_attempts/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// How the record named this key (`kms_events.resolved_by`).
    #[serde(default)]
    pub resolved_by: ResolvedBy,
    /// The alias (`alias/<name>`) the record named its key by, when it named it no other way
    /// (then its key is a stand-in until `scan::aliases::resolve`); for an alias record
    /// (`CreateAlias`, `UpdateAlias`, `DeleteAlias`), the alias it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_alias: Option<String>,
}

impl UseCopy {
    /// A record of an alias's change (`alias_move`), not a call on a key.
    pub fn is_alias_move(&self) -> bool {
        ALIAS_OPERATIONS.contains(&self.operation.as_str())
    }

    /// Who made the call: the caller's ARN; for a service acting on its own, the service; for
    /// the owner's copy of a cross-account call, the caller's account.
    pub fn principal(&self) -> Option<&str> {
        self.principal_arn
            .as_deref()
            .or(self.invoked_by.as_deref())
            .or(self.principal_account.as_deref())
    }

    /// The copy delivered to the key owner's account (the one whose `eventID` KMS reports).
    pub fn is_owner_copy(&self) -> bool {
        self.recipient_account_id.as_deref() == Some(self.key.account())
    }

    /// The copy delivered to another account than the key's: the caller's copy of a
    /// cross-account call. (A record without `recipientAccountId` is not taken for one.)
    pub fn is_caller_copy(&self) -> bool {
        self.recipient_account_id
            .as_deref()
            .is_some_and(|r| r != self.key.account())
    }
}

/// The owned copies of a use, one per attributed key; `Err` names why the record is malformed.
pub fn use_copies(
    r: &Record<'_>,
    keys: &[Attributed],
    log_object: &str,
) -> Result<Vec<UseCopy>, &'static str> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let event_time = r
        .event_time
        .as_deref()
        .and_then(parse_iso)
        .ok_or("eventTime missing or not ISO-8601")?;
    let event_id = owned(&r.event_id).ok_or("eventID missing")?;
    let ui = r.user_identity.as_ref();
    Ok(keys
        .iter()
        .map(|a| UseCopy {
            key: a.key.clone(),
            role: a.role,
            event_id: event_id.clone(),
            shared_event_id: owned(&r.shared_event_id),
            event_time,
            operation: r.event_name.as_deref().unwrap_or_default().to_string(),
            principal_arn: ui.and_then(|u| owned(&u.arn)),
            principal_type: ui.and_then(|u| owned(&u.kind)),
            principal_account: ui.and_then(|u| owned(&u.account_id)),
            invoked_by: ui.and_then(|u| owned(&u.invoked_by)),
            source_ip: owned(&r.source_ip_address),
            user_agent: owned(&r.user_agent),
            encryption_context: r
                .request_parameters
                .as_ref()
                .and_then(|p| p.context_for(a.role))
                .map(|raw| compact_json(raw.get())),
            recipient_account_id: owned(&r.recipient_account_id),
            log_object: log_object.to_string(),
            error_code: r
                .error_code
                .map(|raw| match serde_json::from_str::<String>(raw.get()) {
                    Ok(code) => code,
                    Err(_) => compact_json(raw.get()),
                }),
            error_message: owned(&r.error_message),
            resolved_by: a.by,
            via_alias: a.alias.clone(),
        })
        .collect())
}

/// The alias operations whose records say where an alias pointed from then on.
pub const ALIAS_OPERATIONS: [&str; 3] = ["CreateAlias", "UpdateAlias", "DeleteAlias"];

/// A successful `CreateAlias`/`UpdateAlias`/`DeleteAlias` in an account and region of an
/// in-scope key, as a copy whose `via_alias` is the alias and whose key is the one it points at
/// from then on (for `DeleteAlias`, the one it pointed at until then). The key is
/// `resources[].ARN` (the alias's own ARN is listed there too, typed as a key), else
/// `requestParameters.targetKeyId`, resolved in the record's account and region. `None` for any
/// other record, and for one that names no alias or no key.
pub fn alias_move(r: &Record<'_>, index: &KeyIndex, log_object: &str) -> Option<UseCopy> {
    let op = r.event_name.as_deref()?;
    if r.event_source.as_deref() != Some(KMS_EVENT_SOURCE)
        || !ALIAS_OPERATIONS.contains(&op)
        || r.error_code.is_some()
    {
        return None;
    }
    let account = r.recipient_account_id.as_deref()?;
    let region = r.aws_region.as_deref()?;
    if !index.has_place(account, region) {
        return None;
    }
    let params = r.request_parameters.as_ref()?;
    let name = params.alias_name.as_deref()?;
    let named = r
        .resources
        .iter()
        .flatten()
        .filter_map(|res| res.arn.as_deref())
        .find(|arn| arn.contains(":key/"))
        .map(str::to_string);
    let target = named.or_else(|| {
        let id = params.target_key_id.as_deref()?;
        Some(match id.starts_with("arn:") {
            true => id.to_string(),
            false => {
                // A bare id names a key of the alias's own account and region.
                let partition = r
                    .resources
                    .iter()
                    .flatten()
                    .filter_map(|res| res.arn.as_deref())
                    .find_map(|arn| arn.split(':').nth(1))
                    .unwrap_or("aws");
                format!("arn:{partition}:kms:{region}:{account}:key/{id}")
            }
        })
    })?;
    let key = KeyArn::parse(&target).ok()?;
    let attributed = [Attributed {
        key,
        role: KeyRole::Key,
        by: ResolvedBy::Resources,
        alias: Some(name.to_string()),
    }];
    use_copies(r, &attributed, log_object).ok()?.pop()
}

/// Re-serialises a JSON fragment without insignificant whitespace.
fn compact_json(raw: &str) -> String {
    serde_json::from_str::<serde_json::Value>(raw)
        .map_or_else(|_| raw.to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "111122223333";
    const K1: &str = "arn:aws:kms:us-east-1:111122223333:key/k1";
    const K2: &str = "arn:aws:kms:us-east-1:111122223333:key/k2";
    const OTHER: &str = "arn:aws:kms:us-east-1:999999999999:key/zz";

    fn index() -> KeyIndex {
        let k1 = KeyArn::parse(K1).unwrap();
        let k2 = KeyArn::parse(K2).unwrap();
        let a1 = vec!["alias/app".to_string()];
        let none: Vec<String> = vec![];
        KeyIndex::new([(&k1, a1.as_slice()), (&k2, none.as_slice())])
    }

    /// `check(record JSON, expected attribution, expected (key, role) pairs)`.
    fn check(name: &str, json: &str, want: Attribution, keys: &[(&str, KeyRole)]) {
        let r: Record = serde_json::from_str(json).unwrap_or_else(|e| panic!("case {name}: {e}"));
        let mut out = Vec::new();
        let got = attribute(&r, &index(), &mut out);
        assert_eq!(got, want, "case {name}");
        let got: Vec<(&str, KeyRole)> = out.iter().map(|a| (a.key.as_str(), a.role)).collect();
        assert_eq!(got, keys, "case {name}");
    }

    fn rec(name: &str, extra: &str) -> String {
        format!(
            r#"{{"eventSource":"kms.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","recipientAccountId":"{A}","eventID":"e"{extra}}}"#
        )
    }

    #[test]
    fn what_counts_as_a_use() {
        use Attribution::*;
        use KeyRole::*;
        let res1 =
            format!(r#","resources":[{{"ARN":"{K1}","accountId":"{A}","type":"AWS::KMS::Key"}}]"#);
        let res1_untyped = format!(r#","resources":[{{"ARN":"{K1}","accountId":"{A}"}}]"#);
        check(
            "decrypt with resources",
            &rec("Decrypt", &res1),
            Uses,
            &[(K1, Key)],
        );
        check(
            "resources without type",
            &rec("Sign", &res1_untyped),
            Uses,
            &[(K1, Key)],
        );
        check(
            "failed call",
            &rec("Decrypt", &format!(r#","errorCode":"AccessDenied"{res1}"#)),
            Failed,
            &[(K1, Key)],
        );
        check(
            "a failed call through keyId is an attempt on the key it names",
            &rec(
                "Decrypt",
                &format!(
                    r#","errorCode":"DisabledException","requestParameters":{{"keyId":"{K1}"}}"#
                ),
            ),
            Failed,
            &[(K1, Key)],
        );
        check(
            "a failed call that names no key is nobody's attempt",
            &rec("Decrypt", r#","errorCode":"DisabledException""#),
            NotAUse,
            &[],
        );
        check(
            "a failed call of an operation that is no use is no attempt either",
            &rec(
                "DescribeKey",
                &format!(r#","errorCode":"DisabledException"{res1}"#),
            ),
            NotAUse,
            &[],
        );
        check(
            "errorCode null is no error",
            &rec("Decrypt", &format!(r#","errorCode":null{res1}"#)),
            Uses,
            &[(K1, Key)],
        );
        for op in [
            "DescribeKey",
            "GetPublicKey",
            "GenerateRandom",
            "CreateGrant",
            "GetKeyPolicy",
            "ListAliases",
        ] {
            check(op, &rec(op, &res1), NotAUse, &[]);
        }
        check(
            "not KMS",
            &format!(
                r#"{{"eventSource":"s3.amazonaws.com","eventName":"Decrypt","eventID":"e"{res1}}}"#
            ),
            NotAUse,
            &[],
        );
        for op in TRACKED_OPERATIONS.iter().filter(|o| **o != "ReEncrypt") {
            check(op, &rec(op, &res1), Uses, &[(K1, Key)]);
        }
        check(
            "keyId is an alias but resources win",
            &rec(
                "Encrypt",
                &format!(r#","requestParameters":{{"keyId":"alias/other"}}{res1}"#),
            ),
            Uses,
            &[(K1, Key)],
        );
        check(
            "ReEncrypt: source then destination",
            &rec(
                "ReEncrypt",
                &format!(r#","resources":[{{"ARN":"{K2}"}},{{"ARN":"{K1}"}}]"#),
            ),
            Uses,
            &[(K2, Source), (K1, Destination)],
        );
        check(
            "ReEncrypt whose source is outside the inventory",
            &rec(
                "ReEncrypt",
                &format!(r#","resources":[{{"ARN":"{OTHER}"}},{{"ARN":"{K1}"}}]"#),
            ),
            Uses,
            &[(K1, Destination)],
        );
        check(
            "key outside the inventory",
            &rec("Decrypt", &format!(r#","resources":[{{"ARN":"{OTHER}"}}]"#)),
            Uses,
            &[],
        );
        // An alias's key depends on the time: one copy, its key a stand-in of the alias's
        // account and region (the first key there) until scan::aliases decides.
        check(
            "no resources: alias name",
            &rec(
                "GenerateDataKey",
                r#","requestParameters":{"keyId":"alias/app"}"#,
            ),
            Uses,
            &[(K1, Key)],
        );
        check(
            "no resources: alias ARN",
            &rec(
                "GenerateDataKey",
                &format!(
                    r#","requestParameters":{{"keyId":"arn:aws:kms:us-east-1:{A}:alias/app"}}"#
                ),
            ),
            Uses,
            &[(K1, Key)],
        );
        check(
            "no resources: alias of another region does not resolve",
            &rec(
                "GenerateDataKey",
                r#","awsRegion":"eu-west-1","requestParameters":{"keyId":"alias/app"}"#,
            )
            .replace(r#""awsRegion":"us-east-1","#, ""),
            Uses,
            &[],
        );
        check(
            "no resources: key ARN",
            &rec(
                "Encrypt",
                &format!(r#","requestParameters":{{"keyId":"{K2}"}}"#),
            ),
            Uses,
            &[(K2, Key)],
        );
        check(
            "no resources: bare key id",
            &rec("Encrypt", r#","requestParameters":{"keyId":"k2"}"#),
            Uses,
            &[(K2, Key)],
        );
        check(
            "no resources: ReEncrypt destination only",
            &rec(
                "ReEncrypt",
                &format!(r#","requestParameters":{{"destinationKeyId":"{K1}"}}"#),
            ),
            Uses,
            &[(K1, Destination)],
        );
        check(
            "no resources, no keyId (symmetric Decrypt)",
            &rec("Decrypt", ""),
            Unattributable,
            &[],
        );
        check(
            "empty resources, no keyId",
            &rec("Decrypt", r#","resources":[]"#),
            Unattributable,
            &[],
        );
    }

    #[test]
    fn each_copy_says_how_its_key_was_named() {
        let by = |extra: &str| {
            let json = rec("Encrypt", extra);
            let r: Record = serde_json::from_str(&json).unwrap();
            let mut out = Vec::new();
            attribute(&r, &index(), &mut out);
            out.iter()
                .map(|a| (a.by, a.alias.clone()))
                .collect::<Vec<_>>()
        };
        use ResolvedBy::*;
        assert_eq!(
            by(&format!(r#","resources":[{{"ARN":"{K1}"}}]"#)),
            [(Resources, None)]
        );
        assert_eq!(
            by(&format!(r#","requestParameters":{{"keyId":"{K2}"}}"#)),
            [(KeyArn, None)]
        );
        assert_eq!(
            by(r#","requestParameters":{"keyId":"k2"}"#),
            [(KeyId, None)]
        );
        let alias = Some("alias/app".to_string());
        assert_eq!(
            by(&format!(
                r#","requestParameters":{{"keyId":"arn:aws:kms:us-east-1:{A}:alias/app"}}"#
            )),
            [(AliasToday, alias)]
        );
    }

    #[test]
    fn alias_changes_are_kept_with_the_key_they_point_at() {
        let change = |op: &str, extra: &str| {
            let json = rec(
                op,
                &format!(r#","eventTime":"2026-03-01T00:00:00Z"{extra}"#),
            );
            let r: Record = serde_json::from_str(&json).unwrap();
            alias_move(&r, &index(), "o").map(|c| (c.key.as_str().to_string(), c.via_alias))
        };
        let alias = Some("alias/app".to_string());
        // As AWS documents UpdateAlias: the alias's ARN (typed as a key) and the key's.
        let both = format!(
            r#","requestParameters":{{"aliasName":"alias/app","targetKeyId":"k2"}},"resources":[{{"ARN":"arn:aws:kms:us-east-1:{A}:alias/app","type":"AWS::KMS::Key"}},{{"ARN":"{K2}","type":"AWS::KMS::Key"}}]"#
        );
        assert_eq!(
            change("UpdateAlias", &both),
            Some((K2.into(), alias.clone()))
        );
        // Without resources: the target's bare id, in the record's account and region.
        let bare = r#","requestParameters":{"aliasName":"alias/app","targetKeyId":"k9"}"#;
        assert_eq!(
            change("CreateAlias", bare),
            Some((format!("arn:aws:kms:us-east-1:{A}:key/k9"), alias.clone()))
        );
        assert_eq!(change("DeleteAlias", &both), Some((K2.into(), alias)));
        let failed = both.replace(
            r#","requestParameters""#,
            r#","errorCode":"NotFoundException","requestParameters""#,
        );
        assert_eq!(
            change("UpdateAlias", &failed),
            None,
            "a failed change changes nothing"
        );
        assert_eq!(change("Decrypt", &both), None);
        let elsewhere = rec(
            "UpdateAlias",
            &format!(r#","eventTime":"2026-03-01T00:00:00Z"{both}"#),
        )
        .replace("us-east-1", "eu-west-1");
        let r: Record = serde_json::from_str(&elsewhere).unwrap();
        assert!(
            alias_move(&r, &index(), "o").is_none(),
            "no in-scope key lives there"
        );
    }

    #[test]
    fn cross_account_owner_copy_is_recognised() {
        let json = format!(
            r#"{{"eventTime":"2026-03-01T00:00:00Z","eventSource":"kms.amazonaws.com","eventName":"Decrypt","recipientAccountId":"{A}","eventID":"owner","sharedEventID":"s",
            "userIdentity":{{"type":"AWSAccount","accountId":"444455556666"}},"resources":[{{"ARN":"{K1}"}}],"requestParameters":{{"encryptionContext": {{ "a" : "b" }} }}}}"#
        );
        let r: Record = serde_json::from_str(&json).unwrap();
        let mut keys = Vec::new();
        attribute(&r, &index(), &mut keys);
        let copies = use_copies(&r, &keys, "obj").unwrap();
        assert_eq!(copies.len(), 1);
        assert!(copies[0].is_owner_copy());
        assert_eq!(copies[0].principal_account.as_deref(), Some("444455556666"));
        assert_eq!(
            copies[0].encryption_context.as_deref(),
            Some(r#"{"a":"b"}"#)
        );
    }

    #[test]
    fn a_use_without_event_time_is_malformed() {
        let json = rec("Decrypt", &format!(r#","resources":[{{"ARN":"{K1}"}}]"#));
        let r: Record = serde_json::from_str(&json).unwrap();
        let mut keys = Vec::new();
        attribute(&r, &index(), &mut keys);
        assert_eq!(
            use_copies(&r, &keys, "o").unwrap_err(),
            "eventTime missing or not ISO-8601"
        );
    }
}
