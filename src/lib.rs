//! keytrail: was this AWS KMS key ever used — when, by whom, and how sure are we?
//!
//! The pipeline is the architecture; data flows one way (`pipeline::run` calls each stage once):
//! `inventory → tracking → trails → plan → scan → integrity → lookup → correlate → report`.
//! Below the stages: `model` (ARNs, days, hex, warnings), `config` (the settings of a run),
//! `archive` (where the logs live: list and get), `aws` (one client factory); `dependents` (what
//! a key's uses name as depending on it) serves `correlate`. `checkpoint` makes
//! the scan resumable. `synth` and `bench` are tools over the same stages. The README's
//! Architecture section is the codemap; `tests/it/architecture.rs` checks the graph's direction.

pub mod archive;
pub mod aws;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod correlate;
pub mod dependents;
pub mod integrity;
pub mod interrupt;
pub mod inventory;
pub mod lookup;
pub mod model;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod report;
pub mod scan;
pub mod synth;
pub mod tracking;
pub mod trails;

pub use pipeline::{run, RunOutcome};
