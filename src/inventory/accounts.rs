//! inventory::accounts: which accounts a run examined, and what became of each — `inventoried`,
//! `skipped` (an organization account that is not `ACTIVE`) or `failed` (its role could not be
//! assumed, or its keys could not be listed) — so that no account's keys go unexamined silently.
//! The rows travel in the usage snapshot (one `{"Account": …}` line each), so that an inventory
//! replayed offline reports the same accounts.

use super::Key;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountStatus {
    Inventoried,
    Skipped,
    Failed,
}

impl AccountStatus {
    pub const ALL: [AccountStatus; 3] = [
        AccountStatus::Inventoried,
        AccountStatus::Skipped,
        AccountStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Inventoried => "inventoried",
            AccountStatus::Skipped => "skipped",
            AccountStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<AccountStatus> {
        AccountStatus::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One account of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    /// The organization's name for it (`--accounts org`).
    pub name: Option<String>,
    pub status: AccountStatus,
    /// Why it was skipped or failed (or what failed in part).
    pub reason: Option<String>,
    /// The regions whose keys were listed.
    pub regions: Vec<String>,
}

impl Account {
    /// Its snapshot line.
    pub fn line(&self) -> String {
        json!({"Account": {
            "Id": self.id, "Name": self.name, "Status": self.status.as_str(),
            "Reason": self.reason, "Regions": self.regions,
        }})
        .to_string()
    }

    /// An account line of a snapshot: `None` when the line is not one, `Err` when it is a
    /// damaged one.
    pub fn parse(v: &Value) -> Option<Result<Account, String>> {
        let a = v.get("Account")?;
        let text = |f: &str| a.get(f).and_then(Value::as_str).map(str::to_string);
        Some((|| {
            let id = text("Id").ok_or("Account line without Id")?;
            if !crate::model::is_account_id(&id) {
                return Err(format!("Account Id {id:?} is not a 12-digit account id"));
            }
            let status = text("Status")
                .and_then(|s| AccountStatus::parse(&s))
                .ok_or("Account Status must be inventoried, skipped or failed")?;
            let regions = a
                .get("Regions")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            Ok(Account {
                id,
                name: text("Name"),
                status,
                reason: text("Reason"),
                regions,
            })
        })())
    }
}

/// The accounts of a snapshot that names none (written before accounts were recorded, or by
/// hand): every account its keys are in, inventoried in the regions they are in.
pub fn of_keys(keys: &[Key]) -> Vec<Account> {
    let mut regions: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for k in keys {
        regions
            .entry(k.arn.account())
            .or_default()
            .insert(k.arn.region());
    }
    regions
        .into_iter()
        .map(|(id, r)| Account {
            id: id.to_string(),
            name: None,
            status: AccountStatus::Inventoried,
            reason: None,
            regions: r.into_iter().map(str::to_string).collect(),
        })
        .collect()
}

/// An account's row of the `accounts` table: the account, its keys and how many of them
/// `GetKeyLastUsage` failed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub account: Account,
    pub keys: usize,
    pub keys_failed: usize,
}

/// The table's rows, in account order.
pub fn rows<'k>(accounts: &[Account], keys: impl IntoIterator<Item = &'k Key>) -> Vec<AccountRow> {
    let mut out: Vec<AccountRow> = accounts
        .iter()
        .map(|a| AccountRow {
            account: a.clone(),
            keys: 0,
            keys_failed: 0,
        })
        .collect();
    out.sort_by(|a, b| a.account.id.cmp(&b.account.id));
    for k in keys {
        if let Ok(i) = out.binary_search_by(|r| r.account.id.as_str().cmp(k.arn.account())) {
            out[i].keys += 1;
            out[i].keys_failed += usize::from(k.error.is_some());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_line_reads_back_as_written_and_a_damaged_one_is_named() {
        let a = Account {
            id: "012345678901".into(),
            name: Some("payments-prod".into()),
            status: AccountStatus::Failed,
            reason: Some("sts:AssumeRole denied".into()),
            regions: vec![],
        };
        let v: Value = serde_json::from_str(&a.line()).unwrap();
        assert_eq!(Account::parse(&v), Some(Ok(a)));
        let key_line = json!({"KeyId": "arn:aws:kms:us-east-1:111122223333:key/k"});
        assert_eq!(Account::parse(&key_line), None);
        let bad = json!({"Account": {"Id": "12345678901", "Status": "inventoried"}});
        assert!(Account::parse(&bad)
            .unwrap()
            .unwrap_err()
            .contains("12-digit"));
        let bad = json!({"Account": {"Id": "012345678901", "Status": "done"}});
        assert!(Account::parse(&bad).unwrap().is_err());
    }
}
