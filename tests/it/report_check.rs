//! The sample report, read by engines independent of keytrail: pyarrow checks the Parquet
//! schema against the Athena DDL in `queries/ddl/`, and DuckDB runs every investigation query in
//! `queries/` and compares its answer with the samples' ground truth. Needs `python3` with the
//! packages of `tests/requirements.txt` (the README's test command installs them).

use crate::common::{repo, run};
use std::process::Command;

#[test]
fn sample_report_matches_the_ddl_and_every_query_answers_as_the_truth_says() {
    let samples = repo().join("samples");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let (code, text) = run(
        &samples.join("usage.jsonl"),
        &samples.join("logs"),
        &out,
        &[],
    );
    assert_eq!(
        code, 1,
        "the samples contain corrupt objects by design: {text}"
    );
    let check = Command::new("python3")
        .arg(repo().join("tests/report_check.py"))
        .arg(&out)
        .arg(samples.join("truth.json"))
        .arg(repo().join("queries"))
        .arg(samples.join("logs"))
        .output()
        .expect("python3 runs (install it and `pip install -r tests/requirements.txt`)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(check.status.success(), "report_check.py failed:\n{said}");
    assert!(said.contains(" passed, 0 failed"), "{said}");
}
