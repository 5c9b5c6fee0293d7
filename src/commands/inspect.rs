//! Read-only commands: `report`, `lookup`, `audit`.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result, bail};

use super::{Ctx, Exit, find_campaign, print_json};
use crate::audit::{self, Verdict};
use crate::cli::{AuditArgs, LookupArgs, ReportArgs, ReportFormat};
use crate::msisdn::{Carrier, Msisdn};
use crate::report;
use crate::store::{ReportFilter, state};
use crate::text::{for_terminal, for_terminal_lines};
use crate::window;

/// Opens the database for `--reveal`: an operator's act, so it needs a connection that can
/// write (its audit entry comes before anything is shown). Refused, with the reason, otherwise.
async fn store_for_reveal(ctx: &Ctx) -> Result<std::sync::Arc<dyn crate::store::Store>> {
    const WHY: &str = "--reveal shows full phone numbers: it is an operator's act, written to the audit log before anything is shown";
    // The database must exist already: a read-only open says so without creating it.
    ctx.store_read_only().await?;
    let store = match ctx.store().await {
        Ok(s) => s,
        Err(e) => bail!(
            "{WHY}, and the database cannot be opened for writing ({e:#}). Nothing was shown."
        ),
    };
    if store.is_read_only() {
        bail!(
            "{WHY}, and this database connection is read-only ({}). Nothing was shown; ask an operator with write access.",
            crate::store::redact_url(&ctx.db)
        );
    }
    Ok(store)
}

/// Writes the `reveal` audit entry; a failure (e.g. a file the process may not write) refuses.
async fn audit_reveal(
    ctx: &Ctx,
    store: &dyn crate::store::Store,
    subject: &str,
    details: serde_json::Value,
) -> Result<i64> {
    match store
        .audit_append(&ctx.operator, "reveal", subject, &details)
        .await
    {
        Ok(e) => Ok(e.id),
        Err(e) => bail!(
            "--reveal is refused: its audit entry could not be written ({e:#}). Nothing was shown."
        ),
    }
}

fn report_filter(args: &ReportArgs, campaign_id: Option<i64>) -> Result<ReportFilter> {
    let carrier = match &args.carrier {
        Some(c) => {
            let c = c.trim().to_lowercase();
            if !Carrier::ALL.iter().any(|k| k.as_str() == c) {
                bail!(
                    "{c:?} is not a carrier: use one of {}",
                    Carrier::ALL.map(|k| k.as_str()).join(", ")
                );
            }
            Some(c)
        }
        None => None,
    };
    let mut states = Vec::new();
    for st in &args.state {
        let st = st.trim().to_lowercase();
        if !state::ALL.contains(&st.as_str()) {
            bail!(
                "{st:?} is not a delivery state: use one of {}",
                state::ALL.join(", ")
            );
        }
        if !states.contains(&st) {
            states.push(st);
        }
    }
    let since_ms = match &args.since {
        Some(s) => Some(window::parse_date(s, false)?.timestamp_millis()),
        None => None,
    };
    let until_ms = match &args.until {
        Some(s) => Some(window::parse_date(s, true)?.timestamp_millis()),
        None => None,
    };
    if let (Some(a), Some(b)) = (since_ms, until_ms)
        && a >= b
    {
        bail!("--since must come before --until");
    }
    Ok(ReportFilter {
        campaign_id,
        carrier,
        district: args.district.as_ref().map(|d| d.trim().to_string()),
        states,
        since_ms,
        until_ms,
    })
}

pub async fn report(ctx: &Ctx, args: ReportArgs) -> Result<Exit> {
    let format = if args.json {
        ReportFormat::Json
    } else {
        args.format
    };
    let config = ctx.config()?;
    let prices = config.prices;
    if matches!(format, ReportFormat::Docx | ReportFormat::Pdf) && args.out.is_none() {
        bail!("--format docx and pdf write a file: add --out FILE");
    }
    let store = ctx.store_read_only().await?;
    let (campaigns, campaign_id) = match &args.campaign {
        Some(key) if !args.all => {
            let c = find_campaign(&*store, key).await?;
            let id = c.id;
            (vec![c], Some(id))
        }
        _ => (store.campaigns().await?, None),
    };
    let filter = report_filter(&args, campaign_id)?;
    let data = store.report_data(&filter).await?;
    let head = match audit::verify(&store.audit_entries().await?) {
        Verdict::Intact { head, .. } => Some(head),
        Verdict::Broken { .. } => None,
    };
    let scope = report::Scope {
        campaigns: &campaigns,
        all: campaign_id.is_none(),
        filter: &filter,
    };
    let mut r = report::build(&scope, &data, prices.as_ref(), head);
    if args.reveal {
        let reason = args.reason.clone().unwrap_or_default();
        if reason.trim().is_empty() {
            bail!(
                "--reveal needs --reason TEXT: why the numbers are shown (kept in the audit log)"
            );
        }
        let rw = store_for_reveal(ctx).await?;
        let recipients = rw.report_recipients(&filter).await?;
        let subject = match campaign_id {
            Some(id) => format!("campaign {id}"),
            None => "all campaigns".to_string(),
        };
        let entry = audit_reveal(
            ctx,
            &*rw,
            &subject,
            serde_json::json!({
                "command": "report",
                "reason": reason,
                "numbers": recipients.len(),
                "filter": &r.filter,
            }),
        )
        .await?;
        r.revealed = Some(report::Revealed {
            by: ctx.operator.clone(),
            reason,
            audit_entry: entry,
            recipients,
        });
    }
    let bytes = match format {
        ReportFormat::Json => (serde_json::to_string_pretty(&r)? + "\n").into_bytes(),
        // Names and texts in the table come from files: escape sequences are shown, not run.
        ReportFormat::Table => for_terminal_lines(&report::table(&r, args.lang))
            .into_owned()
            .into_bytes(),
        ReportFormat::Csv => report::csv(&r, args.lang)?,
        ReportFormat::Html => report::html(&r, args.lang).into_bytes(),
        ReportFormat::Docx => report::docx(&r, args.lang, &config.report)?,
        ReportFormat::Pdf => report::pdf(&report::docx(&r, args.lang, &config.report)?)?,
    };
    match args.out {
        Some(path) => {
            std::fs::write(&path, bytes)
                .with_context(|| format!("Failed to write {}", path.display()))?;
            eprintln!("report written to {}", path.display());
        }
        None if format != ReportFormat::Table && std::io::stdout().is_terminal() => {
            let text = String::from_utf8_lossy(&bytes);
            std::io::stdout().write_all(for_terminal_lines(&text).as_bytes())?
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(Exit::Ok)
}

pub async fn lookup(ctx: &Ctx, args: LookupArgs) -> Result<Exit> {
    let number = match Msisdn::parse(&args.number) {
        Ok(p) => p.msisdn,
        Err(e) => bail!("{:?} is not a Vietnamese mobile number: {e}", args.number),
    };
    let store = if args.reveal {
        if args.reason.as_deref().unwrap_or("").trim().is_empty() {
            bail!("--reveal needs --reason TEXT: why the number is shown (kept in the audit log)");
        }
        store_for_reveal(ctx).await?
    } else {
        ctx.store_read_only().await?
    };
    let mut events = store.lookup(number.as_str()).await?;
    if args.reveal {
        audit_reveal(
            ctx,
            &*store,
            &format!("number {number}"),
            serde_json::json!({
                "command": "lookup",
                "reason": args.reason,
                "events": events.len(),
            }),
        )
        .await?;
    } else {
        for e in &mut events {
            e.detail = report::mask_numbers(&e.detail);
        }
    }
    let shown = if args.reveal {
        number.as_str().to_string()
    } else {
        number.masked()
    };
    if args.json {
        print_json(&serde_json::json!({
            "number": shown,
            "carrier": number.carrier().as_str(),
            "revealed": args.reveal,
            "events": events,
        }))?;
        return Ok(Exit::Ok);
    }
    if events.is_empty() {
        println!("{shown}: no campaign has this number");
        return Ok(Exit::Ok);
    }
    println!("{shown} ({})", number.carrier());
    for e in events {
        let at = chrono::DateTime::from_timestamp_millis(e.at_ms)
            .map(crate::window::local)
            .unwrap_or_default();
        println!(
            "  {at}  {:<16} #{:<8} {:<28} {}",
            for_terminal(&e.campaign),
            e.delivery_id,
            e.kind,
            for_terminal(&e.detail)
        );
    }
    Ok(Exit::Ok)
}

/// `smscast backup FILE`: a consistent copy of a live SQLite database, verified.
pub async fn backup(ctx: &Ctx, args: crate::cli::BackupArgs) -> Result<Exit> {
    if crate::store::sqlite_file(&ctx.db).is_none() {
        anyhow::bail!(
            "backup writes a copy of a SQLite database; for PostgreSQL use `pg_dump --format=custom --file=FILE DATABASE_URL` (consistent while workers run), then restore it elsewhere and run `smscast audit --verify` on the copy"
        );
    }
    if args.file.exists() {
        anyhow::bail!(
            "{} exists already: choose a new file name (a backup never overwrites)",
            args.file.display()
        );
    }
    let store = ctx.store_read_only().await?;
    store.backup_to(&args.file).await?;
    // Check the copy as an auditor would receive it: opened on its own, read-only.
    let copy = crate::store::open(
        &format!("sqlite://{}", args.file.display()),
        crate::store::Access::ReadOnly,
    )
    .await?;
    let integrity = copy.integrity_check().await?;
    let verdict = audit::verify(&copy.audit_entries().await?);
    copy.close().await;
    if integrity != "ok" {
        println!("backup {} is DAMAGED: {integrity}", args.file.display());
        return Ok(Exit::Failed);
    }
    match verdict {
        Verdict::Intact { entries, head } => {
            println!(
                "backup written to {}: integrity ok, audit log intact: {entries} entries, head {head}",
                args.file.display()
            );
            println!(
                "compare the head with `smscast audit --verify` on the live database; keep the file read-only"
            );
            Ok(Exit::Ok)
        }
        Verdict::Broken { id, reason } => {
            println!(
                "backup {} written, but its audit log is BROKEN at entry {id}: {reason}",
                args.file.display()
            );
            Ok(Exit::Failed)
        }
    }
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
            e.id,
            for_terminal(&e.actor),
            e.action,
            for_terminal(&e.subject),
            e.details
        );
    }
    Ok(Exit::Ok)
}
