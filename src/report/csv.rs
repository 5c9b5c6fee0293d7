//! The CSV export: one long table `section,item,detail,value`, so that every figure of the
//! report is one row a spreadsheet can filter and a script can look up.
//!
//! With `--lang en` the sections, items and details are the JSON names (stable codes:
//! `state,delivered,,850`); with `--lang vi` they are the Vietnamese labels, and the file
//! starts with a UTF-8 byte order mark so that spreadsheet programs read the diacritics.
//! A cell that starts with `=`, `+`, `-`, `@`, TAB or CR gets a leading `'` (OWASP: CSV
//! injection), so a district or message text from a file cannot run as a formula.

use anyhow::Result;

use super::labels::{Lang, carrier_name};
use super::{Report, code_name, district_name, reason_name};

struct Out {
    w: ::csv::Writer<Vec<u8>>,
    lang: Lang,
}

impl Out {
    /// One row; every cell is made spreadsheet-safe (names and texts come from imported files
    /// and message files: a `=…` must not run in the auditor's spreadsheet).
    fn row(&mut self, section: &str, item: &str, detail: &str, value: &str) -> Result<()> {
        let cells = [section, item, detail, value].map(crate::text::spreadsheet_safe);
        self.w.write_record(cells.iter().map(|c| c.as_bytes()))?;
        Ok(())
    }

    /// `en` → the stable code, `vi` → the label.
    fn pick<'a>(&self, code: &'a str, vi: &'a str) -> &'a str {
        match self.lang {
            Lang::En => code,
            Lang::Vi => vi,
        }
    }

    fn state(&self, s: &str) -> String {
        match self.lang {
            Lang::En => s.to_string(),
            Lang::Vi => self.lang.state(s),
        }
    }

    fn outcome(&self, s: &str) -> String {
        match self.lang {
            Lang::En => s.to_string(),
            Lang::Vi => self.lang.outcome(s),
        }
    }

    fn campaign_state(&self, s: &str) -> String {
        match self.lang {
            Lang::En => s.to_string(),
            Lang::Vi => self.lang.campaign_state(s),
        }
    }

    fn carrier(&self, s: &str) -> String {
        match self.lang {
            Lang::En => s.to_string(),
            Lang::Vi => carrier_name(s),
        }
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

pub fn csv(r: &Report, lang: Lang) -> Result<Vec<u8>> {
    let l = lang.labels();
    let mut o = Out {
        w: ::csv::Writer::from_writer(Vec::new()),
        lang,
    };
    o.row(l.section, l.item, l.detail, l.value)?;
    let sec_campaign = o.pick("campaign", l.campaign);
    for c in &r.campaigns {
        let id = c.id.to_string();
        for (k, vi, v) in [
            ("name", "Tên", c.name.clone()),
            ("state", l.state, o.campaign_state(&c.state)),
            ("sender", l.sender, c.sender.clone()),
            ("encoding", l.encoding, c.encoding.clone()),
            ("segments", l.segments, c.segments.to_string()),
            ("message_text", l.message, c.message_text.clone()),
            ("launched_at", "Bắt đầu gửi", opt(&c.launched_at)),
            ("recipients", l.recipients, c.recipients.to_string()),
            ("accepted", l.accepted, c.accepted.to_string()),
            ("sms_parts", l.sms_parts, c.sms_parts.to_string()),
        ] {
            let item = o.pick(k, vi).to_string();
            o.row(sec_campaign, &id, &item, &v)?;
        }
    }
    let sec = o.pick("period", l.period);
    for (k, vi, v) in [
        ("first_submit_at", l.sent_from, &r.first_submit_at),
        ("last_submit_at", l.to, &r.last_submit_at),
        ("since", "Từ", &r.filter.since),
        ("until", "Đến trước", &r.filter.until),
    ] {
        let item = o.pick(k, vi).to_string();
        o.row(sec, &item, "", &opt(v))?;
    }
    let sec = o.pick("filter", l.filter);
    let f = &r.filter;
    let states = f.states.join(" ");
    for (k, vi, v) in [
        ("all_campaigns", l.campaigns, f.all_campaigns.to_string()),
        ("carrier", l.carrier, opt(&f.carrier)),
        ("district", l.district, opt(&f.district)),
        ("states", l.state, states),
    ] {
        let item = o.pick(k, vi).to_string();
        o.row(sec, &item, "", &v)?;
    }

    let sec = o.pick("total", l.total);
    for (k, vi, v) in [
        ("recipients", l.recipients, r.recipients),
        ("accepted", l.accepted, r.accepted),
        ("sms_parts", l.sms_parts, r.sms_parts),
        (
            "possible_duplicates",
            l.possible_duplicates,
            r.possible_duplicates,
        ),
        ("receipts", l.receipts, r.receipts),
    ] {
        let item = o.pick(k, vi).to_string();
        o.row(sec, &item, "", &v.to_string())?;
    }
    let sec = o.pick("state", l.state);
    for (st, n) in &r.by_state {
        let item = o.state(st);
        o.row(sec, &item, "", &n.to_string())?;
    }
    for (sec, rows, is_carrier) in [
        (o.pick("carrier", l.carrier), &r.by_carrier, true),
        (o.pick("district", l.district), &r.by_district, false),
    ] {
        for b in rows {
            let name = if is_carrier {
                o.carrier(&b.name)
            } else {
                match lang {
                    Lang::En => b.name.clone(),
                    Lang::Vi => district_name(&b.name, lang),
                }
            };
            let total = o.pick("total", l.total).to_string();
            o.row(sec, &name, &total, &b.total.to_string())?;
            for (st, n) in &b.states {
                let st = o.state(st);
                o.row(sec, &name, &st, &n.to_string())?;
            }
        }
    }
    let (s, d, fl) = (
        o.pick("submitted", l.submitted_col).to_string(),
        o.pick("delivered", l.delivered_col).to_string(),
        o.pick("failed", l.failed_col).to_string(),
    );
    let sec = o.pick("day", l.day);
    for row in &r.by_day {
        o.row(sec, &row.day, &s, &row.submitted.to_string())?;
        o.row(sec, &row.day, &d, &row.delivered.to_string())?;
        o.row(sec, &row.day, &fl, &row.failed.to_string())?;
    }
    let sec = o.pick("hour", l.hour);
    for row in &r.by_hour {
        o.row(sec, &row.hour, &s, &row.submitted.to_string())?;
        o.row(sec, &row.hour, &d, &row.delivered.to_string())?;
        o.row(sec, &row.hour, &fl, &row.failed.to_string())?;
    }
    let sec = o.pick("error", l.reason);
    for e in &r.errors {
        let reason = match lang {
            Lang::En => e.reason.clone(),
            Lang::Vi => reason_name(e, lang),
        };
        let total = o.pick("total", l.total).to_string();
        o.row(sec, &reason, &total, &e.count.to_string())?;
        for (st, n) in &e.states {
            let st = o.state(st);
            o.row(sec, &reason, &st, &n.to_string())?;
        }
    }
    let sec = o.pick("error_code", l.code);
    for e in &r.error_codes {
        let outcome = o.outcome(&e.outcome);
        o.row(sec, &outcome, &code_name(e), &e.count.to_string())?;
    }
    let sec = o.pick("attempts", l.attempts);
    for (k, n) in &r.attempts {
        let outcome = o.outcome(k);
        o.row(sec, &outcome, "", &n.to_string())?;
    }
    for (sec, p) in [
        (
            o.pick("submit_latency_ms", l.submit_latency),
            &r.submit_latency_ms,
        ),
        (
            o.pick("receipt_delay_ms", l.receipt_delay),
            &r.receipt_delay_ms,
        ),
    ] {
        for (k, v) in p {
            o.row(sec, k, "", &v.to_string())?;
        }
    }
    let sec = o.pick("cost", l.cost);
    let (parts, price, cost) = (
        o.pick("parts", l.parts).to_string(),
        o.pick("price_per_part", l.price).to_string(),
        o.pick("cost", l.cost).to_string(),
    );
    for c in &r.cost.by_carrier {
        let name = o.carrier(&c.carrier);
        o.row(sec, &name, &parts, &c.parts.to_string())?;
        o.row(sec, &name, &price, &opt(&c.price_per_part))?;
        o.row(sec, &name, &cost, &opt(&c.cost))?;
    }
    let total = o.pick("total", l.total).to_string();
    o.row(sec, &total, &cost, &opt(&r.cost.total))?;
    o.row(sec, &total, "currency", &opt(&r.cost.currency))?;
    if let Some(note) = &r.cost.note {
        let note = match lang {
            Lang::En => note.clone(),
            Lang::Vi => super::cost_note(&r.cost, lang),
        };
        o.row(sec, &total, "note", &note)?;
    }
    let sec = o.pick("audit_head", l.audit_head);
    o.row(sec, "", "", &opt(&r.audit_head))?;
    if let Some(rv) = &r.revealed {
        let sec = o.pick("revealed", l.revealed);
        for x in &rv.recipients {
            let st = o.state(&x.state);
            let detail = format!(
                "{} | {} | {} | {}",
                x.campaign,
                o.carrier(&x.carrier),
                x.district.as_deref().unwrap_or(""),
                st
            );
            let mut value = x.reason.clone().unwrap_or_default();
            if x.possible_duplicate {
                value = format!("{value} [{}]", l.possible_duplicates);
            }
            o.row(sec, &x.number, &detail, value.trim())?;
        }
    }
    let mut bytes = o.w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    if lang == Lang::Vi {
        let mut with_bom = "\u{feff}".as_bytes().to_vec();
        with_bom.append(&mut bytes);
        bytes = with_bom;
    }
    Ok(bytes)
}
