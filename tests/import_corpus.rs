//! The import corpus: awkward real-world subscriber files in `tests/corpus/`, each imported
//! by the real binary into a fresh database, with its exact expected outcome.
//!
//! Every file that imports is imported twice: the second time must say so (`previous_import`)
//! and add nothing. Every file that cannot be read must exit 1 with `error: …` naming the
//! problem and the fix, leave no rejects file, and leave the list without a single member.

mod common;

use std::collections::BTreeMap;

use common::{Workspace, corpus};
use serde_json::Value;

/// One corpus file and what importing it must do.
struct Case {
    file: &'static str,
    /// Extra arguments after `subscribers import FILE --list L --json --rejects R.csv`.
    args: &'static [&'static str],
    outcome: Outcome,
}

enum Outcome {
    Imports(Expected),
    /// Substrings of stderr: the problem, and the fix.
    Fails(&'static [&'static str]),
}

struct Expected {
    /// (encoding, delimiter, phone column)
    detected: (&'static str, char, &'static str),
    rows_read: u64,
    imported: u64,
    duplicates_in_file: u64,
    legacy_converted: u64,
    leading_zero_restored: u64,
    /// Every line of the rejects file: (line, raw value, reason).
    rejects: &'static [(u64, &'static str, &'static str)],
    by_carrier: &'static [(&'static str, u64)],
    by_district: &'static [(&'static str, u64)],
    unknown_districts: &'static [(&'static str, u64)],
}

const NONE: &[(&str, u64)] = &[];

const CASES: &[Case] = &[
    Case {
        file: "01-basic.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "phone"),
            rows_read: 5,
            imported: 5,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[],
            by_carrier: &[
                ("gmobile", 1),
                ("mobifone", 1),
                ("vietnamobile", 1),
                ("viettel", 1),
                ("vinaphone", 1),
            ],
            by_district: &[
                ("Bến Lức", 1),
                ("Cần Giuộc", 1),
                ("Thủ Thừa", 1),
                ("Tân An", 1),
                ("Đức Hòa", 1),
            ],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "02-utf8-bom.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8 (BOM)", ',', "phone"),
            rows_read: 2,
            imported: 2,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[],
            by_carrier: &[("viettel", 1), ("vinaphone", 1)],
            by_district: &[("Kiến Tường", 1), ("Tân An", 1)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "03-utf16le-tab-excel-unicode-text.txt",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-16LE (BOM)", '\t', "Số điện thoại"),
            rows_read: 4,
            imported: 3,
            duplicates_in_file: 0,
            legacy_converted: 1,
            leading_zero_restored: 0,
            rejects: &[(5, "028 3822 1234", "landline")],
            by_carrier: &[("viettel", 2), ("vinaphone", 1)],
            by_district: &[("Cần Đước", 1), ("Tân An", 1), ("Đức Hòa", 1)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "04-semicolon-vietnamese-header.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ';', "Số điện thoại"),
            rows_read: 3,
            imported: 3,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[],
            by_carrier: &[("mobifone", 1), ("viettel", 1), ("vinaphone", 1)],
            by_district: &[("(none)", 1), ("Tân Trụ", 1), ("Đức Hòa", 1)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "05-crlf-blank-lines.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "phone"),
            rows_read: 3,
            imported: 2,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[(9, "abc", "not_a_number")],
            by_carrier: &[("viettel", 1), ("vinaphone", 1)],
            by_district: &[("Bến Lức", 1), ("Tân An", 1)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "06-quoted-multiline.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "phone"),
            rows_read: 5,
            imported: 3,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[
                (6, "abc", "not_a_number"),
                (10, "not-a-number", "not_a_number"),
            ],
            by_carrier: &[("viettel", 1), ("vinaphone", 2)],
            by_district: &[("(none)", 3)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "07-no-header.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "column 2"),
            rows_read: 4,
            imported: 3,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[(3, "", "empty")],
            by_carrier: &[("mobifone", 1), ("viettel", 1), ("vinaphone", 1)],
            by_district: &[("(none)", 3)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "08-legacy-numbers.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "phone"),
            rows_read: 9,
            imported: 9,
            duplicates_in_file: 0,
            legacy_converted: 8,
            leading_zero_restored: 0,
            rejects: &[],
            by_carrier: &[
                ("gmobile", 1),
                ("mobifone", 3),
                ("vietnamobile", 1),
                ("viettel", 3),
                ("vinaphone", 1),
            ],
            by_district: &[("(none)", 9)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "09-scientific-notation.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "phone"),
            rows_read: 4,
            imported: 1,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[
                (2, "8.49123E+10", "scientific_notation"),
                (3, "9.12E8", "scientific_notation"),
                (4, "8,49123e+10", "scientific_notation"),
            ],
            by_carrier: &[("vinaphone", 1)],
            by_district: &[("Tân An", 1)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "10-landlines.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "phone"),
            rows_read: 4,
            imported: 1,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[
                (2, "0272 3826 123", "landline"),
                (3, "028 3822 1234", "landline"),
                (4, "(024) 3825 1234", "landline"),
            ],
            by_carrier: &[("vinaphone", 1)],
            by_district: &[("Tân An", 1)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "11-foreign-numbers.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "phone"),
            rows_read: 4,
            imported: 1,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[
                // Spreadsheet-safe: a leading + would be read as a formula.
                (2, "'+1 202 555 0100", "foreign_number"),
                (3, "0044 20 7946 0958", "foreign_number"),
                (4, "'+855 12 345 678", "foreign_number"),
            ],
            by_carrier: &[("vinaphone", 1)],
            by_district: &[("(none)", 1)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "12-duplicates.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "phone"),
            rows_read: 6,
            imported: 2,
            duplicates_in_file: 4,
            legacy_converted: 0,
            leading_zero_restored: 1,
            rejects: &[],
            // One per number, with its first row's district (as stored).
            by_carrier: &[("viettel", 1), ("vinaphone", 1)],
            by_district: &[("Bến Lức", 1), ("Tân An", 1)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "13-empty-phone-fields.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "phone"),
            rows_read: 3,
            imported: 1,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[(2, "", "empty"), (3, "", "empty")],
            by_carrier: &[("vinaphone", 1)],
            by_district: &[("Tân An", 1)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "14-short-rows.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "phone"),
            rows_read: 4,
            imported: 2,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[
                (3, "Binh,Tan An", "malformed_row"),
                (4, "Cuong", "malformed_row"),
            ],
            by_carrier: &[("viettel", 1), ("vinaphone", 1)],
            by_district: &[("Bến Lức", 1), ("Đức Hòa", 1)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "15-xlsx-signature.csv",
        args: &[],
        outcome: Outcome::Fails(&["not text", ".xlsx", "CSV UTF-8"]),
    },
    Case {
        file: "16-nul-bytes.csv",
        args: &[],
        outcome: Outcome::Fails(&["NUL bytes", "on line 3", "CSV UTF-8"]),
    },
    Case {
        file: "17-invalid-utf8-mid-file.csv",
        args: &[],
        outcome: Outcome::Fails(&[
            "nothing was imported",
            "invalid UTF-8 at byte 70015 (line 3045)",
            "save it as \"CSV UTF-8\"",
        ]),
    },
    Case {
        file: "18-empty.csv",
        args: &[],
        outcome: Outcome::Fails(&["the file is empty", "right sheet"]),
    },
    Case {
        file: "19-header-only.csv",
        args: &[],
        outcome: Outcome::Fails(&["header row but no data rows", "right sheet"]),
    },
    Case {
        file: "20-district-spellings.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ';', "phone"),
            rows_read: 12,
            imported: 12,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[],
            by_carrier: &[("vinaphone", 12)],
            by_district: &[
                ("(none)", 1),
                ("Quận 7", 1),
                ("Thủ Dầu Một", 1),
                ("Tân An", 3),
                ("thủ dầu một", 1),
                ("Đức Hòa", 5),
            ],
            unknown_districts: &[("Quận 7", 1), ("Thủ Dầu Một", 1), ("thủ dầu một", 1)],
        }),
    },
    Case {
        file: "21-extra-attribute-columns.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "Điện thoại"),
            rows_read: 2,
            imported: 2,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[],
            by_carrier: &[("viettel", 1), ("vinaphone", 1)],
            by_district: &[("Tân An", 1), ("Đức Hòa", 1)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "22-phone-column-by-name.csv",
        args: &["--phone-column", "di dong"],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "Di dong"),
            rows_read: 3,
            imported: 3,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[],
            by_carrier: &[("mobifone", 1), ("viettel", 1), ("vinaphone", 1)],
            by_district: &[("Bến Lức", 1), ("Tân An", 1), ("Tân Trụ", 1)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "22-phone-column-by-name.csv",
        args: &["--phone-column", "Dien thoai"],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "Dien thoai"),
            rows_read: 3,
            imported: 0,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[
                (2, "028 3822 1234", "landline"),
                (3, "", "empty"),
                (4, "0272 3826 123", "landline"),
            ],
            by_carrier: NONE,
            by_district: NONE,
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "23-phone-column-by-number.csv",
        args: &["--phone-column", "4", "--district-column", "1"],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "column 4"),
            rows_read: 2,
            imported: 2,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[],
            by_carrier: &[("viettel", 1), ("vinaphone", 1)],
            by_district: &[("Tân An", 1), ("Đức Hòa", 1)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "23-phone-column-by-number.csv",
        args: &["--phone-column", "5"],
        outcome: Outcome::Fails(&["--phone-column '5' is not a column", "from 1 to 4"]),
    },
    Case {
        file: "24-no-phone-column.csv",
        args: &[],
        outcome: Outcome::Fails(&[
            "no phone column found among headers [Họ tên, Địa chỉ, Quận]",
            "--phone-column NAME",
        ]),
    },
    Case {
        file: "25-wrong-phone-column-name.csv",
        args: &["--phone-column", "mobile_no"],
        outcome: Outcome::Fails(&[
            "--phone-column 'mobile_no' is not a column of this file",
            "columns are: name, phone",
        ]),
    },
    Case {
        file: "26-leading-zero-lost.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "phone"),
            rows_read: 4,
            imported: 4,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 3,
            rejects: &[],
            by_carrier: &[("mobifone", 1), ("viettel", 1), ("vinaphone", 2)],
            by_district: &[("Tân An", 4)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "27-messy-separators.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "phone"),
            rows_read: 10,
            imported: 9,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[(11, "0988#123456", "not_a_number")],
            by_carrier: &[
                ("mobifone", 2),
                ("other", 1),
                ("vietnamobile", 1),
                ("viettel", 3),
                ("vinaphone", 2),
            ],
            by_district: &[("(none)", 9)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "28-utf16be-bom.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-16BE (BOM)", ',', "phone"),
            rows_read: 2,
            imported: 2,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[],
            by_carrier: &[("viettel", 1), ("vinaphone", 1)],
            by_district: &[("Tân An", 1), ("Đức Huệ", 1)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "29-excel-sep-directive.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ';', "phone"),
            rows_read: 2,
            imported: 2,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[],
            by_carrier: &[("viettel", 1), ("vinaphone", 1)],
            by_district: &[("(none)", 2)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "30-xls-signature.xls",
        args: &[],
        outcome: Outcome::Fails(&["old Excel .xls", "CSV UTF-8"]),
    },
    Case {
        file: "31-invalid-utf8-windows-1258.csv",
        args: &[],
        outcome: Outcome::Fails(&[
            "invalid UTF-8 at byte 44 (line 3)",
            "Windows-1258",
            "save it as \"CSV UTF-8\"",
        ]),
    },
    Case {
        file: "32-nfd-district-names.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "phone"),
            rows_read: 2,
            imported: 2,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[],
            by_carrier: &[("viettel", 1), ("vinaphone", 1)],
            by_district: &[("Cần Giuộc", 1), ("Đức Huệ", 1)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "33-tab-separated-utf8.tsv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", '\t', "phone"),
            rows_read: 2,
            imported: 2,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[],
            by_carrier: &[("viettel", 1), ("vinaphone", 1)],
            by_district: &[("Tân An", 1), ("Vĩnh Hưng", 1)],
            unknown_districts: NONE,
        }),
    },
    Case {
        file: "34-html-disguised-as-xls.xls",
        args: &[],
        outcome: Outcome::Fails(&["not CSV", "HTML", "CSV UTF-8"]),
    },
    Case {
        file: "35-unterminated-quote.csv",
        args: &[],
        outcome: Outcome::Fails(&["on line 2 is never closed", "remove that stray \""]),
    },
    Case {
        file: "36-carrier-mix.csv",
        args: &[],
        outcome: Outcome::Imports(Expected {
            detected: ("UTF-8", ',', "phone"),
            rows_read: 10,
            imported: 9,
            duplicates_in_file: 0,
            legacy_converted: 0,
            leading_zero_restored: 0,
            rejects: &[(11, "0992345678", "unknown_prefix")],
            by_carrier: &[
                ("gmobile", 1),
                ("itel", 1),
                ("mobifone", 2),
                ("other", 1),
                ("reddi", 1),
                ("vietnamobile", 1),
                ("viettel", 1),
                ("vinaphone", 1),
            ],
            by_district: &[("(none)", 9)],
            unknown_districts: NONE,
        }),
    },
];

fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), *v)).collect()
}

fn json_map(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .unwrap_or_else(|| panic!("expected an object, got {v}"))
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().expect("a count")))
        .collect()
}

fn check_import(case: &Case, e: &Expected) -> Result<(), String> {
    let ws = Workspace::new(case.file);
    let rejects = ws.path("rejects.csv");
    let first = ws.import(&corpus(case.file), "L", case.args, Some(&rejects));
    let s = first.json()?;
    let mut problems = Vec::new();
    let eq = |what: &str, got: &Value, want: Value| {
        if *got != want {
            Some(format!("{what}: got {got}, want {want}"))
        } else {
            None
        }
    };
    let d = &s["detected"];
    problems.extend(eq("encoding", &d["encoding"], e.detected.0.into()));
    problems.extend(eq(
        "delimiter",
        &d["delimiter"],
        e.detected.1.to_string().into(),
    ));
    problems.extend(eq("phone column", &d["phone_column"], e.detected.2.into()));
    problems.extend(eq("rows_read", &s["rows_read"], e.rows_read.into()));
    problems.extend(eq("imported", &s["imported"], e.imported.into()));
    problems.extend(eq("already_present", &s["already_present"], 0.into()));
    problems.extend(eq(
        "duplicates_in_file",
        &s["duplicates_in_file"],
        e.duplicates_in_file.into(),
    ));
    problems.extend(eq(
        "legacy_converted",
        &s["legacy_converted"],
        e.legacy_converted.into(),
    ));
    problems.extend(eq(
        "leading_zero_restored",
        &s["leading_zero_restored"],
        e.leading_zero_restored.into(),
    ));
    problems.extend(eq(
        "rejected",
        &s["rejected"],
        (e.rejects.len() as u64).into(),
    ));
    problems.extend(eq("previous_import", &s["previous_import"], Value::Null));
    let mut by_reason = BTreeMap::new();
    for (_, _, reason) in e.rejects {
        *by_reason.entry((*reason).to_string()).or_insert(0u64) += 1;
    }
    let checks = [
        ("rejected_by_reason", &s["rejected_by_reason"], by_reason),
        ("by_carrier", &s["by_carrier"], map(e.by_carrier)),
        ("by_district", &s["by_district"], map(e.by_district)),
        (
            "unknown_districts",
            &s["unknown_districts"],
            map(e.unknown_districts),
        ),
    ];
    for (what, got, want) in checks {
        if json_map(got) != want {
            problems.push(format!("{what}: got {got}, want {want:?}"));
        }
    }
    common::check_invariants(&s).map_err(|p| format!("{}: {p}", case.file))?;

    let got_rejects = common::read_rejects(&rejects);
    let want_rejects: Vec<(u64, String, String)> = e
        .rejects
        .iter()
        .map(|(l, raw, r)| (*l, (*raw).to_string(), (*r).to_string()))
        .collect();
    if got_rejects != want_rejects {
        problems.push(format!(
            "rejects file: got {got_rejects:?}, want {want_rejects:?}"
        ));
    }
    let members = ws.list_members("L");
    if members != Some(e.imported) {
        problems.push(format!(
            "`lists` shows {members:?} members, want {}",
            e.imported
        ));
    }

    // The same file again: said so, nothing added, every distinct number already present.
    let again = ws.import(&corpus(case.file), "L", case.args, None).json()?;
    problems.extend(eq("again: imported", &again["imported"], 0.into()));
    problems.extend(eq(
        "again: already_present",
        &again["already_present"],
        (e.imported).into(),
    ));
    problems.extend(eq(
        "again: duplicates_in_file",
        &again["duplicates_in_file"],
        e.duplicates_in_file.into(),
    ));
    problems.extend(eq(
        "again: rejected",
        &again["rejected"],
        s["rejected"].clone(),
    ));
    problems.extend(eq(
        "again: previous_import.import_id",
        &again["previous_import"]["import_id"],
        s["import_id"].clone(),
    ));
    problems.extend(eq(
        "again: previous_import.imported",
        &again["previous_import"]["imported"],
        e.imported.into(),
    ));
    if ws.list_members("L") != Some(e.imported) {
        problems.push("the second import changed the list".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}:\n    {}", case.file, problems.join("\n    ")))
    }
}

fn check_failure(case: &Case, needles: &[&str]) -> Result<(), String> {
    let ws = Workspace::new(case.file);
    let rejects = ws.path("rejects.csv");
    let out = ws.import(&corpus(case.file), "L", case.args, Some(&rejects));
    let mut problems = Vec::new();
    if out.code != Some(1) {
        problems.push(format!("exit code {:?}, want 1", out.code));
    }
    if !out.stderr.starts_with("error: ") {
        problems.push(format!(
            "stderr does not start with `error: `: {}",
            out.stderr
        ));
    }
    for n in needles {
        if !out.stderr.contains(n) {
            problems.push(format!("stderr lacks {n:?}: {}", out.stderr));
        }
    }
    if !out.stdout.trim().is_empty() {
        problems.push(format!("stdout should be empty: {}", out.stdout));
    }
    if rejects.exists() {
        problems.push("a rejects file was left behind by a failed import".into());
    }
    match ws.list_members("L") {
        None | Some(0) => {}
        Some(n) => problems.push(format!("the list holds {n} members after a failed import")),
    }
    if ws.subscriber_count() != 0 {
        problems.push("subscribers were stored by a failed import".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}:\n    {}", case.file, problems.join("\n    ")))
    }
}

#[test]
fn corpus_files_have_their_exact_outcomes() {
    let files: std::collections::BTreeSet<&str> = CASES.iter().map(|c| c.file).collect();
    assert!(
        files.len() >= 25,
        "the corpus has only {} files",
        files.len()
    );
    // Every file in the folder has a case.
    for entry in std::fs::read_dir(corpus("")).expect("tests/corpus") {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name != "README.md" {
            assert!(files.contains(name.as_str()), "{name} has no case");
        }
    }
    let failures: Vec<String> = CASES
        .iter()
        .filter_map(|case| {
            match &case.outcome {
                Outcome::Imports(e) => check_import(case, e),
                Outcome::Fails(needles) => check_failure(case, needles),
            }
            .err()
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn first_occurrence_wins_and_attributes_are_kept() {
    let ws = Workspace::new("first-occurrence");
    ws.import(&corpus("12-duplicates.csv"), "L", &[], None)
        .json()
        .unwrap();
    assert_eq!(
        ws.query_text("SELECT district FROM subscribers WHERE msisdn = '84912345678'"),
        vec!["Tân An"]
    );
    ws.import(&corpus("21-extra-attribute-columns.csv"), "L", &[], None)
        .json()
        .unwrap();
    let attrs = ws.query_text(
        "SELECT CAST(attributes AS TEXT) FROM subscribers WHERE msisdn = '84987654321'",
    );
    let attrs: Value = serde_json::from_str(&attrs[0]).unwrap();
    assert_eq!(
        attrs,
        serde_json::json!({"STT": "2", "Họ và tên": "Trần Thị Bình", "Địa chỉ": "ấp 1", "Ghi chú": "VIP \"A\""})
    );
}

#[test]
fn overlapping_files_count_what_the_list_already_holds() {
    let ws = Workspace::new("overlap");
    let a = ws
        .import(&corpus("01-basic.csv"), "L", &[], None)
        .json()
        .unwrap();
    assert_eq!(a["imported"], 5);
    // 12-duplicates holds 0912345678 (in 01-basic) and 0987654321 (in 01-basic), 6 rows.
    let b = ws
        .import(&corpus("12-duplicates.csv"), "L", &[], None)
        .json()
        .unwrap();
    assert_eq!(
        (
            &b["imported"],
            &b["already_present"],
            &b["duplicates_in_file"]
        ),
        (&Value::from(0), &Value::from(2), &Value::from(4))
    );
    assert_eq!(b["previous_import"], Value::Null);
    // 27-messy-separators shares 0912345678, 0987654321, 0901234567 and 0923456789 with
    // 01-basic, and has 5 numbers of its own.
    let c = ws
        .import(&corpus("27-messy-separators.csv"), "L", &[], None)
        .json()
        .unwrap();
    assert_eq!(
        (&c["imported"], &c["already_present"]),
        (&5.into(), &4.into())
    );
    assert_eq!(ws.list_members("L"), Some(10));
    // Another list shares the subscribers but has its own members.
    let d = ws
        .import(&corpus("27-messy-separators.csv"), "other", &[], None)
        .json()
        .unwrap();
    assert_eq!(
        (&d["imported"], &d["already_present"]),
        (&9.into(), &0.into())
    );
    assert_eq!(ws.list_members("other"), Some(9));
    assert_eq!(ws.subscriber_count(), 10);
}

#[test]
fn generated_file_matches_its_ground_truth_in_every_form() {
    for form in [
        &[][..],
        &["--delimiter", "semicolon", "--crlf", "--bom"],
        &["--delimiter", "tab", "--crlf", "--utf16"],
    ] {
        let ws = Workspace::new("generated");
        let file = ws.path("gen.csv");
        let mut args = vec![
            "gen-sample",
            "--rows",
            "20000",
            "--seed",
            "11",
            "--json",
            "--out",
            file.to_str().unwrap(),
        ];
        args.extend_from_slice(form);
        let truth = ws.smscast(&args).json().unwrap();
        let s = ws.import(&file, "L", &[], None).json().unwrap();
        common::check_invariants(&s).unwrap();
        assert_eq!(s["rows_read"], truth["rows"], "{form:?}");
        assert_eq!(s["imported"], truth["valid_unique"], "{form:?}");
        assert_eq!(s["duplicates_in_file"], truth["duplicates"], "{form:?}");
        assert_eq!(s["rejected"], truth["bad"], "{form:?}");
        assert_eq!(s["legacy_converted"], truth["legacy"], "{form:?}");
        let unknown = json_map(&s["unknown_districts"]);
        assert!(unknown.is_empty(), "{form:?}: {unknown:?}");
        assert_eq!(json_map(&s["by_district"]).len(), 15, "{form:?}");
    }
}

#[test]
fn a_list_larger_than_the_sort_memory_is_sorted_on_disk_with_the_same_result() {
    let maker = Workspace::new("spill-gen");
    let file = maker.path("big.csv");
    let made = maker.smscast(&[
        "gen-sample",
        "--rows",
        "60000",
        "--seed",
        "5",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(made.code, Some(0), "{}", made.stderr);

    let in_memory = Workspace::new("spill-memory");
    let a = in_memory.import(&file, "L", &[], None).json().unwrap();
    // About 3 MB of rows: one MiB of sort memory makes several runs on disk.
    let on_disk = Workspace::new("spill-disk");
    let b = on_disk
        .import(&file, "L", &["--sort-memory", "1"], None)
        .json()
        .unwrap();
    common::check_invariants(&b).unwrap();
    for k in [
        "rows_read",
        "imported",
        "duplicates_in_file",
        "rejected",
        "by_carrier",
        "by_district",
    ] {
        assert_eq!(a[k], b[k], "{k}");
    }
    let dump = if in_memory.is_postgres() {
        "SELECT string_agg(id || '|' || COALESCE(district, '') || '|' || COALESCE(CAST(attributes AS TEXT), ''), chr(10) ORDER BY id)
         FROM subscribers"
    } else {
        "SELECT group_concat(id || '|' || COALESCE(district, '') || '|' || COALESCE(attributes, ''), char(10))
         FROM (SELECT * FROM subscribers ORDER BY id)"
    };
    assert_eq!(in_memory.query_text(dump), on_disk.query_text(dump));

    // The runs go to $TMPDIR: where it cannot write, the import says so and imports nothing.
    let nowhere = Workspace::new("spill-nowhere");
    let out = nowhere
        .command()
        .env("TMPDIR", nowhere.path("missing"))
        .args([
            "subscribers",
            "import",
            file.to_str().unwrap(),
            "--list",
            "L",
            "--sort-memory",
            "1",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("TMPDIR"), "{stderr}");
    assert_eq!(nowhere.list_members("L").unwrap_or(0), 0);
}
