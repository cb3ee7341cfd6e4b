//! report.html, read as a parser reads it (the browser tests come with issue 16's next slice):
//! every key of `key_usage/` is listed with its verdict and pre-tracking use count, the verdict
//! counts are `summary.json`'s, each key's timeline marks as many uses as `key_usage` counts, the
//! file asks for nothing outside itself, and a hostile string arrives as text.

use crate::common::{read_table, repo, run};
use scraper::{Html, Selector};
use serde_json::Value;
use std::collections::BTreeMap;

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

#[test]
fn the_html_report_shows_every_key_as_key_usage_and_summary_json_say() {
    let tmp = tempfile::tempdir().unwrap();
    // The sample inventory, with one alias that is markup.
    let usage = std::fs::read_to_string(repo().join("samples/usage.jsonl")).unwrap();
    let mut lines: Vec<Value> = usage
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let hostile = "alias/<script>alert(1)</script>";
    let with_aliases = lines
        .iter_mut()
        .find(|l| l.get("Aliases").is_some_and(|a| a.is_array()))
        .expect("a key with aliases");
    with_aliases["Aliases"]
        .as_array_mut()
        .unwrap()
        .push(Value::from(hostile));
    let usage_path = tmp.path().join("usage.jsonl");
    std::fs::write(
        &usage_path,
        lines
            .iter()
            .map(|l| l.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let out = tmp.path().join("report");
    let (code, text) = run(&usage_path, &repo().join("samples/logs"), &out, &[]);
    assert_eq!(code, 1, "{text}");

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let doc = Html::parse_document(&html);
    let key_usage = read_table(&out.join("key_usage"));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();

    // Every key, with its verdict and use count, and nothing else.
    let mut shown: BTreeMap<String, (String, i64, usize)> = BTreeMap::new();
    for tr in doc.select(&sel("#keys tbody tr")) {
        let arn = tr
            .select(&sel(".key-arn"))
            .next()
            .unwrap()
            .text()
            .collect::<String>();
        let verdict = tr
            .select(&sel(".verdict"))
            .next()
            .unwrap()
            .text()
            .collect::<String>();
        let uses: i64 = tr
            .select(&sel("td.uses"))
            .next()
            .unwrap()
            .text()
            .collect::<String>()
            .trim()
            .parse()
            .unwrap();
        let marks = tr.select(&sel("svg.timeline circle.use")).count();
        assert_eq!(tr.value().attr("data-verdict"), Some(verdict.as_str()));
        shown.insert(arn, (verdict, uses, marks));
    }
    let expected: BTreeMap<String, (String, i64, usize)> = key_usage
        .iter()
        .map(|r| {
            let n = r["pre_tracking_use_count"].as_i64().unwrap();
            (
                r["key_arn"].as_str().unwrap().to_string(),
                (r["verdict"].as_str().unwrap().to_string(), n, n as usize),
            )
        })
        .collect();
    assert_eq!(shown, expected);
    assert!(
        expected.values().any(|(_, n, _)| *n > 0),
        "some key has uses to draw"
    );

    // The counts are summary.json's.
    let counts: BTreeMap<String, u64> = doc
        .select(&sel("#verdict-counts li"))
        .map(|li| {
            let n = li
                .select(&sel(".n"))
                .next()
                .unwrap()
                .text()
                .collect::<String>();
            (
                li.value().attr("data-verdict").unwrap().to_string(),
                n.parse().unwrap(),
            )
        })
        .collect();
    let expected: BTreeMap<String, u64> = summary["verdicts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(counts, expected);

    // Self-contained: no element loads anything, no URL of another origin anywhere.
    for (tag, attr) in [
        ("script", "src"),
        ("link", "href"),
        ("img", "src"),
        ("iframe", "src"),
    ] {
        assert_eq!(
            doc.select(&sel(&format!("{tag}[{attr}]"))).count(),
            0,
            "{tag} {attr}"
        );
    }
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("url("));

    // The hostile alias is text: one script element (the report's own), the alias shown as typed.
    assert_eq!(doc.select(&sel("script")).count(), 1);
    assert!(doc.root_element().text().any(|t| t.contains(hostile)));
    assert!(!html.contains("<script>alert"));
}
