//! `message check`: exactly what will go out, and what it costs, before anything is sent.

use std::path::Path;

use anyhow::{Result, bail};
use serde::Serialize;

use super::{Ctx, Exit, print_json};
use crate::encoding::{self, Analysis, Offending, check_brandname};
use crate::message::MessageFile;
use crate::template::{self, Template};
use crate::text::for_terminal;

#[derive(Serialize)]
struct ListCost {
    list: String,
    recipients: i64,
    /// (carrier, recipients, SMS parts)
    by_carrier: Vec<(String, i64, i64)>,
    sms_total: i64,
    /// Parts × the `[prices]` of smscast.toml: (currency, total), when prices are configured
    /// for every carrier of the list.
    cost: Option<(String, f64)>,
}

pub async fn check(
    ctx: &Ctx,
    file: &Path,
    no_diacritics: bool,
    list: Option<&str>,
    json: bool,
) -> Result<Exit> {
    let m = MessageFile::load(file)?;
    let written = m.prepare(no_diacritics);
    let template = Template::parse(&written.text)?;
    // Count what is sent, as `campaign create` does: a literal brace written `{{` goes out as
    // `{` (an extension character: 2 septets, not 4).
    let a = Analysis {
        folded: written.folded,
        ..encoding::analyze(&template.as_sent())
    };
    let placeholders: Vec<String> = template
        .placeholders()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let sender_problem = m.sender.as_deref().and_then(|s| check_brandname(s).err());
    let mut worst: Option<Analysis> = None;
    let mut cost = None;
    if let Some(l) = list {
        let store = ctx.store_read_only().await?;
        let Some(summary) = store.lists().await?.into_iter().find(|s| s.name == l) else {
            bail!("there is no list named {l:?}: see `smscast lists`");
        };
        let mut segments = a.segments as i64;
        if template.is_personalised() {
            let check = template::check_list(&*store, l, &template, a.folded).await?;
            for (name, n, example) in &check.missing {
                eprintln!(
                    "warning: {n} recipient(s) have no value for {{{name}}} (e.g. {example}); campaign creation will refuse this list"
                );
            }
            if let Some(w) = check.worst {
                segments = w.segments as i64;
                worst = Some(w);
            }
        }
        let by_carrier: Vec<(String, i64, i64)> = summary
            .by_carrier
            .iter()
            .map(|(c, n)| (c.clone(), *n, n * segments))
            .collect();
        let money = ctx.config()?.prices.and_then(|prices| {
            let total: Option<f64> = by_carrier
                .iter()
                .map(|(c, _, parts)| prices.price(c).map(|p| p * *parts as f64))
                .sum();
            total.map(|t| (prices.currency.clone(), t))
        });
        cost = Some(ListCost {
            list: l.to_string(),
            recipients: summary.members,
            sms_total: by_carrier.iter().map(|(_, _, p)| p).sum(),
            by_carrier,
            cost: money,
        });
    }
    // A failed check exits 1 (the README's promise), after showing everything.
    let exit = if sender_problem.is_some() {
        Exit::Failed
    } else {
        Exit::Ok
    };
    if json {
        let mut v = serde_json::to_value(&a)?;
        v["sender"] = serde_json::json!(m.sender);
        v["sender_problem"] = serde_json::json!(sender_problem);
        v["placeholders"] = serde_json::json!(placeholders);
        if let Some(w) = &worst {
            v["worst_case"] = serde_json::to_value(w)?;
        }
        if let Some(c) = &cost {
            v["list"] = serde_json::to_value(c)?;
            v["recipients"] = c.recipients.into();
            v["sms_total"] = c.sms_total.into();
            v["cost"] = serde_json::json!(
                c.cost
                    .as_ref()
                    .map(|(cur, t)| serde_json::json!({"currency": cur, "total": t}))
            );
        }
        print_json(&v)?;
        return Ok(exit);
    }
    println!("{} — {}", for_terminal(&m.id), for_terminal(&m.title));
    print_analysis(&a);
    if let Some(s) = &m.sender {
        println!(
            "sender:     {}{}",
            for_terminal(s),
            sender_problem
                .as_ref()
                .map(|p| format!(" — {p}"))
                .unwrap_or_default()
        );
    }
    if !placeholders.is_empty() {
        println!(
            "placeholders: {{{}}} (filled per recipient)",
            for_terminal(&placeholders.join("}, {"))
        );
    }
    print_offending(&a.offending);
    if !a.offending.is_empty() && !no_diacritics {
        let folded = m.prepare(true);
        println!(
            "without diacritics (--no-diacritics): {}, {} segment(s) instead of {}{}",
            folded.encoding,
            folded.segments,
            a.segments,
            if m.text_no_diacritics.is_some() {
                " (the file's hand-written version)"
            } else {
                ""
            }
        );
    }
    if let Some(w) = &worst {
        println!(
            "longest personalised text: {} characters, {} segment(s), {}",
            w.characters, w.segments, w.encoding
        );
    }
    if let Some(c) = &cost {
        println!("list {:?}: {} recipients", c.list, c.recipients);
        for (carrier, n, parts) in &c.by_carrier {
            println!("  {carrier:<14}{n:>10} × segments = {parts:>10} SMS");
        }
        println!("  total{:>33} SMS", c.sms_total);
        match &c.cost {
            Some((currency, total)) => {
                println!("  cost: {total:.0} {currency} (from [prices] in smscast.toml)")
            }
            None => println!(
                "  cost: set [prices] in smscast.toml (currency, and a price per SMS part per carrier)"
            ),
        }
    }
    Ok(exit)
}

fn print_analysis(a: &Analysis) {
    let unit = if a.encoding.as_str() == "GSM-7" {
        "septets"
    } else {
        "UTF-16 units"
    };
    println!(
        "encoding:   {}{}",
        a.encoding,
        if a.folded { " (no diacritics)" } else { "" }
    );
    println!("characters: {} ({} {unit})", a.characters, a.units);
    println!(
        "segments:   {} (up to {} {unit} per part)",
        a.segments, a.per_segment
    );
    for (i, part) in a.parts.iter().enumerate() {
        println!("part {}: {}", i + 1, for_terminal(part));
    }
}

/// Vietnamese letters are summed up on one line; anything else that forces UCS-2 (smart
/// quotes, dashes, emoji) is listed with its position and a replacement.
fn print_offending(offending: &[Offending]) {
    if offending.is_empty() {
        return;
    }
    let (letters, others): (Vec<&Offending>, Vec<&Offending>) = offending
        .iter()
        .partition(|o| o.name.contains("letter with diacritics"));
    println!("characters that force UCS-2:");
    if !letters.is_empty() {
        let mut distinct: Vec<char> = letters.iter().map(|o| o.character).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let shown: String = distinct
            .iter()
            .take(30)
            .collect::<Vec<_>>()
            .iter()
            .map(|c| format!("{c} "))
            .collect();
        println!(
            "  {} different letters with diacritics: {}{} (--no-diacritics folds them)",
            distinct.len(),
            shown.trim_end(),
            if distinct.len() > 30 { " …" } else { "" }
        );
    }
    for o in others.iter().take(40) {
        println!(
            "  position {:>4}: {:?} {} ({}){}",
            o.position,
            o.character,
            o.codepoint,
            o.name,
            o.suggestion
                .as_ref()
                .map(|s| format!(" → use {s:?}"))
                .unwrap_or_default()
        );
    }
    if others.len() > 40 {
        println!("  … and {} more", others.len() - 40);
    }
}
