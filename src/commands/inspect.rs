//! Read-only commands: `report`, `lookup`, `audit`.

use anyhow::{Result, bail};

use super::{Ctx, Exit, find_campaign, print_json};
use crate::audit::{self, Verdict};
use crate::cli::{AuditArgs, LookupArgs, ReportArgs, ReportFormat};
use crate::msisdn::Msisdn;
use crate::report;

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
