//! The campaign report: computed from the record, never from counters kept on the side.
//!
//! The JSON form is a stable, versioned schema (`schema: "smscast.report/1"`), documented in
//! the README; scripts and tests read it. Fields are only ever added under `/1`; a change of
//! an existing field's meaning would be `/2`. The table, CSV and HTML forms are for people
//! and take `--lang en|vi`; JSON keys never change with the language.

mod csv;
mod docx;
mod html;
pub mod labels;

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

pub use self::csv::csv;
pub use self::docx::{docx, pdf};
pub use self::html::html;
use self::labels::{Lang, ReasonKind, carrier_name};
use crate::config::Prices;
use crate::store::{Campaign, RecipientRow, ReportData, ReportFilter, state};
use crate::window::{Hours, local};

pub const SCHEMA: &str = "smscast.report/1";

/// Rows of the per-recipient list shown in the table and HTML forms (CSV and JSON have all).
pub const SHOWN_RECIPIENTS: usize = 200;
/// Error reasons listed one by one; the rest are summed in one "(other reasons)" row.
pub const TOP_ERRORS: usize = 20;

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub generated_at: String,
    /// The campaign, or `null` in a report across campaigns (`--all`).
    pub campaign: Option<CampaignInfo>,
    /// Every campaign the report covers (one, unless `--all`), with its own totals.
    pub campaigns: Vec<CampaignTotals>,
    /// What the report was asked to cover.
    pub filter: FilterInfo,
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
    /// The same as `by_day`, by Vietnam hour (`YYYY-MM-DD HH:00`).
    pub by_hour: Vec<HourRow>,
    pub errors: Vec<ErrorRow>,
    /// Gateway answers to the tries that did not succeed, most frequent first.
    pub error_codes: Vec<ErrorCodeRow>,
    pub attempts: BTreeMap<String, i64>,
    pub submit_latency_ms: BTreeMap<String, i64>,
    /// Messages whose final state (delivered, failed, expired) came with a submission time:
    /// the population of `receipt_delay_ms`.
    pub receipts: i64,
    /// `final_ms - submitted_ms` percentiles (empty when no receipt has come).
    pub receipt_delay_ms: BTreeMap<String, i64>,
    pub cost: Cost,
    /// Deliveries that were in doubt and then submitted again: people who may have two.
    pub possible_duplicates: i64,
    pub first_submit_at: Option<String>,
    pub last_submit_at: Option<String>,
    pub audit_head: Option<String>,
    /// Only with `--reveal`: recipients in error or possibly sent twice, with full numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revealed: Option<Revealed>,
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
pub struct CampaignTotals {
    pub id: i64,
    pub name: String,
    pub state: String,
    pub sender: String,
    pub encoding: String,
    pub segments: i64,
    pub message_text: String,
    pub launched_at: Option<String>,
    pub recipients: i64,
    pub accepted: i64,
    pub sms_parts: i64,
}

#[derive(Debug, Default, Serialize)]
pub struct FilterInfo {
    pub all_campaigns: bool,
    pub carrier: Option<String>,
    pub district: Option<String>,
    pub states: Vec<String>,
    /// Inclusive, Vietnam time.
    pub since: Option<String>,
    /// Exclusive, Vietnam time.
    pub until: Option<String>,
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
    /// Submitted in that day (whatever happened next).
    pub submitted: i64,
    /// Of those, delivered.
    pub delivered: i64,
    /// Of those, failed or expired (by receipt).
    pub failed: i64,
}

#[derive(Debug, Serialize)]
pub struct HourRow {
    pub hour: String,
    pub submitted: i64,
    pub delivered: i64,
    pub failed: i64,
}

#[derive(Debug, Serialize)]
pub struct ErrorRow {
    pub reason: String,
    pub count: i64,
    /// The same count split by delivery state.
    pub states: BTreeMap<String, i64>,
}

#[derive(Debug, Serialize)]
pub struct ErrorCodeRow {
    pub outcome: String,
    pub http_status: Option<i64>,
    pub code: Option<String>,
    pub count: i64,
}

#[derive(Debug, Serialize)]
pub struct Cost {
    /// `null` when no `[prices]` are configured (then `total` is `null` too).
    pub currency: Option<String>,
    pub total: Option<f64>,
    /// Parts per carrier: messages accepted by a gateway at some point (`submitted_ms` set:
    /// submitted, delivered, and failed/expired after acceptance) × segments.
    pub by_carrier: Vec<CostRow>,
    /// Why there is no total, or which carriers have no price.
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CostRow {
    pub carrier: String,
    pub parts: i64,
    pub price_per_part: Option<f64>,
    pub cost: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Revealed {
    pub by: String,
    pub reason: String,
    /// The audit log entry written before the numbers were shown.
    pub audit_entry: i64,
    pub recipients: Vec<RecipientRow>,
}

fn at(ms: Option<i64>) -> Option<String> {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(local)
}

fn breakdown<'a>(rows: impl Iterator<Item = (&'a str, &'a str, i64)>) -> Vec<Breakdown> {
    let mut map: BTreeMap<&str, Breakdown> = BTreeMap::new();
    for (name, st, n) in rows {
        let b = map.entry(name).or_insert_with(|| Breakdown {
            name: name.to_string(),
            total: 0,
            states: BTreeMap::new(),
        });
        b.total += n;
        *b.states.entry(st.to_string()).or_default() += n;
    }
    let mut out: Vec<Breakdown> = map.into_values().collect();
    out.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
    out
}

fn percentiles(histogram: &[(i64, i64)]) -> BTreeMap<String, i64> {
    crate::store::percentiles(histogram).into_iter().collect()
}

/// `YYYY-MM-DD HH:00` for an hour index in Vietnam time (see [`crate::store::HourRow`]).
pub fn hour_label(hour: i64) -> String {
    chrono::DateTime::from_timestamp(hour * 3600, 0)
        .map(|t| t.naive_utc().format("%Y-%m-%d %H:00").to_string())
        .unwrap_or_default()
}

fn is_failed_after_acceptance(st: &str) -> bool {
    st == state::FAILED || st == state::EXPIRED
}

/// What the report covers, as asked: echoed in every form.
pub struct Scope<'a> {
    pub campaigns: &'a [Campaign],
    /// `true` for `--all` (then `campaign` is `null`).
    pub all: bool,
    pub filter: &'a ReportFilter,
}

pub fn build(
    scope: &Scope<'_>,
    d: &ReportData,
    prices: Option<&Prices>,
    audit_head: Option<String>,
) -> Report {
    let segments: BTreeMap<i64, i64> = scope.campaigns.iter().map(|c| (c.id, c.segments)).collect();
    let seg = |id: i64| segments.get(&id).copied().unwrap_or(1);

    let mut by_state: BTreeMap<String, i64> =
        state::ALL.iter().map(|s| (s.to_string(), 0)).collect();
    let mut per_campaign: BTreeMap<i64, BTreeMap<&str, i64>> = BTreeMap::new();
    for r in &d.cube {
        *by_state.entry(r.state.clone()).or_default() += r.count;
        *per_campaign
            .entry(r.campaign_id)
            .or_default()
            .entry(&r.state)
            .or_default() += r.count;
    }
    let recipients = by_state.values().sum();
    let accepted = by_state[state::SUBMITTED] + by_state[state::DELIVERED];
    let sms_parts = per_campaign
        .iter()
        .map(|(id, st)| {
            (st.get(state::SUBMITTED).unwrap_or(&0) + st.get(state::DELIVERED).unwrap_or(&0))
                * seg(*id)
        })
        .sum();

    let unknown = "(unknown)";
    let by_carrier = breakdown(
        d.cube
            .iter()
            .map(|r| (r.carrier.as_str(), r.state.as_str(), r.count)),
    );
    let by_district = breakdown(d.cube.iter().map(|r| {
        (
            r.district.as_deref().unwrap_or(unknown),
            r.state.as_str(),
            r.count,
        )
    }));

    // Over time: hours, and days summed from them (an hour never straddles a local day).
    let mut hours: BTreeMap<i64, (i64, i64, i64)> = BTreeMap::new();
    let mut parts_by_carrier: BTreeMap<&str, i64> = BTreeMap::new();
    for r in &d.hours {
        let h = hours.entry(r.hour).or_default();
        h.0 += r.count;
        if r.state == state::DELIVERED {
            h.1 += r.count;
        }
        if is_failed_after_acceptance(&r.state) {
            h.2 += r.count;
        }
        *parts_by_carrier.entry(&r.carrier).or_default() += r.count * seg(r.campaign_id);
    }
    let mut days: BTreeMap<i64, (i64, i64, i64)> = BTreeMap::new();
    for (h, (s, dl, f)) in &hours {
        let day = days.entry(h.div_euclid(24)).or_default();
        day.0 += s;
        day.1 += dl;
        day.2 += f;
    }

    // Errors: one row per reason, the most frequent first, the tail summed.
    let mut reasons: BTreeMap<String, ErrorRow> = BTreeMap::new();
    for (st, reason, n) in &d.errors {
        let reason = reason
            .as_deref()
            .map_or_else(|| "(no reason recorded)".into(), mask_numbers);
        let e = reasons.entry(reason.clone()).or_insert_with(|| ErrorRow {
            reason,
            count: 0,
            states: BTreeMap::new(),
        });
        e.count += n;
        *e.states.entry(st.clone()).or_default() += n;
    }
    let mut errors: Vec<ErrorRow> = reasons.into_values().collect();
    errors.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    if errors.len() > TOP_ERRORS {
        let mut other = ErrorRow {
            reason: "(other reasons)".into(),
            count: 0,
            states: BTreeMap::new(),
        };
        for e in errors.drain(TOP_ERRORS..) {
            other.count += e.count;
            for (s, n) in e.states {
                *other.states.entry(s).or_default() += n;
            }
        }
        errors.push(other);
    }
    let mut error_codes: Vec<ErrorCodeRow> = d
        .error_codes
        .iter()
        .map(|e| ErrorCodeRow {
            outcome: e.outcome.clone(),
            http_status: e.http_status,
            code: e.code.clone(),
            count: e.count,
        })
        .collect();
    error_codes.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.outcome.cmp(&b.outcome))
            .then_with(|| a.http_status.cmp(&b.http_status))
            .then_with(|| a.code.cmp(&b.code))
    });

    let cost = cost(&parts_by_carrier, prices);
    let at_ms = |ms: Option<i64>| at(ms);
    let campaign = (!scope.all)
        .then(|| scope.campaigns.first())
        .flatten()
        .map(|c| campaign_info(c, d));
    let campaigns = scope
        .campaigns
        .iter()
        .filter(|c| !scope.all || per_campaign.contains_key(&c.id))
        .map(|c| {
            let st = per_campaign.get(&c.id);
            let get = |s: &str| st.and_then(|m| m.get(s)).copied().unwrap_or(0);
            let accepted = get(state::SUBMITTED) + get(state::DELIVERED);
            CampaignTotals {
                id: c.id,
                name: c.name.clone(),
                state: c.state.as_str().into(),
                sender: c.sender.clone(),
                encoding: c.encoding.clone(),
                segments: c.segments,
                message_text: c.message_text.clone(),
                launched_at: at(c.launched_ms),
                recipients: st.map_or(0, |m| m.values().sum()),
                accepted,
                sms_parts: accepted * c.segments,
            }
        })
        .collect();
    let f = scope.filter;
    Report {
        schema: SCHEMA,
        generated_at: local(chrono::Utc::now()),
        campaign,
        campaigns,
        filter: FilterInfo {
            all_campaigns: scope.all,
            carrier: f.carrier.clone(),
            district: f.district.clone(),
            states: f.states.clone(),
            since: at(f.since_ms),
            until: at(f.until_ms),
        },
        recipients,
        accepted,
        sms_parts,
        by_state,
        by_carrier,
        by_district,
        by_day: days
            .into_iter()
            .map(|(day, (submitted, delivered, failed))| DayRow {
                day: hour_label(day * 24)[..10].to_string(),
                submitted,
                delivered,
                failed,
            })
            .collect(),
        by_hour: hours
            .into_iter()
            .map(|(h, (submitted, delivered, failed))| HourRow {
                hour: hour_label(h),
                submitted,
                delivered,
                failed,
            })
            .collect(),
        errors,
        error_codes,
        attempts: d.attempts_by_outcome.iter().cloned().collect(),
        submit_latency_ms: percentiles(&d.latency_histogram),
        receipts: d.receipt_delay_histogram.iter().map(|(_, n)| n).sum(),
        receipt_delay_ms: percentiles(&d.receipt_delay_histogram),
        cost,
        possible_duplicates: d.possible_duplicates,
        first_submit_at: at_ms(d.first_submit_ms),
        last_submit_at: at_ms(d.last_submit_ms),
        audit_head,
        revealed: None,
    }
}

fn campaign_info(c: &Campaign, d: &ReportData) -> CampaignInfo {
    CampaignInfo {
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
    }
}

/// Money to two decimals (prices are per part, in the configured currency).
fn money(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn cost(parts_by_carrier: &BTreeMap<&str, i64>, prices: Option<&Prices>) -> Cost {
    let mut by_carrier: Vec<CostRow> = parts_by_carrier
        .iter()
        .map(|(carrier, parts)| {
            let price = prices.and_then(|p| p.price(carrier));
            CostRow {
                carrier: carrier.to_string(),
                parts: *parts,
                price_per_part: price,
                cost: price.map(|p| money(p * *parts as f64)),
            }
        })
        .collect();
    by_carrier.sort_by(|a, b| {
        b.parts
            .cmp(&a.parts)
            .then_with(|| a.carrier.cmp(&b.carrier))
    });
    let Some(prices) = prices else {
        return Cost {
            currency: None,
            total: None,
            by_carrier,
            note: Some("no prices configured".into()),
        };
    };
    let missing: Vec<&str> = by_carrier
        .iter()
        .filter(|r| r.price_per_part.is_none())
        .map(|r| r.carrier.as_str())
        .collect();
    let note = (!missing.is_empty()).then(|| format!("no price for {}", missing.join(", ")));
    Cost {
        currency: Some(prices.currency.clone()),
        total: missing
            .is_empty()
            .then(|| money(by_carrier.iter().filter_map(|r| r.cost).sum())),
        by_carrier,
        note,
    }
}

/// Masks every Vietnamese mobile number inside a free text (gateways echo the number in their
/// error messages: "The 'To' number +84912345678 is not valid").
pub fn mask_numbers(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let run = &text[start..i];
            match crate::msisdn::Msisdn::parse(run) {
                Ok(p) if (10..=11).contains(&run.len()) => out.push_str(&p.msisdn.masked()),
                _ => out.push_str(run),
            }
        } else {
            let ch = text[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// A count as a share of a total, for people.
pub(crate) fn pct(n: i64, total: i64) -> f64 {
    if total > 0 {
        100.0 * n as f64 / total as f64
    } else {
        0.0
    }
}

/// A number for people: `1 234 567` (thin groups; the same in both languages).
pub fn group(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(ch);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// The district name for people (`(unknown)` is translated).
pub fn district_name(name: &str, lang: Lang) -> String {
    if name == "(unknown)" {
        lang.labels().unknown_district.to_string()
    } else {
        name.to_string()
    }
}

/// The delivery state most of an error row's messages are in.
pub fn main_state(e: &ErrorRow) -> &str {
    e.states
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        .map_or("", |(s, _)| s.as_str())
}

/// A short summary of what an error reason means, in `lang`.
pub fn reason_summary(e: &ErrorRow, lang: Lang) -> &'static str {
    if e.reason == "(other reasons)" {
        return lang.labels().other_reasons;
    }
    lang.reason_summary(ReasonKind::of(&e.reason, main_state(e)))
}

/// An error reason for people. In English, the recorded text (placeholders translated); in
/// Vietnamese, a Vietnamese summary with the gateway's own words beside it.
pub fn reason_name(e: &ErrorRow, lang: Lang) -> String {
    let l = lang.labels();
    match (e.reason.as_str(), lang) {
        ("(other reasons)", _) => l.other_reasons.into(),
        ("(no reason recorded)", Lang::En) => l.no_reason.into(),
        ("(no reason recorded)", Lang::Vi) => {
            format!("{} {}", reason_summary(e, lang), l.no_reason)
        }
        (own, Lang::En) => own.into(),
        (own, Lang::Vi) => format!("{} — {}: {own}", reason_summary(e, lang), l.gateway_words),
    }
}

pub fn code_name(e: &ErrorCodeRow) -> String {
    match (e.http_status, &e.code) {
        (Some(h), Some(c)) => format!("HTTP {h} / {c}"),
        (Some(h), None) => format!("HTTP {h}"),
        (None, Some(c)) => c.clone(),
        (None, None) => "-".into(),
    }
}

/// The terminal table.
pub fn table(r: &Report, lang: Lang) -> String {
    let l = lang.labels();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} — {} {}",
        if r.campaign.is_some() {
            l.title
        } else {
            l.title_all
        },
        l.generated,
        r.generated_at
    );
    if let Some(c) = &r.campaign {
        let _ = writeln!(
            s,
            "{} {} {:?} — {}",
            l.campaign,
            c.id,
            c.name,
            lang.campaign_state(&c.state)
        );
        let _ = writeln!(
            s,
            "  {} {}, {} {} ({} {}), {} {}",
            l.list, c.list, l.gateway, c.gateway, l.rate, c.rate, l.hours, c.hours
        );
        let _ = writeln!(
            s,
            "  {} {}, {} {}, {} {}, {} {}",
            l.encoding,
            c.encoding,
            l.characters,
            c.characters,
            l.segments,
            c.segments,
            l.sender,
            c.sender
        );
        let _ = writeln!(s, "  {}: {}", l.message, c.message_text);
    } else {
        let _ = writeln!(s, "{}:", l.campaigns);
        for c in &r.campaigns {
            let _ = writeln!(
                s,
                "  {} {:?} — {}, {} {}, {} {}, {}: {}",
                c.id,
                c.name,
                lang.campaign_state(&c.state),
                l.sender,
                c.sender,
                l.encoding,
                c.encoding,
                l.recipients,
                group(c.recipients)
            );
        }
    }
    if let (Some(a), Some(b)) = (&r.first_submit_at, &r.last_submit_at) {
        let _ = writeln!(s, "  {}: {} {a} {} {b}", l.period, l.sent_from, l.to);
    }
    let f = filter_line(&r.filter, lang);
    if !f.is_empty() {
        let _ = writeln!(s, "  {}: {f}", l.filter);
    }
    let _ = writeln!(s, "  {}", l.time_zone);
    // Label columns as wide as their longest label (the Vietnamese ones are longer).
    let w = state::ALL
        .iter()
        .map(|st| lang.state(st).chars().count() + 2)
        .chain(
            [l.recipients, l.accepted, l.sms_parts, l.possible_duplicates]
                .iter()
                .map(|x| x.chars().count()),
        )
        .max()
        .unwrap_or(0)
        .max(28);
    let _ = writeln!(s, "\n{:<w$}{:>12}", l.recipients, group(r.recipients));
    for st in state::ALL {
        let n = r.by_state.get(st).copied().unwrap_or(0);
        if n > 0 {
            let _ = writeln!(
                s,
                "  {:<w2$}{:>12}  {:5.1}%",
                lang.state(st),
                group(n),
                pct(n, r.recipients),
                w2 = w - 2
            );
        }
    }
    let _ = writeln!(s, "{:<w$}{:>12}", l.accepted, group(r.accepted));
    let _ = writeln!(s, "{:<w$}{:>12}", l.sms_parts, group(r.sms_parts));
    if r.possible_duplicates > 0 {
        let _ = writeln!(
            s,
            "{:<w$}{:>12}  ({})",
            l.possible_duplicates,
            group(r.possible_duplicates),
            l.possible_duplicates_note
        );
    }
    let _ = writeln!(s, "\n{}", l.by_carrier);
    for b in &r.by_carrier {
        let _ = writeln!(
            s,
            "  {:<16}{:>12}  {}",
            carrier_name(&b.name),
            group(b.total),
            states_line(&b.states, lang)
        );
    }
    let _ = writeln!(s, "\n{}", l.by_district);
    for b in &r.by_district {
        let _ = writeln!(
            s,
            "  {:<16}{:>12}  {}",
            district_name(&b.name, lang),
            group(b.total),
            states_line(&b.states, lang)
        );
    }
    // Figure columns as wide as their headings, two spaces apart.
    let (c1, c2, c3) = (
        l.submitted_col.chars().count().max(10),
        l.delivered_col.chars().count().max(10),
        l.failed_col.chars().count().max(10),
    );
    if !r.by_day.is_empty() {
        let _ = writeln!(
            s,
            "\n{}\n  {:<12}  {:>c1$}  {:>c2$}  {:>c3$}",
            l.by_day, l.day, l.submitted_col, l.delivered_col, l.failed_col
        );
        for d in &r.by_day {
            let _ = writeln!(
                s,
                "  {:<12}  {:>c1$}  {:>c2$}  {:>c3$}",
                d.day,
                group(d.submitted),
                group(d.delivered),
                group(d.failed)
            );
        }
    }
    if r.by_hour.len() > 1 && r.by_hour.len() <= 72 {
        let _ = writeln!(
            s,
            "\n{}\n  {:<18}  {:>c1$}  {:>c2$}  {:>c3$}",
            l.by_hour, l.hour, l.submitted_col, l.delivered_col, l.failed_col
        );
        for h in &r.by_hour {
            let _ = writeln!(
                s,
                "  {:<18}  {:>c1$}  {:>c2$}  {:>c3$}",
                h.hour,
                group(h.submitted),
                group(h.delivered),
                group(h.failed)
            );
        }
    }
    if !r.errors.is_empty() {
        let _ = writeln!(s, "\n{}", l.errors);
        for e in &r.errors {
            let _ = writeln!(
                s,
                "  {:>10}  {}  [{}]",
                group(e.count),
                reason_name(e, lang),
                states_line(&e.states, lang)
            );
        }
    }
    if !r.error_codes.is_empty() {
        let _ = writeln!(s, "\n{}", l.error_codes);
        for e in &r.error_codes {
            let _ = writeln!(
                s,
                "  {:>10}  {:<24} {}",
                group(e.count),
                lang.outcome(&e.outcome),
                code_name(e)
            );
        }
    }
    if !r.attempts.is_empty() {
        let _ = writeln!(s, "\n{}", l.attempts);
        for (o, n) in &r.attempts {
            let _ = writeln!(s, "  {:<34}{:>12}", lang.outcome(o), group(*n));
        }
    }
    let _ = writeln!(s);
    if !r.submit_latency_ms.is_empty() {
        let _ = writeln!(
            s,
            "{}: {}",
            l.submit_latency,
            percentiles_line(&r.submit_latency_ms)
        );
    }
    if r.receipt_delay_ms.is_empty() {
        let _ = writeln!(s, "{}: {}", l.receipt_delay, l.no_receipts);
    } else {
        let _ = writeln!(
            s,
            "{}: {} ({} {})",
            l.receipt_delay,
            percentiles_line(&r.receipt_delay_ms),
            group(r.receipts),
            l.receipts
        );
    }
    let _ = writeln!(s, "\n{}", l.cost);
    for c in &r.cost.by_carrier {
        let _ = write!(
            s,
            "  {:<16}{:>12} {}",
            carrier_name(&c.carrier),
            group(c.parts),
            l.parts.to_lowercase()
        );
        if let (Some(p), Some(cost), Some(cur)) = (c.price_per_part, c.cost, &r.cost.currency) {
            let _ = write!(s, " × {p} = {} {cur}", money_text(cost));
        }
        let _ = writeln!(s);
    }
    match (&r.cost.total, &r.cost.currency) {
        (Some(t), Some(cur)) => {
            let _ = writeln!(s, "  {:<16}{:>12} {cur}", l.total, money_text(*t));
        }
        _ => {
            let _ = writeln!(s, "  {}", cost_note(&r.cost, lang));
        }
    }
    match &r.audit_head {
        Some(h) => {
            let _ = writeln!(s, "\n{}: {h}", l.audit_head);
        }
        None => {
            let _ = writeln!(s, "\n{}", l.audit_broken);
        }
    }
    if let Some(rv) = &r.revealed {
        let _ = writeln!(
            s,
            "\n{} — {} {} ({}), audit #{}",
            l.revealed, l.revealed_note, rv.by, rv.reason, rv.audit_entry
        );
        for x in rv.recipients.iter().take(SHOWN_RECIPIENTS) {
            let _ = writeln!(
                s,
                "  {}  {:<12} {:<14} {:<24} {}{}",
                x.number,
                carrier_name(&x.carrier),
                x.district.as_deref().unwrap_or("-"),
                lang.state(&x.state),
                x.reason.as_deref().unwrap_or(""),
                if x.possible_duplicate {
                    format!(" [{}]", l.possible_duplicates)
                } else {
                    String::new()
                }
            );
        }
        if rv.recipients.len() > SHOWN_RECIPIENTS {
            let _ = writeln!(
                s,
                "  … {} {}",
                rv.recipients.len() - SHOWN_RECIPIENTS,
                l.more_rows
            );
        }
    }
    s
}

/// Money for people: no decimals when whole.
pub fn money_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        group(x as i64)
    } else {
        format!("{x:.2}")
    }
}

pub fn cost_note(c: &Cost, lang: Lang) -> String {
    let l = lang.labels();
    match &c.note {
        None => String::new(),
        Some(n) if n == "no prices configured" => l.no_prices.into(),
        Some(n) => n.replacen("no price for", l.unpriced, 1),
    }
}

pub fn filter_line(f: &FilterInfo, lang: Lang) -> String {
    let l = lang.labels();
    let mut parts = Vec::new();
    if let Some(c) = &f.carrier {
        parts.push(format!("{} = {}", l.carrier, carrier_name(c)));
    }
    if let Some(d) = &f.district {
        parts.push(format!("{} = {d}", l.district));
    }
    if !f.states.is_empty() {
        parts.push(format!(
            "{} = {}",
            l.state,
            f.states
                .iter()
                .map(|s| lang.state(s))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if f.since.is_some() || f.until.is_some() {
        parts.push(format!(
            "{} {} … {}",
            l.period,
            f.since.as_deref().unwrap_or(""),
            f.until.as_deref().unwrap_or("")
        ));
    }
    parts.join("; ")
}

fn percentiles_line(p: &BTreeMap<String, i64>) -> String {
    ["p50", "p90", "p95", "p99", "max"]
        .iter()
        .filter_map(|k| p.get(*k).map(|v| format!("{k} {v}")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn states_line(states: &BTreeMap<String, i64>, lang: Lang) -> String {
    states
        .iter()
        .map(|(k, v)| format!("{} {}", lang.state(k), group(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}
