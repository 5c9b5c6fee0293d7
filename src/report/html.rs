//! The HTML report: one self-contained page (inline CSS, inline SVG charts drawn here, no
//! script, no external asset) that opens offline and prints on A4.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::labels::{Lang, carrier_name};
use super::{
    Breakdown, Report, SHOWN_RECIPIENTS, code_name, cost_note, district_name, filter_line, group,
    money_text, reason_name,
};

/// State groups drawn in the charts, with their colours (also used in the legend).
const GROUPS: [(&str, &[&str], &str); 5] = [
    ("delivered", &["delivered"], "#2e7d32"),
    ("submitted", &["submitted"], "#1e88e5"),
    (
        "failed",
        &["failed", "expired", "rejected", "unknown"],
        "#c62828",
    ),
    ("suppressed", &["suppressed"], "#9e9e9e"),
    ("pending", &["queued", "claimed", "sending"], "#f9a825"),
];

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn group_label(key: &str, lang: Lang) -> String {
    match (key, lang) {
        ("failed", Lang::En) => "Not delivered (failed, expired, rejected, in doubt)".into(),
        ("failed", Lang::Vi) => {
            "Không thành công (không chuyển được, hết hạn, bị từ chối, chưa rõ)".into()
        }
        ("pending", Lang::En) => "Not sent yet".into(),
        ("pending", Lang::Vi) => "Chưa gửi".into(),
        (k, _) => lang.state(k),
    }
}

fn legend(lang: Lang, keys: &[&str]) -> String {
    let mut s = String::from("<div class=\"legend\">");
    for (key, _, colour) in GROUPS.iter().filter(|g| keys.contains(&g.0)) {
        let _ = write!(
            s,
            "<span><i style=\"background:{colour}\"></i>{}</span>",
            esc(&group_label(key, lang))
        );
    }
    s.push_str("</div>");
    s
}

/// The time chart's legend: its bars split what the by-day and by-hour tables count (messages
/// accepted in that hour: delivered, failed or expired by receipt, still awaiting a receipt),
/// so it names the tables' columns. Rejected and in-doubt messages were never accepted and are
/// not on this chart (they are in the carrier and district charts).
fn time_legend(lang: Lang) -> String {
    let l = lang.labels();
    let mut s = String::from("<div class=\"legend\">");
    for (label, colour) in [
        (l.delivered_col.to_string(), TIME_COLOURS[0]),
        (l.failed_col.to_string(), TIME_COLOURS[1]),
        (lang.state("submitted"), TIME_COLOURS[2]),
    ] {
        let _ = write!(
            s,
            "<span><i style=\"background:{colour}\"></i>{}</span>",
            esc(&label)
        );
    }
    s.push_str("</div>");
    s
}

/// Delivered, not delivered (failed or expired), awaiting a receipt: the time chart's colours.
const TIME_COLOURS: [&str; 3] = ["#2e7d32", "#c62828", "#1e88e5"];

/// Horizontal stacked bars, one per row (carrier or district), by state group.
fn bars_chart(id: &str, rows: &[(String, &Breakdown)]) -> String {
    let max = rows.iter().map(|(_, b)| b.total).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (170.0, 640.0, 26.0);
    let height = rows.len() as f64 * row_h + 10.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg id=\"{id}\" class=\"chart\" viewBox=\"0 0 {w} {height}\" width=\"100%\" role=\"img\">",
        w = label_w + bar_w + 120.0
    );
    for (i, (name, b)) in rows.iter().enumerate() {
        let y = 5.0 + i as f64 * row_h;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"lbl\">{}</text>",
            label_w - 8.0,
            y + 16.0,
            esc(name)
        );
        let mut x = label_w;
        for (_, states, colour) in GROUPS {
            let n: i64 = states.iter().filter_map(|st| b.states.get(*st)).sum();
            if n == 0 {
                continue;
            }
            let w = bar_w * n as f64 / max as f64;
            let _ = write!(
                s,
                "<rect x=\"{x:.2}\" y=\"{y}\" width=\"{w:.2}\" height=\"{}\" fill=\"{colour}\"><title>{}</title></rect>",
                row_h - 6.0,
                group(n)
            );
            x += w;
        }
        let _ = write!(
            s,
            "<text x=\"{:.2}\" y=\"{}\" class=\"num\">{}</text>",
            x + 6.0,
            y + 16.0,
            group(b.total)
        );
    }
    s.push_str("</svg>");
    s
}

/// Vertical stacked bars over time: delivered, not delivered, awaiting a receipt.
fn time_chart(points: &[(String, i64, i64, i64)]) -> String {
    let (left, top, plot_w, plot_h) = (70.0, 10.0, 900.0, 220.0);
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1);
    let n = points.len().max(1) as f64;
    let slot = plot_w / n;
    let bar = (slot * 0.8).clamp(0.5, 48.0);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg id=\"chart-time\" class=\"chart\" viewBox=\"0 0 {} {}\" width=\"100%\" role=\"img\">",
        left + plot_w + 20.0,
        top + plot_h + 90.0
    );
    for k in 0..=4 {
        let v = max as f64 * k as f64 / 4.0;
        let y = top + plot_h - plot_h * k as f64 / 4.0;
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" class=\"num\">{}</text>",
            left + plot_w,
            left - 6.0,
            y + 4.0,
            group(v.round() as i64)
        );
    }
    let every = (points.len() / 12).max(1);
    for (i, (label, submitted, delivered, failed)) in points.iter().enumerate() {
        let x = left + i as f64 * slot + (slot - bar) / 2.0;
        let mut y = top + plot_h;
        let awaiting = submitted - delivered - failed;
        for (v, colour) in [
            (*delivered, TIME_COLOURS[0]),
            (*failed, TIME_COLOURS[1]),
            (awaiting, TIME_COLOURS[2]),
        ] {
            if v <= 0 {
                continue;
            }
            let h = plot_h * v as f64 / max as f64;
            y -= h;
            let _ = write!(
                s,
                "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{bar:.2}\" height=\"{h:.2}\" fill=\"{colour}\"><title>{} {}</title></rect>",
                esc(label),
                group(v)
            );
        }
        if i % every == 0 {
            let cx = x + bar / 2.0;
            let ly = top + plot_h + 14.0;
            let _ = write!(
                s,
                "<text x=\"{cx:.1}\" y=\"{ly}\" text-anchor=\"end\" transform=\"rotate(-35 {cx:.1} {ly})\" class=\"tick\">{}</text>",
                esc(label)
            );
        }
    }
    let _ = write!(
        s,
        "<line x1=\"{left}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" class=\"axis\"/></svg>",
        left + plot_w,
        y = top + plot_h
    );
    s
}

const CSS: &str = r#"
:root { color-scheme: light; }
body { font-family: "Noto Sans", "DejaVu Sans", Arial, sans-serif; margin: 24px auto; max-width: 1100px; color: #212121; padding: 0 16px; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 2px solid #1565c0; padding-bottom: 4px; }
.meta { color: #555; margin: 0 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #cfd8dc; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #eceff1; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.message { white-space: pre-wrap; background: #f5f5f5; border-left: 4px solid #1565c0; padding: 8px 12px; }
.kpis { display: flex; flex-wrap: wrap; gap: 12px; margin: 1em 0; }
.kpi { border: 1px solid #cfd8dc; border-radius: 6px; padding: 8px 14px; min-width: 150px; }
.kpi b { display: block; font-size: 1.5em; }
.legend { font-size: 0.85em; margin: 4px 0 8px; }
.legend span { margin-right: 16px; white-space: nowrap; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 5px; vertical-align: -1px; }
svg.chart { display: block; max-width: 100%; height: auto; }
svg .lbl { font-size: 13px; fill: #212121; }
svg .num { font-size: 12px; fill: #424242; }
svg .tick { font-size: 11px; fill: #424242; }
svg .grid { stroke: #e0e0e0; stroke-width: 1; }
svg .axis { stroke: #616161; stroke-width: 1; }
.warn { color: #b71c1c; font-weight: bold; }
.hash { font-family: monospace; font-size: 0.85em; word-break: break-all; }
.chart-box { break-inside: avoid; page-break-inside: avoid; }
@page { size: A4; margin: 14mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; padding: 0; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; page-break-after: avoid; }
  table, .kpis { break-inside: avoid; page-break-inside: avoid; }
}
"#;

fn breakdown_table(s: &mut String, lang: Lang, head: &str, rows: &[(String, &Breakdown)]) {
    let l = lang.labels();
    let _ = write!(
        s,
        "<table><tr><th>{}</th><th>{}</th>",
        esc(head),
        esc(l.total)
    );
    let states: Vec<&str> = crate::store::state::ALL
        .iter()
        .copied()
        .filter(|st| rows.iter().any(|(_, b)| b.states.contains_key(*st)))
        .collect();
    for st in &states {
        let _ = write!(s, "<th>{}</th>", esc(&lang.state(st)));
    }
    s.push_str("</tr>");
    for (name, b) in rows {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"n\">{}</td>",
            esc(name),
            group(b.total)
        );
        for st in &states {
            let _ = write!(
                s,
                "<td class=\"n\">{}</td>",
                group(b.states.get(*st).copied().unwrap_or(0))
            );
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
}

fn percentiles_table(s: &mut String, p: &BTreeMap<String, i64>) {
    s.push_str("<table><tr>");
    for k in ["p50", "p90", "p95", "p99", "max"] {
        let _ = write!(s, "<th>{k}</th>");
    }
    s.push_str("</tr><tr>");
    for k in ["p50", "p90", "p95", "p99", "max"] {
        let _ = write!(
            s,
            "<td class=\"n\">{}</td>",
            p.get(k).map(|v| group(*v)).unwrap_or_default()
        );
    }
    s.push_str("</tr></table>");
}

pub fn html(r: &Report, lang: Lang) -> String {
    let l = lang.labels();
    let title = if r.campaign.is_some() {
        l.title
    } else {
        l.title_all
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body>",
        lang.code(),
        esc(&match &r.campaign {
            Some(c) => format!("{title} — {}", c.name),
            None => title.to_string(),
        })
    );
    let _ = write!(s, "<h1>{}</h1>", esc(title));
    let _ = write!(
        s,
        "<p class=\"meta\">{} {} · {}</p>",
        esc(l.generated),
        esc(&r.generated_at),
        esc(l.time_zone)
    );

    // What was sent, by whom, when.
    s.push_str("<table>");
    let mut kv = |k: &str, v: &str| {
        let _ = write!(s, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    };
    if let Some(c) = &r.campaign {
        kv(
            l.campaign,
            &format!("{} (#{}) — {}", c.name, c.id, lang.campaign_state(&c.state)),
        );
        kv(l.list, &c.list);
        kv(l.sender, &c.sender);
        kv(
            l.encoding,
            &format!(
                "{} · {} {} · {} {}",
                c.encoding, c.characters, l.characters, c.segments, l.segments
            ),
        );
        kv(
            l.gateway,
            &format!("{} · {}: {}", c.gateway, l.rate, c.rate),
        );
        kv(l.hours, &c.hours);
    } else {
        let names: Vec<String> = r
            .campaigns
            .iter()
            .map(|c| format!("{} (#{})", c.name, c.id))
            .collect();
        kv(l.campaigns, &names.join(", "));
    }
    if let (Some(a), Some(b)) = (&r.first_submit_at, &r.last_submit_at) {
        kv(l.period, &format!("{} {a} {} {b}", l.sent_from, l.to));
    }
    let f = filter_line(&r.filter, lang);
    if !f.is_empty() {
        kv(l.filter, &f);
    }
    s.push_str("</table>");
    let texts: Vec<&str> = match &r.campaign {
        Some(c) => vec![c.message_text.as_str()],
        None => r
            .campaigns
            .iter()
            .map(|c| c.message_text.as_str())
            .collect(),
    };
    let _ = write!(s, "<h2>{}</h2>", esc(l.message));
    for t in texts {
        let _ = write!(s, "<div class=\"message\">{}</div>", esc(t));
    }

    // Headline figures.
    s.push_str("<div class=\"kpis\">");
    let delivered = r.by_state.get("delivered").copied().unwrap_or(0);
    for (k, v) in [
        (l.recipients, r.recipients),
        (l.accepted, r.accepted),
        (l.delivered_col, delivered),
        (l.sms_parts, r.sms_parts),
        (l.possible_duplicates, r.possible_duplicates),
    ] {
        let _ = write!(s, "<div class=\"kpi\">{}<b>{}</b></div>", esc(k), group(v));
    }
    s.push_str("</div>");
    let _ = write!(
        s,
        "<h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
        esc(l.state),
        esc(l.state),
        esc(l.count),
        esc(l.share)
    );
    for st in crate::store::state::ALL {
        let n = &r.by_state.get(st).copied().unwrap_or(0);
        let share = if r.recipients > 0 {
            100.0 * *n as f64 / r.recipients as f64
        } else {
            0.0
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{share:.1}%</td></tr>",
            esc(&lang.state(st)),
            group(*n)
        );
    }
    let _ = write!(
        s,
        "<tr><th>{}</th><th class=\"n\">{}</th><th></th></tr></table>",
        esc(l.total),
        group(r.recipients)
    );

    // Over time.
    let by_hour = r.by_hour.len() <= 96;
    let points: Vec<(String, i64, i64, i64)> = if by_hour {
        r.by_hour
            .iter()
            .map(|h| (h.hour.clone(), h.submitted, h.delivered, h.failed))
            .collect()
    } else {
        r.by_day
            .iter()
            .map(|d| (d.day.clone(), d.submitted, d.delivered, d.failed))
            .collect()
    };
    let _ = write!(
        s,
        "<div class=\"chart-box\"><h2>{} — {}</h2>{}",
        esc(l.over_time),
        esc(if by_hour { l.hour } else { l.day }),
        time_legend(lang)
    );
    s.push_str(&time_chart(&points));
    s.push_str("</div>");

    // By carrier and district.
    let carriers: Vec<(String, &Breakdown)> = r
        .by_carrier
        .iter()
        .map(|b| (carrier_name(&b.name), b))
        .collect();
    let districts: Vec<(String, &Breakdown)> = r
        .by_district
        .iter()
        .map(|b| (district_name(&b.name, lang), b))
        .collect();
    let all_groups = ["delivered", "submitted", "failed", "suppressed", "pending"];
    for (id, head, col, rows) in [
        ("chart-carrier", l.by_carrier, l.carrier, &carriers),
        ("chart-district", l.by_district, l.district, &districts),
    ] {
        let _ = write!(
            s,
            "<div class=\"chart-box\"><h2>{}</h2>{}{}</div>",
            esc(head),
            legend(lang, &all_groups),
            bars_chart(id, rows)
        );
        breakdown_table(&mut s, lang, col, rows);
    }

    // Days (and hours when few).
    if !r.by_day.is_empty() {
        let _ = write!(
            s,
            "<h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            esc(l.by_day),
            esc(l.day),
            esc(l.submitted_col),
            esc(l.delivered_col),
            esc(l.failed_col)
        );
        for d in &r.by_day {
            let _ = write!(
                s,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&d.day),
                group(d.submitted),
                group(d.delivered),
                group(d.failed)
            );
        }
        s.push_str("</table>");
    }

    // Errors.
    let _ = write!(s, "<h2>{}</h2>", esc(l.errors));
    if r.errors.is_empty() {
        let _ = write!(s, "<p>{}</p>", esc(l.none));
    } else {
        let _ = write!(
            s,
            "<table><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
            esc(l.reason),
            esc(l.state),
            esc(l.count)
        );
        for e in &r.errors {
            let states: Vec<String> = e
                .states
                .iter()
                .map(|(k, v)| format!("{} {}", lang.state(k), group(*v)))
                .collect();
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                esc(&reason_name(e, lang)),
                esc(&states.join(", ")),
                group(e.count)
            );
        }
        s.push_str("</table>");
    }
    if !r.error_codes.is_empty() {
        let _ = write!(
            s,
            "<h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
            esc(l.error_codes),
            esc(l.outcome),
            esc(l.code),
            esc(l.count)
        );
        for e in &r.error_codes {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                esc(&lang.outcome(&e.outcome)),
                esc(&code_name(e)),
                group(e.count)
            );
        }
        s.push_str("</table>");
    }
    if !r.attempts.is_empty() {
        let _ = write!(
            s,
            "<h2>{}</h2><table><tr><th>{}</th><th>{}</th></tr>",
            esc(l.attempts),
            esc(l.outcome),
            esc(l.count)
        );
        for (o, n) in &r.attempts {
            let _ = write!(
                s,
                "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
                esc(&lang.outcome(o)),
                group(*n)
            );
        }
        s.push_str("</table>");
    }

    // Latencies.
    let _ = write!(s, "<h2>{}</h2>", esc(l.submit_latency));
    percentiles_table(&mut s, &r.submit_latency_ms);
    let _ = write!(s, "<h2>{}</h2>", esc(l.receipt_delay));
    if r.receipt_delay_ms.is_empty() {
        let _ = write!(s, "<p>{}</p>", esc(l.no_receipts));
    } else {
        let _ = write!(s, "<p>{} {}</p>", group(r.receipts), esc(l.receipts));
        percentiles_table(&mut s, &r.receipt_delay_ms);
    }

    // Cost.
    let _ = write!(
        s,
        "<h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        esc(l.cost),
        esc(l.carrier),
        esc(l.parts),
        esc(l.price),
        esc(l.cost)
    );
    let cur = r.cost.currency.clone().unwrap_or_default();
    for c in &r.cost.by_carrier {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&carrier_name(&c.carrier)),
            group(c.parts),
            c.price_per_part
                .map(|p| format!("{} {}", money_text(p), esc(&cur)))
                .unwrap_or_default(),
            c.cost
                .map(|p| format!("{} {}", money_text(p), esc(&cur)))
                .unwrap_or_default()
        );
    }
    let _ = write!(
        s,
        "<tr><th>{}</th><th class=\"n\">{}</th><th></th><th class=\"n\">{}</th></tr></table>",
        esc(l.total),
        group(r.cost.by_carrier.iter().map(|c| c.parts).sum()),
        r.cost
            .total
            .map(|t| format!("{} {}", money_text(t), esc(&cur)))
            .unwrap_or_default()
    );
    let note = cost_note(&r.cost, lang);
    if !note.is_empty() {
        let _ = write!(s, "<p>{}</p>", esc(&note));
    }

    if let Some(rv) = &r.revealed {
        let _ = write!(
            s,
            "<h2>{}</h2><p>{} {} — {} (audit #{})</p><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            esc(l.revealed),
            esc(l.revealed_note),
            esc(&rv.by),
            esc(&rv.reason),
            rv.audit_entry,
            esc(l.number),
            esc(l.campaign),
            esc(l.carrier),
            esc(l.district),
            esc(l.state),
            esc(l.reason)
        );
        for x in rv.recipients.iter().take(SHOWN_RECIPIENTS) {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>",
                esc(&x.number),
                esc(&x.campaign),
                esc(&carrier_name(&x.carrier)),
                esc(x.district.as_deref().unwrap_or("")),
                esc(&lang.state(&x.state)),
                if x.possible_duplicate {
                    format!(" ({})", esc(l.possible_duplicates))
                } else {
                    String::new()
                },
                esc(x.reason.as_deref().unwrap_or(""))
            );
        }
        s.push_str("</table>");
        if rv.recipients.len() > SHOWN_RECIPIENTS {
            let _ = write!(
                s,
                "<p>… {} {}</p>",
                rv.recipients.len() - SHOWN_RECIPIENTS,
                esc(l.more_rows)
            );
        }
    }

    match &r.audit_head {
        Some(h) => {
            let _ = write!(
                s,
                "<h2>{}</h2><p class=\"hash\">{}</p>",
                esc(l.audit_head),
                esc(h)
            );
        }
        None => {
            let _ = write!(s, "<p class=\"warn\">{}</p>", esc(l.audit_broken));
        }
    }
    let _ = writeln!(
        s,
        "<p class=\"meta\">smscast {} · {}</p></body></html>",
        env!("CARGO_PKG_VERSION"),
        r.schema
    );
    s
}
