//! `subscribers import`, `subscribers optout`, `lists`.

use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::{Ctx, Exit, print_json};
use crate::cli::{ImportArgs, SubscribersCmd};
use crate::csv_source::SourceOptions;
use crate::import::{ImportRequest, ImportSummary, import};
use crate::msisdn::Msisdn;
use crate::text::for_terminal;

pub async fn run(ctx: &Ctx, cmd: SubscribersCmd) -> Result<Exit> {
    match cmd {
        SubscribersCmd::Import(args) => import_file(ctx, args).await,
        SubscribersCmd::Optout {
            items,
            remove,
            source,
        } => optout(ctx, &items, remove, &source).await,
    }
}

async fn import_file(ctx: &Ctx, args: ImportArgs) -> Result<Exit> {
    // A file that cannot be opened imports nothing, and leaves no empty database behind.
    std::fs::File::open(&args.file)
        .with_context(|| format!("Cannot read {}", args.file.display()))?;
    let store = ctx.store().await?;
    let bar = if std::io::stderr().is_terminal() && !args.json {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} importing [{bar:30}] {bytes}/{total_bytes} {msg}, {eta} left",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let started = std::time::Instant::now();
    let progress = |rows: u64, done: u64, total: u64| {
        let secs = started.elapsed().as_secs_f64().max(0.001);
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message(format!("{rows} rows, {:.0} rows/s", rows as f64 / secs));
    };
    let summary = import(
        &*store,
        ImportRequest {
            file: &args.file,
            list: &args.list,
            options: SourceOptions {
                phone_column: args.phone_column,
                district_column: args.district_column,
                carrier_column: args.carrier_column,
                unnamed_columns: false,
            },
            carrier: args.carrier,
            rejects: args.rejects.as_deref(),
            sort_memory: args.sort_memory as usize * (1 << 20),
            operator: &ctx.operator,
            progress: &progress,
        },
    )
    .await?;
    bar.finish_and_clear();
    store
        .audit_append(
            &ctx.operator,
            "import",
            &format!("list {}", args.list),
            &serde_json::json!({
                "file": summary.file,
                "import_id": summary.counts.import_id,
                "rows_read": summary.rows_read,
                "imported": summary.counts.imported,
                "already_present": summary.counts.already_present,
                "duplicates_in_file": summary.counts.duplicates_in_file,
                "rejected": summary.rejected,
                "legacy_converted": summary.legacy_converted,
                "carrier": summary.carrier.map(|c| c.as_str()),
                "carrier_column": summary.detected.as_ref().and_then(|d| d.carrier_column.clone()),
                "carrier_changed": summary.counts.carrier_changed,
            }),
        )
        .await?;
    if args.json {
        print_json(&summary)?;
    } else {
        print_summary(&summary, args.rejects.as_deref());
    }
    Ok(Exit::Ok)
}

fn print_summary(s: &ImportSummary, rejects: Option<&std::path::Path>) {
    if let Some(prev) = &s.previous_import {
        println!(
            "note: this exact file was imported into list {:?} before (import #{}, {}); nothing new is added twice.",
            s.list,
            prev.import_id,
            crate::window::local(
                chrono::DateTime::from_timestamp_millis(prev.created_ms).unwrap_or_default()
            )
        );
    }
    if let Some(d) = &s.detected {
        println!(
            "{}: {}, delimiter {:?}, {}, phone column {:?}{}",
            for_terminal(&s.file),
            d.encoding,
            d.delimiter,
            if d.has_header {
                "header row"
            } else {
                "no header"
            },
            d.phone_column,
            d.district_column
                .as_ref()
                .map(|c| format!(", district column {c:?}"))
                .unwrap_or_default()
        );
    }
    println!("rows read            {:>10}", s.rows_read);
    println!("imported (new)       {:>10}", s.counts.imported);
    println!("already in the list  {:>10}", s.counts.already_present);
    println!("duplicates in file   {:>10}", s.counts.duplicates_in_file);
    println!(
        "legacy 11-digit      {:>10}  (converted to the new 10-digit numbers)",
        s.legacy_converted
    );
    if s.leading_zero_restored > 0 {
        println!("leading 0 restored   {:>10}", s.leading_zero_restored);
    }
    let column = s.detected.as_ref().and_then(|d| d.carrier_column.as_ref());
    match (s.carrier, column) {
        (Some(c), None) => println!(
            "carrier              {:>10}  (--carrier: every number filed under it, whatever its prefix)",
            c.as_str()
        ),
        (Some(c), Some(col)) => println!(
            "carrier: from the column {col:?} where given, else {} (--carrier)",
            c.as_str()
        ),
        (None, Some(col)) => {
            println!("carrier: from the column {col:?} where given, else by the prefix")
        }
        (None, None) => {}
    }
    if s.counts.carrier_changed > 0 {
        println!(
            "carrier changed      {:>10}  (numbers already known, now filed under the carrier this file names)",
            s.counts.carrier_changed
        );
    }
    println!("rejected             {:>10}", s.rejected);
    for (reason, n) in &s.rejected_by_reason {
        println!("  {reason:<19}{n:>10}");
    }
    if !s.by_carrier.is_empty() {
        let parts: Vec<String> = s
            .by_carrier
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        println!("by carrier: {}", parts.join(", "));
    }
    if !s.by_district.is_empty() {
        let mut parts: Vec<(&String, &u64)> = s.by_district.iter().collect();
        parts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let parts: Vec<String> = parts
            .iter()
            .map(|(d, n)| format!("{} {n}", for_terminal(d)))
            .collect();
        println!("by district: {}", parts.join(", "));
    }
    if !s.unknown_districts.is_empty() {
        println!(
            "districts not recognised (kept as written): {}",
            s.unknown_districts
                .iter()
                .map(|(d, n)| format!("{d:?} ×{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    match rejects {
        Some(p) if s.rejected > 0 => println!(
            "rejected rows with line numbers and reasons: {}",
            for_terminal(&p.display().to_string())
        ),
        None if s.rejected > 0 => println!(
            "tip: --rejects rejects.csv lists every rejected row with its line number and reason"
        ),
        _ => {}
    }
}

/// Every token on the command line must be a number or an existing file: a mistyped file
/// name must not pass as "a field with letters" while the other numbers are recorded.
async fn optout(ctx: &Ctx, items: &[String], remove: bool, source: &str) -> Result<Exit> {
    let mut numbers = Vec::new();
    let mut bad = Vec::new();
    let mut unusable = Vec::new();
    for item in items {
        let path = std::path::Path::new(item);
        if path.is_file() {
            let mut src = crate::csv_source::Source::open(path, &SourceOptions::default())
                .with_context(|| format!("Cannot read {}", path.display()))?;
            while let Some(row) = src.next_row() {
                match row? {
                    Ok(r) => match Msisdn::parse(r.phone) {
                        Ok(p) => numbers.push(p.msisdn.as_str().to_string()),
                        Err(e) => bad.push(format!("{}:{}: {}", item, r.line, e.code())),
                    },
                    Err(p) => bad.push(format!("{}:{}: {}", item, p.line, p.reason)),
                }
            }
        } else {
            match Msisdn::parse(item) {
                Ok(p) => numbers.push(p.msisdn.as_str().to_string()),
                Err(e) if path.exists() => unusable.push(format!(
                    "{item:?} is not a file (a folder?) nor a number ({e})"
                )),
                Err(crate::msisdn::Reject::NotANumber) => unusable.push(format!(
                    "{item:?}: there is no such file, and it is not a phone number"
                )),
                Err(e) => unusable.push(format!("{item:?} is not a valid number: {e}")),
            }
        }
    }
    if !unusable.is_empty() {
        bail!(
            "{}. Nothing was changed: give numbers (0912345678, +84 912 345 678) or existing files",
            unusable.join("; ")
        );
    }
    if numbers.is_empty() {
        bail!("no valid number given ({})", bad.join("; "));
    }
    numbers.sort();
    numbers.dedup();
    let store = ctx.store().await?;
    let changed = if remove {
        store.remove_opt_outs(&numbers).await?
    } else {
        store.add_opt_outs(&numbers, source).await?
    };
    store
        .audit_append(
            &ctx.operator,
            if remove {
                "optout_remove"
            } else {
                "optout_add"
            },
            "opt_outs",
            &serde_json::json!({ "numbers": numbers.len(), "changed": changed, "source": source }),
        )
        .await?;
    for b in &bad {
        eprintln!("skipped {b}");
    }
    if remove {
        println!(
            "{changed} number(s) removed from the opt-out list ({} given)",
            numbers.len()
        );
    } else {
        println!(
            "{changed} number(s) added to the opt-out list ({} already there); running campaigns skip them before each send",
            numbers.len() as u64 - changed
        );
    }
    Ok(Exit::Ok)
}

pub async fn lists(ctx: &Ctx, json: bool) -> Result<Exit> {
    let store = ctx.store_read_only().await?;
    let lists = store.lists().await?;
    if json {
        print_json(&lists)?;
        return Ok(Exit::Ok);
    }
    if lists.is_empty() {
        println!("no lists yet: smscast subscribers import FILE --list NAME");
    }
    for l in lists {
        println!("{} — {} subscribers", for_terminal(&l.name), l.members);
        let carriers: Vec<String> = l
            .by_carrier
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        println!("  carriers:  {}", carriers.join(", "));
        let districts: Vec<String> = l
            .by_district
            .iter()
            .map(|(d, n)| format!("{} {n}", for_terminal(d)))
            .collect();
        println!("  districts: {}", districts.join(", "));
    }
    Ok(Exit::Ok)
}
