//! Streaming reader of messy subscriber CSV files.
//!
//! [`Source`] reads a list of subscribers row by row in constant memory, whatever
//! the file size. From the first 64 KiB (kept and replayed, never lost) it
//! detects:
//!
//! * the encoding: UTF-8 with or without BOM, UTF-16LE/BE with BOM (Excel
//!   "Unicode text"), transcoded while streaming. Binary files (NUL bytes, an
//!   `.xlsx`/zip or `.xls` signature) and invalid UTF-8 are file-level errors
//!   that say how to fix the file;
//! * the delimiter among `,` `;` TAB `|` (the one giving the most consistent
//!   field count > 1; Excel's `sep=X` first line is honoured); a single column
//!   is fine;
//! * whether the first row is a header, and which columns hold the phone number
//!   and the district (by header name in English or Vietnamese, by the
//!   `--phone-column` / `--district-column` overrides, or from the data), and
//!   the carrier, when a column names it (`carrier`, `nhà mạng`, or
//!   `--carrier-column`).
//!
//! Rows are parsed by the `csv` crate into one reused [`csv::ByteRecord`]; the
//! returned [`Row`] borrows from it. Line numbers are physical line numbers of
//! the file (LF, CRLF and lone CR each end a line; quoted multi-line fields
//! and skipped blank lines are counted), tracked by this module because
//! `csv::Position::line()` is off after CRLF endings and blank lines.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};

use crate::district::fold_key;

/// How much of the file is examined to detect encoding, delimiter and header.
const SNIFF_LIMIT: usize = 64 * 1024;
/// How many rows of that prefix are examined.
const SNIFF_RECORDS: usize = 50;
/// Read buffer of the CSV parser.
const READ_BUFFER: usize = 64 * 1024;
/// Candidate delimiters, in order of preference when otherwise tied.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Header names of a phone column (after [`fold_key`]). The generic "number" /
/// "số" come last: a column with a specific name wins over them.
const PHONE_NAMES: &[&str] = &[
    "phone",
    "phonenumber",
    "mobile",
    "msisdn",
    "tel",
    "telephone",
    "sdt",
    "sodienthoai",
    "sodt",
    "dienthoai",
    "didong",
    "sodidong",
    "sothuebao",
    "thuebao",
    "isdn",
];
const PHONE_NAMES_WEAK: &[&str] = &["number", "so"];
/// Header names of a district column (after [`fold_key`]).
const DISTRICT_NAMES: &[&str] = &[
    "district",
    "huyen",
    "quan",
    "quanhuyen",
    "huyenthixa",
    "diaban",
    "donvi",
    "town",
    "county",
];
/// Header names of a carrier column (after [`fold_key`]): the carrier a list says a
/// number belongs to (numbers ported to another carrier keep their prefix).
const CARRIER_NAMES: &[&str] = &["carrier", "nhamang", "mangdidong", "network"];
/// Other usual header names: they only help decide that the first row is a
/// header (so that a file without a phone column gets a helpful error).
const OTHER_HEADER_NAMES: &[&str] = &[
    "name", "fullname", "ten", "hoten", "hovaten", "address", "diachi", "email", "stt", "id",
    "ghichu", "note", "notes", "gioitinh", "ngaysinh", "xa", "phuong", "xaphuong", "tinh", "cmnd",
    "cccd",
];

/// Column choices given on the command line (`--phone-column`,
/// `--district-column`): a header name (compared after [`fold_key`]) or a
/// 1-based column number.
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    pub phone_column: Option<String>,
    pub district_column: Option<String>,
    pub carrier_column: Option<String>,
    /// In a file without a header, keep every other column too, as attributes named
    /// `column N` (a carrier's result file: number, status, time). Subscriber lists leave it
    /// off: unnamed columns of a list are not stored.
    pub unnamed_columns: bool,
}

/// What was detected, for the summary and for error messages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Detected {
    /// "UTF-8", "UTF-8 (BOM)", "UTF-16LE (BOM)" or "UTF-16BE (BOM)".
    pub encoding: &'static str,
    pub delimiter: char,
    pub has_header: bool,
    /// Header name, or "column N" (1-based) without a header.
    pub phone_column: String,
    pub district_column: Option<String>,
    pub carrier_column: Option<String>,
    /// Names of the other header columns, in file order (empty without a header).
    pub attribute_columns: Vec<String>,
}

/// One data row. Values are trimmed; `district` is `None` when there is no
/// district column or the value is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row<'a> {
    /// 1-based physical line number where the record starts (header is line 1).
    pub line: u64,
    pub phone: &'a str,
    pub district: Option<&'a str>,
    /// The carrier column's value, as written; `None` without one or when empty.
    pub carrier: Option<&'a str>,
    /// Other columns present in this row: (header name, value). Empty without a header.
    pub attributes: Vec<(&'a str, &'a str)>,
}

/// A file-level problem: the import cannot go on. Each message says what is
/// wrong and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "the file is empty: it has no rows with data; check that the right sheet or file was exported"
    )]
    Empty,
    #[error(
        "the file is not text (found {found}: is it an .xlsx? Save it as CSV UTF-8 from Excel: File > Save As > \"CSV UTF-8 (Comma delimited)\")"
    )]
    NotText { found: String },
    #[error(
        "invalid UTF-8 at byte {byte} (line {line}): the file is probably in a legacy encoding such as Windows-1258 or TCVN3; save it as \"CSV UTF-8\", or UTF-16 \"Unicode text\", from Excel"
    )]
    InvalidUtf8 { line: u64, byte: u64 },
    #[error(
        "no phone column found among headers [{}]: name it with --phone-column NAME or --phone-column NUMBER",
        headers.join(", ")
    )]
    NoPhoneColumn { headers: Vec<String> },
    #[error(
        "no phone column found: the file has no header row and no column looks like phone numbers in its first {rows} rows; give its number with --phone-column N"
    )]
    NoPhoneData { rows: usize },
    #[error(
        "{option} '{value}' is not a column of this file; columns are: {} (or give a column number from 1 to {})",
        columns.join(", "),
        columns.len()
    )]
    UnknownColumn {
        option: &'static str,
        value: String,
        columns: Vec<String>,
    },
    #[error(
        "{option} '{value}': this file has no header row, so its columns have no names; give a column number from 1 to {columns}"
    )]
    NoHeaderForName {
        option: &'static str,
        value: String,
        columns: usize,
    },
    #[error(
        "--phone-column and --district-column both designate column {column}; give two different columns"
    )]
    SameColumn { column: usize },
    #[error(
        "--carrier-column designates column {column}, which is already the {role} column; give another column"
    )]
    CarrierColumnTaken { column: usize, role: &'static str },
    #[error(
        "the file is not CSV (found {found}); open it in Excel and save it as \"CSV UTF-8 (Comma delimited)\""
    )]
    NotCsv { found: String },
    #[error(
        "a quoted field in the row on line {line} is never closed, so it runs to the end of the file and would swallow every row after it; remove that stray \" (or write it as \"\") and import again"
    )]
    UnclosedQuote { line: u64 },
    #[error("malformed CSV: {0}; save the file again as CSV from a spreadsheet")]
    Malformed(String),
    #[error("cannot read the file: {0}")]
    Io(#[from] io::Error),
}

/// A per-row problem that does not stop the import (e.g. the row has fewer
/// fields than the phone column index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    pub line: u64,
    pub reason: String,
    /// The row's fields joined by the delimiter (lossy UTF-8).
    pub raw: String,
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.reason, self.raw)
    }
}

/// A streaming reader of a subscriber CSV file.
pub struct Source<R> {
    csv: csv::Reader<LineTracker<Input<R>>>,
    record: csv::ByteRecord,
    detected: Detected,
    /// Role of each column by index; columns past the end are ignored.
    roles: Vec<Role>,
    phone_index: usize,
    /// Non-blank records still to skip (`sep=` line, header).
    to_skip: usize,
    /// Bytes before the CSV stream (UTF-8 BOM), for byte offsets in errors.
    bom_len: u64,
    raw_count: Arc<AtomicU64>,
    done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Ignore,
    Phone,
    District,
    Carrier,
    Attribute(usize),
}

impl Source<File> {
    /// Opens a file and detects its layout.
    pub fn open(path: &Path, opts: &SourceOptions) -> Result<Self, SourceError> {
        Self::new(File::open(path)?, opts)
    }
}

impl<R: Read> Source<R> {
    /// Sniffs encoding, delimiter and header from the first 64 KiB (kept in
    /// memory and replayed, so nothing is lost) and chooses the columns.
    pub fn new(mut reader: R, opts: &SourceOptions) -> Result<Self, SourceError> {
        let mut sniff = Vec::with_capacity(SNIFF_LIMIT);
        (&mut reader)
            .take(SNIFF_LIMIT as u64)
            .read_to_end(&mut sniff)?;
        let eof = sniff.len() < SNIFF_LIMIT;

        let (encoding, bom_len) = if sniff.starts_with(b"\xEF\xBB\xBF") {
            ("UTF-8 (BOM)", 3)
        } else if sniff.starts_with(b"\xFF\xFE") {
            ("UTF-16LE (BOM)", 2)
        } else if sniff.starts_with(b"\xFE\xFF") {
            ("UTF-16BE (BOM)", 2)
        } else {
            ("UTF-8", 0)
        };
        let utf16 = encoding.starts_with("UTF-16");

        let text: Cow<'_, [u8]> = if utf16 {
            let enc = if encoding == "UTF-16LE (BOM)" {
                encoding_rs::UTF_16LE
            } else {
                encoding_rs::UTF_16BE
            };
            let (decoded, _) = enc.decode_without_bom_handling(&sniff[bom_len..]);
            match decoded {
                Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            }
        } else {
            let body = &sniff[bom_len..];
            check_text(body, eof, bom_len as u64)?;
            Cow::Borrowed(body)
        };
        if let Some(found) = markup(&text) {
            return Err(SourceError::NotCsv { found });
        }
        let layout = sniff_layout(&text, eof, opts)?;
        drop(text);

        let raw_count = Arc::new(AtomicU64::new(0));
        let prefixed = Prefixed {
            prefix: sniff,
            pos: if utf16 { 0 } else { bom_len },
            inner: reader,
            count: Arc::clone(&raw_count),
        };
        if !utf16 {
            raw_count.store(bom_len as u64, Ordering::Relaxed);
        }
        let input = if utf16 {
            Input::Utf16(
                DecodeReaderBytesBuilder::new()
                    .bom_sniffing(true)
                    .strip_bom(true)
                    .build(prefixed),
            )
        } else {
            Input::Plain(prefixed)
        };
        let csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(layout.delimiter)
            .buffer_capacity(READ_BUFFER)
            .from_reader(LineTracker::new(input));

        let detected = Detected {
            encoding,
            delimiter: char::from(layout.delimiter),
            has_header: layout.has_header,
            phone_column: layout.phone_name,
            district_column: layout.district_name,
            carrier_column: layout.carrier_name,
            attribute_columns: layout.attribute_names,
        };
        Ok(Source {
            csv,
            record: csv::ByteRecord::new(),
            detected,
            roles: layout.roles,
            phone_index: layout.phone_index,
            to_skip: usize::from(layout.sep_line) + usize::from(layout.has_header),
            bom_len: if utf16 { 0 } else { bom_len as u64 },
            raw_count,
            done: false,
        })
    }

    /// What was detected.
    pub fn detected(&self) -> &Detected {
        &self.detected
    }

    /// Raw bytes of the file consumed so far (for a progress bar against the
    /// file size; read-ahead makes it run up to ~64 KiB early).
    pub fn bytes_read(&self) -> u64 {
        self.raw_count.load(Ordering::Relaxed)
    }

    /// Next row, or a per-row problem, or a file-level error (e.g. invalid
    /// UTF-8 mid-file: nothing more is returned after it). `None` at EOF.
    /// Blank rows (every field empty or ASCII whitespace) are skipped silently.
    pub fn next_row(&mut self) -> Option<Result<Result<Row<'_>, RowProblem>, SourceError>> {
        if self.done {
            return None;
        }
        loop {
            match self.csv.read_byte_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(csv_error(e)));
                }
            }
            if is_blank(&self.record) {
                continue;
            }
            if self.to_skip > 0 {
                self.to_skip -= 1;
                continue;
            }
            break;
        }
        let record_pos = self.record.position().map_or(0, csv::Position::byte);
        let (line, start) = self.csv.get_mut().line_at(record_pos);
        if self.unclosed_quote() {
            self.done = true;
            return Some(Err(SourceError::UnclosedQuote { line }));
        }

        if self.record.as_slice().contains(&0) {
            self.done = true;
            return Some(Err(SourceError::NotText {
                found: format!("NUL bytes (binary data) on line {line}"),
            }));
        }

        let mut phone = None;
        let mut district = None;
        let mut carrier = None;
        let mut attributes = Vec::with_capacity(self.detected.attribute_columns.len());
        for (i, field) in self.record.iter().enumerate() {
            let value = match std::str::from_utf8(field) {
                Ok(v) => v.trim(),
                Err(e) => {
                    self.done = true;
                    return Some(Err(utf8_error(
                        &self.record,
                        i,
                        e.valid_up_to(),
                        line,
                        self.bom_len + start,
                    )));
                }
            };
            match self.roles.get(i) {
                Some(Role::Phone) => phone = Some(value),
                Some(Role::District) if !value.is_empty() => district = Some(value),
                Some(Role::Carrier) if !value.is_empty() => carrier = Some(value),
                Some(Role::Attribute(k)) => {
                    attributes.push((self.detected.attribute_columns[*k].as_str(), value));
                }
                _ => {}
            }
        }
        Some(Ok(match phone {
            Some(phone) => Ok(Row {
                line,
                phone,
                district,
                carrier,
                attributes,
            }),
            None => Err(RowProblem {
                line,
                reason: format!(
                    "the row has {} field{} but the phone column ({}) is column {}",
                    self.record.len(),
                    if self.record.len() == 1 { "" } else { "s" },
                    self.detected.phone_column,
                    self.phone_index + 1
                ),
                raw: join_lossy(&self.record, self.detected.delimiter),
            }),
        }))
    }
}

impl<R: Read> Source<R> {
    /// True when the record just read ends in a quoted field that was never closed: the
    /// parser hit the end of the file inside quotes, so that field holds line breaks and the
    /// file's last visible character is not the closing quote.
    fn unclosed_quote(&self) -> bool {
        let tracker = self.csv.get_ref();
        tracker.eof
            && tracker.last_visible != b'"'
            && self
                .record
                .iter()
                .next_back()
                .is_some_and(|f| f.contains(&b'\n') || f.contains(&b'\r'))
    }
}

/// HTML or XML where a CSV was expected (web exports and Excel 2003 XML saved as `.xls`).
fn markup(text: &[u8]) -> Option<String> {
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &text[start..];
    let head: Vec<u8> = rest.iter().take(16).map(u8::to_ascii_lowercase).collect();
    let found = if head.starts_with(b"<?xml") {
        "XML, as in an Excel 2003 XML spreadsheet"
    } else if head.starts_with(b"<!doctype")
        || head.starts_with(b"<html")
        || head.starts_with(b"<table")
    {
        "HTML, as in a web page or a report saved as .xls"
    } else {
        return None;
    };
    Some(found.to_owned())
}

fn csv_error(e: csv::Error) -> SourceError {
    if e.is_io_error() {
        if let csv::ErrorKind::Io(e) = e.into_kind() {
            return SourceError::Io(e);
        }
        return SourceError::Malformed("I/O error".to_owned());
    }
    SourceError::Malformed(e.to_string())
}

/// Error for invalid UTF-8 in field `field` of `record`, `valid` bytes into it.
/// The byte offset is exact for unquoted fields.
fn utf8_error(
    record: &csv::ByteRecord,
    field: usize,
    valid: usize,
    line: u64,
    start: u64,
) -> SourceError {
    let mut byte = start;
    let mut line = line;
    for f in record.iter().take(field) {
        byte += f.len() as u64 + 1;
        line += count_breaks(f);
    }
    let bad = &record[field][..valid];
    SourceError::InvalidUtf8 {
        line: line + count_breaks(bad),
        byte: byte + valid as u64,
    }
}

fn join_lossy(record: &csv::ByteRecord, delimiter: char) -> String {
    let mut raw = String::new();
    for (i, f) in record.iter().enumerate() {
        if i > 0 {
            raw.push(delimiter);
        }
        raw.push_str(&String::from_utf8_lossy(f));
    }
    raw
}

fn is_blank(record: &csv::ByteRecord) -> bool {
    record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace))
}

/// Physical line breaks in `bytes`: LF, CRLF and lone CR each count once.
fn count_breaks(bytes: &[u8]) -> u64 {
    let mut n = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            if i == 0 || bytes[i - 1] != b'\r' {
                n += 1;
            }
        } else if b == b'\r' {
            n += 1;
        }
    }
    n
}

/// Rejects binary files and invalid UTF-8 in the sniffed prefix (without BOM).
/// A multi-byte sequence cut by the end of the prefix is fine unless at EOF.
fn check_text(body: &[u8], eof: bool, offset: u64) -> Result<(), SourceError> {
    if body.starts_with(b"PK\x03\x04") {
        return Err(SourceError::NotText {
            found: "a zip signature, as in an Excel .xlsx or .ods file".to_owned(),
        });
    }
    if body.starts_with(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        return Err(SourceError::NotText {
            found: "the signature of an old Excel .xls file".to_owned(),
        });
    }
    if let Some(at) = body.iter().position(|&b| b == 0) {
        return Err(SourceError::NotText {
            found: format!(
                "NUL bytes (binary data, or UTF-16 without BOM) on line {}",
                1 + count_breaks(&body[..at])
            ),
        });
    }
    if let Err(e) = std::str::from_utf8(body)
        && (e.error_len().is_some() || eof)
    {
        let at = e.valid_up_to();
        return Err(SourceError::InvalidUtf8 {
            line: 1 + count_breaks(&body[..at]),
            byte: offset + at as u64,
        });
    }
    Ok(())
}

/// What the first rows say about the file.
struct Layout {
    delimiter: u8,
    sep_line: bool,
    has_header: bool,
    phone_index: usize,
    phone_name: String,
    district_name: Option<String>,
    carrier_name: Option<String>,
    attribute_names: Vec<String>,
    roles: Vec<Role>,
}

/// Excel's `sep=X` first line.
fn sep_directive(text: &[u8]) -> Option<u8> {
    if text.len() >= 5 && text[..4].eq_ignore_ascii_case(b"sep=") {
        let d = text[4];
        let rest = &text[5..];
        if d.is_ascii()
            && d != b'"'
            && !d.is_ascii_alphanumeric()
            && !matches!(d, b'\r' | b'\n')
            && (rest.is_empty() || rest[0] == b'\r' || rest[0] == b'\n')
        {
            return Some(d);
        }
    }
    None
}

/// The first non-blank records of the prefix (after the `sep=` line), without
/// the last one when it may have been cut by the end of the prefix.
fn sample_records(text: &[u8], delimiter: u8, eof: bool, skip_first: bool) -> Vec<csv::ByteRecord> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text);
    let mut out = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut skip = skip_first;
    let mut reached_end = false;
    while out.len() <= SNIFF_RECORDS {
        match rdr.read_byte_record(&mut record) {
            Ok(true) if is_blank(&record) => {}
            Ok(true) if skip => skip = false,
            Ok(true) => out.push(record.clone()),
            Ok(false) | Err(_) => {
                reached_end = true;
                break;
            }
        }
    }
    if reached_end && !eof && out.len() > 1 {
        out.pop();
    }
    out
}

fn choose_delimiter(text: &[u8], eof: bool) -> (u8, Vec<csv::ByteRecord>) {
    // (consistency in per mille, mode field count, -preference)
    type Score = (u64, usize, isize);
    let mut best: Option<(Score, u8, Vec<csv::ByteRecord>)> = None;
    for (pref, &d) in DELIMITERS.iter().enumerate() {
        let records = sample_records(text, d, eof, false);
        if records.is_empty() {
            continue;
        }
        let mut counts: Vec<(usize, u64)> = Vec::new();
        for r in &records {
            match counts.iter_mut().find(|(len, _)| *len == r.len()) {
                Some((_, n)) => *n += 1,
                None => counts.push((r.len(), 1)),
            }
        }
        let (mode, freq) = counts
            .iter()
            .copied()
            .max_by_key(|&(len, n)| (n, len))
            .unwrap_or((1, 0));
        if mode < 2 {
            continue;
        }
        let score = (freq * 1000 / records.len() as u64, mode, -(pref as isize));
        if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
            best = Some((score, d, records));
        }
    }
    match best {
        Some((_, d, records)) => (d, records),
        None => (b',', sample_records(text, b',', eof, false)),
    }
}

/// Digit-like: at least 8 digits once spaces . - + ( ) are removed, and
/// nothing else.
fn digit_like(s: &str) -> bool {
    let mut digits = 0;
    for c in s.chars() {
        match c {
            '0'..='9' => digits += 1,
            ' ' | '.' | '-' | '+' | '(' | ')' | '\u{a0}' => {}
            _ => return false,
        }
    }
    digits >= 8
}

/// Looks like a Vietnamese mobile number in one of the usual written forms
/// (used to find the phone column from data).
fn phone_like(s: &str) -> bool {
    let s = s.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut digits = [0u8; 12];
    let mut n = 0;
    for c in s.chars() {
        match c {
            '0'..='9' => {
                if n == digits.len() {
                    return false;
                }
                digits[n] = c as u8;
                n += 1;
            }
            ' ' | '.' | '-' | '(' | ')' | '\u{a0}' => {}
            _ => return false,
        }
    }
    let d = &digits[..n];
    match n {
        9 => d[0] != b'0',
        10 => d[0] == b'0',
        11 => d.starts_with(b"84") || d.starts_with(b"01"),
        12 => d.starts_with(b"841"),
        _ => false,
    }
}

/// True when most sample rows have a phone-like value in `column`.
fn column_phone_like(rows: &[Vec<String>], column: usize) -> bool {
    let n = rows
        .iter()
        .filter(|r| r.get(column).is_some_and(|v| phone_like(v)))
        .count();
    n > 0 && n * 2 > rows.len()
}

/// A column override: 1-based number or header name.
fn resolve_override(
    option: &'static str,
    value: &str,
    header: Option<&[String]>,
    width: usize,
) -> Result<usize, SourceError> {
    let v = value.trim();
    let columns = || match header {
        Some(h) => h.to_vec(),
        None => (1..=width).map(|i| format!("column {i}")).collect(),
    };
    if let Ok(n) = v.parse::<usize>() {
        if n >= 1 && n <= width {
            return Ok(n - 1);
        }
        return Err(SourceError::UnknownColumn {
            option,
            value: value.to_owned(),
            columns: columns(),
        });
    }
    let Some(header) = header else {
        return Err(SourceError::NoHeaderForName {
            option,
            value: value.to_owned(),
            columns: width,
        });
    };
    let key = fold_key(v);
    header
        .iter()
        .position(|h| !key.is_empty() && fold_key(h) == key)
        .ok_or_else(|| SourceError::UnknownColumn {
            option,
            value: value.to_owned(),
            columns: columns(),
        })
}

/// Overrides that are names (not numbers), folded.
fn override_names(opts: &SourceOptions) -> Vec<String> {
    [
        &opts.phone_column,
        &opts.district_column,
        &opts.carrier_column,
    ]
    .into_iter()
    .flatten()
    .filter(|v| v.trim().parse::<usize>().is_err())
    .map(|v| fold_key(v))
    .filter(|k| !k.is_empty())
    .collect()
}

fn sniff_layout(text: &[u8], eof: bool, opts: &SourceOptions) -> Result<Layout, SourceError> {
    let sep = sep_directive(text);
    let (delimiter, records) = match sep {
        Some(d) => (d, sample_records(text, d, eof, true)),
        None => choose_delimiter(text, eof),
    };
    if records.is_empty() {
        return Err(SourceError::Empty);
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            r.iter()
                .map(|f| String::from_utf8_lossy(f).trim().to_owned())
                .collect()
        })
        .collect();

    let first = &rows[0];
    let first_keys: Vec<String> = first.iter().map(|f| fold_key(f)).collect();
    let overrides = override_names(opts);
    let has_header = !first.iter().any(|f| digit_like(f))
        && first_keys.iter().any(|k| {
            PHONE_NAMES.contains(&k.as_str())
                || PHONE_NAMES_WEAK.contains(&k.as_str())
                || DISTRICT_NAMES.contains(&k.as_str())
                || CARRIER_NAMES.contains(&k.as_str())
                || OTHER_HEADER_NAMES.contains(&k.as_str())
                || overrides.contains(k)
        });

    let (header, data) = if has_header {
        let names: Vec<String> = first
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if f.is_empty() {
                    format!("column {}", i + 1)
                } else {
                    f.clone()
                }
            })
            .collect();
        (Some(names), &rows[1..])
    } else {
        (None, &rows[..])
    };
    let width = match &header {
        Some(h) => h.len(),
        None => rows.iter().map(Vec::len).max().unwrap_or(1),
    };

    let phone_index = match &opts.phone_column {
        Some(v) => resolve_override("--phone-column", v, header.as_deref(), width)?,
        None => match &header {
            Some(h) => phone_from_header(&first_keys, data, width)
                .ok_or_else(|| SourceError::NoPhoneColumn { headers: h.clone() })?,
            None if width == 1 => 0,
            None => (0..width)
                .find(|&c| column_phone_like(data, c))
                .ok_or(SourceError::NoPhoneData { rows: data.len() })?,
        },
    };
    let district_index = match &opts.district_column {
        Some(v) => {
            let i = resolve_override("--district-column", v, header.as_deref(), width)?;
            if i == phone_index {
                return Err(SourceError::SameColumn { column: i + 1 });
            }
            Some(i)
        }
        None if header.is_some() => first_keys
            .iter()
            .enumerate()
            .position(|(i, k)| i != phone_index && DISTRICT_NAMES.contains(&k.as_str())),
        None => None,
    };

    let carrier_index = match &opts.carrier_column {
        Some(v) => {
            let i = resolve_override("--carrier-column", v, header.as_deref(), width)?;
            if i == phone_index {
                return Err(SourceError::CarrierColumnTaken {
                    column: i + 1,
                    role: "phone",
                });
            }
            if Some(i) == district_index {
                return Err(SourceError::CarrierColumnTaken {
                    column: i + 1,
                    role: "district",
                });
            }
            Some(i)
        }
        None if header.is_some() => first_keys.iter().enumerate().position(|(i, k)| {
            i != phone_index && Some(i) != district_index && CARRIER_NAMES.contains(&k.as_str())
        }),
        None => None,
    };

    let column_name = |i: usize| match &header {
        Some(h) => h[i].clone(),
        None => format!("column {}", i + 1),
    };
    let roles_len = match &header {
        Some(h) => h.len(),
        None if opts.unnamed_columns => width,
        None => {
            phone_index
                .max(district_index.unwrap_or(0))
                .max(carrier_index.unwrap_or(0))
                + 1
        }
    };
    let mut roles = vec![Role::Ignore; roles_len];
    roles[phone_index] = Role::Phone;
    if let Some(d) = district_index {
        roles[d] = Role::District;
    }
    if let Some(c) = carrier_index {
        roles[c] = Role::Carrier;
    }
    let mut attribute_names = Vec::new();
    if header.is_some() || opts.unnamed_columns {
        for (i, role) in roles.iter_mut().enumerate() {
            if *role == Role::Ignore {
                *role = Role::Attribute(attribute_names.len());
                attribute_names.push(column_name(i));
            }
        }
    }
    Ok(Layout {
        delimiter,
        sep_line: sep.is_some(),
        has_header,
        phone_index,
        phone_name: column_name(phone_index),
        district_name: district_index.map(column_name),
        carrier_name: carrier_index.map(column_name),
        attribute_names,
        roles,
    })
}

/// Phone column of a file with a header: a column named like a phone column
/// whose data looks like phones; else the only column whose data looks like
/// phones; else the first column named like a phone column.
fn phone_from_header(keys: &[String], data: &[Vec<String>], width: usize) -> Option<usize> {
    let named = |names: &[&str]| -> Vec<usize> {
        (0..width)
            .filter(|&i| names.contains(&keys[i].as_str()))
            .collect()
    };
    let strong = named(PHONE_NAMES);
    let weak = named(PHONE_NAMES_WEAK);
    let looks = |i: &usize| column_phone_like(data, *i);
    if let Some(&i) = strong.iter().find(|i| looks(i)) {
        return Some(i);
    }
    if let Some(&i) = weak.iter().find(|i| looks(i)) {
        return Some(i);
    }
    let by_data: Vec<usize> = (0..width).filter(looks).collect();
    if by_data.len() == 1 {
        return Some(by_data[0]);
    }
    strong.first().or(weak.first()).copied()
}

/// The sniffed prefix, then the rest of the reader; counts raw bytes delivered.
struct Prefixed<R> {
    prefix: Vec<u8>,
    pos: usize,
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Prefixed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = if self.pos < self.prefix.len() {
            let n = buf.len().min(self.prefix.len() - self.pos);
            buf[..n].copy_from_slice(&self.prefix[self.pos..self.pos + n]);
            self.pos += n;
            if self.pos == self.prefix.len() {
                self.prefix = Vec::new();
                self.pos = 0;
            }
            n
        } else {
            self.inner.read(buf)?
        };
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

enum Input<R> {
    Plain(Prefixed<R>),
    Utf16(DecodeReaderBytes<Prefixed<R>, Vec<u8>>),
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Plain(r) => r.read(buf),
            Input::Utf16(r) => r.read(buf),
        }
    }
}

/// Remembers where the line breaks are in the (decoded) stream the CSV parser
/// reads, from its read position back to the start of the current record, so
/// that a record's byte position gives its physical line number.
struct LineTracker<R> {
    inner: R,
    /// Bytes delivered so far.
    offset: u64,
    /// Line breaks not yet passed: [start, end) byte ranges.
    breaks: VecDeque<(u64, u64)>,
    /// Line breaks already passed.
    passed: u64,
    last_was_cr: bool,
    /// The last byte delivered that is not ASCII whitespace.
    last_visible: u8,
    /// The inner reader reported the end of the input.
    eof: bool,
}

impl<R> LineTracker<R> {
    fn new(inner: R) -> Self {
        LineTracker {
            inner,
            offset: 0,
            breaks: VecDeque::new(),
            passed: 0,
            last_was_cr: false,
            last_visible: 0,
            eof: false,
        }
    }

    /// For a record the parser says starts at byte `pos` (which may point at
    /// the blank lines or the LF of a CRLF before it): (line, first byte).
    fn line_at(&mut self, pos: u64) -> (u64, u64) {
        let mut cur = pos;
        while let Some(&(start, end)) = self.breaks.front() {
            if end <= cur {
            } else if start <= cur {
                cur = end;
            } else {
                break;
            }
            self.breaks.pop_front();
            self.passed += 1;
        }
        (self.passed + 1, cur)
    }
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof = true;
        }
        if let Some(&b) = buf[..n].iter().rev().find(|b| !b.is_ascii_whitespace()) {
            self.last_visible = b;
        }
        let mut last_was_cr = self.last_was_cr;
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\n' {
                let at = self.offset + i as u64;
                match self.breaks.back_mut() {
                    Some(last) if last_was_cr && last.1 == at => last.1 = at + 1,
                    _ => self.breaks.push_back((at, at + 1)),
                }
                last_was_cr = false;
            } else if b == b'\r' {
                let at = self.offset + i as u64;
                self.breaks.push_back((at, at + 1));
                last_was_cr = true;
            } else {
                last_was_cr = false;
            }
        }
        self.last_was_cr = last_was_cr;
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Out = (u64, String, Option<String>);

    fn src(bytes: &[u8]) -> Source<&[u8]> {
        Source::new(bytes, &SourceOptions::default()).expect("source")
    }

    fn src_with<'a>(
        bytes: &'a [u8],
        phone: Option<&str>,
        district: Option<&str>,
    ) -> Result<Source<&'a [u8]>, SourceError> {
        let opts = SourceOptions {
            phone_column: phone.map(str::to_owned),
            district_column: district.map(str::to_owned),
            carrier_column: None,
            unnamed_columns: false,
        };
        Source::new(bytes, &opts)
    }

    /// All rows and problems; panics on a file-level error.
    fn drain<R: Read>(s: &mut Source<R>) -> (Vec<Out>, Vec<RowProblem>) {
        let mut rows = Vec::new();
        let mut problems = Vec::new();
        while let Some(item) = s.next_row() {
            match item.expect("no file-level error") {
                Ok(r) => rows.push((r.line, r.phone.to_owned(), r.district.map(str::to_owned))),
                Err(p) => problems.push(p),
            }
        }
        (rows, problems)
    }

    fn first_error<R: Read>(s: &mut Source<R>) -> SourceError {
        while let Some(item) = s.next_row() {
            if let Err(e) = item {
                assert!(s.next_row().is_none(), "nothing after a file-level error");
                return e;
            }
        }
        panic!("expected a file-level error");
    }

    fn row(line: u64, phone: &str, district: Option<&str>) -> Out {
        (line, phone.to_owned(), district.map(str::to_owned))
    }

    fn utf16(text: &str, le: bool) -> Vec<u8> {
        let mut out = if le {
            vec![0xFF, 0xFE]
        } else {
            vec![0xFE, 0xFF]
        };
        for u in text.encode_utf16() {
            out.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
        }
        out
    }

    #[test]
    fn a_carrier_column_is_found_by_name_or_chosen() {
        let data = "SĐT,Nhà mạng,ghi chú\n0912345678,Viettel,a\n0987654321,,b\n".as_bytes();
        let mut s = src(data);
        assert_eq!(s.detected().carrier_column.as_deref(), Some("Nhà mạng"));
        assert_eq!(s.detected().attribute_columns, ["ghi chú"]);
        let r = s.next_row().unwrap().unwrap().unwrap();
        assert_eq!((r.phone, r.carrier), ("0912345678", Some("Viettel")));
        let r = s.next_row().unwrap().unwrap().unwrap();
        assert_eq!(r.carrier, None);

        // Without a header, by number.
        let opts = SourceOptions {
            carrier_column: Some("2".into()),
            ..SourceOptions::default()
        };
        let mut s = Source::new(&b"0912345678;vnpt\n0987654321;mobi\n"[..], &opts).unwrap();
        assert_eq!(s.detected().carrier_column.as_deref(), Some("column 2"));
        let r = s.next_row().unwrap().unwrap().unwrap();
        assert_eq!(r.carrier, Some("vnpt"));

        let opts = SourceOptions {
            carrier_column: Some("phone".into()),
            ..SourceOptions::default()
        };
        let err = Source::new(&b"phone,carrier\n0912345678,x\n"[..], &opts)
            .err()
            .unwrap();
        assert!(err.to_string().contains("phone column"), "{err}");
    }

    #[test]
    fn plain_comma_with_header() {
        let data = b"name,phone,district\nAn,0912345678,Duc Hoa\nBinh,0987654321,Tan An\n";
        let mut s = src(data);
        let d = s.detected().clone();
        assert_eq!(d.encoding, "UTF-8");
        assert_eq!(d.delimiter, ',');
        assert!(d.has_header);
        assert_eq!(d.phone_column, "phone");
        assert_eq!(d.district_column.as_deref(), Some("district"));
        assert_eq!(d.attribute_columns, vec!["name".to_owned()]);
        match s.next_row() {
            Some(Ok(Ok(r))) => {
                assert_eq!(r.line, 2);
                assert_eq!(r.phone, "0912345678");
                assert_eq!(r.district, Some("Duc Hoa"));
                assert_eq!(r.attributes, vec![("name", "An")]);
            }
            _ => panic!("row expected"),
        }
        let (rows, problems) = drain(&mut s);
        assert_eq!(rows, vec![row(3, "0987654321", Some("Tan An"))]);
        assert!(problems.is_empty());
        assert_eq!(s.bytes_read(), data.len() as u64);
    }

    #[test]
    fn utf8_bom() {
        let data = "\u{feff}phone,district\n0912345678,Đức Hòa\n".as_bytes();
        let mut s = src(data);
        assert_eq!(s.detected().encoding, "UTF-8 (BOM)");
        assert_eq!(s.detected().phone_column, "phone");
        assert_eq!(drain(&mut s).0, vec![row(2, "0912345678", Some("Đức Hòa"))]);
        assert_eq!(s.bytes_read(), data.len() as u64);
    }

    #[test]
    fn utf16le_bom_with_tabs() {
        let data = utf16(
            "Họ tên\tSố điện thoại\tQuận/Huyện\r\nNguyễn Văn A\t0912 345 678\tĐức Hòa\r\nTrần B\t+84 98 765 4321\tCần Giuộc\r\n",
            true,
        );
        let mut s = src(&data);
        let d = s.detected().clone();
        assert_eq!(d.encoding, "UTF-16LE (BOM)");
        assert_eq!(d.delimiter, '\t');
        assert_eq!(d.phone_column, "Số điện thoại");
        assert_eq!(d.district_column.as_deref(), Some("Quận/Huyện"));
        assert_eq!(d.attribute_columns, vec!["Họ tên".to_owned()]);
        let (rows, _) = drain(&mut s);
        assert_eq!(
            rows,
            vec![
                row(2, "0912 345 678", Some("Đức Hòa")),
                row(3, "+84 98 765 4321", Some("Cần Giuộc"))
            ]
        );
        assert_eq!(s.bytes_read(), data.len() as u64);
    }

    #[test]
    fn utf16be_bom() {
        let data = utf16("phone\n0912345678\n", false);
        let mut s = src(&data);
        assert_eq!(s.detected().encoding, "UTF-16BE (BOM)");
        assert_eq!(drain(&mut s).0, vec![row(2, "0912345678", None)]);
    }

    #[test]
    fn semicolons_with_commas_inside() {
        let data =
            "Họ tên;SĐT;Địa chỉ\nAn;0912345678;12, ấp 3, xã Mỹ Hạnh\nBình;0987654321;số 4, ấp 1\n"
                .as_bytes();
        let mut s = src(data);
        assert_eq!(s.detected().delimiter, ';');
        assert_eq!(s.detected().phone_column, "SĐT");
        assert_eq!(s.detected().district_column, None);
        let Some(Ok(Ok(r))) = s.next_row() else {
            panic!()
        };
        assert_eq!(
            r.attributes,
            vec![("Họ tên", "An"), ("Địa chỉ", "12, ấp 3, xã Mỹ Hạnh")]
        );
    }

    #[test]
    fn vietnamese_header_semicolons() {
        let data = "Số điện thoại;Quận/Huyện\n0912345678;huyện Đức Hòa\n0987654321;\n".as_bytes();
        let mut s = src(data);
        assert_eq!(s.detected().phone_column, "Số điện thoại");
        assert_eq!(s.detected().district_column.as_deref(), Some("Quận/Huyện"));
        assert_eq!(
            drain(&mut s).0,
            vec![
                row(2, "0912345678", Some("huyện Đức Hòa")),
                row(3, "0987654321", None)
            ]
        );
    }

    #[test]
    fn quoted_fields_with_commas_quotes_and_newlines() {
        let data = b"name,phone,note\n\"Nguyen, A\",0912345678,\"line1\nline2\nline3\"\n\"B \"\"Bee\"\"\",\"0987654321\",x\n\"C\",0911111111,\"a\r\nb\"\nD,0922222222,\n";
        let mut s = src(data);
        assert_eq!(s.detected().delimiter, ',');
        let Some(Ok(Ok(r))) = s.next_row() else {
            panic!()
        };
        assert_eq!(
            r.attributes,
            vec![("name", "Nguyen, A"), ("note", "line1\nline2\nline3")]
        );
        let (rows, _) = drain(&mut s);
        assert_eq!(
            rows,
            vec![
                row(5, "0987654321", None),
                row(6, "0911111111", None),
                row(8, "0922222222", None)
            ]
        );
    }

    #[test]
    fn crlf_and_blank_lines() {
        let data = b"\r\nphone,district\r\n0912345678,Tan An\r\n\r\n\r\n0987654321,Ben Luc\r\n , \r\n,,\r\n0911111111,\r\n\r\n\r\n";
        let mut s = src(data);
        assert!(s.detected().has_header);
        let (rows, problems) = drain(&mut s);
        assert_eq!(
            rows,
            vec![
                row(3, "0912345678", Some("Tan An")),
                row(6, "0987654321", Some("Ben Luc")),
                row(9, "0911111111", None)
            ]
        );
        assert!(problems.is_empty());
    }

    #[test]
    fn cr_only_line_endings() {
        let data = b"phone;district\r0912345678;Tan An\r\r0987654321;Ben Luc";
        let (rows, _) = drain(&mut src(data));
        assert_eq!(
            rows,
            vec![
                row(2, "0912345678", Some("Tan An")),
                row(4, "0987654321", Some("Ben Luc"))
            ]
        );
    }

    #[test]
    fn no_header_finds_phone_column() {
        let data = b"Nguyen Van A,0912345678,Duc Hoa\nTran B,84987654321,Tan An\nLe C,,Tan Tru\n";
        let mut s = src(data);
        let d = s.detected().clone();
        assert!(!d.has_header);
        assert_eq!(d.phone_column, "column 2");
        assert_eq!(d.district_column, None);
        assert!(d.attribute_columns.is_empty());
        let Some(Ok(Ok(r))) = s.next_row() else {
            panic!()
        };
        assert_eq!((r.line, r.phone, r.district), (1, "0912345678", None));
        assert!(r.attributes.is_empty());
        assert_eq!(
            drain(&mut s).0,
            vec![row(2, "84987654321", None), row(3, "", None)]
        );
    }

    #[test]
    fn single_column_phone_only() {
        let data = b"0912345678\n0987654321\n\n912345678\n";
        let mut s = src(data);
        assert!(!s.detected().has_header);
        assert_eq!(s.detected().phone_column, "column 1");
        assert_eq!(
            drain(&mut s).0,
            vec![
                row(1, "0912345678", None),
                row(2, "0987654321", None),
                row(4, "912345678", None)
            ]
        );
    }

    #[test]
    fn override_by_name_and_by_number() {
        let data = "Liên hệ|Nơi ở|Mã\n0912345678|Đức Hòa|0987654321\n".as_bytes();
        let mut s = src_with(data, Some("lien he"), Some("noi o")).unwrap();
        assert!(s.detected().has_header);
        assert_eq!(s.detected().delimiter, '|');
        assert_eq!(s.detected().phone_column, "Liên hệ");
        assert_eq!(s.detected().district_column.as_deref(), Some("Nơi ở"));
        assert_eq!(drain(&mut s).0, vec![row(2, "0912345678", Some("Đức Hòa"))]);

        let data = b"A,0912345678,Duc Hue,0987654321\nB,0911111111,Tan Tru,0922222222\n";
        let mut s = src_with(data, Some("4"), Some("3")).unwrap();
        assert_eq!(s.detected().phone_column, "column 4");
        assert_eq!(s.detected().district_column.as_deref(), Some("column 3"));
        assert_eq!(
            drain(&mut s).0,
            vec![
                row(1, "0987654321", Some("Duc Hue")),
                row(2, "0922222222", Some("Tan Tru"))
            ]
        );
    }

    #[test]
    fn unknown_override_column_lists_columns() {
        let data = b"name,phone\nA,0912345678\n";
        let err = src_with(data, Some("mobile_no"), None).err().unwrap();
        let msg = err.to_string();
        assert!(
            msg.contains(
                "--phone-column 'mobile_no' is not a column of this file; columns are: name, phone"
            ),
            "{msg}"
        );
        let err = src_with(data, None, Some("7")).err().unwrap();
        assert!(err.to_string().contains("--district-column '7'"), "{err}");
        let err = src_with(b"A,0912345678\n", Some("phone"), None)
            .err()
            .unwrap();
        assert!(matches!(err, SourceError::NoHeaderForName { .. }), "{err}");
        let err = src_with(data, Some("2"), Some("phone")).err().unwrap();
        assert!(
            matches!(err, SourceError::SameColumn { column: 2 }),
            "{err}"
        );
    }

    #[test]
    fn missing_phone_column_lists_headers() {
        let data = "Họ tên,Địa chỉ,Quận\nAn,ấp 3,Đức Hòa\n".as_bytes();
        let err = Source::new(data, &SourceOptions::default()).err().unwrap();
        assert_eq!(
            err.to_string(),
            "no phone column found among headers [Họ tên, Địa chỉ, Quận]: name it with --phone-column NAME or --phone-column NUMBER"
        );
        let err = Source::new(&b"a,b\nc,d\n"[..], &SourceOptions::default())
            .err()
            .unwrap();
        assert!(matches!(err, SourceError::NoPhoneData { rows: 2 }), "{err}");
    }

    #[test]
    fn header_without_phone_name_uses_the_only_phone_like_column() {
        let data = b"Ho ten,Lien he,Quan\nAn,0912345678,Duc Hoa\nBinh,0987654321,Tan An\n";
        let mut s = src(data);
        assert_eq!(s.detected().phone_column, "Lien he");
        assert_eq!(s.detected().district_column.as_deref(), Some("Quan"));
        assert_eq!(drain(&mut s).0.len(), 2);
    }

    #[test]
    fn xlsx_signature_and_nul_bytes() {
        let err = Source::new(
            &b"PK\x03\x04\x14\x00\x06\x00\x08\x00"[..],
            &SourceOptions::default(),
        )
        .err()
        .unwrap();
        let msg = err.to_string();
        assert!(
            msg.starts_with("the file is not text") && msg.contains("CSV UTF-8"),
            "{msg}"
        );
        let err = Source::new(
            &b"p\x00h\x00o\x00n\x00e\x00\n\x00"[..],
            &SourceOptions::default(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("NUL bytes"), "{err}");
    }

    #[test]
    fn nul_bytes_after_the_sniffed_prefix() {
        let mut data = b"phone\n".to_vec();
        while data.len() < SNIFF_LIMIT + 100 {
            data.extend_from_slice(b"0912345678\n");
        }
        let line = 2 + (data.len() as u64 - 6) / 11;
        data.extend_from_slice(b"09\x001\n");
        let err = first_error(&mut src(&data));
        assert!(
            err.to_string()
                .contains(&format!("NUL bytes (binary data) on line {line}")),
            "{err}"
        );
    }

    #[test]
    fn invalid_utf8_in_prefix() {
        // "Đức Hòa" in Windows-1258-ish bytes.
        let data = b"phone,district\n0912345678,Tan An\n0987654321,\xD0\xFEc Ho\xF2a\n";
        let err = Source::new(&data[..], &SourceOptions::default())
            .err()
            .unwrap();
        assert!(
            matches!(err, SourceError::InvalidUtf8 { line: 3, byte: 44 }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("save it as \"CSV UTF-8\""),
            "{err}"
        );
    }

    #[test]
    fn invalid_utf8_mid_file() {
        let mut data = b"phone,district\n".to_vec();
        let mut lines = 1;
        while data.len() < SNIFF_LIMIT * 2 {
            data.extend_from_slice("0912345678,Đức Hòa\n".as_bytes());
            lines += 1;
        }
        let byte = data.len() as u64 + 11;
        data.extend_from_slice(b"0912345678,\xD0\xFEc Ho\xF2a\n0912345678,x\n");
        let mut s = src(&data);
        let mut ok = 0;
        let err = loop {
            match s.next_row() {
                Some(Ok(Ok(_))) => ok += 1,
                Some(Err(e)) => break e,
                other => panic!(
                    "unexpected {:?}",
                    other.map(|r| r.map(|r| r.map(|r| r.line)))
                ),
            }
        };
        assert_eq!(ok, lines - 1);
        assert!(
            matches!(err, SourceError::InvalidUtf8 { line, byte: b } if line == lines + 1 && b == byte),
            "{err:?}"
        );
        assert!(s.next_row().is_none());
    }

    #[test]
    fn empty_file_and_only_header() {
        for data in [&b""[..], b"\xEF\xBB\xBF", b"\n\r\n\n", b" \n,,\n"] {
            let err = Source::new(data, &SourceOptions::default()).err().unwrap();
            assert!(matches!(err, SourceError::Empty), "{data:?}: {err}");
        }
        let mut s = src(b"phone,district\r\n\r\n");
        assert!(s.detected().has_header);
        assert!(s.next_row().is_none());
        assert!(s.next_row().is_none());
    }

    #[test]
    fn short_rows_are_problems() {
        let data = b"name,district,phone\nAn,Duc Hoa,0912345678\nBinh,Tan An\nCuong\nDung,Ben Luc,0987654321\n";
        let mut s = src(data);
        let (rows, problems) = drain(&mut s);
        assert_eq!(
            rows,
            vec![
                row(2, "0912345678", Some("Duc Hoa")),
                row(5, "0987654321", Some("Ben Luc"))
            ]
        );
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].line, 3);
        assert_eq!(problems[0].raw, "Binh,Tan An");
        assert_eq!(
            problems[0].reason,
            "the row has 2 fields but the phone column (phone) is column 3"
        );
        assert_eq!((problems[1].line, problems[1].raw.as_str()), (4, "Cuong"));
    }

    #[test]
    fn unclosed_quote_is_a_file_error() {
        let data = b"phone,name\n0912345678,\"An\n0987654321,Binh\n0911111111,C\n";
        let mut s = src(data);
        let err = first_error(&mut s);
        assert!(
            matches!(err, SourceError::UnclosedQuote { line: 2 }),
            "{err:?}"
        );
        // Closed multi-line fields, with or without a final newline, are fine.
        for data in [
            &b"phone,note\n0912345678,\"a\nb\"\n0987654321,\"c\nd\""[..],
            b"phone,note\n0912345678,\"a\nb\"\n0987654321,\"c\nd\"\r\n",
            b"note,phone\n\"a\nb\",0912345678\n\"c\nd\",0987654321",
        ] {
            let (rows, problems) = drain(&mut src(data));
            assert_eq!(rows.len(), 2, "{data:?}");
            assert!(problems.is_empty());
        }
    }

    #[test]
    fn html_and_xml_are_not_csv() {
        for data in [
            &b"<html><body><table><tr><td>phone</td></tr></table></body></html>\n"[..],
            b"\r\n  <!DOCTYPE html>\n<html>",
            b"<?xml version=\"1.0\"?>\n<Workbook>",
        ] {
            let err = Source::new(data, &SourceOptions::default()).err().unwrap();
            assert!(matches!(err, SourceError::NotCsv { .. }), "{err:?}");
            assert!(err.to_string().contains("CSV UTF-8"), "{err}");
        }
    }

    #[test]
    fn sep_directive_is_honoured() {
        let data = b"sep=;\nphone;name\n0912345678;A,B\n";
        let mut s = src(data);
        assert_eq!(s.detected().delimiter, ';');
        assert!(s.detected().has_header);
        let Some(Ok(Ok(r))) = s.next_row() else {
            panic!()
        };
        assert_eq!(
            (r.line, r.phone, r.attributes.clone()),
            (3, "0912345678", vec![("name", "A,B")])
        );
    }

    #[test]
    fn prefers_specific_phone_name_and_phone_like_data() {
        let data = b"So,Ho ten,Di dong,Dien thoai\n1,An,0912345678,\n2,Binh,0987654321,028 1234\n";
        let s = src(data);
        assert_eq!(s.detected().phone_column, "Di dong");
        assert_eq!(
            s.detected().attribute_columns,
            vec!["So", "Ho ten", "Dien thoai"]
        );
    }

    #[test]
    fn detected_serializes() {
        fn assert_serialize<T: serde::Serialize>(_: &T) {}
        assert_serialize(src(b"phone\n0912345678\n").detected());
    }

    #[test]
    fn streams_many_rows_with_bounded_line_tracking() {
        // ~1.2 MB through a reader that returns small chunks.
        struct Chunky<'a>(&'a [u8]);
        impl Read for Chunky<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(7).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut data = b"phone;district\r\n".to_vec();
        for i in 0..50_000u32 {
            data.extend_from_slice(format!("09{i:08};Tan An\r\n").as_bytes());
        }
        let mut s = Source::new(Chunky(&data), &SourceOptions::default()).unwrap();
        let mut n = 0u64;
        while let Some(item) = s.next_row() {
            let r = item.unwrap().unwrap();
            n += 1;
            assert_eq!(r.line, n + 1);
            assert_eq!(r.phone.len(), 10);
        }
        assert_eq!(n, 50_000);
        assert_eq!(s.bytes_read(), data.len() as u64);
        assert!(s.csv.get_ref().breaks.len() < 10_000);
    }

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            "[^\\x00]{0,8}",
            "[,;\t|\"\r\n a0-9]{0,8}",
            "[0-9 .+-]{0,12}",
        ]
    }

    proptest! {
        #[test]
        fn written_rows_read_back(
            rows in proptest::collection::vec((field(), field(), field()), 0..30),
            delim in 0usize..4,
            crlf in any::<bool>(),
        ) {
            let d = DELIMITERS[delim];
            let terminator = if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') };
            let mut w = csv::WriterBuilder::new().delimiter(d).terminator(terminator).from_writer(Vec::new());
            w.write_record(["name", "phone", "district"]).unwrap();
            w.flush().unwrap();
            let mut expected = Vec::new();
            for (name, phone, district) in &rows {
                let start = w.get_ref().len();
                w.write_record([name, phone, district]).unwrap();
                w.flush().unwrap();
                let blank = [name, phone, district].iter().all(|f| f.bytes().all(|b| b.is_ascii_whitespace()));
                if !blank {
                    let line = 1 + count_breaks(&w.get_ref()[..start]);
                    let district = Some(district.trim()).filter(|d| !d.is_empty()).map(str::to_owned);
                    expected.push((line, phone.trim().to_owned(), district));
                }
            }
            let data = w.into_inner().unwrap();
            let mut s = Source::new(&data[..], &SourceOptions::default()).unwrap();
            prop_assert_eq!(s.detected().delimiter, char::from(d));
            prop_assert_eq!(s.detected().phone_column.as_str(), "phone");
            let (got, problems) = drain(&mut s);
            prop_assert!(problems.is_empty());
            prop_assert_eq!(got, expected);
        }
    }
}
