//! report::html: `report.html`, the report people read — one self-contained file (its styles,
//! script and charts inline; no request leaves it), from compiled askama templates that escape
//! every value by default (a log record's strings are hostile). The header says what was asked
//! of which archive and how sound its logs were; then the verdict counts, the inconclusive keys
//! grouped by cause, every key in a table that filters and sorts, each with its timeline (an
//! inline SVG drawn here: key creation, the backfill window, tracking start, each use found and
//! the last use `GetKeyLastUsage` reports, and the days that weaken it: without readable logs,
//! with unreadable or archived objects, with integrity findings), a strip of days per account and
//! region over the planned window, and the scan manifest in brief.
//!
//! Sized for 10,000 keys: rows past the first page are laid out only when asked for, timelines
//! only when opened, and runs of like days are drawn as one shape.

use super::Summary;
use crate::correlate::{Correlated, KeyUsage, Use};
use crate::integrity::live::Evidence;
use crate::integrity::Finding;
use crate::model::{days, iso, start_of, Instant};
use crate::plan::Window;
use crate::scan::record::{ResolvedBy, UseCopy};
use crate::scan::{ManifestRow, ObjectStatus};
use askama::Template;
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// Warnings listed on the page; all of them are in `summary.json`.
const WARNINGS_LISTED: usize = 50;

#[derive(Template)]
#[template(path = "report.html", config = "src/report/askama.toml")]
struct Page<'a> {
    logs: &'a str,
    generated: String,
    version: &'static str,
    arguments: String,
    integrity: String,
    /// The run's warnings (`summary.json`), the first `WARNINGS_LISTED`: what it could not see.
    warnings: &'a [String],
    warnings_total: usize,
    keys_total: usize,
    verdicts: Vec<(&'static str, usize)>,
    attention_total: usize,
    attention: Vec<Cause>,
    /// Keys still called while disabled or pending deletion: (row, ARN, attempts, last).
    still_called: Vec<(usize, String, i64, String)>,
    /// Where failed attempts were looked for: the backfill windows, and the watched days.
    attempts_read_in: String,
    accounts: Vec<String>,
    regions: Vec<String>,
    strips: Vec<Strip>,
    /// Every key's timeline, in row order, as JSON fit to sit inside a `<script>` element.
    timelines: String,
    /// Rows laid out at first; the rest on "show more".
    page: usize,
    /// The timelines' drawing area.
    width: u32,
    pad: u32,
    rows: Vec<Row>,
    manifest: Brief,
}

/// "9 resources seen in its uses — lambda 2, s3 1, …": what a key's uses name as depending on it,
/// counted by service (each resource is in `key_dependents/`).
fn dependents_brief(k: &KeyUsage) -> String {
    let d = &k.dependents;
    if d.is_empty() {
        return String::new();
    }
    let mut by_service: BTreeMap<&str, usize> = BTreeMap::new();
    for x in d {
        *by_service.entry(x.named.service.as_str()).or_default() += 1;
    }
    let services: Vec<String> = by_service.iter().map(|(s, n)| format!("{s} {n}")).collect();
    format!(
        "{} resource(s) seen in its uses — {} (each in key_dependents/)",
        d.len(),
        services.join(", ")
    )
}

/// Principals listed in a key's row before "and N more".
const PRINCIPALS_SHOWN: usize = 3;

/// Principals listed in all for a key (a busy key can have thousands of role sessions; every
/// one is in `key_usage/` and `kms_events/`).
const PRINCIPALS_LISTED: usize = 50;

/// How many rows of the keys table are shown at once.
const PAGE: usize = 200;

/// Inconclusive keys that share a cause: (row index, ARN, reason).
struct Cause {
    cause: &'static str,
    /// The words of the reason that name the cause (what the table's text filter looks for).
    needle: &'static str,
    total: usize,
    /// The first [`CAUSE_KEYS_LISTED`] keys.
    keys: Vec<Listed>,
}

/// A key listed under a cause: its row, ARN and reason.
type Listed = (usize, String, String);

/// Keys listed under each cause; the table shows all of them on request.
const CAUSE_KEYS_LISTED: usize = 50;

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
    /// The first few principals, and the rest (shown on request).
    principals: String,
    more_principals: Vec<String>,
    /// Principals past the first few, and past those listed at all.
    principals_more: usize,
    principals_unlisted: usize,
    /// The last use GetKeyLastUsage reports: operation, time.
    last_use: Option<(String, String)>,
    integrity: &'static str,
    /// What its uses name as depending on it, in brief ("" when nothing).
    dependents: String,
    /// The timeline in words (what it draws); the drawing is in [`Page::timelines`].
    timeline_label: String,
    /// Whether there is a timeline (a key with no known date has none).
    drawn: bool,
}

struct Brief {
    read: usize,
    skipped: usize,
    unreadable: usize,
    reasons: Vec<(String, usize)>,
}

/// One key's timeline as the page's script draws it (in SVG, when the reader opens it — 10,000
/// drawn timelines would be most of the page): positions on a [`WIDTH`]-wide axis and the text
/// of every mark. Serialized compactly; the tuples are arrays.
#[derive(serde::Serialize)]
struct Timeline {
    /// What it shows, in words (the drawing's accessible name).
    label: String,
    /// The backfill window: x, width, its dates.
    win: Option<(u32, u32, String)>,
    /// Where the scale changes (after the window it is compressed), if it does.
    split: Option<u32>,
    /// Key creation: x, text, whether it is before the window (drawn at the edge, off scale).
    created: Option<(u32, String, bool)>,
    /// Tracking start: x, label anchor, label height, text.
    tracking: Option<(u32, &'static str, u32, String)>,
    /// Pre-tracking uses: x, what (operation, principal, time).
    uses: Vec<(u32, String)>,
    /// Runs of the window's days without readable logs: x, width, class, what.
    weak: Vec<(f64, f64, &'static str, String)>,
    /// Integrity findings: x, what.
    flags: Vec<(u32, String)>,
    /// Failed attempts (refused calls): x, what.
    refused: Vec<(u32, String)>,
    /// The last use GetKeyLastUsage reports: x, what.
    last: Option<(u32, String)>,
    from: String,
    to: String,
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

/// (cause, needle) of each cause `reason` names.
fn causes_of(reason: &str) -> Vec<(&'static str, &'static str)> {
    let found: Vec<(&'static str, &'static str)> = CAUSES
        .iter()
        .filter(|(needle, _)| reason.contains(needle))
        .map(|(needle, cause)| (*cause, *needle))
        .collect();
    if found.is_empty() {
        vec![("other", "")]
    } else {
        found
    }
}

const WIDTH: u32 = 720;
const PAD: u32 = 40;

fn timeline(k: &KeyUsage, uses: &[&Use], weak: &Weak) -> (String, Option<Timeline>) {
    let window = k.window;
    let last_usage = k.key.last_usage.as_ref();
    let Some(scale) = Scale::of(k, uses) else {
        return ("nothing to draw".to_string(), None);
    };
    let xf = |t: Instant| scale.x(t);
    let x = |t: Instant| xf(t).round() as u32;
    let in_window = |u: &&&Use| window.is_some_and(|w| w.contains(u.event_time));
    let marks: Vec<(u32, String)> = uses
        .iter()
        .filter(in_window)
        .map(|u| {
            let mut what = format!(
                "{} by {} at {}",
                u.operation,
                u.principal().unwrap_or("an unknown principal"),
                iso(u.event_time)
            );
            // A record that named the key only through an alias says which rule found it.
            if let Some(alias) = &u.via_alias {
                what += &match u.resolved_by {
                    ResolvedBy::AliasToday => format!(", through {alias} (as it points today)"),
                    _ => format!(", through {alias} (as it pointed then)"),
                };
            }
            (x(u.event_time), what)
        })
        .collect();
    // The window's weak days (drawn under the axis) and integrity findings (flags above it).
    let day_x = |d: NaiveDate| xf(start_of(d)).clamp(0.0, f64::from(WIDTH));
    let (mut weak_days, mut gaps, mut flags, mut findings) = (Vec::new(), [0u32; 4], Vec::new(), 0);
    if let Some(w) = &window {
        for r in weak.runs(w) {
            gaps[r.class as usize] += r.days;
            if r.class == DayClass::Read {
                continue;
            }
            let end = r.first + chrono::Duration::days(i64::from(r.days));
            let (a, b) = (day_x(r.first).max(xf(w.start)), day_x(end).min(xf(w.end)));
            weak_days.push((
                (a * 10.0).round() / 10.0,
                ((b - a).max(1.0) * 10.0).round() / 10.0,
                r.class.css(),
                r.title(),
            ));
        }
        for (d, title, n) in weak.findings(w) {
            findings += n;
            flags.push((day_x(d).round() as u32 + 2, title));
        }
    }
    let refused: Vec<(u32, String)> = weak
        .refused
        .iter()
        .map(|f| {
            let what = format!(
                "refused ({}): {} by {} at {}",
                f.error_code.as_deref().unwrap_or("error"),
                f.operation,
                f.principal().unwrap_or("an unknown principal"),
                iso(f.event_time)
            );
            (x(f.event_time), what)
        })
        .collect();
    let mut label = format!("{} pre-tracking use(s)", marks.len());
    if !refused.is_empty() {
        label.push_str(&format!(", {} failed attempt(s)", refused.len()));
    }
    for (n, words) in [
        (gaps[DayClass::NoLogs as usize], "day(s) without logs"),
        (
            gaps[DayClass::Unreadable as usize],
            "day(s) with unreadable objects",
        ),
        (
            gaps[DayClass::Archived as usize],
            "day(s) with archived objects",
        ),
    ] {
        if n > 0 {
            label.push_str(&format!(", {n} {words}"));
        }
    }
    if findings > 0 {
        label.push_str(&format!(", {findings} integrity finding(s)"));
    }
    if last_usage.is_some() {
        label.push_str(", and the last use");
    }
    let drawn = Timeline {
        label: label.clone(),
        win: window.map(|w| {
            let at = x(w.start);
            let dates = format!("backfill window {} to {}", iso(w.start), iso(w.end));
            (at, (x(w.end) - at).max(1), dates)
        }),
        split: scale.split.map(|(_, x)| x.round() as u32),
        created: k.key.creation.map(|t| {
            let before = t < scale.from;
            let text = if before {
                format!("{} (before the window; off the scale)", iso(t))
            } else {
                iso(t)
            };
            (x(t), text, before)
        }),
        tracking: k.key.tracking_start.map(|t| {
            let at = x(t);
            let near_created = k.key.creation.is_some_and(|c| x(c).abs_diff(at) < 90);
            let anchor = if at < PAD + 80 { "start" } else { "end" };
            (at, anchor, if near_created { 24 } else { 11 }, iso(t))
        }),
        uses: marks,
        weak: weak_days,
        flags,
        refused,
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
        from: iso(scale.from)[..10].to_string(),
        to: iso(scale.to)[..10].to_string(),
    };
    (label, Some(drawn))
}

/// `value` as JSON that cannot end the `<script>` element it is put in, nor open a comment or
/// markup there: `<`, `>` and `&` are written as `\u` escapes (JSON.parse reads them back).
fn script_json<T: serde::Serialize>(value: &T) -> String {
    let json = serde_json::to_string(value).expect("the timelines serialise");
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c => out.push(c),
        }
    }
    out
}

/// A timeline's horizontal scale. With a backfill window, the window fills most of the width
/// (its uses are the evidence) and the time after it — to tracking start and the last use —
/// the rest, at its own scale; an earlier key creation sits at the left edge, off the scale.
/// Without one, one scale from creation to the last use.
struct Scale {
    from: Instant,
    to: Instant,
    /// The window's end and where it is drawn, when the time after it has its own scale.
    split: Option<(Instant, f64)>,
}

impl Scale {
    /// The share of the width the window gets when the time after it is drawn too.
    const WINDOW_SHARE: f64 = 0.8;

    fn of(k: &KeyUsage, uses: &[&Use]) -> Option<Scale> {
        let later = [
            k.key.tracking_start,
            k.key.last_usage.as_ref().map(|l| l.timestamp),
        ];
        if let Some(w) = k.window {
            let to = later.into_iter().flatten().fold(w.end, Instant::max);
            // Only after an hour past the window is a scale of its own worth drawing.
            let split = (to - w.end > chrono::Duration::hours(1)).then(|| {
                let inner = f64::from(WIDTH - 2 * PAD);
                (w.end, f64::from(PAD) + inner * Scale::WINDOW_SHARE)
            });
            return Some(Scale {
                from: w.start,
                to,
                split,
            });
        }
        let times: Vec<Instant> = [k.key.creation]
            .into_iter()
            .chain(later)
            .flatten()
            .chain(uses.iter().map(|u| u.event_time))
            .collect();
        Some(Scale {
            from: *times.iter().min()?,
            to: *times.iter().max()?,
            split: None,
        })
    }

    /// Where `t` is drawn, clamped to the axis.
    fn x(&self, t: Instant) -> f64 {
        let (left, right) = (f64::from(PAD), f64::from(WIDTH - PAD));
        let lerp = |a: Instant, b: Instant, xa: f64, xb: f64| {
            let span = (b - a).num_milliseconds().max(1) as f64;
            xa + (t - a).num_milliseconds() as f64 / span * (xb - xa)
        };
        let x = match self.split {
            Some((end, xs)) if t >= end => lerp(end, self.to, xs, right),
            Some((end, xs)) => lerp(self.from, end, left, xs),
            None => lerp(self.from, self.to, left, right),
        };
        x.clamp(left, right)
    }
}

/// `report.html` for the run's findings.
pub fn render(c: &Correlated, evidence: &Evidence, summary: &Summary) -> String {
    let manifest = &evidence.scan.manifest;
    let objects = days_by_place(manifest);
    let findings = findings_by_place(evidence);
    let mut by_key: BTreeMap<&str, Vec<&Use>> = BTreeMap::new();
    for u in &c.events {
        by_key.entry(u.key.as_str()).or_default().push(u);
    }
    let mut refused_by_key: BTreeMap<&str, Vec<&UseCopy>> = BTreeMap::new();
    for f in &c.failed {
        refused_by_key.entry(f.key.as_str()).or_default().push(f);
    }
    let mut drawings: Vec<Option<Timeline>> = Vec::with_capacity(c.findings.len());
    let rows: Vec<Row> = c
        .findings
        .iter()
        .map(|k| {
            let uses = by_key
                .get(k.key.arn.as_str())
                .map_or(&[][..], |v| v.as_slice());
            let place = (
                k.key.arn.account().to_string(),
                k.key.arn.region().to_string(),
            );
            let weak = Weak {
                refused: refused_by_key
                    .get(k.key.arn.as_str())
                    .cloned()
                    .unwrap_or_default(),
                objects: objects.get(&place),
                findings: findings.get(&place),
            };
            let (timeline_label, drawing) = timeline(k, uses, &weak);
            let drawn = drawing.is_some();
            drawings.push(drawing);
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
                principals: k
                    .pre_tracking_principals
                    .iter()
                    .take(PRINCIPALS_SHOWN)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                more_principals: k
                    .pre_tracking_principals
                    .iter()
                    .skip(PRINCIPALS_SHOWN)
                    .take(PRINCIPALS_LISTED - PRINCIPALS_SHOWN)
                    .cloned()
                    .collect(),
                principals_more: k
                    .pre_tracking_principals
                    .len()
                    .saturating_sub(PRINCIPALS_SHOWN),
                principals_unlisted: k
                    .pre_tracking_principals
                    .len()
                    .saturating_sub(PRINCIPALS_LISTED),
                last_use: k
                    .key
                    .last_usage
                    .as_ref()
                    .map(|l| (l.operation.clone().unwrap_or_default(), iso(l.timestamp))),
                integrity: k.integrity_status,
                timeline_label,
                drawn,
                dependents: dependents_brief(k),
            }
        })
        .collect();
    let mut causes: BTreeMap<(&'static str, &'static str), Vec<Listed>> = BTreeMap::new();
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
    let still_called: Vec<(usize, String, i64, String)> = c
        .findings
        .iter()
        .enumerate()
        .filter(|(_, k)| k.unusable_attempts > 0)
        .map(|(i, k)| {
            (
                i,
                k.key.arn.as_str().to_string(),
                k.unusable_attempts,
                k.last_failed_attempt.map_or(String::new(), iso),
            )
        })
        .collect();
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
        warnings: &summary.warnings[..summary.warnings.len().min(WARNINGS_LISTED)],
        warnings_total: summary.warnings.len(),
        keys_total: summary.keys,
        verdicts: summary.verdicts.iter().map(|(v, n)| (*v, *n)).collect(),
        attention_total,
        still_called,
        attempts_read_in: match summary.watch {
            Some((from, until)) => format!(
                "the backfill windows and the watched days, {} to {} (--watch-days)",
                iso(from),
                iso(until)
            ),
            None => "the backfill windows (--watch-days adds the last days of every key's account and region)".into(),
        },
        attention: causes
            .into_iter()
            .map(|((cause, needle), mut keys)| {
                let total = keys.len();
                keys.truncate(CAUSE_KEYS_LISTED);
                Cause {
                    cause,
                    needle: needle.trim(),
                    total,
                    keys,
                }
            })
            .collect(),
        accounts,
        regions,
        strips: strips(c, &objects),
        timelines: script_json(&drawings),
        page: PAGE,
        width: WIDTH,
        pad: PAD,
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

/// What a delivery day of one account and region holds, from the manifest.
#[derive(Debug, Default, Clone, Copy)]
struct DayObjects {
    read: u64,
    unreadable: u64,
    archived: u64,
}

/// A day's evidence as the strips and timelines show it; the worst thing about the day wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayClass {
    Read,
    NoLogs,
    Unreadable,
    Archived,
}

impl DayClass {
    fn of(d: Option<&DayObjects>) -> DayClass {
        match d {
            Some(d) if d.unreadable > 0 => DayClass::Unreadable,
            Some(d) if d.archived > 0 => DayClass::Archived,
            Some(d) if d.read > 0 => DayClass::Read,
            _ => DayClass::NoLogs,
        }
    }

    fn css(self) -> &'static str {
        match self {
            DayClass::Read => "d-read",
            DayClass::NoLogs => "d-nologs",
            DayClass::Unreadable => "d-unreadable",
            DayClass::Archived => "d-archived",
        }
    }

    fn words(self) -> &'static str {
        match self {
            DayClass::Read => "logs read",
            DayClass::NoLogs => "no logs",
            DayClass::Unreadable => "unreadable objects",
            DayClass::Archived => "archived objects (restore needed)",
        }
    }
}

type Place = (String, String);

/// The manifest by (account, region) and delivery day.
fn days_by_place(manifest: &[ManifestRow]) -> BTreeMap<Place, BTreeMap<NaiveDate, DayObjects>> {
    let mut out: BTreeMap<Place, BTreeMap<NaiveDate, DayObjects>> = BTreeMap::new();
    for m in manifest {
        let d = out
            .entry((m.account_id.clone(), m.region.clone()))
            .or_default()
            .entry(m.delivery_date)
            .or_default();
        match m.status {
            ObjectStatus::Read => d.read += 1,
            ObjectStatus::Unreadable => d.unreadable += 1,
            ObjectStatus::Skipped if m.archived => d.archived += 1,
            ObjectStatus::Skipped => {}
        }
    }
    out
}

/// Consecutive days of one class, drawn as one shape.
#[derive(Debug, Clone, Copy)]
struct Run {
    first: NaiveDate,
    days: u32,
    class: DayClass,
    /// Objects of the run's kind in it (unreadable or archived ones; 0 for the others).
    objects: u64,
}

impl Run {
    fn title(&self) -> String {
        let (first, n) = (self.first, self.days);
        let last = first + chrono::Duration::days(i64::from(n) - 1);
        let what = match self.class {
            DayClass::Unreadable | DayClass::Archived => {
                format!("{} {}", self.objects, self.class.words())
            }
            _ => self.class.words().to_string(),
        };
        if n == 1 {
            format!("{first}: {what}")
        } else {
            format!("{first} to {last} ({n} days): {what}")
        }
    }
}

fn runs(
    first: NaiveDate,
    last: NaiveDate,
    objects: Option<&BTreeMap<NaiveDate, DayObjects>>,
) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for d in days(first, last) {
        let day = objects.and_then(|o| o.get(&d));
        let class = DayClass::of(day);
        let n = day.map_or(0, |o| match class {
            DayClass::Unreadable => o.unreadable,
            DayClass::Archived => o.archived,
            _ => 0,
        });
        match out.last_mut() {
            Some(r) if r.class == class => {
                r.days += 1;
                r.objects += n;
            }
            _ => out.push(Run {
                first: d,
                days: 1,
                class,
                objects: n,
            }),
        }
    }
    out
}

/// One account and region's strip of days over its planned window.
struct Strip {
    account: String,
    region: String,
    first: NaiveDate,
    last: NaiveDate,
    /// Days per class: read, no logs, unreadable, archived.
    counts: [u32; 4],
    /// The days that are not read, in words (up to a few runs).
    gaps: String,
    svg: String,
}

#[derive(Template)]
#[template(path = "strip.svg", config = "src/report/askama.toml", escape = "html")]
struct StripSvg<'a> {
    label: &'a str,
    width: u32,
    pad: u32,
    right: u32,
    shapes: Vec<Shape>,
    from: String,
    to: String,
}

/// A run of like days drawn as one rectangle.
struct Shape {
    x: f64,
    w: f64,
    class: &'static str,
    title: String,
}

/// The planned window of each account and region: from the first backfilled key's window start
/// to the last one's end.
fn planned(c: &Correlated) -> BTreeMap<Place, (NaiveDate, NaiveDate)> {
    let mut out: BTreeMap<Place, (NaiveDate, NaiveDate)> = BTreeMap::new();
    for k in &c.findings {
        let Some(w) = k.window else { continue };
        let place = (
            k.key.arn.account().to_string(),
            k.key.arn.region().to_string(),
        );
        let span = out.entry(place).or_insert((w.first_day(), w.last_day()));
        span.0 = span.0.min(w.first_day());
        span.1 = span.1.max(w.last_day());
    }
    out
}

fn shapes(first: NaiveDate, last: NaiveDate, runs: &[Run]) -> Vec<Shape> {
    let n = ((last - first).num_days() + 1).max(1) as f64;
    let per_day = f64::from(WIDTH - 2 * PAD) / n;
    runs.iter()
        .map(|r| Shape {
            x: f64::from(PAD)
                + ((r.first - first).num_days() as f64 * per_day * 10.0).round() / 10.0,
            w: (f64::from(r.days) * per_day * 10.0).round().max(1.0) / 10.0,
            class: r.class.css(),
            title: r.title(),
        })
        .collect()
}

fn strips(
    c: &Correlated,
    objects: &BTreeMap<Place, BTreeMap<NaiveDate, DayObjects>>,
) -> Vec<Strip> {
    planned(c)
        .into_iter()
        .map(|((account, region), (first, last))| {
            let place = objects.get(&(account.clone(), region.clone()));
            let runs = runs(first, last, place);
            let mut counts = [0u32; 4];
            for r in &runs {
                counts[r.class as usize] += r.days;
            }
            let not_read: Vec<String> = runs
                .iter()
                .filter(|r| r.class != DayClass::Read)
                .map(Run::title)
                .collect();
            let gaps = match not_read.len() {
                0 => "every day has logs read".to_string(),
                n if n > 6 => format!("{}; and {} more", not_read[..6].join("; "), n - 6),
                _ => not_read.join("; "),
            };
            let label = format!("Days of {account} {region}, {first} to {last}: {gaps}");
            let svg = StripSvg {
                label: &label,
                width: WIDTH,
                pad: PAD,
                right: WIDTH - PAD,
                shapes: shapes(first, last, &runs),
                from: first.to_string(),
                to: last.to_string(),
            }
            .render()
            .expect("the strip renders");
            Strip {
                account,
                region,
                first,
                last,
                counts,
                gaps,
                svg,
            }
        })
        .collect()
}

/// Integrity findings by (account, region) and the day they weaken.
fn findings_by_place(evidence: &Evidence) -> BTreeMap<Place, BTreeMap<NaiveDate, Vec<&Finding>>> {
    let mut out: BTreeMap<Place, BTreeMap<NaiveDate, Vec<&Finding>>> = BTreeMap::new();
    for f in evidence.integrity.iter().flat_map(|c| &c.findings) {
        if !f.kind.fails() {
            continue;
        }
        let place = out
            .entry((f.account_id.clone(), f.region.clone()))
            .or_default();
        for d in &f.days {
            place.entry(*d).or_default().push(f);
        }
    }
    out
}

/// The days of a key's window that weaken its evidence, and the calls refused on it, for its
/// timeline.
struct Weak<'a> {
    refused: Vec<&'a UseCopy>,
    objects: Option<&'a BTreeMap<NaiveDate, DayObjects>>,
    findings: Option<&'a BTreeMap<NaiveDate, Vec<&'a Finding>>>,
}

impl Weak<'_> {
    fn runs(&self, w: &Window) -> Vec<Run> {
        runs(w.first_day(), w.last_day(), self.objects)
    }

    /// Findings on the window's days and the slack day after it, one mark per day.
    fn findings(&self, w: &Window) -> Vec<(NaiveDate, String, usize)> {
        let Some(f) = self.findings else {
            return Vec::new();
        };
        f.range(w.first_day()..=w.slack_day())
            .map(|(d, fs)| {
                let listed: Vec<String> = fs
                    .iter()
                    .take(5)
                    .map(|f| format!("{} ({})", f.kind.as_str(), f.object))
                    .collect();
                let more = if fs.len() > 5 {
                    format!(" and {} more", fs.len() - 5)
                } else {
                    String::new()
                };
                (
                    *d,
                    format!(
                        "{d}: {} integrity finding(s): {}{more}",
                        fs.len(),
                        listed.join(", ")
                    ),
                    fs.len(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    #[test]
    fn script_json_cannot_close_its_element_and_reads_back_the_same() {
        let hostile = vec![
            "</script><script>alert(1)</script>",
            "<!-- a & b -->",
            "plain",
        ];
        let text = script_json(&hostile);
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'));
        let back: Vec<String> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, hostile);
    }

    #[test]
    fn like_days_are_one_run_and_the_worst_of_a_day_wins() {
        let d = |n: u32| NaiveDate::from_ymd_opt(2026, 2, n).unwrap();
        let day = |read, unreadable, archived| DayObjects {
            read,
            unreadable,
            archived,
        };
        // 1-2 read, 3 none, 4 read + 2 unreadable, 5 one unreadable, 6 archived, 7 skipped only.
        let objects: BTreeMap<NaiveDate, DayObjects> = [
            (d(1), day(5, 0, 0)),
            (d(2), day(1, 0, 0)),
            (d(4), day(3, 2, 0)),
            (d(5), day(0, 1, 0)),
            (d(6), day(2, 0, 1)),
            (d(7), day(0, 0, 0)),
        ]
        .into_iter()
        .collect();
        let got: Vec<(u32, u32, DayClass, u64)> = runs(d(1), d(8), Some(&objects))
            .iter()
            .map(|r| (r.first.day0() + 1, r.days, r.class, r.objects))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 2, DayClass::Read, 0),
                (3, 1, DayClass::NoLogs, 0),
                (4, 2, DayClass::Unreadable, 3),
                (6, 1, DayClass::Archived, 1),
                (7, 2, DayClass::NoLogs, 0),
            ]
        );
        assert_eq!(
            runs(d(1), d(8), Some(&objects))[2].title(),
            "2026-02-04 to 2026-02-05 (2 days): 3 unreadable objects"
        );
    }
}
