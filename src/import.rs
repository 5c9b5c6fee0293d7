//! Subscriber import: stream a messy CSV, canonicalise every number, sort, merge, commit
//! once.
//!
//! A blocking thread reads the file row by row, parses numbers ([`crate::msisdn`]), matches
//! districts ([`crate::district`]), counts and writes `--rejects`, and keeps the good rows in
//! an external sort ([`crate::import_sort`]: bounded memory, spilling to temporary files
//! past its budget). Once the whole file has been read, the rows come out in number order,
//! one per number, over a small bounded channel to the store, which appends them to the
//! list inside one transaction. A file-level problem (or any error) drops the transaction:
//! nothing is imported and no rejects file is left behind.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::csv_source::{Detected, Row, Source, SourceOptions};
use crate::district::{District, DistrictMatcher};
use crate::import_sort::SortedRows;
use crate::msisdn::{Carrier, Fix, Msisdn};
use crate::store::{ImportCounts, ImportMeta, NewSubscriber, PreviousImport, Store};

/// Rows per batch handed to the store (a multiple of the store's statement chunk).
const BATCH: usize = 16_384;
/// Batches merged ahead of the store (bounds memory: about 2 × BATCH rows).
const BATCHES_AHEAD: usize = 2;
/// Rows read between two progress reports.
const PROGRESS_EVERY: u64 = 65_536;
/// Distinct raw district spellings remembered (a column of addresses must not grow memory).
const DISTRICT_CACHE: usize = 4096;

/// What an import did. Every row read is accounted for exactly once:
/// `rows_read = rejected + imported + already_present + duplicates_in_file`. The file's
/// distinct numbers (`imported + already_present`: a repeated row counts once, with the
/// district of its first row, as stored) are split by carrier in `by_carrier` and by district
/// in `by_district`.
#[derive(Debug, Default, Serialize)]
pub struct ImportSummary {
    pub file: String,
    pub list: String,
    /// `--carrier`: the carrier every number of the file was filed under (unless its row
    /// names another in a carrier column).
    pub carrier: Option<Carrier>,
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
    /// The carrier the list comes from (`--carrier`): every number is filed under it, the
    /// prefix notwithstanding (a ported number keeps its original carrier's prefix).
    pub carrier: Option<Carrier>,
    pub rejects: Option<&'a Path>,
    /// Bytes of rows sorted in memory before a run is spilled to a temporary file.
    pub sort_memory: usize,
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
fn partial(rejects: &Path) -> PathBuf {
    let mut name = rejects.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    rejects.with_file_name(name)
}

/// What the reader thread tells the store side.
enum Message {
    /// How far the reader got (rows, bytes).
    Progress(u64, u64),
    /// Good rows in number order, one per number.
    Rows(Vec<NewSubscriber>),
}

async fn run(store: &dyn Store, req: ImportRequest<'_>) -> Result<ImportSummary> {
    let total_bytes = std::fs::metadata(req.file)
        .with_context(|| format!("Cannot read {}", req.file.display()))?
        .len();
    let sha256 = file_sha256(req.file)?;
    let previous_import = store.previous_import(req.list, &sha256).await?;
    let source = Source::open(req.file, &req.options)
        .with_context(|| format!("Cannot import {}", req.file.display()))?;
    let rejects = match req.rejects {
        Some(p) => Some(
            rejects_writer(&partial(p))
                .with_context(|| format!("Cannot write the rejects file {}", p.display()))?,
        ),
        None => None,
    };
    let mut session = store.begin_import(req.list).await?;

    let (tx, mut rx) = mpsc::channel::<Message>(BATCHES_AHEAD);
    let file = req.file.to_path_buf();
    let sort_memory = req.sort_memory;
    let carrier = req.carrier;
    let reader = tokio::task::spawn_blocking(move || {
        Reader::new(source, rejects, sort_memory, carrier).run(&file, tx)
    });
    while let Some(message) = rx.recv().await {
        match message {
            Message::Progress(rows, bytes) => (req.progress)(rows, bytes, total_bytes),
            Message::Rows(rows) => session.stage(&rows).await?,
        }
    }
    let read = reader.await.context("the file reader stopped")??;
    (req.progress)(read.rows_read, total_bytes, total_bytes);

    let meta = ImportMeta {
        list: req.list.to_string(),
        file_name: file_name(req.file),
        sha256,
        rows_read: read.rows_read,
        rejected: read.rejected,
        legacy_converted: read.legacy_converted,
        duplicates_in_file: read.duplicates_in_file,
        operator: req.operator.to_string(),
    };
    let counts = session.commit(&meta).await?;
    if let Some(p) = req.rejects {
        std::fs::rename(partial(p), p)
            .with_context(|| format!("Cannot write the rejects file {}", p.display()))?;
    }
    Ok(ImportSummary {
        file: req.file.display().to_string(),
        list: req.list.to_string(),
        carrier: req.carrier,
        detected: Some(read.detected),
        rows_read: read.rows_read,
        counts,
        legacy_converted: read.legacy_converted,
        leading_zero_restored: read.leading_zero_restored,
        rejected: read.rejected,
        rejected_by_reason: read
            .rejected_by_reason
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect(),
        by_carrier: read
            .by_carrier
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect(),
        by_district: read.by_district,
        unknown_districts: read.unknown_districts,
        previous_import,
    })
}

/// What the reader counted.
struct ReadCounts {
    detected: Detected,
    rows_read: u64,
    /// Valid rows whose number came earlier in the file.
    duplicates_in_file: u64,
    rejected: u64,
    legacy_converted: u64,
    leading_zero_restored: u64,
    rejected_by_reason: BTreeMap<&'static str, u64>,
    by_carrier: BTreeMap<&'static str, u64>,
    by_district: BTreeMap<String, u64>,
    unknown_districts: BTreeMap<String, u64>,
}

/// A district spelling resolved once: the name to store, and its counter.
#[derive(Clone)]
struct Resolved {
    name: Arc<str>,
    known: bool,
}

/// The blocking half: reads, parses, counts, writes rejects, sends batches.
struct Reader {
    source: Source<std::fs::File>,
    rejects: Option<csv::Writer<std::fs::File>>,
    districts: DistrictMatcher,
    /// Raw spelling → resolved name (bounded by `DISTRICT_CACHE`).
    spellings: HashMap<String, Option<Resolved>>,
    /// Every resolved district name seen, and whether it is a known district.
    district_known: HashMap<Arc<str>, bool>,
    /// Distinct numbers per resolved district name ("(none)" for no district), counted as
    /// the sorted rows leave for the store: one per number.
    district_rows: HashMap<Arc<str>, u64>,
    none: Arc<str>,
    counts: ReadCounts,
    attributes: String,
    sorted: SortedRows,
    /// `--carrier`.
    carrier: Option<Carrier>,
}

impl Reader {
    fn new(
        source: Source<std::fs::File>,
        rejects: Option<csv::Writer<std::fs::File>>,
        sort_memory: usize,
        carrier: Option<Carrier>,
    ) -> Self {
        let detected = source.detected().clone();
        Reader {
            source,
            rejects,
            districts: DistrictMatcher::long_an(),
            spellings: HashMap::new(),
            district_known: HashMap::new(),
            district_rows: HashMap::new(),
            none: Arc::from("(none)"),
            counts: ReadCounts {
                detected,
                rows_read: 0,
                duplicates_in_file: 0,
                rejected: 0,
                legacy_converted: 0,
                leading_zero_restored: 0,
                rejected_by_reason: BTreeMap::new(),
                by_carrier: BTreeMap::new(),
                by_district: BTreeMap::new(),
                unknown_districts: BTreeMap::new(),
            },
            attributes: String::new(),
            sorted: SortedRows::new(sort_memory),
            carrier,
        }
    }

    fn run(mut self, file: &Path, tx: mpsc::Sender<Message>) -> Result<ReadCounts> {
        loop {
            if self.counts.rows_read > 0 && self.counts.rows_read.is_multiple_of(PROGRESS_EVERY) {
                let at = Message::Progress(self.counts.rows_read, self.source.bytes_read());
                if tx.blocking_send(at).is_err() {
                    // The store side stopped (it reports its own error).
                    return Ok(self.finish());
                }
            }
            let item = match self.source.next_row() {
                None => break,
                Some(item) => item.with_context(|| {
                    format!("Cannot import {}: nothing was imported", file.display())
                })?,
            };
            self.counts.rows_read += 1;
            let row = match item {
                Ok(row) => row,
                Err(problem) => {
                    reject(
                        &mut self.counts,
                        self.rejects.as_mut(),
                        problem.line,
                        &problem.raw,
                        "malformed_row",
                        &problem.reason,
                    )?;
                    continue;
                }
            };
            let parsed = match Msisdn::parse(row.phone) {
                Ok(p) => p,
                Err(r) => {
                    reject(
                        &mut self.counts,
                        self.rejects.as_mut(),
                        row.line,
                        row.phone,
                        r.code(),
                        r.explain(),
                    )?;
                    continue;
                }
            };
            // A carrier column names the row's carrier (over `--carrier`); a value that names
            // no carrier rejects the row rather than filing the number under a guess.
            let carrier = match row.carrier {
                None => self.carrier,
                Some(written) => match Carrier::from_source(written) {
                    Some(c) => Some(c),
                    None => {
                        let known = Carrier::ALL.map(|c| c.as_str());
                        let hint = crate::commands::did_you_mean(
                            &written.to_lowercase(),
                            known.iter().copied(),
                        )
                        .map(|s| format!(" (did you mean {s}?)"))
                        .unwrap_or_default();
                        reject(
                            &mut self.counts,
                            self.rejects.as_mut(),
                            row.line,
                            written,
                            "unknown_carrier",
                            &format!(
                                "the carrier column says {written:?}, which is not a carrier{hint}; known carriers: {}",
                                known.join(", ")
                            ),
                        )?;
                        continue;
                    }
                },
            };
            match parsed.fix {
                Some(Fix::LegacyPrefix) => self.counts.legacy_converted += 1,
                Some(Fix::LeadingZeroRestored) => self.counts.leading_zero_restored += 1,
                None => {}
            }
            let msisdn = parsed.msisdn;
            let district = match row.district {
                Some(raw) => resolve(&self.districts, &mut self.spellings, raw),
                None => None,
            };
            if let Some(d) = &district
                && !self.district_known.contains_key(&d.name)
            {
                self.district_known.insert(Arc::clone(&d.name), d.known);
            }
            let attributes = attributes_json(&row, &mut self.attributes);
            self.sorted.push(
                msisdn,
                carrier,
                district.as_ref().map(|d| &d.name),
                attributes.as_deref(),
            )?;
        }
        if self.counts.rows_read == 0 {
            anyhow::bail!(
                "Cannot import {}: the file has a header row but no data rows; nothing was imported. Check that the right sheet or file was exported",
                file.display()
            );
        }
        if let Some(w) = self.rejects.as_mut() {
            w.flush()?;
        }
        let sorted = std::mem::replace(&mut self.sorted, SortedRows::new(0));
        // Carriers and districts are counted here, one per number as stored: a repeated row
        // would otherwise count twice in the summary and once in the list.
        let (by_carrier, district_rows, none) = (
            &mut self.counts.by_carrier,
            &mut self.district_rows,
            &self.none,
        );
        let merged = sorted.finish(BATCH, |rows| {
            for r in &rows {
                *by_carrier.entry(r.carrier).or_default() += 1;
                let key = r.district.as_ref().unwrap_or(none);
                match district_rows.get_mut(key) {
                    Some(n) => *n += 1,
                    None => {
                        district_rows.insert(Arc::clone(key), 1);
                    }
                }
            }
            tx.blocking_send(Message::Rows(rows)).is_ok()
        })?;
        self.counts.duplicates_in_file = merged.duplicates;
        Ok(self.finish())
    }

    fn finish(mut self) -> ReadCounts {
        for (name, n) in self.district_rows.drain() {
            if self.district_known.get(&name) == Some(&false) {
                self.counts.unknown_districts.insert(name.to_string(), n);
            }
            self.counts.by_district.insert(name.to_string(), n);
        }
        self.counts
    }
}

/// A raw district value resolved through the bounded spelling cache.
fn resolve(
    matcher: &DistrictMatcher,
    spellings: &mut HashMap<String, Option<Resolved>>,
    raw: &str,
) -> Option<Resolved> {
    if let Some(hit) = spellings.get(raw) {
        return hit.clone();
    }
    let resolved = matcher.resolve(raw).map(|d| match d {
        District::Known(name) => Resolved {
            name: Arc::from(name),
            known: true,
        },
        District::Unknown(name) => Resolved {
            name: Arc::from(name),
            known: false,
        },
    });
    if spellings.len() < DISTRICT_CACHE {
        spellings.insert(raw.to_owned(), resolved.clone());
    }
    resolved
}

/// The row's extra columns as a JSON object, or `None` when it has none.
fn attributes_json(row: &Row<'_>, buf: &mut String) -> Option<String> {
    if row.attributes.is_empty() {
        return None;
    }
    buf.clear();
    buf.push('{');
    for (i, (k, v)) in row.attributes.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        push_json_string(buf, k);
        buf.push(':');
        push_json_string(buf, v);
    }
    buf.push('}');
    Some(buf.clone())
}

fn push_json_string(buf: &mut String, s: &str) {
    use std::fmt::Write;
    buf.push('"');
    for c in s.chars() {
        match c {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            '\t' => buf.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(buf, "\\u{:04x}", c as u32);
            }
            c => buf.push(c),
        }
    }
    buf.push('"');
}

fn reject(
    counts: &mut ReadCounts,
    writer: Option<&mut csv::Writer<std::fs::File>>,
    line: u64,
    raw: &str,
    code: &'static str,
    why: &str,
) -> Result<()> {
    counts.rejected += 1;
    *counts.rejected_by_reason.entry(code).or_default() += 1;
    if let Some(w) = writer {
        // The rejects file is opened in a spreadsheet: a raw value such as `=cmd|…` must not
        // run there.
        use crate::text::spreadsheet_safe;
        w.serialize(RejectRow {
            line,
            raw: &spreadsheet_safe(raw),
            reason: code,
            explanation: &spreadsheet_safe(why),
        })?;
    }
    Ok(())
}

/// The rejects file, with its header row even when no row is rejected. Cells a spreadsheet
/// would read as a formula (`=`, `+`, `-`, `@`, TAB, CR first) start with `'`.
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

pub(crate) fn file_sha256(path: &Path) -> Result<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_valid_json_objects() {
        let row = Row {
            line: 2,
            phone: "0912345678",
            district: None,
            carrier: None,
            attributes: vec![
                ("Họ tên", "Nguyễn \"Văn\" A"),
                ("note", "a\\b\nc\t\u{1}"),
                ("", ""),
            ],
        };
        let mut buf = String::new();
        let json = attributes_json(&row, &mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"Họ tên": "Nguyễn \"Văn\" A", "note": "a\\b\nc\t\u{1}", "": ""})
        );
        let none = Row {
            attributes: vec![],
            ..row
        };
        assert_eq!(attributes_json(&none, &mut buf), None);
    }
}
