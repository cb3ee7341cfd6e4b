//! report::html: `report.html`, the report people read — one self-contained file (its styles,
//! script and charts inline; no request leaves it), from compiled askama templates that escape
//! every value by default (a log record's strings are hostile). The header says what was asked
//! of which archive and how sound its logs were; then the verdict counts, the inconclusive keys
//! grouped by cause, every key in a table that filters and sorts, each with its timeline (an
//! inline SVG drawn here: key creation, the backfill window, tracking start, each use found and
//! the last use `GetKeyLastUsage` reports), and the scan manifest in brief.

use super::Summary;
use crate::correlate::{Correlated, KeyUsage, Use};
use crate::model::{iso, Instant};
use crate::scan::{ManifestRow, ObjectStatus};
use askama::Template;
use std::collections::BTreeMap;

#[derive(Template)]
#[template(path = "report.html", config = "src/report/askama.toml")]
struct Page<'a> {
    logs: &'a str,
    generated: String,
    version: &'static str,
    arguments: String,
    integrity: String,
    keys_total: usize,
    verdicts: Vec<(&'static str, usize)>,
    attention_total: usize,
    attention: Vec<Cause>,
    accounts: Vec<String>,
    regions: Vec<String>,
    rows: Vec<Row>,
    manifest: Brief,
}

/// Inconclusive keys that share a cause: (row index, ARN, reason).
struct Cause {
    cause: &'static str,
    keys: Vec<(usize, String, String)>,
}

struct Row {
    arn: String,
    aliases: String,
    account: String,
    region: String,
    tracking: &'static str,
    verdict: &'static str,
    reason: String,
    uses: i64,
    first: String,
    last: String,
    principals: String,
    last_use: String,
    integrity: &'static str,
    timeline: String,
}

struct Brief {
    read: usize,
    skipped: usize,
    unreadable: usize,
    reasons: Vec<(String, usize)>,
}

#[derive(Template)]
#[template(
    path = "timeline.svg",
    config = "src/report/askama.toml",
    escape = "html"
)]
struct Timeline {
    arn: String,
    label: String,
    width: u32,
    pad: u32,
    right: u32,
    window: Option<(u32, u32)>,
    window_text: String,
    created: Option<u32>,
    created_text: String,
    tracking: Option<u32>,
    tracking_text: String,
    uses: Vec<Mark>,
    last: Option<(u32, String)>,
    from: String,
    to: String,
}

struct Mark {
    x: u32,
    title: String,
}

/// The causes an inconclusive verdict's reason names, in the words of `verdict_reason`.
const CAUSES: [(&str, &str); 7] = [
    ("GetKeyLastUsage failed", "GetKeyLastUsage failed"),
    ("starts ", "the archive starts after the key was created"),
    ("no readable logs", "days without readable logs"),
    ("unreadable", "unreadable log objects"),
    ("archived", "log objects archived (restore needed)"),
    ("name no key", "calls that name no key"),
    ("integrity", "integrity findings"),
];

fn causes_of(reason: &str) -> Vec<&'static str> {
    let found: Vec<&'static str> = CAUSES
        .iter()
        .filter(|(needle, _)| reason.contains(needle))
        .map(|(_, cause)| *cause)
        .collect();
    if found.is_empty() {
        vec!["other"]
    } else {
        found
    }
}

const WIDTH: u32 = 720;
const PAD: u32 = 40;

fn timeline(k: &KeyUsage, uses: &[&Use]) -> String {
    let window = k.window;
    let last_usage = k.key.last_usage.as_ref();
    let times: Vec<Instant> = [
        k.key.creation,
        k.key.tracking_start,
        window.map(|w| w.start),
        window.map(|w| w.end),
        last_usage.map(|l| l.timestamp),
    ]
    .into_iter()
    .flatten()
    .chain(uses.iter().map(|u| u.event_time))
    .collect();
    let (Some(t0), Some(t1)) = (times.iter().min().copied(), times.iter().max().copied()) else {
        return String::new();
    };
    let span = (t1 - t0).num_seconds().max(1) as f64;
    let x = |t: Instant| {
        PAD + (((t - t0).num_seconds() as f64 / span) * f64::from(WIDTH - 2 * PAD)).round() as u32
    };
    let in_window = |u: &&&Use| window.is_some_and(|w| w.contains(u.event_time));
    let marks: Vec<Mark> = uses
        .iter()
        .filter(in_window)
        .map(|u| Mark {
            x: x(u.event_time),
            title: format!(
                "{} by {} at {}",
                u.operation,
                u.principal().unwrap_or("an unknown principal"),
                iso(u.event_time)
            ),
        })
        .collect();
    let label = format!(
        "{} pre-tracking use(s){}",
        marks.len(),
        if last_usage.is_some() {
            ", and the last use"
        } else {
            ""
        }
    );
    Timeline {
        arn: k.key.arn.as_str().to_string(),
        label,
        width: WIDTH,
        pad: PAD,
        right: WIDTH - PAD,
        window: window.map(|w| (x(w.start), (x(w.end) - x(w.start)).max(1))),
        window_text: window.map_or(String::new(), |w| {
            format!("{} to {}", iso(w.start), iso(w.end))
        }),
        created: k.key.creation.map(x),
        created_text: k.key.creation.map_or(String::new(), iso),
        tracking: k.key.tracking_start.map(x),
        tracking_text: k.key.tracking_start.map_or(String::new(), iso),
        uses: marks,
        last: last_usage.map(|l| {
            (
                x(l.timestamp),
                format!(
                    "last use (GetKeyLastUsage): {} at {}{}",
                    l.operation.as_deref().unwrap_or("an operation"),
                    iso(l.timestamp),
                    k.last_usage_principal
                        .as_deref()
                        .map_or(String::new(), |p| format!(" by {p}"))
                ),
            )
        }),
        from: iso(t0)[..10].to_string(),
        to: iso(t1)[..10].to_string(),
    }
    .render()
    .expect("the timeline renders")
}

/// `report.html` for the run's findings.
pub fn render(c: &Correlated, manifest: &[ManifestRow], summary: &Summary) -> String {
    let mut by_key: BTreeMap<&str, Vec<&Use>> = BTreeMap::new();
    for u in &c.events {
        by_key.entry(u.key.as_str()).or_default().push(u);
    }
    let rows: Vec<Row> = c
        .findings
        .iter()
        .map(|k| {
            let uses = by_key
                .get(k.key.arn.as_str())
                .map_or(&[][..], |v| v.as_slice());
            Row {
                arn: k.key.arn.as_str().to_string(),
                aliases: k.key.aliases.join(", "),
                account: k.key.arn.account().to_string(),
                region: k.key.arn.region().to_string(),
                tracking: k.status.as_str(),
                verdict: k.verdict.as_str(),
                reason: k.verdict_reason.clone(),
                uses: k.pre_tracking_use_count,
                first: k.pre_tracking_first_use.map_or(String::new(), iso),
                last: k.pre_tracking_last_use.map_or(String::new(), iso),
                principals: k.pre_tracking_principals.join(", "),
                last_use: k.key.last_usage.as_ref().map_or(String::new(), |l| {
                    format!(
                        "{} {}",
                        l.operation.as_deref().unwrap_or(""),
                        iso(l.timestamp)
                    )
                }),
                integrity: k.integrity_status,
                timeline: timeline(k, uses),
            }
        })
        .collect();
    let mut causes: BTreeMap<&'static str, Vec<(usize, String, String)>> = BTreeMap::new();
    let mut attention_total = 0;
    for (i, r) in rows.iter().enumerate() {
        if r.verdict == "inconclusive" {
            attention_total += 1;
            for cause in causes_of(&r.reason) {
                causes
                    .entry(cause)
                    .or_default()
                    .push((i, r.arn.clone(), r.reason.clone()));
            }
        }
    }
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let (mut read, mut skipped, mut unreadable) = (0, 0, 0);
    for m in manifest {
        match m.status {
            ObjectStatus::Read => read += 1,
            ObjectStatus::Skipped => skipped += 1,
            ObjectStatus::Unreadable => unreadable += 1,
        }
        if let Some(why) = &m.reason {
            // The reason's kind, not its particulars (byte offsets, sizes).
            let kind = why.split(':').next().unwrap_or(why).to_string();
            *reasons.entry(kind).or_default() += 1;
        }
    }
    let mut reasons: Vec<(String, usize)> = reasons.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    reasons.truncate(10);
    let mut accounts: Vec<String> = rows.iter().map(|r| r.account.clone()).collect();
    accounts.sort();
    accounts.dedup();
    let mut regions: Vec<String> = rows.iter().map(|r| r.region.clone()).collect();
    regions.sort();
    regions.dedup();
    let integrity = match &summary.integrity {
        None => {
            "not checked (no digests for the planned days, or --verify-integrity off)".to_string()
        }
        Some(i) if i.failures == 0 => format!(
            "verified: {} digest file(s), {} signature(s) verified, no failing findings",
            i.digests, i.signatures_verified
        ),
        Some(i) => format!(
            "FAILED: {} failing finding(s) over {} digest file(s) — see the integrity/ table",
            i.failures, i.digests
        ),
    };
    Page {
        logs: &summary.run.logs,
        generated: iso(chrono::Utc::now()),
        version: env!("CARGO_PKG_VERSION"),
        arguments: summary.run.arguments.join(" "),
        integrity,
        keys_total: summary.keys,
        verdicts: summary.verdicts.iter().map(|(v, n)| (*v, *n)).collect(),
        attention_total,
        attention: causes
            .into_iter()
            .map(|(cause, keys)| Cause { cause, keys })
            .collect(),
        accounts,
        regions,
        rows,
        manifest: Brief {
            read,
            skipped,
            unreadable,
            reasons,
        },
    }
    .render()
    .expect("the report renders")
}
