//! Read-only commands: `message check`, `report`, `lookup`, `audit`.

use std::path::Path;

use anyhow::{Result, bail};

use super::{Ctx, Exit, find_campaign, print_json};
use crate::audit::{self, Verdict};
use crate::cli::{AuditArgs, LookupArgs, ReportArgs, ReportFormat};
use crate::message::MessageFile;
use crate::msisdn::Msisdn;
use crate::report;

pub async fn message_check(
    ctx: &Ctx,
    file: &Path,
    no_diacritics: bool,
    list: Option<&str>,
    json: bool,
) -> Result<Exit> {
    let m = MessageFile::load(file)?;
    let a = m.prepare(no_diacritics);
    let recipients = match list {
        Some(l) => {
            let store = ctx.store_read_only().await?;
            match store.list_size(l).await? {
                Some(n) => Some(n),
                None => bail!("there is no list named {l:?}: see `smscast lists`"),
            }
        }
        None => None,
    };
    let sender_problem = m
        .sender
        .as_deref()
        .and_then(|s| crate::encoding::check_brandname(s).err());
    if json {
        let mut v = serde_json::to_value(&a)?;
        v["sender"] = serde_json::json!(m.sender);
        v["sender_problem"] = serde_json::json!(sender_problem);
        if let Some(n) = recipients {
            v["recipients"] = n.into();
            v["sms_total"] = (n * a.segments as i64).into();
        }
        print_json(&v)?;
        return Ok(Exit::Ok);
    }
    println!("{} — {}", m.id, m.title);
    println!(
        "encoding:   {}{}",
        a.encoding,
        if a.folded { " (no diacritics)" } else { "" }
    );
    println!(
        "characters: {} ({} {})",
        a.characters,
        a.units,
        if a.encoding.as_str() == "GSM-7" {
            "septets"
        } else {
            "UTF-16 units"
        }
    );
    println!(
        "segments:   {} (up to {} per part)",
        a.segments, a.per_segment
    );
    if let Some(s) = &m.sender {
        println!(
            "sender:     {s}{}",
            sender_problem
                .as_ref()
                .map(|p| format!(" — {p}"))
                .unwrap_or_default()
        );
    }
    for (i, part) in a.parts.iter().enumerate() {
        println!("part {}: {part}", i + 1);
    }
    if !a.offending.is_empty() {
        println!("characters that force UCS-2:");
        for o in a.offending.iter().take(40) {
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
        if a.offending.len() > 40 {
            println!("  … and {} more", a.offending.len() - 40);
        }
        if !no_diacritics {
            let folded = m.prepare(true);
            println!(
                "without diacritics (--no-diacritics): {} , {} segment(s) instead of {}",
                folded.encoding, folded.segments, a.segments
            );
        }
    }
    if let Some(n) = recipients {
        println!(
            "recipients: {n} × {} segment(s) = {} SMS",
            a.segments,
            n * a.segments as i64
        );
    }
    Ok(Exit::Ok)
}

pub async fn report(ctx: &Ctx, args: ReportArgs) -> Result<Exit> {
    let store = ctx.store_read_only().await?;
    let c = find_campaign(&*store, &args.campaign).await?;
    let data = store.report_data(c.id).await?;
    let head = match audit::verify(&store.audit_entries().await?) {
        Verdict::Intact { head, .. } => Some(head),
        Verdict::Broken { .. } => None,
    };
    let r = report::build(&c, &data, head);
    let text = if args.json || args.format == ReportFormat::Json {
        serde_json::to_string_pretty(&r)? + "\n"
    } else {
        report::table(&r)
    };
    match args.out {
        Some(path) => {
            std::fs::write(&path, text)?;
            eprintln!("report written to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(Exit::Ok)
}

pub async fn lookup(ctx: &Ctx, args: LookupArgs) -> Result<Exit> {
    let number = match Msisdn::parse(&args.number) {
        Ok(p) => p.msisdn,
        Err(e) => bail!("{:?} is not a Vietnamese mobile number: {e}", args.number),
    };
    let store = ctx.store_read_only().await?;
    let events = store.lookup(number.as_str()).await?;
    if args.json {
        print_json(&serde_json::json!({ "number": number, "events": events }))?;
        return Ok(Exit::Ok);
    }
    if events.is_empty() {
        println!("{number}: no campaign has this number");
        return Ok(Exit::Ok);
    }
    println!("{number} ({})", number.carrier());
    for e in events {
        let at = chrono::DateTime::from_timestamp_millis(e.at_ms)
            .map(crate::window::local)
            .unwrap_or_default();
        println!(
            "  {at}  {:<16} #{:<8} {:<28} {}",
            e.campaign, e.delivery_id, e.kind, e.detail
        );
    }
    Ok(Exit::Ok)
}

pub async fn audit(ctx: &Ctx, args: AuditArgs) -> Result<Exit> {
    let store = ctx.store_read_only().await?;
    let entries = store.audit_entries().await?;
    if args.verify {
        let verdict = audit::verify(&entries);
        if args.json {
            print_json(&verdict)?;
        }
        return Ok(match verdict {
            Verdict::Intact { entries, head } => {
                if !args.json {
                    println!("audit log intact: {entries} entries, head {head}");
                    println!(
                        "keep the head hash: a later log that does not contain it was cut short"
                    );
                }
                Exit::Ok
            }
            Verdict::Broken { id, reason } => {
                if !args.json {
                    println!("audit log BROKEN at entry {id}: {reason}");
                }
                Exit::Failed
            }
        });
    }
    if args.json {
        print_json(&entries)?;
        return Ok(Exit::Ok);
    }
    for e in entries {
        let at = chrono::DateTime::from_timestamp_millis(e.at_ms)
            .map(crate::window::local)
            .unwrap_or_default();
        println!(
            "{:>5}  {at}  {:<20} {:<18} {:<14} {}",
            e.id, e.actor, e.action, e.subject, e.details
        );
    }
    Ok(Exit::Ok)
}
