//! Subscriber import: stream a messy CSV, canonicalise every number, stage, commit once.
//!
//! Rows are read one at a time (constant memory), numbers parsed by [`crate::msisdn`],
//! districts matched by [`crate::district`], and good rows staged in batches inside one
//! transaction; the file's bad rows are counted by reason and written to `--rejects` with
//! their line numbers. A file-level problem aborts the transaction: nothing is imported.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::csv_source::{Detected, Source, SourceOptions};
use crate::district::{District, DistrictMatcher};
use crate::msisdn::{Fix, Msisdn};
use crate::store::{ImportCounts, ImportMeta, NewSubscriber, PreviousImport, Store};

const BATCH: usize = 10_000;

#[derive(Debug, Default, Serialize)]
pub struct ImportSummary {
    pub file: String,
    pub list: String,
    pub detected: Option<Detected>,
    pub rows_read: u64,
    #[serde(flatten)]
    pub counts: ImportCounts,
    pub legacy_converted: u64,
    pub leading_zero_restored: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub by_carrier: BTreeMap<String, u64>,
    pub by_district: BTreeMap<String, u64>,
    pub unknown_districts: BTreeMap<String, u64>,
    /// Set when this exact file was imported into this list before.
    pub previous_import: Option<PreviousImport>,
}

/// One rejected row, for `--rejects`.
#[derive(Serialize)]
struct RejectRow<'a> {
    line: u64,
    raw: &'a str,
    reason: &'a str,
    explanation: &'a str,
}

pub struct ImportRequest<'a> {
    pub file: &'a Path,
    pub list: &'a str,
    pub options: SourceOptions,
    pub rejects: Option<&'a Path>,
    pub operator: &'a str,
    /// Called with (rows read, bytes read, total bytes) as the import goes.
    pub progress: &'a (dyn Fn(u64, u64, u64) + Sync),
}

/// Imports one file into one list, in one transaction. On any error nothing is imported and
/// no rejects file is left behind.
pub async fn import(store: &dyn Store, req: ImportRequest<'_>) -> Result<ImportSummary> {
    let rejects = req.rejects;
    let result = run(store, req).await;
    if result.is_err()
        && let Some(path) = rejects
    {
        let _ = std::fs::remove_file(partial(path));
    }
    result
}

/// The rejects file is written here, then renamed into place once the import committed.
fn partial(rejects: &Path) -> std::path::PathBuf {
    let mut name = rejects.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    rejects.with_file_name(name)
}

async fn run(store: &dyn Store, req: ImportRequest<'_>) -> Result<ImportSummary> {
    let total_bytes = std::fs::metadata(req.file)
        .with_context(|| format!("Cannot read {}", req.file.display()))?
        .len();
    let sha256 = file_sha256(req.file)?;
    let mut summary = ImportSummary {
        file: req.file.display().to_string(),
        list: req.list.to_string(),
        previous_import: store.previous_import(req.list, &sha256).await?,
        ..Default::default()
    };
    let mut source = Source::open(req.file, &req.options)
        .with_context(|| format!("Cannot import {}", req.file.display()))?;
    summary.detected = Some(source.detected().clone());
    let mut rejects = match req.rejects {
        Some(p) => Some(
            rejects_writer(&partial(p))
                .with_context(|| format!("Cannot write the rejects file {}", p.display()))?,
        ),
        None => None,
    };
    let districts = DistrictMatcher::long_an();
    let mut session = store.begin_import().await?;
    let mut batch: Vec<NewSubscriber> = Vec::with_capacity(BATCH);
    let mut reject =
        |summary: &mut ImportSummary, line: u64, raw: &str, code: &str, why: &str| -> Result<()> {
            summary.rejected += 1;
            *summary
                .rejected_by_reason
                .entry(code.to_string())
                .or_default() += 1;
            if let Some(w) = rejects.as_mut() {
                w.serialize(RejectRow {
                    line,
                    raw,
                    reason: code,
                    explanation: why,
                })?;
            }
            Ok(())
        };
    while let Some(item) = source.next_row() {
        let row = match item.with_context(|| {
            format!("Cannot import {}: nothing was imported", req.file.display())
        })? {
            Ok(row) => row,
            Err(problem) => {
                summary.rows_read += 1;
                reject(
                    &mut summary,
                    problem.line,
                    &problem.raw,
                    "malformed_row",
                    &problem.reason,
                )?;
                continue;
            }
        };
        summary.rows_read += 1;
        let parsed = match Msisdn::parse(row.phone) {
            Ok(p) => p,
            Err(r) => {
                reject(&mut summary, row.line, row.phone, r.code(), r.explain())?;
                continue;
            }
        };
        match parsed.fix {
            Some(Fix::LegacyPrefix) => summary.legacy_converted += 1,
            Some(Fix::LeadingZeroRestored) => summary.leading_zero_restored += 1,
            None => {}
        }
        let msisdn = parsed.msisdn;
        let carrier = msisdn.carrier();
        *summary
            .by_carrier
            .entry(carrier.as_str().to_string())
            .or_default() += 1;
        let district = match row.district.and_then(|d| districts.resolve(d)) {
            Some(District::Known(name)) => Some(name.to_string()),
            Some(District::Unknown(name)) => {
                *summary.unknown_districts.entry(name.clone()).or_default() += 1;
                Some(name)
            }
            None => None,
        };
        *summary
            .by_district
            .entry(district.clone().unwrap_or_else(|| "(none)".into()))
            .or_default() += 1;
        let attributes = (!row.attributes.is_empty()).then(|| {
            let map: serde_json::Map<String, serde_json::Value> = row
                .attributes
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_string(),
                        serde_json::Value::String((*v).to_string()),
                    )
                })
                .collect();
            serde_json::Value::Object(map).to_string()
        });
        batch.push(NewSubscriber {
            line: row.line,
            msisdn: msisdn.as_str().to_string(),
            carrier: carrier.as_str(),
            district,
            attributes,
        });
        if batch.len() >= BATCH {
            session.stage(&batch).await?;
            batch.clear();
            (req.progress)(summary.rows_read, source.bytes_read(), total_bytes);
        }
    }
    if summary.rows_read == 0 {
        anyhow::bail!(
            "Cannot import {}: the file has a header row but no data rows; nothing was imported. Check that the right sheet or file was exported",
            req.file.display()
        );
    }
    session.stage(&batch).await?;
    (req.progress)(summary.rows_read, total_bytes, total_bytes);
    if let Some(w) = rejects.as_mut() {
        w.flush()?;
    }
    drop(rejects);
    let meta = ImportMeta {
        list: req.list.to_string(),
        file_name: file_name(req.file),
        sha256,
        rows_read: summary.rows_read,
        rejected: summary.rejected,
        legacy_converted: summary.legacy_converted,
        operator: req.operator.to_string(),
    };
    summary.counts = session.commit(&meta).await?;
    if let Some(p) = req.rejects {
        std::fs::rename(partial(p), p)
            .with_context(|| format!("Cannot write the rejects file {}", p.display()))?;
    }
    Ok(summary)
}

/// The rejects file, with its header row even when no row is rejected.
fn rejects_writer(path: &Path) -> Result<csv::Writer<std::fs::File>> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_path(path)?;
    w.write_record(["line", "raw", "reason", "explanation"])?;
    Ok(w)
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn file_sha256(path: &Path) -> Result<String> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("Cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
