//! The campaign report: computed from the record, never from counters kept on the side.
//!
//! The JSON form is a stable, versioned schema (`schema: "smscast.report/1"`), documented in
//! the README; scripts and tests read it.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::store::{Campaign, ReportData, state};
use crate::window::{Hours, local};

pub const SCHEMA: &str = "smscast.report/1";

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub generated_at: String,
    pub campaign: CampaignInfo,
    /// Deliveries materialised at launch (list members, opt-outs included as `suppressed`).
    pub recipients: i64,
    /// Every state, zero when none: they add up to `recipients`.
    pub by_state: BTreeMap<String, i64>,
    /// Accepted by a gateway (`submitted` + `delivered` + `failed`/`expired` after acceptance
    /// are not separable without receipts; this is `submitted` + `delivered`).
    pub accepted: i64,
    /// SMS parts billed for accepted messages: accepted × segments.
    pub sms_parts: i64,
    pub by_carrier: Vec<Breakdown>,
    pub by_district: Vec<Breakdown>,
    pub by_day: Vec<DayRow>,
    pub errors: Vec<ErrorRow>,
    pub attempts: BTreeMap<String, i64>,
    pub submit_latency_ms: BTreeMap<String, i64>,
    /// Deliveries that were in doubt and then submitted again: people who may have two.
    pub possible_duplicates: i64,
    pub audit_head: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CampaignInfo {
    pub id: i64,
    pub name: String,
    pub state: String,
    pub state_reason: Option<String>,
    pub list: String,
    pub gateway: String,
    pub rate: f64,
    pub hours: String,
    pub sender: String,
    pub encoding: String,
    pub characters: i64,
    pub segments: i64,
    pub message_text: String,
    pub not_before: Option<String>,
    pub send_by: Option<String>,
    pub launched_at: Option<String>,
    pub completed_at: Option<String>,
    pub first_submit_at: Option<String>,
    pub last_submit_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Breakdown {
    pub name: String,
    pub total: i64,
    pub states: BTreeMap<String, i64>,
}

#[derive(Debug, Serialize)]
pub struct DayRow {
    pub day: String,
    pub submitted: i64,
    pub delivered: i64,
}

#[derive(Debug, Serialize)]
pub struct ErrorRow {
    pub reason: String,
    pub count: i64,
}

fn at(ms: Option<i64>) -> Option<String> {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(local)
}

fn breakdown(rows: &[(String, String, i64)]) -> Vec<Breakdown> {
    let mut map: BTreeMap<&str, Breakdown> = BTreeMap::new();
    for (name, st, n) in rows {
        let b = map.entry(name).or_insert_with(|| Breakdown {
            name: name.clone(),
            total: 0,
            states: BTreeMap::new(),
        });
        b.total += n;
        *b.states.entry(st.clone()).or_default() += n;
    }
    let mut out: Vec<Breakdown> = map.into_values().collect();
    out.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
    out
}

pub fn build(c: &Campaign, d: &ReportData, audit_head: Option<String>) -> Report {
    let mut by_state: BTreeMap<String, i64> =
        state::ALL.iter().map(|s| (s.to_string(), 0)).collect();
    for (s, n) in &d.by_state {
        *by_state.entry(s.clone()).or_default() += n;
    }
    let recipients = by_state.values().sum();
    let accepted = by_state[state::SUBMITTED] + by_state[state::DELIVERED];
    Report {
        schema: SCHEMA,
        generated_at: local(chrono::Utc::now()),
        campaign: CampaignInfo {
            id: c.id,
            name: c.name.clone(),
            state: c.state.as_str().to_string(),
            state_reason: c.state_reason.clone(),
            list: c.list.clone(),
            gateway: c.gateway.clone(),
            rate: c.rate,
            hours: Hours {
                start: c.window_start,
                end: c.window_end,
            }
            .to_string(),
            sender: c.sender.clone(),
            encoding: c.encoding.clone(),
            characters: c.characters,
            segments: c.segments,
            message_text: c.message_text.clone(),
            not_before: at(c.starts_ms),
            send_by: at(c.ends_ms),
            launched_at: at(c.launched_ms),
            completed_at: at(c.completed_ms),
            first_submit_at: at(d.first_submit_ms),
            last_submit_at: at(d.last_submit_ms),
        },
        recipients,
        accepted,
        sms_parts: accepted * c.segments,
        by_state,
        by_carrier: breakdown(&d.by_carrier_state),
        by_district: breakdown(&d.by_district_state),
        by_day: d
            .by_day
            .iter()
            .map(|(day, s, dl)| DayRow {
                day: day.clone(),
                submitted: *s,
                delivered: *dl,
            })
            .collect(),
        errors: d
            .errors
            .iter()
            .map(|(r, n)| ErrorRow {
                reason: r.clone(),
                count: *n,
            })
            .collect(),
        attempts: d.attempts_by_outcome.iter().cloned().collect(),
        submit_latency_ms: d.latency_percentiles_ms.iter().cloned().collect(),
        possible_duplicates: d.possible_duplicates,
        audit_head,
    }
}

/// The terminal table.
pub fn table(r: &Report) -> String {
    let mut s = String::new();
    let c = &r.campaign;
    let _ = writeln!(s, "Campaign {} {:?} — {}", c.id, c.name, c.state);
    let _ = writeln!(
        s,
        "  list {}, gateway {} at {}/s, hours {} (Asia/Ho_Chi_Minh)",
        c.list, c.gateway, c.rate, c.hours
    );
    let _ = writeln!(
        s,
        "  message: {} , {} characters, {} segment(s), sender {}",
        c.encoding, c.characters, c.segments, c.sender
    );
    if let (Some(a), Some(b)) = (&c.first_submit_at, &c.last_submit_at) {
        let _ = writeln!(s, "  sent from {a} to {b}");
    }
    let _ = writeln!(s, "\nRecipients {:>10}", r.recipients);
    for (st, n) in r.by_state.iter().filter(|(_, n)| **n > 0) {
        let pct = if r.recipients > 0 {
            100.0 * *n as f64 / r.recipients as f64
        } else {
            0.0
        };
        let _ = writeln!(s, "  {st:<12}{n:>10}  {pct:5.1}%");
    }
    let _ = writeln!(
        s,
        "Accepted by gateways {:>10}   SMS parts {:>10}",
        r.accepted, r.sms_parts
    );
    if r.possible_duplicates > 0 {
        let _ = writeln!(
            s,
            "Possible duplicates  {:>10}   (in doubt, then sent again)",
            r.possible_duplicates
        );
    }
    let _ = writeln!(s, "\nBy carrier");
    for b in &r.by_carrier {
        let _ = writeln!(
            s,
            "  {:<14}{:>10}  {}",
            b.name,
            b.total,
            states_line(&b.states)
        );
    }
    let _ = writeln!(s, "\nBy district");
    for b in &r.by_district {
        let _ = writeln!(
            s,
            "  {:<14}{:>10}  {}",
            b.name,
            b.total,
            states_line(&b.states)
        );
    }
    if !r.by_day.is_empty() {
        let _ = writeln!(s, "\nBy day (Vietnam time)");
        for d in &r.by_day {
            let _ = writeln!(
                s,
                "  {}  submitted {:>10}  delivered {:>10}",
                d.day, d.submitted, d.delivered
            );
        }
    }
    if !r.errors.is_empty() {
        let _ = writeln!(s, "\nErrors");
        for e in &r.errors {
            let _ = writeln!(s, "  {:>8}  {}", e.count, e.reason);
        }
    }
    if !r.submit_latency_ms.is_empty() {
        let l = &r.submit_latency_ms;
        let _ = writeln!(
            s,
            "\nSubmit latency ms: p50 {} p90 {} p99 {} max {}",
            l.get("p50").unwrap_or(&0),
            l.get("p90").unwrap_or(&0),
            l.get("p99").unwrap_or(&0),
            l.get("max").unwrap_or(&0)
        );
    }
    if let Some(h) = &r.audit_head {
        let _ = writeln!(s, "Audit log head: {h}");
    }
    s
}

fn states_line(states: &BTreeMap<String, i64>) -> String {
    states
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
