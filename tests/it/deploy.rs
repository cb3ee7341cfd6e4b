//! deploy/ works as written, as far as can be checked offline: every file parses (JSON with
//! serde_json, YAML with PyYAML — CloudFormation's short tags included), the Kubernetes shards are
//! an Indexed Job, and every `keytrail` command the files and walkthroughs name, with each of its
//! flags, exists in `keytrail <command> --help`.

use crate::common::keytrail;
use serde_json::Value;
use std::path::Path;

fn deploy() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// The YAML documents of `path`, as JSON (CloudFormation's `!Ref`-style tags read as null).
fn yaml(path: &Path) -> Vec<Value> {
    let script = "import json, sys, yaml\n\
        yaml.SafeLoader.add_multi_constructor('!', lambda l, s, n: None)\n\
        print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))";
    let o = std::process::Command::new("python3")
        .args(["-c", script, path.to_str().unwrap()])
        .output()
        .expect("python3 runs (pip install -r tests/requirements.txt)");
    assert!(
        o.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Checks that `args` (a keytrail command line without the program) names a command and flags
/// that exist.
fn check_command(args: &[String], whence: &str) {
    let sub = &args[0];
    let o = keytrail(&[sub.as_str(), "--help"]);
    assert!(
        o.status.success(),
        "{whence}: `keytrail {sub}` is not a command"
    );
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        let flag = flag.split('=').next().unwrap();
        assert!(
            help.contains(&format!("{flag} "))
                || help.contains(&format!("{flag}\n"))
                || help.contains(&format!("{flag} <")),
            "{whence}: `keytrail {sub}` has no flag {flag}"
        );
    }
}

#[test]
fn deployment_files_parse_and_name_only_commands_and_flags_that_exist() {
    let mut checked = 0;
    // AWS Batch job definitions: RegisterJobDefinition input.
    for name in ["plan-job.json", "scan-job.json", "merge-job.json"] {
        let path = deploy().join("aws-batch").join(name);
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(
            v["jobDefinitionName"].is_string() && v["type"] == "container",
            "{name}"
        );
        let command: Vec<String> = v["containerProperties"]["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        // Every Ref::name is a parameter with a default.
        for r in command.iter().filter_map(|a| a.strip_prefix("Ref::")) {
            assert!(
                v["parameters"][r].is_string(),
                "{name}: Ref::{r} has no parameter"
            );
        }
        check_command(&command, name);
        checked += 1;
    }
    let scan: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy().join("aws-batch/scan-job.json")).unwrap(),
    )
    .unwrap();
    assert!(scan["containerProperties"]["command"]
        .as_array()
        .unwrap()
        .windows(2)
        .any(|w| w[0] == "--shard" && w[1] == "auto"));

    // Kubernetes: an Indexed Job for the shards, a Job for the merge.
    for name in ["scan-indexed-job.yaml", "merge-job.yaml"] {
        let docs = yaml(&deploy().join("k8s").join(name));
        assert_eq!(docs.len(), 1, "{name}");
        let job = &docs[0];
        assert_eq!(
            (&job["apiVersion"], &job["kind"]),
            (&Value::from("batch/v1"), &Value::from("Job")),
            "{name}"
        );
        let c = &job["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<String> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        check_command(&args, name);
        checked += 1;
    }
    let shards = &yaml(&deploy().join("k8s/scan-indexed-job.yaml"))[0];
    assert_eq!(shards["spec"]["completionMode"], "Indexed");

    // CloudFormation: the member role, read-only.
    let cfn = &yaml(&deploy().join("member-role.yaml"))[0];
    let statements = cfn["Resources"]["AuditRole"]["Properties"]["Policies"][0]["PolicyDocument"]
        ["Statement"]
        .as_array()
        .unwrap();
    for s in statements {
        for a in s["Action"].as_array().unwrap() {
            let a = a.as_str().unwrap();
            let op = a.split(':').nth(1).unwrap();
            assert!(
                ["List", "Describe", "Get"]
                    .iter()
                    .any(|p| op.starts_with(p)),
                "{a} is not read-only"
            );
        }
    }

    // The Dockerfile builds the binary and runs it.
    let docker = std::fs::read_to_string(deploy().join("aws-batch/Dockerfile")).unwrap();
    assert_eq!(
        docker.lines().filter(|l| l.starts_with("FROM ")).count(),
        2,
        "multi-stage"
    );
    assert!(docker.contains("cargo build --release --locked --bin keytrail"));
    assert!(docker.contains("ca-certificates") && docker.contains("ENTRYPOINT [\"keytrail\"]"));

    // Every `keytrail <command> ...` line of the walkthroughs.
    for readme in ["aws-batch/README.md", "k8s/README.md"] {
        let text = std::fs::read_to_string(deploy().join(readme)).unwrap();
        for line in text.lines() {
            let Some(i) = line.find("keytrail ") else {
                continue;
            };
            let words: Vec<String> = line[i + "keytrail ".len()..]
                .split(|c: char| c.is_whitespace() || c == '`')
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect();
            if words.first().is_some_and(|w| {
                ["plan", "scan", "merge", "run", "inventory"].contains(&w.as_str())
            }) {
                check_command(&words, readme);
                checked += 1;
            }
        }
    }
    assert!(checked >= 8, "{checked} commands checked");
}
