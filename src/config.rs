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

#[derive(Debug, Clone)]
pub struct Config {
    pub usage: PathBuf,
    pub logs: PathBuf,
    pub out: PathBuf,
    pub backfill: BackfillScope,
    /// Lower bound of every backfill window (`--since`).
    pub since: Option<Instant>,
    pub threads: usize,
    /// Replace an existing, non-empty `--out`.
    pub overwrite: bool,
    /// The command line, recorded in `summary.json`.
    pub arguments: Vec<String>,
}
