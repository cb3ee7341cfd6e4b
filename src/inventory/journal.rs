//! inventory::journal: a live inventory's progress, kept in the resume checkpoint's folder, so that
//! an organization's inventory killed half-way goes on with `--resume` at the accounts not yet
//! listed and the keys not yet asked. Each account is journaled once it is examined — its keys as
//! listed, then its `{"Account": …}` line (an account without that line is examined again) — and
//! each key once `GetKeyLastUsage` answered it, as its snapshot line. Lines are appended and
//! flushed one by one; a torn last line is ignored. Best effort: a journal that cannot be written
//! only means a resumed run asks again.

use super::{parse_line, snapshot_line, Account, Key};
use crate::model::{from_epoch_seconds, KeyArn};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The journal's file name in the checkpoint folder.
pub const FILE: &str = "inventory.jsonl";

/// What an interrupted inventory had done: the accounts it examined with their keys, and the
/// keys it had the answers of.
#[derive(Debug, Default)]
pub struct Held {
    pub accounts: BTreeMap<String, (Account, Vec<Key>)>,
    pub answers: BTreeMap<KeyArn, Key>,
}

#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl Journal {
    /// Opens the journal at `path`: with `resume`, what it holds is read and kept; without, it
    /// starts empty.
    pub fn open(path: &Path, resume: bool) -> (Journal, Held) {
        let held = if resume { read(path) } else { Held::default() };
        let file = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(resume)
                    .write(true)
                    .truncate(!resume)
                    .open(path)
            })
            .ok();
        let journal = Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        };
        (journal, held)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An account examined, with the keys listed in it (without their answers yet).
    pub fn examined(&self, account: &Account, keys: &[Key]) {
        let mut text: String = keys
            .iter()
            .map(|k| json!({ "Listed": listed(k) }).to_string() + "\n")
            .collect();
        text.push_str(&account.line());
        text.push('\n');
        self.append(&text);
    }

    /// A key with `GetKeyLastUsage`'s answer (or the reason it failed).
    pub fn answered(&self, key: &Key) {
        let line = json!({ "Answer": serde_json::from_str::<Value>(&snapshot_line(key)).expect("a snapshot line is JSON") });
        self.append(&(line.to_string() + "\n"));
    }

    fn append(&self, text: &str) {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = file.as_mut() {
            if f.write_all(text.as_bytes())
                .and_then(|()| f.flush())
                .is_err()
            {
                *file = None;
            }
        }
    }
}

/// A listed key's line: what `ListKeys`, `DescribeKey` and `ListAliases` said.
fn listed(k: &Key) -> Value {
    json!({
        "Arn": k.arn.as_str(), "Aliases": k.aliases, "KeyState": k.key_state,
        "KeyManager": k.key_manager, "MultiRegion": k.multi_region,
        "CreationDate": k.creation.map(|t| t.timestamp_millis() as f64 / 1000.0),
    })
}

fn parse_listed(v: &Value) -> Option<Key> {
    let text = |f: &str| v.get(f).and_then(Value::as_str).map(str::to_string);
    Some(Key {
        arn: KeyArn::parse(v.get("Arn")?.as_str()?).ok()?,
        aliases: v
            .get("Aliases")?
            .as_array()?
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        key_state: text("KeyState"),
        key_manager: text("KeyManager"),
        multi_region: v.get("MultiRegion").and_then(Value::as_bool),
        creation: v
            .get("CreationDate")
            .and_then(Value::as_f64)
            .and_then(from_epoch_seconds),
        tracking_start: None,
        last_usage: None,
        error: None,
    })
}

fn read(path: &Path) -> Held {
    let mut held = Held::default();
    let Ok(file) = File::open(path) else {
        return held;
    };
    let mut listed: Vec<Key> = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let Ok(line) = line else { break };
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue; // a torn last line
        };
        if let Some(k) = v.get("Listed").and_then(parse_listed) {
            listed.push(k);
        } else if let Some(Ok(account)) = Account::parse(&v) {
            let keys: Vec<Key> = std::mem::take(&mut listed)
                .into_iter()
                .filter(|k| k.arn.account() == account.id)
                .collect();
            held.accounts.insert(account.id.clone(), (account, keys));
        } else if let Some(Ok(k)) = v.get("Answer").map(|a| parse_line(&a.to_string())) {
            held.answers.insert(k.arn.clone(), k);
        }
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::accounts::AccountStatus;

    fn key(arn: &str) -> Key {
        Key {
            arn: KeyArn::parse(arn).unwrap(),
            aliases: vec!["alias/app".into()],
            key_state: Some("Enabled".into()),
            key_manager: Some("CUSTOMER".into()),
            multi_region: Some(false),
            creation: crate::model::parse_iso("2025-01-02T03:04:05.678Z"),
            tracking_start: None,
            last_usage: None,
            error: None,
        }
    }

    #[test]
    fn what_was_journaled_is_held_on_resume_and_a_torn_tail_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp").join(FILE);
        let account = |id: &str| Account {
            id: id.into(),
            name: None,
            status: AccountStatus::Inventoried,
            reason: None,
            regions: vec!["us-east-1".into()],
        };
        let k1 = key("arn:aws:kms:us-east-1:111122223333:key/k1");
        let k2 = key("arn:aws:kms:us-east-1:044455556666:key/k2");
        {
            let (j, held) = Journal::open(&path, false);
            assert!(held.accounts.is_empty());
            j.examined(&account("111122223333"), std::slice::from_ref(&k1));
            let mut answered = k1.clone();
            answered.tracking_start = crate::model::parse_iso("2026-01-01T00:00:00Z");
            answered.error = None;
            j.answered(&answered);
            // The second account's keys, but not its account line: it was killed there.
            j.examined(&account("044455556666"), std::slice::from_ref(&k2));
        }
        // Tear the last line (the second account's).
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &text[..text.len() - 10]).unwrap();
        let (_, held) = Journal::open(&path, true);
        assert_eq!(held.accounts.len(), 1);
        assert_eq!(held.accounts["111122223333"].1, vec![k1.clone()]);
        let a = &held.answers[&k1.arn];
        assert_eq!(
            a.tracking_start,
            crate::model::parse_iso("2026-01-01T00:00:00Z")
        );
        assert_eq!(a.aliases, k1.aliases);
        // Without --resume it starts empty.
        let (_, held) = Journal::open(&path, false);
        assert!(held.accounts.is_empty() && held.answers.is_empty());
    }
}
