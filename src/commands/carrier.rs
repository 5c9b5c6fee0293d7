//! Carrier-run campaigns: `campaign export --carrier` hands a carrier its share of a campaign
//! (a file of numbers and texts; the rows become `handed`, so no `send` sends them), and
//! `results import --carrier` takes the carrier's result file back into the same rows, so one
//! report covers both paths. The moves are in the transition table (src/store/contract.rs).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone};
use serde::Serialize;

use super::{Ctx, Exit, find_campaign, print_json};
use crate::cli::{ExportArgs, ExportFormat, ResultsImportArgs};
use crate::csv_source::{Source, SourceOptions};
use crate::district::fold_key;
use crate::msisdn::Msisdn;
use crate::store::{
    Campaign, CampaignState, CarrierResult, CarrierStatus, HandedRow, ResultEffect, Store,
};
use crate::template::{Fields, Template};
use crate::text::for_terminal;

// ---------------------------------------------------------------------------------------------
// export
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct ExportSummary {
    campaign: String,
    carrier: String,
    file: String,
    format: &'static str,
    /// Rows moved to `handed` by this export (0 when exported before).
    newly_handed: u64,
    /// Rows in the file: every row ever handed to this carrier in this campaign.
    rows: usize,
    sha256: String,
}

pub async fn export(ctx: &Ctx, args: ExportArgs) -> Result<Exit> {
    // Where the file goes is checked before anything is handed over.
    let dir = args
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        bail!(
            "cannot write {}: the folder {} does not exist; create it or choose another --out",
            args.out.display(),
            dir.display()
        );
    }
    let store = ctx.store().await?;
    let mut c = find_campaign(&*store, &args.campaign).await?;
    let carrier = args.carrier.as_str();
    match c.state {
        CampaignState::Cancelled => bail!(
            "campaign {:?} was cancelled: nothing more goes out, by a gateway or by a carrier",
            c.name
        ),
        CampaignState::Draft => {
            // As `send` does: one delivery per list member, opted-out numbers suppressed.
            if let Some((queued, suppressed)) = store.launch(c.id).await? {
                store
                    .audit_append(
                        &ctx.operator,
                        "launch",
                        &format!("campaign {}", c.id),
                        &serde_json::json!({ "queued": queued, "suppressed": suppressed, "by": "campaign export", "carrier": carrier }),
                    )
                    .await?;
                eprintln!(
                    "launched {:?}: {queued} to send, {suppressed} suppressed (opted out)",
                    c.name
                );
            }
            c = find_campaign(&*store, &c.id.to_string()).await?;
        }
        CampaignState::Running | CampaignState::Paused | CampaignState::Completed => {}
    }
    let template = Template::parse(&c.message_text)
        .with_context(|| format!("the message of campaign {:?} cannot be read", c.name))?;
    let newly_handed = store.hand_over(c.id, carrier).await?;
    let share = store.handed_share(c.id, carrier).await?;
    // A personalised text needs its values; the rows stay handed (the carrier's, not
    // `send`'s) and the export can be run again once the values are there.
    let texts = texts(&c, &template, &share).map_err(|e| {
        anyhow::anyhow!(
            "{e}: no file was written ({} number(s) are handed to {carrier}); give those subscribers the missing values (import the list again with the column) and run the export again",
            share.len()
        )
    })?;
    write_share(&args.out, args.format, &share, &texts)?;
    let sha256 = crate::import::file_sha256(&args.out)?;
    let summary = ExportSummary {
        campaign: c.name.clone(),
        carrier: carrier.to_string(),
        file: args.out.display().to_string(),
        format: args.format.as_str(),
        newly_handed,
        rows: share.len(),
        sha256,
    };
    store
        .audit_append(
            &ctx.operator,
            "carrier_export",
            &format!("campaign {}", c.id),
            &serde_json::json!({
                "carrier": carrier,
                "file": summary.file,
                "format": summary.format,
                "sha256": summary.sha256,
                "rows": summary.rows,
                "newly_handed": newly_handed,
            }),
        )
        .await?;
    if args.json {
        print_json(&summary)?;
    } else {
        println!(
            "wrote {} number(s) of campaign {:?} for {carrier} to {} ({}); {} newly handed to the carrier, {} handed before",
            summary.rows,
            for_terminal(&c.name),
            for_terminal(&summary.file),
            summary.format,
            newly_handed,
            summary.rows as u64 - newly_handed
        );
        println!(
            "these numbers are the carrier's to send: `smscast send {}` sends only the other carriers' numbers. Take the carrier's results back with `smscast results import {} RESULTS.csv --carrier {carrier}`",
            for_terminal(&c.name),
            for_terminal(&c.name)
        );
    }
    Ok(Exit::Ok)
}

/// Each row's text exactly as it would be sent (a personalised text with its values).
fn texts(c: &Campaign, template: &Template, share: &[HandedRow]) -> Result<Vec<String>> {
    let fold = c.encoding == "GSM-7";
    if !template.is_personalised() {
        let plain = template
            .render(
                &Fields {
                    district: None,
                    attributes: None,
                },
                false,
            )
            .unwrap_or_else(|_| c.message_text.clone());
        return Ok(vec![plain; share.len()]);
    }
    let mut out = Vec::with_capacity(share.len());
    let mut missing: Vec<String> = Vec::new();
    for r in share {
        let attrs = crate::template::parse_attributes(r.attributes.as_deref());
        let fields = Fields {
            district: r.district.as_deref(),
            attributes: attrs.as_ref(),
        };
        match template.render(&fields, fold) {
            Ok(t) => out.push(t),
            Err(name) => {
                missing.push(format!(
                    "{} has no value for {{{name}}}",
                    Msisdn::from_canonical(&r.msisdn)
                        .map_or_else(|| "a number".into(), |m| m.masked())
                ));
            }
        }
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
        bail!(
            "{} number(s) cannot get their text ({}{})",
            missing.len(),
            shown.join("; "),
            if missing.len() > 5 { "; …" } else { "" }
        );
    }
    Ok(out)
}

/// Writes the file next to its place and renames it in: a file that exists is whole.
fn write_share(
    out: &Path,
    format: ExportFormat,
    share: &[HandedRow],
    texts: &[String],
) -> Result<()> {
    let mut tmp_name = out.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = out.with_file_name(tmp_name);
    let written = (|| -> Result<()> {
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("Cannot write {}", tmp.display()))?;
        let mut w = std::io::BufWriter::new(&file);
        match format {
            ExportFormat::Csv => {
                let mut csv = csv::Writer::from_writer(&mut w);
                csv.write_record(["msisdn", "text"])?;
                for (r, text) in share.iter().zip(texts) {
                    csv.write_record([r.msisdn.as_str(), text.as_str()])?;
                }
                csv.flush()?;
            }
            ExportFormat::Txt => {
                for r in share {
                    writeln!(w, "{}", r.msisdn)?;
                }
            }
        }
        w.flush()?;
        drop(w);
        file.sync_all()?;
        std::fs::rename(&tmp, out).with_context(|| format!("Cannot write {}", out.display()))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

// ---------------------------------------------------------------------------------------------
// results import
// ---------------------------------------------------------------------------------------------

/// Header names of a status column (after [`fold_key`]).
const STATUS_NAMES: &[&str] = &[
    "status",
    "state",
    "result",
    "dlr",
    "dlrstatus",
    "trangthai",
    "ketqua",
    "tinhtrang",
];
/// Header names of a time column (after [`fold_key`]).
const TIME_NAMES: &[&str] = &[
    "time",
    "datetime",
    "timestamp",
    "date",
    "donetime",
    "deliveredat",
    "deliverytime",
    "thoigian",
    "thoidiem",
    "ngaygio",
    "ngay",
];

/// A carrier's status word, in English, SMPP or Vietnamese (folded: `thành công` →
/// `thanhcong`).
pub fn status_of(word: &str) -> Option<CarrierStatus> {
    Some(match fold_key(word).as_str() {
        "delivered" | "delivrd" | "success" | "successful" | "succeeded" | "ok" | "done"
        | "thanhcong" | "dagui" | "dadenmay" | "danhan" | "guithanhcong" => {
            CarrierStatus::Delivered
        }
        "failed" | "fail" | "failure" | "undeliv" | "undeliverable" | "undelivered" | "rejectd"
        | "rejected" | "error" | "thatbai" | "khongthanhcong" | "loi" | "guiloi" | "guithatbai"
        | "khonggui" | "khongguiduoc" => CarrierStatus::Failed,
        "expired" | "expird" | "hethan" | "quahan" => CarrierStatus::Expired,
        "unknown" | "unknow" | "pending" | "enroute" | "accepted" | "acceptd" | "processing"
        | "sent" | "khongro" | "chuaro" | "chuaxacdinh" | "dangcho" | "choketqua" | "dangxuly" => {
            CarrierStatus::Unknown
        }
        _ => return None,
    })
}

/// A carrier's time: RFC 3339, or `YYYY-MM-DD[ HH:MM[:SS]]`, `DD/MM/YYYY[ HH:MM[:SS]]`,
/// `YYYYMMDDHHMMSS` in Vietnam time.
pub fn time_of(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    const WITH_TIME: [&str; 8] = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%d/%m/%Y %H:%M:%S",
        "%d/%m/%Y %H:%M",
        "%d-%m-%Y %H:%M:%S",
        "%Y/%m/%d %H:%M:%S",
        "%Y%m%d%H%M%S",
    ];
    let vn = crate::window::vietnam();
    for f in WITH_TIME {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return vn
                .from_local_datetime(&t)
                .single()
                .map(|t| t.timestamp_millis());
        }
    }
    for f in ["%Y-%m-%d", "%d/%m/%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return vn
                .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
                .single()
                .map(|t| t.timestamp_millis());
        }
    }
    None
}

/// A row that went nowhere, with its line and why.
#[derive(Debug, Serialize)]
struct Unmatched {
    line: u64,
    /// Masked (the full number is personal data).
    number: String,
    reason: String,
}

#[derive(Debug, Default, Serialize)]
struct ImportReport {
    campaign: String,
    carrier: String,
    file: String,
    sha256: String,
    encoding: String,
    delimiter: String,
    status_column: String,
    time_column: Option<String>,
    rows_read: u64,
    changed: u64,
    already_recorded: u64,
    /// By the status the file gives, over the rows that changed something.
    changed_to: std::collections::BTreeMap<String, u64>,
    unmatched: Vec<Unmatched>,
}

pub async fn import_results(ctx: &Ctx, args: ResultsImportArgs) -> Result<Exit> {
    std::fs::File::open(&args.file)
        .with_context(|| format!("Cannot read {}", args.file.display()))?;
    let store = ctx.store().await?;
    let c = find_campaign(&*store, &args.campaign).await?;
    let carrier = args.carrier.as_str();
    let mut report = read_results(&args, &c, carrier, &*store).await?;
    report.sha256 = crate::import::file_sha256(&args.file)?;
    store
        .audit_append(
            &ctx.operator,
            "carrier_results_import",
            &format!("campaign {}", c.id),
            &serde_json::json!({
                "carrier": carrier,
                "file": report.file,
                "sha256": report.sha256,
                "rows_read": report.rows_read,
                "changed": report.changed,
                "already_recorded": report.already_recorded,
                "unmatched": report.unmatched.len(),
                "changed_to": report.changed_to,
            }),
        )
        .await?;
    if args.json {
        print_json(&report)?;
    } else {
        print_report(&report);
    }
    Ok(Exit::Ok)
}

async fn read_results(
    args: &ResultsImportArgs,
    c: &Campaign,
    carrier: &str,
    store: &dyn Store,
) -> Result<ImportReport> {
    let mut source = Source::open(
        &args.file,
        &SourceOptions {
            phone_column: args.phone_column.clone(),
            unnamed_columns: true,
            ..SourceOptions::default()
        },
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let detected = source.detected().clone();
    // The phone column is found by the subscriber reader; status and time are among the
    // other columns: by header name (or --status-column / --time-column), else the status is
    // the first of them (and, in a file without a header, the time the next).
    let others = &detected.attribute_columns;
    let pick = |given: &Option<String>, names: &[&str], what: &str| -> Result<Option<usize>> {
        match given {
            Some(g) => {
                let key = fold_key(g);
                if let Ok(n) = g.trim().parse::<usize>() {
                    let name = format!("column {n}");
                    if let Some(i) = others.iter().position(|o| *o == name) {
                        return Ok(Some(i));
                    }
                }
                match others.iter().position(|o| fold_key(o) == key) {
                    Some(i) => Ok(Some(i)),
                    None => bail!(
                        "--{what}-column {g:?} is not a column of this file besides the phone column; columns are: {}",
                        others.join(", ")
                    ),
                }
            }
            None => Ok(others
                .iter()
                .position(|o| names.contains(&fold_key(o).as_str()))),
        }
    };
    let named_status = pick(&args.status_column, STATUS_NAMES, "status")?;
    let named_time = pick(&args.time_column, TIME_NAMES, "time")?;
    let free: Vec<usize> = (0..others.len())
        .filter(|i| Some(*i) != named_status && Some(*i) != named_time)
        .collect();
    let status_col = match named_status.or_else(|| free.first().copied()) {
        Some(i) => i,
        None => bail!(
            "{}: no status column found (columns: {}, {}): the file needs the number and the carrier's status of each message; name it with --status-column",
            args.file.display(),
            detected.phone_column,
            others.join(", ")
        ),
    };
    // Without a header the column after the status is the time; with one, only a column
    // named for it is.
    let time_col = named_time.or_else(|| {
        (!detected.has_header)
            .then(|| free.iter().copied().find(|&i| i != status_col))
            .flatten()
    });
    let status_name = others[status_col].clone();
    let time_name = time_col.map(|i| others[i].clone());

    let mut report = ImportReport {
        campaign: c.name.clone(),
        carrier: carrier.to_string(),
        file: args.file.display().to_string(),
        encoding: detected.encoding.to_string(),
        delimiter: detected.delimiter.to_string(),
        status_column: status_name.clone(),
        time_column: time_name.clone(),
        ..ImportReport::default()
    };
    let mut results = Vec::new();
    let mut lines = Vec::new();
    while let Some(next) = source.next_row() {
        let row = match next
            .map_err(|e| anyhow::anyhow!("{}: {e}; nothing was imported", args.file.display()))?
        {
            Ok(row) => row,
            Err(problem) => {
                report.rows_read += 1;
                report.unmatched.push(Unmatched {
                    line: problem.line,
                    number: String::new(),
                    reason: problem.reason,
                });
                continue;
            }
        };
        report.rows_read += 1;
        let value = |name: &str| {
            row.attributes
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.trim())
                .unwrap_or("")
        };
        let msisdn = match Msisdn::parse(row.phone) {
            Ok(p) => p.msisdn,
            Err(reject) => {
                report.unmatched.push(Unmatched {
                    line: row.line,
                    number: mask_raw(row.phone),
                    reason: format!("not a mobile number ({})", reject.explain()),
                });
                continue;
            }
        };
        let word = value(&status_name);
        let Some(status) = status_of(word) else {
            report.unmatched.push(Unmatched {
                line: row.line,
                number: msisdn.masked(),
                reason: if word.is_empty() {
                    "no status".to_string()
                } else {
                    format!(
                        "unknown status {:?} (known: delivered/DELIVRD/thành công/success, failed/UNDELIV/thất bại, expired/hết hạn, unknown/pending/chưa rõ)",
                        for_terminal(word)
                    )
                },
            });
            continue;
        };
        let at_ms = match time_name.as_deref().map(value).filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => match time_of(t) {
                Some(ms) => Some(ms),
                None => {
                    report.unmatched.push(Unmatched {
                        line: row.line,
                        number: msisdn.masked(),
                        reason: format!(
                            "time {:?} not understood (write YYYY-MM-DD HH:MM:SS or DD/MM/YYYY HH:MM:SS, Vietnam time)",
                            for_terminal(t)
                        ),
                    });
                    continue;
                }
            },
        };
        lines.push((row.line, msisdn.masked()));
        results.push(CarrierResult {
            msisdn: msisdn.as_str().to_string(),
            status,
            word: word.to_string(),
            at_ms,
        });
    }
    let effects = store
        .record_carrier_results(c.id, carrier, &results)
        .await?;
    for ((effect, result), (line, number)) in effects.into_iter().zip(&results).zip(lines) {
        match effect {
            ResultEffect::Changed => {
                report.changed += 1;
                *report
                    .changed_to
                    .entry(result.status.state().to_string())
                    .or_default() += 1;
            }
            ResultEffect::AlreadyRecorded => report.already_recorded += 1,
            ResultEffect::NotInShare => report.unmatched.push(Unmatched {
                line,
                number,
                reason: format!(
                    "not in {carrier}'s share of campaign {:?} (not exported to {carrier})",
                    c.name
                ),
            }),
            ResultEffect::Conflict(found) => report.unmatched.push(Unmatched {
                line,
                number,
                reason: format!(
                    "already recorded as {found}; the file says {}: the first final result stands",
                    result.status.state()
                ),
            }),
        }
    }
    report.unmatched.sort_by_key(|u| u.line);
    Ok(report)
}

/// A raw cell that is not a number, shown without its digits in the middle.
fn mask_raw(raw: &str) -> String {
    let chars: Vec<char> = raw.trim().chars().collect();
    if chars.len() <= 6 {
        return for_terminal(&chars.iter().collect::<String>()).into_owned();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    for_terminal(&format!("{head}****{tail}")).into_owned()
}

fn print_report(r: &ImportReport) {
    println!(
        "{}: {}, delimiter {:?}, status column {:?}{}",
        for_terminal(&r.file),
        r.encoding,
        r.delimiter,
        for_terminal(&r.status_column),
        r.time_column
            .as_ref()
            .map(|t| format!(", time column {:?}", for_terminal(t)))
            .unwrap_or_default()
    );
    let to: Vec<String> = r
        .changed_to
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    println!(
        "{} changed{}, {} already recorded, {} matching nothing (of {} rows)",
        r.changed,
        if to.is_empty() {
            String::new()
        } else {
            format!(" ({})", to.join(", "))
        },
        r.already_recorded,
        r.unmatched.len(),
        r.rows_read
    );
    for u in &r.unmatched {
        println!("  line {}: {} {}", u.line, u.number, u.reason);
    }
    if r.rows_read > 0 && r.changed + r.already_recorded == 0 {
        println!(
            "nothing in this file matched {}'s share of campaign {:?}: is it the right campaign and carrier? The share is made by `smscast campaign export {} --carrier {} --out FILE`",
            r.carrier,
            for_terminal(&r.campaign),
            for_terminal(&r.campaign),
            r.carrier
        );
    }
    println!(
        "see `smscast report {}` for the whole campaign",
        for_terminal(&r.campaign)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_in_english_smpp_and_vietnamese() {
        for (w, s) in [
            ("delivered", CarrierStatus::Delivered),
            ("DELIVRD", CarrierStatus::Delivered),
            ("Thành công", CarrierStatus::Delivered),
            ("success", CarrierStatus::Delivered),
            ("UNDELIV", CarrierStatus::Failed),
            ("thất bại", CarrierStatus::Failed),
            ("Failed", CarrierStatus::Failed),
            ("EXPIRED", CarrierStatus::Expired),
            ("pending", CarrierStatus::Unknown),
            ("Chưa rõ", CarrierStatus::Unknown),
        ] {
            assert_eq!(status_of(w), Some(s), "{w}");
        }
        assert_eq!(status_of("maybe"), None);
        assert_eq!(status_of(""), None);
    }

    #[test]
    fn carrier_times_in_vietnam_time() {
        let t = time_of("2026-11-30 10:00:00").unwrap();
        assert_eq!(t, time_of("30/11/2026 10:00:00").unwrap());
        assert_eq!(t, time_of("2026-11-30T03:00:00Z").unwrap());
        assert_eq!(t, time_of("20261130100000").unwrap());
        assert!(time_of("yesterday").is_none());
    }
}
