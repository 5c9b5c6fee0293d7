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

/// Writes `rows` rows (`phone,district,name`) to `path`.
pub fn write_csv(path: &Path, rows: u64, seed: u64, shape: Shape) -> Result<Truth> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "phone,district,name")?;
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
            writeln!(out, "{},{district},Bad {}", quote(&bad), truth.rows)?;
            continue;
        }
        if r < shape.bad_share + shape.duplicate_share && !recent.is_empty() {
            truth.duplicates += 1;
            let n = recent[rng.random_range(0..recent.len())].clone();
            writeln!(out, "0{},{district},Dup {}", &n[2..], truth.rows)?;
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
        writeln!(out, "{},{district},Người {}", quote(&written), truth.rows)?;
        truth.numbers.push(canonical);
    }
    out.flush()?;
    Ok(truth)
}

fn quote(s: &str) -> String {
    if s.contains([',', '"']) {
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
