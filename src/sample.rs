//! Realistic sample subscriber files with a known ground truth: for the demo, the tests and
//! the import benchmark. Long An's 15 pre-2025 units weighted by population, the carrier mix
//! from domain.md, numbers written every way people write them, and some bad rows.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::district::LONG_AN_2019_POPULATION;

/// (carrier, share, two- or three-digit prefixes after the 0)
const CARRIERS: &[(&str, f64, &[&str])] = &[
    (
        "viettel",
        0.56,
        &[
            "96", "97", "98", "86", "32", "33", "34", "35", "36", "37", "38", "39",
        ],
    ),
    (
        "vinaphone",
        0.20,
        &["91", "94", "88", "81", "82", "83", "84", "85"],
    ),
    (
        "mobifone",
        0.17,
        &["90", "93", "70", "76", "77", "78", "79", "896", "898"],
    ),
    ("vietnamobile", 0.04, &["92", "56", "58"]),
    ("gmobile", 0.03, &["99", "59"]),
];

/// What a generated file contains, by construction.
#[derive(Debug, Default, Clone)]
pub struct Truth {
    pub rows: u64,
    /// Distinct valid numbers.
    pub valid_unique: u64,
    /// Rows repeating a number already in the file.
    pub duplicates: u64,
    /// Rows that must be rejected.
    pub bad: u64,
    /// Rows written in the legacy 11-digit form.
    pub legacy: u64,
    /// Distinct valid numbers (canonical `84…`), for checking the gateway's books.
    pub numbers: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Share of rows that are bad (landline, scientific notation, garbage, empty).
    pub bad_share: f64,
    /// Share of rows that repeat an earlier number.
    pub duplicate_share: f64,
    /// Write numbers in messy forms (spaces, +84, dashes, legacy prefixes).
    pub messy: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            bad_share: 0.01,
            duplicate_share: 0.01,
            messy: true,
        }
    }
}

/// Legacy prefixes whose new form is a Viettel 03x number: 016x → 03x.
const LEGACY_VIETTEL: &[(&str, &str)] = &[
    ("162", "32"),
    ("163", "33"),
    ("164", "34"),
    ("165", "35"),
    ("166", "36"),
    ("167", "37"),
    ("168", "38"),
    ("169", "39"),
];

/// How the file itself is written: the shapes spreadsheets and other systems produce.
#[derive(Debug, Clone, Copy)]
pub struct Form {
    /// `,` `;` or TAB.
    pub delimiter: u8,
    /// CRLF line endings (Excel on Windows).
    pub crlf: bool,
    /// A UTF-8 byte order mark (Excel "CSV UTF-8").
    pub bom: bool,
    /// UTF-16LE with BOM (Excel "Unicode text"); `bom` is then implied.
    pub utf16: bool,
}

impl Default for Form {
    fn default() -> Self {
        Self {
            delimiter: b',',
            crlf: false,
            bom: false,
            utf16: false,
        }
    }
}

/// Writes `rows` rows (`phone,district,name`) to `path`.
pub fn write_csv(path: &Path, rows: u64, seed: u64, shape: Shape) -> Result<Truth> {
    write_csv_form(path, rows, seed, shape, Form::default())
}

/// Writes `rows` rows (phone, district, name) to `path` in the given [`Form`].
pub fn write_csv_form(
    path: &Path,
    rows: u64,
    seed: u64,
    shape: Shape,
    form: Form,
) -> Result<Truth> {
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut out = FormWriter::new(file, form)?;
    let d = char::from(form.delimiter);
    let q = |s: &str| quote(s, form.delimiter);
    out.line(&format!("phone{d}district{d}name"))?;
    let mut rng = StdRng::seed_from_u64(seed);
    let total_pop: u32 = LONG_AN_2019_POPULATION.iter().map(|(_, p)| p).sum();
    let mut truth = Truth::default();
    let mut seen = std::collections::HashSet::new();
    let mut recent: Vec<String> = Vec::new();
    while truth.rows < rows {
        truth.rows += 1;
        let district = pick_district(&mut rng, total_pop);
        let district = if shape.messy {
            spell(&mut rng, district)
        } else {
            district.to_string()
        };
        let r: f64 = rng.random();
        if r < shape.bad_share {
            truth.bad += 1;
            let bad = match rng.random_range(0..5) {
                0 => "8.49123E+10".to_string(),
                1 => format!("0272 3{:06}", rng.random_range(0..1_000_000)),
                2 => "không có".to_string(),
                3 => String::new(),
                _ => format!("09{}", rng.random_range(0..100_000)),
            };
            out.line(&format!(
                "{}{d}{}{d}Bad {}",
                q(&bad),
                q(&district),
                truth.rows
            ))?;
            continue;
        }
        if r < shape.bad_share + shape.duplicate_share && !recent.is_empty() {
            truth.duplicates += 1;
            let n = recent[rng.random_range(0..recent.len())].clone();
            out.line(&format!(
                "0{}{d}{}{d}Dup {}",
                &n[2..],
                q(&district),
                truth.rows
            ))?;
            continue;
        }
        let (national, legacy_form) = loop {
            let (nat, legacy) = new_number(&mut rng, shape.messy);
            if seen.insert(nat.clone()) {
                break (nat, legacy);
            }
        };
        let canonical = format!("84{national}");
        truth.valid_unique += 1;
        if recent.len() < 1000 {
            recent.push(canonical.clone());
        } else {
            let i = rng.random_range(0..recent.len());
            recent[i] = canonical.clone();
        }
        let written = match legacy_form {
            Some(l) => {
                truth.legacy += 1;
                l
            }
            None if shape.messy => messy_form(&mut rng, &national),
            None => format!("0{national}"),
        };
        out.line(&format!(
            "{}{d}{}{d}Người {}",
            q(&written),
            q(&district),
            truth.rows
        ))?;
        truth.numbers.push(canonical);
    }
    out.finish()?;
    Ok(truth)
}

/// Writes lines with the form's line ending and encoding.
struct FormWriter<W: Write> {
    out: W,
    form: Form,
    buf: Vec<u8>,
}

impl<W: Write> FormWriter<W> {
    fn new(mut out: W, form: Form) -> Result<Self> {
        if form.utf16 {
            out.write_all(b"\xFF\xFE")?;
        } else if form.bom {
            out.write_all(b"\xEF\xBB\xBF")?;
        }
        Ok(Self {
            out,
            form,
            buf: Vec::new(),
        })
    }

    fn line(&mut self, text: &str) -> Result<()> {
        let end = if self.form.crlf { "\r\n" } else { "\n" };
        if self.form.utf16 {
            self.buf.clear();
            for unit in text.encode_utf16().chain(end.encode_utf16()) {
                self.buf.extend_from_slice(&unit.to_le_bytes());
            }
            self.out.write_all(&self.buf)?;
        } else {
            self.out.write_all(text.as_bytes())?;
            self.out.write_all(end.as_bytes())?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

fn quote(s: &str, delimiter: u8) -> String {
    if s.contains([char::from(delimiter), '"']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn pick_district(rng: &mut StdRng, total: u32) -> &'static str {
    let mut x = rng.random_range(0..total);
    for (name, pop) in LONG_AN_2019_POPULATION {
        if x < *pop {
            return name;
        }
        x -= pop;
    }
    LONG_AN_2019_POPULATION[0].0
}

/// The same district the ways people write it.
fn spell(rng: &mut StdRng, name: &str) -> String {
    match rng.random_range(0..10) {
        0 => format!("Huyện {name}"),
        1 => name.to_uppercase(),
        2 => crate::encoding::fold_diacritics(name),
        3 => format!("  {name} "),
        _ => name.to_string(),
    }
}

/// A fresh valid national number (9 digits), and its legacy 11-digit form when chosen.
fn new_number(rng: &mut StdRng, messy: bool) -> (String, Option<String>) {
    let mut x: f64 = rng.random();
    for (carrier, share, prefixes) in CARRIERS {
        if x < *share || *carrier == "gmobile" {
            if messy && *carrier == "viettel" && rng.random_bool(0.03) {
                let (old, new) = LEGACY_VIETTEL[rng.random_range(0..LEGACY_VIETTEL.len())];
                let rest = format!("{:07}", rng.random_range(0..10_000_000));
                return (format!("{new}{rest}"), Some(format!("0{old}{rest}")));
            }
            let prefix = match *carrier {
                "gmobile" if rng.random_bool(0.5) => "99",
                "gmobile" => "59",
                _ => prefixes[rng.random_range(0..prefixes.len())],
            };
            let prefix = if prefix == "99" {
                format!("99{}", rng.random_range(3..=7))
            } else {
                prefix.to_string()
            };
            let rest_len = 9 - prefix.len();
            let rest = format!(
                "{:0width$}",
                rng.random_range(0..10u64.pow(rest_len as u32)),
                width = rest_len
            );
            return (format!("{prefix}{rest}"), None);
        }
        x -= share;
    }
    unreachable!("gmobile catches the remainder")
}

fn messy_form(rng: &mut StdRng, national: &str) -> String {
    match rng.random_range(0..10) {
        0 => format!("+84{national}"),
        1 => format!("84{national}"),
        2 => format!("0{} {} {}", &national[..3], &national[3..6], &national[6..]),
        3 => format!("0{}.{}.{}", &national[..3], &national[3..6], &national[6..]),
        4 => format!("(+84) {}-{}", &national[..3], &national[3..]),
        5 => national.to_string(),
        _ => format!("0{national}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_source::{Source, SourceOptions};
    use crate::msisdn::{Fix, Msisdn};

    /// Reads a generated file back and checks it against its ground truth.
    fn check(form: Form, encoding: &str) {
        let dir = std::env::temp_dir().join(format!(
            "smscast-sample-{}-{}",
            std::process::id(),
            encoding.replace(' ', "")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("f{}.csv", form.delimiter));
        let truth = write_csv_form(&path, 3000, 7, Shape::default(), form).unwrap();
        let mut src = Source::open(&path, &SourceOptions::default()).unwrap();
        assert_eq!(src.detected().encoding, encoding);
        assert_eq!(src.detected().delimiter, char::from(form.delimiter));
        assert_eq!(src.detected().phone_column, "phone");
        let (mut rows, mut bad, mut legacy) = (0, 0, 0);
        let mut distinct = std::collections::HashSet::new();
        while let Some(row) = src.next_row() {
            let row = row.unwrap().unwrap();
            rows += 1;
            match Msisdn::parse(row.phone) {
                Ok(p) => {
                    legacy += u64::from(p.fix == Some(Fix::LegacyPrefix));
                    distinct.insert(p.msisdn.as_str().to_string());
                }
                Err(_) => bad += 1,
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(rows, truth.rows);
        assert_eq!(bad, truth.bad);
        assert_eq!(legacy, truth.legacy);
        assert_eq!(distinct.len() as u64, truth.valid_unique);
        assert_eq!(
            truth.rows,
            truth.valid_unique + truth.duplicates + truth.bad
        );
        assert!(truth.bad > 0 && truth.duplicates > 0 && truth.legacy > 0);
    }

    #[test]
    fn every_form_reads_back_to_its_ground_truth() {
        check(Form::default(), "UTF-8");
        let semicolon_bom_crlf = Form {
            delimiter: b';',
            crlf: true,
            bom: true,
            utf16: false,
        };
        check(semicolon_bom_crlf, "UTF-8 (BOM)");
        let excel_unicode_text = Form {
            delimiter: b'\t',
            crlf: true,
            bom: false,
            utf16: true,
        };
        check(excel_unicode_text, "UTF-16LE (BOM)");
    }
}
