//! Vietnamese mobile numbers (MSISDNs): a forgiving parser for imported lists and a small,
//! `Copy` canonical type.
//!
//! # Canonical form
//!
//! [`Msisdn`] always holds `84` followed by the 9-digit national significant number (NSN),
//! e.g. `84912345678`. [`Msisdn::national`] gives `0912345678`, [`Msisdn::e164`] gives
//! `+84912345678`.
//!
//! # Parser rules ([`Msisdn::parse`])
//!
//! 1. Trim Unicode whitespace (NBSP included) and invisible characters (BOM, zero-width and
//!    bidi marks). Empty → [`Reject::Empty`]. Spreadsheet text wrappers are removed:
//!    a leading apostrophe (`'0912345678`) and formula text (`="0912345678"`), and a
//!    `tel:` URI scheme (`tel:+84912345678`). Full-width digits and plus (`０９１２…`) read
//!    as ASCII ones.
//! 2. Scientific notation (`8.49123E+10`, `8,49123e+10`, `9.12E8`) →
//!    [`Reject::ScientificNotation`]: the spreadsheet already rounded the digits away, so the
//!    number cannot be recovered.
//! 3. Separators are ignored: whitespace, `.` `,` `-` (and Unicode dashes) `(` `)` `/`.
//!    A `+` is allowed only before the first digit. Anything else → [`Reject::NotANumber`].
//! 4. The digits are then classified **by length, not by prefix**:
//!    * `+84`/`0084`/`84` + NSN (a stray trunk `0` after the country code, as in
//!      `+84 (0) 912…`, is dropped); `84` without `+` counts as a country code unless the
//!      input is exactly 9 digits;
//!    * `+` or `00` followed by another country code → [`Reject::ForeignNumber`];
//!    * `0` + NSN;
//!    * no leading `0`: the spreadsheet dropped it → restored, [`Fix::LeadingZeroRestored`].
//! 5. The NSN must be 9 digits and match libphonenumber's mobile pattern (the table
//!    `MOBILE_PREFIXES`, checked against the pattern by a test). A 10-digit NSN starting
//!    with `1` is a pre-2018 11-digit number (`01xx` + 7 digits) and is renumbered through
//!    `LEGACY_PREFIXES` ([`Fix::LegacyPrefix`]). An NSN starting with `2` is a landline
//!    ([`Reject::Landline`]); other unknown prefixes → [`Reject::UnknownPrefix`]; otherwise
//!    [`Reject::TooShort`] / [`Reject::TooLong`].
//! 6. Only as a fallback, when the digits are otherwise too long, a float rendering such as
//!    `912345678.0` (a column read as numbers) is read without its `.0`.
//!
//! `parse` does not allocate: the digits are collected in a stack buffer and the prefix
//! tables are compiled into lookup arrays at compile time.
//!
//! # Why `Display` is masked
//!
//! A phone number is personal data (Decree 13/2023/NĐ-CP). `Display`, `Debug` and
//! `Serialize` all print the masked form `8491****678`, so a number that reaches a log line,
//! an error message, a report or a JSON dump is masked by default. Code that really needs the
//! number (the database, the gateway request) must ask for it explicitly with
//! [`Msisdn::as_str`], [`Msisdn::national`] or [`Msisdn::e164`].

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

// ---------------------------------------------------------------------------------------------
// Data (source: /work/shared/domain.md, "Vietnamese mobile numbers"). Edit here only; the
// tables are checked and compiled into lookup arrays at compile time.
// ---------------------------------------------------------------------------------------------

/// Valid mobile prefixes of the 9-digit national number (the digits after the leading `0`),
/// 1 to 4 digits long, with their carrier. The longest matching prefix wins. A number is a
/// valid mobile number exactly when some prefix here matches, so `Carrier::Other` marks
/// ranges that are valid but not attributed to a carrier.
///
/// Together the prefixes equal libphonenumber's (9.0.43) pattern
/// `121[0-3]\d{5}|(?:1[46]0|(?:3\d|7[06-9])\d|5(?:[1689]\d|2[238]|59)|8(?:[1-8]\d|9[6-9])|9(?:[0-8]\d|9[013-9]))\d{6}`
/// (a test checks it against that pattern, pasted verbatim). Entries marked *unsure* in
/// domain.md: 30, 51, 140, 160, 1210–1213, 559.
const MOBILE_PREFIXES: &[(&str, Carrier)] = &[
    // Viettel
    ("32", Carrier::Viettel),
    ("33", Carrier::Viettel),
    ("34", Carrier::Viettel),
    ("35", Carrier::Viettel),
    ("36", Carrier::Viettel),
    ("37", Carrier::Viettel),
    ("38", Carrier::Viettel),
    ("39", Carrier::Viettel),
    ("86", Carrier::Viettel),
    ("96", Carrier::Viettel),
    ("97", Carrier::Viettel),
    ("98", Carrier::Viettel),
    ("160", Carrier::Viettel), // unsure (libphonenumber only)
    // VinaPhone
    ("81", Carrier::Vinaphone),
    ("82", Carrier::Vinaphone),
    ("83", Carrier::Vinaphone),
    ("84", Carrier::Vinaphone),
    ("85", Carrier::Vinaphone),
    ("88", Carrier::Vinaphone),
    ("91", Carrier::Vinaphone),
    ("94", Carrier::Vinaphone),
    // MobiFone
    ("70", Carrier::Mobifone),
    ("76", Carrier::Mobifone),
    ("77", Carrier::Mobifone),
    ("78", Carrier::Mobifone),
    ("79", Carrier::Mobifone),
    ("896", Carrier::Mobifone),
    ("897", Carrier::Mobifone),
    ("898", Carrier::Mobifone),
    ("899", Carrier::Mobifone),
    ("90", Carrier::Mobifone),
    ("93", Carrier::Mobifone),
    ("30", Carrier::Mobifone),   // unsure (libphonenumber only)
    ("51", Carrier::Mobifone),   // unsure (libphonenumber only)
    ("1210", Carrier::Mobifone), // unsure (libphonenumber only)
    ("1211", Carrier::Mobifone), // unsure
    ("1212", Carrier::Mobifone), // unsure
    ("1213", Carrier::Mobifone), // unsure
    ("140", Carrier::Mobifone),  // unsure (libphonenumber only; its carrier data says MobiFone)
    // Vietnamobile
    ("522", Carrier::Vietnamobile),
    ("523", Carrier::Vietnamobile),
    ("528", Carrier::Vietnamobile),
    ("56", Carrier::Vietnamobile),
    ("58", Carrier::Vietnamobile),
    ("92", Carrier::Vietnamobile),
    // Gmobile
    ("59", Carrier::Gmobile),
    ("993", Carrier::Gmobile),
    ("994", Carrier::Gmobile),
    ("995", Carrier::Gmobile),
    ("996", Carrier::Gmobile),
    ("997", Carrier::Gmobile),
    // iTel (Indochina Telecom, MVNO on VinaPhone)
    ("87", Carrier::Itel),
    ("998", Carrier::Itel),
    ("999", Carrier::Itel),
    // Reddi (MVNO)
    ("559", Carrier::Reddi), // unsure
    // Valid per libphonenumber, carrier not in domain.md
    ("31", Carrier::Other),
    ("95", Carrier::Other),
    ("990", Carrier::Other),
    ("991", Carrier::Other),
];

/// Pre-2018 11-digit prefixes and their replacements; the last 7 digits are kept.
/// Written as in domain.md: old `01xx` → new `0xx`. Every new prefix must be a valid
/// 2-digit mobile prefix in `MOBILE_PREFIXES` (checked at compile time).
const LEGACY_PREFIXES: &[(&str, &str)] = &[
    ("0120", "070"),
    ("0121", "079"),
    ("0122", "077"),
    ("0126", "076"),
    ("0128", "078"),
    ("0123", "083"),
    ("0124", "084"),
    ("0125", "085"),
    ("0127", "081"),
    ("0129", "082"),
    ("0162", "032"),
    ("0163", "033"),
    ("0164", "034"),
    ("0165", "035"),
    ("0166", "036"),
    ("0167", "037"),
    ("0168", "038"),
    ("0169", "039"),
    ("0186", "056"),
    ("0188", "058"),
    ("0199", "059"),
];

/// Country code of Viet Nam.
const COUNTRY_CODE: &[u8] = b"84";
/// International call prefix written instead of `+`.
const INTERNATIONAL_PREFIX: &[u8] = b"00";
/// National trunk prefix.
const TRUNK_PREFIX: u8 = b'0';
/// First NSN digit of fixed-line numbers (area codes 02x: 024 Hanoi, 028 HCMC, 0272 Long An).
const LANDLINE_FIRST_DIGIT: u8 = b'2';
/// First NSN digit of the 10-digit legacy NSNs (`01xx` + 7 digits).
const LEGACY_FIRST_DIGIT: u8 = b'1';

/// Characters ignored inside a number besides Unicode whitespace: punctuation people use to
/// group digits, Unicode dashes, and invisible characters that copy-paste brings along.
const SEPARATORS: &[char] = &[
    '.', ',', '-', '(', ')', '/', // ASCII grouping
    '\u{2010}', '\u{2011}', '\u{2012}', '\u{2013}', '\u{2014}', '\u{2015}',
    '\u{2212}', // dashes
    '\u{00AD}', // soft hyphen
];

/// Invisible characters trimmed and ignored like whitespace (`char::is_whitespace` does not
/// cover them): zero-width space/joiners, bidi marks and embeddings, word joiner, BOM.
const INVISIBLES: &[char] = &[
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}',
    '\u{202D}', '\u{202E}', '\u{2060}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{FEFF}',
];

/// Masking keeps this many leading characters of the canonical form ("8491")...
const MASK_KEEP_FRONT: usize = 4;
/// ...and this many trailing ones ("678"); the 4 in between become `*`.
const MASK_KEEP_BACK: usize = 3;

// ---------------------------------------------------------------------------------------------
// Compile-time lookup tables
// ---------------------------------------------------------------------------------------------

const NSN_LEN: usize = 9;
const CANONICAL_LEN: usize = COUNTRY_CODE.len() + NSN_LEN;
/// Prefixes are resolved on the first 4 NSN digits.
const PREFIX_DIGITS: usize = 4;
const PREFIX_SLOTS: usize = 10usize.pow(PREFIX_DIGITS as u32);
const NO_ENTRY: u8 = u8::MAX;

const fn digits_value(b: &[u8], from: usize, to: usize) -> usize {
    let mut value = 0;
    let mut i = from;
    while i < to {
        assert!(
            b[i].is_ascii_digit(),
            "prefix tables must contain digits only"
        );
        value = value * 10 + (b[i] - b'0') as usize;
        i += 1;
    }
    value
}

/// `table[first 4 NSN digits]` = `Carrier as u8`, or `NO_ENTRY` for an invalid prefix.
const fn build_carrier_table() -> [u8; PREFIX_SLOTS] {
    let mut table = [NO_ENTRY; PREFIX_SLOTS];
    let mut set_by_len = [0u8; PREFIX_SLOTS];
    let mut len = 1;
    while len <= PREFIX_DIGITS {
        let mut i = 0;
        while i < MOBILE_PREFIXES.len() {
            let (prefix, carrier) = MOBILE_PREFIXES[i];
            let p = prefix.as_bytes();
            assert!(
                !p.is_empty() && p.len() <= PREFIX_DIGITS,
                "mobile prefixes have 1 to 4 digits"
            );
            assert!(
                p[0] != TRUNK_PREFIX && p[0] != LANDLINE_FIRST_DIGIT,
                "mobile prefixes are written without the leading 0 and never start with 2"
            );
            if p.len() == len {
                let span = 10usize.pow((PREFIX_DIGITS - len) as u32);
                let start = digits_value(p, 0, len) * span;
                assert!(
                    set_by_len[start] as usize != len,
                    "duplicate prefix in MOBILE_PREFIXES"
                );
                let mut j = 0;
                while j < span {
                    table[start + j] = carrier as u8;
                    set_by_len[start + j] = len as u8;
                    j += 1;
                }
            }
            i += 1;
        }
        len += 1;
    }
    table
}

/// `table[xy]` for legacy `01xy` = the new 2-digit prefix as a number, or `NO_ENTRY`.
const fn build_legacy_table() -> [u8; 100] {
    let mut table = [NO_ENTRY; 100];
    let mut i = 0;
    while i < LEGACY_PREFIXES.len() {
        let (old, new) = LEGACY_PREFIXES[i];
        let (o, n) = (old.as_bytes(), new.as_bytes());
        assert!(
            o.len() == 4 && o[0] == b'0' && o[1] == b'1',
            "legacy prefixes are written 01xx"
        );
        assert!(
            n.len() == 3 && n[0] == b'0' && n[1] != b'0',
            "new prefixes are written 0xx"
        );
        let key = digits_value(o, 2, 4);
        let value = digits_value(n, 1, 3);
        assert!(table[key] == NO_ENTRY, "duplicate legacy prefix");
        let mut j = 0;
        while j < 100 {
            assert!(
                CARRIER_TABLE[value * 100 + j] != NO_ENTRY,
                "a legacy prefix maps to an invalid mobile prefix"
            );
            j += 1;
        }
        table[key] = value as u8;
        i += 1;
    }
    table
}

const CARRIER_TABLE: [u8; PREFIX_SLOTS] = build_carrier_table();
static CARRIER_BY_PREFIX: [u8; PREFIX_SLOTS] = CARRIER_TABLE;
static LEGACY_BY_KEY: [u8; 100] = build_legacy_table();

/// Index into `CARRIER_BY_PREFIX` for an NSN of at least 4 ASCII digits.
fn prefix_slot(nsn: &[u8]) -> usize {
    nsn[..PREFIX_DIGITS]
        .iter()
        .fold(0, |acc, &d| acc * 10 + usize::from(d - b'0'))
}

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/// Canonical Vietnamese mobile number: `"84"` + 9 national digits. `Copy`, no heap.
///
/// `Display`, `Debug` and `Serialize` print the masked form (`8491****678`); use
/// [`Msisdn::as_str`] when the real number is needed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Msisdn([u8; CANONICAL_LEN]);

/// A successful parse, with what had to be repaired (for import statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Parsed {
    pub msisdn: Msisdn,
    pub fix: Option<Fix>,
}

/// What the parser had to repair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fix {
    /// A pre-2018 11-digit number (`01xx…`) was renumbered to its current prefix. Takes
    /// precedence over `LeadingZeroRestored` when both applied (`1689123456`).
    LegacyPrefix,
    /// The leading `0` was missing (a spreadsheet stored the number as a number).
    LeadingZeroRestored,
}

impl Fix {
    /// Stable snake_case code: `"legacy_prefix"`, `"leading_zero_restored"`.
    pub fn code(&self) -> &'static str {
        match self {
            Fix::LegacyPrefix => "legacy_prefix",
            Fix::LeadingZeroRestored => "leading_zero_restored",
        }
    }
}

/// Mobile network operator, by number prefix (numbers ported between carriers keep their
/// prefix, so this is the *original* carrier).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Carrier {
    Viettel,
    Vinaphone,
    Mobifone,
    Vietnamobile,
    Gmobile,
    Itel,
    Reddi,
    /// A valid mobile number whose prefix is not attributed to a carrier.
    Other,
}

impl Carrier {
    /// Every carrier, in declaration order.
    pub const ALL: [Carrier; 8] = [
        Carrier::Viettel,
        Carrier::Vinaphone,
        Carrier::Mobifone,
        Carrier::Vietnamobile,
        Carrier::Gmobile,
        Carrier::Itel,
        Carrier::Reddi,
        Carrier::Other,
    ];

    /// Every carrier's stored name, in declaration order.
    pub fn names() -> [&'static str; 8] {
        Self::ALL.map(|c| c.as_str())
    }

    /// Stable lowercase name (database, config, CLI): `"viettel"`, `"vinaphone"`, ...
    pub fn as_str(&self) -> &'static str {
        match self {
            Carrier::Viettel => "viettel",
            Carrier::Vinaphone => "vinaphone",
            Carrier::Mobifone => "mobifone",
            Carrier::Vietnamobile => "vietnamobile",
            Carrier::Gmobile => "gmobile",
            Carrier::Itel => "itel",
            Carrier::Reddi => "reddi",
            Carrier::Other => "other",
        }
    }

    fn display_name(&self) -> &'static str {
        match self {
            Carrier::Viettel => "Viettel",
            Carrier::Vinaphone => "VinaPhone",
            Carrier::Mobifone => "MobiFone",
            Carrier::Vietnamobile => "Vietnamobile",
            Carrier::Gmobile => "Gmobile",
            Carrier::Itel => "iTel",
            Carrier::Reddi => "Reddi",
            Carrier::Other => "Other",
        }
    }
}

impl Carrier {
    /// A carrier as lists and carriers' files write it: any case, spaces, dashes and
    /// diacritics ignored, the stored names ("viettel", "VinaPhone", "iTel", …) and the
    /// common other names ("VNPT" and "Vina" for VinaPhone, "Mobi" and "MobiPhone" for
    /// MobiFone, "Vietnammobile", "Beeline" for Gmobile, "Indochina Telecom" for iTel).
    /// `None` for anything else.
    pub fn from_source(s: &str) -> Option<Carrier> {
        let key = crate::district::fold_key(s);
        if let Some(c) = Carrier::ALL.into_iter().find(|c| c.as_str() == key) {
            return Some(c);
        }
        Some(match key.as_str() {
            "viettelmobile" | "viettelteleco" | "vietteltelecom" => Carrier::Viettel,
            "vnpt" | "vina" | "vinafone" | "vnptvinaphone" => Carrier::Vinaphone,
            "mobi" | "mobiphone" | "mobifon" | "vms" => Carrier::Mobifone,
            "vietnammobile" | "vnmobile" => Carrier::Vietnamobile,
            "beeline" | "gtel" | "gtelmobile" => Carrier::Gmobile,
            "indochinatelecom" => Carrier::Itel,
            _ => return None,
        })
    }
}

impl fmt::Display for Carrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.display_name())
    }
}

/// Error of `Carrier::from_str`: the name that was not recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownCarrier(pub String);

impl fmt::Display for UnknownCarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown carrier {:?}; expected one of", self.0)?;
        for (i, c) in Carrier::ALL.iter().enumerate() {
            write!(f, "{}{}", if i == 0 { " " } else { ", " }, c.as_str())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownCarrier {}

impl FromStr for Carrier {
    type Err = UnknownCarrier;

    /// Case-insensitive; accepts the [`Carrier::as_str`] names (which also covers the display
    /// names: "VinaPhone", "iTel", ...).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Carrier::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownCarrier(s.to_owned()))
    }
}

/// Why a field is not a Vietnamese mobile number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reject {
    Empty,
    ScientificNotation,
    NotANumber,
    TooShort,
    TooLong,
    Landline,
    UnknownPrefix,
    ForeignNumber,
}

impl Reject {
    /// Stable snake_case code (also the serde form): `"empty"`, `"scientific_notation"`, ...
    pub fn code(&self) -> &'static str {
        match self {
            Reject::Empty => "empty",
            Reject::ScientificNotation => "scientific_notation",
            Reject::NotANumber => "not_a_number",
            Reject::TooShort => "too_short",
            Reject::TooLong => "too_long",
            Reject::Landline => "landline",
            Reject::UnknownPrefix => "unknown_prefix",
            Reject::ForeignNumber => "foreign_number",
        }
    }

    /// One human sentence: what is wrong and what to do.
    pub fn explain(&self) -> &'static str {
        match self {
            Reject::Empty => "the field is empty — fill in the number or remove the row",
            Reject::ScientificNotation => {
                "a spreadsheet turned the number into scientific notation (8.49123E+10); \
                 the digits are lost — re-export the column as text"
            }
            Reject::NotANumber => {
                "the field contains letters or symbols that are not part of a phone number — \
                 keep only digits, spaces, dots, dashes, parentheses and a leading +"
            }
            Reject::TooShort => {
                "too few digits for a Vietnamese mobile number (0 + 9 digits or 84 + 9 digits) \
                 — check the source for a missing digit"
            }
            Reject::TooLong => {
                "too many digits for a Vietnamese mobile number (0 + 9 digits or 84 + 9 digits) \
                 — check for an extra digit or two numbers in one field"
            }
            Reject::Landline => {
                "this is a landline number (area code 02x), which cannot receive SMS — \
                 ask for a mobile number instead"
            }
            Reject::UnknownPrefix => {
                "the prefix is not a Vietnamese mobile prefix, current or pre-2018 — \
                 check the number for a typo"
            }
            Reject::ForeignNumber => {
                "the number has a foreign country code — only Vietnamese (+84) mobile \
                 numbers can be sent to; remove it from the list"
            }
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.explain())
    }
}

impl std::error::Error for Reject {}

// ---------------------------------------------------------------------------------------------
// Msisdn
// ---------------------------------------------------------------------------------------------

impl Msisdn {
    /// The forgiving parser for imported fields; see the module documentation for the rules.
    pub fn parse(raw: &str) -> Result<Parsed, Reject> {
        parse_field(raw)
    }

    /// Strict: exactly `"84"` + 9 ASCII digits, nothing else (database round-trip). The
    /// prefix is deliberately not checked, so stored numbers still load after the prefix
    /// table changes; such numbers report [`Carrier::Other`].
    pub fn from_canonical(s: &str) -> Option<Msisdn> {
        let b = s.as_bytes();
        if b.len() != CANONICAL_LEN
            || !b.starts_with(COUNTRY_CODE)
            || !b.iter().all(u8::is_ascii_digit)
        {
            return None;
        }
        let mut digits = [0; CANONICAL_LEN];
        digits.copy_from_slice(b);
        Some(Msisdn(digits))
    }

    /// The canonical number as an integer, `84912345678`: the subscriber's key in the
    /// database (sorting by it sorts by the canonical text too: every number has 11 digits).
    pub fn as_u64(&self) -> u64 {
        self.0.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0'))
    }

    /// The inverse of [`Msisdn::as_u64`] (strict, like [`Msisdn::from_canonical`]).
    pub fn from_u64(n: u64) -> Option<Msisdn> {
        let mut digits = [0; CANONICAL_LEN];
        let mut rest = n;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        if rest != 0 || !digits.starts_with(COUNTRY_CODE) {
            return None;
        }
        Some(Msisdn(digits))
    }

    /// Canonical form, `"84912345678"`. This is the real number: never log it.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("Msisdn holds ASCII digits")
    }

    /// National form, `"0912345678"`.
    pub fn national(&self) -> String {
        let mut s = String::with_capacity(1 + NSN_LEN);
        s.push(char::from(TRUNK_PREFIX));
        s.push_str(&self.as_str()[COUNTRY_CODE.len()..]);
        s
    }

    /// E.164 form, `"+84912345678"`.
    pub fn e164(&self) -> String {
        let mut s = String::with_capacity(1 + CANONICAL_LEN);
        s.push('+');
        s.push_str(self.as_str());
        s
    }

    /// Masked form for logs and reports, `"8491****678"`: first 4, four `*`, last 3.
    pub fn masked(&self) -> String {
        self.with_masked(str::to_owned)
    }

    /// The carrier that owns the prefix ([`Carrier::Other`] if the prefix is not in the table).
    pub fn carrier(&self) -> Carrier {
        match CARRIER_BY_PREFIX[prefix_slot(self.nsn())] {
            NO_ENTRY => Carrier::Other,
            index => Carrier::ALL[usize::from(index)],
        }
    }

    fn nsn(&self) -> &[u8] {
        &self.0[COUNTRY_CODE.len()..]
    }

    /// Builds from a 9-digit NSN that has been validated.
    fn from_nsn(nsn: &[u8]) -> Msisdn {
        let mut digits = [0; CANONICAL_LEN];
        digits[..COUNTRY_CODE.len()].copy_from_slice(COUNTRY_CODE);
        digits[COUNTRY_CODE.len()..].copy_from_slice(nsn);
        Msisdn(digits)
    }

    /// Calls `f` with the masked form, built on the stack.
    fn with_masked<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let mut masked = self.0;
        masked[MASK_KEEP_FRONT..CANONICAL_LEN - MASK_KEEP_BACK].fill(b'*');
        f(std::str::from_utf8(&masked).expect("masked Msisdn is ASCII"))
    }
}

impl fmt::Display for Msisdn {
    /// Masked: `8491****678`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_masked(|m| f.pad(m))
    }
}

impl fmt::Debug for Msisdn {
    /// Masked: `Msisdn(8491****678)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_masked(|m| write!(f, "Msisdn({m})"))
    }
}

impl Serialize for Msisdn {
    /// Masked: `"8491****678"`. Callers that need the number serialize `as_str()`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with_masked(|m| serializer.serialize_str(m))
    }
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

/// Digits kept; longer inputs are `TooLong` whatever the rest says.
const MAX_DIGITS: usize = 16;

fn is_blank(c: char) -> bool {
    c.is_whitespace() || INVISIBLES.contains(&c)
}

fn is_separator(c: char) -> bool {
    is_blank(c) || SEPARATORS.contains(&c)
}

/// Full-width digits and plus (U+FF10–U+FF19, U+FF0B), typed with CJK input methods and
/// found in real exports: read as their ASCII counterparts.
const FULLWIDTH_ZERO: char = '\u{FF10}';
const FULLWIDTH_NINE: char = '\u{FF19}';
const FULLWIDTH_PLUS: char = '\u{FF0B}';

/// The ASCII digit of an ASCII or full-width digit.
fn ascii_digit(c: char) -> u8 {
    match c {
        FULLWIDTH_ZERO..=FULLWIDTH_NINE => b'0' + (c as u32 - FULLWIDTH_ZERO as u32) as u8,
        _ => c as u8,
    }
}

/// Removes a `tel:` URI scheme (RFC 3966, as phone and CRM exports write numbers).
fn strip_tel_scheme(s: &str) -> &str {
    match s.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("tel:") => s[4..].trim_matches(is_blank),
        _ => s,
    }
}

/// Removes spreadsheet text markers: `'0912…` and `="0912…"` (also plain `"0912…"`).
fn unwrap_spreadsheet_text(s: &str) -> &str {
    let inner = if let Some(inner) = s.strip_prefix("=\"").and_then(|r| r.strip_suffix('"')) {
        inner
    } else if let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        inner
    } else if let Some(inner) = s.strip_prefix('\'') {
        inner
    } else {
        s
    };
    inner.trim_matches(is_blank)
}

/// Spreadsheet scientific notation: `[+]d[(.|,)ddd](e|E)[+|-]d{1,3}`, e.g. `8.49123E+10`.
/// The mantissa has one non-zero integer digit, as spreadsheets and float printers write it.
fn looks_scientific(s: &str) -> bool {
    let b = s.strip_prefix('+').unwrap_or(s).as_bytes();
    let mut i = 0;
    if !matches!(b.first(), Some(b'1'..=b'9')) {
        return false;
    }
    i += 1;
    if matches!(b.get(i), Some(b'.' | b',')) {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if !matches!(b.get(i), Some(b'e' | b'E')) {
        return false;
    }
    i += 1;
    if matches!(b.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let exponent = b.len().saturating_sub(i);
    (1..=3).contains(&exponent) && b[i..].iter().all(u8::is_ascii_digit)
}

/// For `[+]ddddddddd.0` / `.00` (a number column printed as floats), the count of digits
/// before the point.
fn float_integer_digits(s: &str) -> Option<usize> {
    let (int, frac) = s.split_once('.')?;
    let int = int.strip_prefix('+').unwrap_or(int);
    let is_float = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && (1..=2).contains(&frac.len())
        && frac.bytes().all(|b| b == b'0');
    is_float.then_some(int.len())
}

fn parse_field(raw: &str) -> Result<Parsed, Reject> {
    let s = raw.trim_matches(is_blank);
    if s.is_empty() {
        return Err(Reject::Empty);
    }
    let s = unwrap_spreadsheet_text(s);
    let s = strip_tel_scheme(s);
    if s.is_empty() {
        return Err(Reject::Empty);
    }
    if looks_scientific(s) {
        return Err(Reject::ScientificNotation);
    }

    let mut buf = [0u8; MAX_DIGITS];
    let mut count = 0usize;
    let mut plus = false;
    for c in s.chars() {
        match c {
            '0'..='9' | FULLWIDTH_ZERO..=FULLWIDTH_NINE => {
                if let Some(slot) = buf.get_mut(count) {
                    *slot = ascii_digit(c);
                }
                count += 1;
            }
            '+' | FULLWIDTH_PLUS if count == 0 && !plus => plus = true,
            c if is_separator(c) => {}
            _ => return Err(Reject::NotANumber),
        }
    }
    if count == 0 {
        return Err(Reject::Empty);
    }
    if count > MAX_DIGITS {
        return Err(Reject::TooLong);
    }
    let digits = &buf[..count];
    match from_digits(digits, plus) {
        // `912345678.0`: only when reading the `.0` as digits cannot be right.
        Err(Reject::TooLong) => match float_integer_digits(s) {
            Some(n) if n < count => from_digits(&digits[..n], plus),
            _ => Err(Reject::TooLong),
        },
        result => result,
    }
}

/// Decides by length what the digits are. `plus`: the field started with `+`.
fn from_digits(d: &[u8], plus: bool) -> Result<Parsed, Reject> {
    // `+` then a country code. (`+0…` cannot be a country code: read it as if `+` were absent.)
    if plus && d[0] != TRUNK_PREFIX {
        return match d.strip_prefix(COUNTRY_CODE) {
            Some(rest) => after_country_code(rest),
            None if COUNTRY_CODE.starts_with(d) => Err(Reject::TooShort),
            None => Err(Reject::ForeignNumber),
        };
    }
    // `00` then a country code; `000…` is not one and falls through.
    if let Some(intl) = d.strip_prefix(INTERNATIONAL_PREFIX) {
        if let Some(rest) = intl.strip_prefix(COUNTRY_CODE) {
            return after_country_code(rest);
        }
        if COUNTRY_CODE.starts_with(intl) {
            return Err(Reject::TooShort);
        }
        if intl[0] != TRUNK_PREFIX {
            return Err(Reject::ForeignNumber);
        }
    }
    if let Some(nsn) = d.strip_prefix(&[TRUNK_PREFIX]) {
        return classify(nsn, None);
    }
    // `84…` is the country code, except for exactly 9 digits: that is an NSN starting with
    // 84 (VinaPhone 084x) that lost its leading zero.
    if d.len() != NSN_LEN
        && let Some(rest) = d.strip_prefix(COUNTRY_CODE)
    {
        return after_country_code(rest);
    }
    classify(d, Some(Fix::LeadingZeroRestored))
}

/// The digits after `84`; a trunk `0` written after the country code (`+84 (0) 91…`) is dropped.
fn after_country_code(rest: &[u8]) -> Result<Parsed, Reject> {
    classify(rest.strip_prefix(&[TRUNK_PREFIX]).unwrap_or(rest), None)
}

/// Classifies a national significant number (no trunk `0`, no country code).
fn classify(nsn: &[u8], fix: Option<Fix>) -> Result<Parsed, Reject> {
    match nsn.len() {
        0..NSN_LEN => Err(Reject::TooShort),
        NSN_LEN => {
            if nsn[0] == LANDLINE_FIRST_DIGIT {
                Err(Reject::Landline)
            } else if CARRIER_BY_PREFIX[prefix_slot(nsn)] == NO_ENTRY {
                Err(Reject::UnknownPrefix)
            } else {
                Ok(Parsed {
                    msisdn: Msisdn::from_nsn(nsn),
                    fix,
                })
            }
        }
        // Legacy `01xy` + 7 digits, or a 10-digit landline NSN (`028 3823 4567`).
        10 => match nsn[0] {
            LEGACY_FIRST_DIGIT => {
                let key = usize::from(nsn[1] - b'0') * 10 + usize::from(nsn[2] - b'0');
                match LEGACY_BY_KEY[key] {
                    NO_ENTRY => Err(Reject::UnknownPrefix),
                    new => {
                        let mut current = [0u8; NSN_LEN];
                        current[0] = b'0' + new / 10;
                        current[1] = b'0' + new % 10;
                        current[2..].copy_from_slice(&nsn[3..]);
                        Ok(Parsed {
                            msisdn: Msisdn::from_nsn(&current),
                            fix: Some(Fix::LegacyPrefix),
                        })
                    }
                }
            }
            LANDLINE_FIRST_DIGIT => Err(Reject::Landline),
            _ => Err(Reject::TooLong),
        },
        _ => Err(Reject::TooLong),
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    #[test]
    fn carriers_as_lists_write_them() {
        use super::Carrier;
        for (written, carrier) in [
            ("Viettel", Carrier::Viettel),
            (" VIETTEL ", Carrier::Viettel),
            ("VNPT", Carrier::Vinaphone),
            ("Vinaphone", Carrier::Vinaphone),
            ("VNPT-VinaPhone", Carrier::Vinaphone),
            ("MobiFone", Carrier::Mobifone),
            ("Mobi", Carrier::Mobifone),
            ("Vietnamobile", Carrier::Vietnamobile),
            ("Gmobile", Carrier::Gmobile),
            ("iTel", Carrier::Itel),
            ("Reddi", Carrier::Reddi),
        ] {
            assert_eq!(Carrier::from_source(written), Some(carrier), "{written}");
        }
        for unknown in ["", "Vietel", "S-Fone", "x"] {
            assert_eq!(Carrier::from_source(unknown), None, "{unknown}");
        }
    }

    use super::*;
    use proptest::prelude::*;

    #[derive(Debug)]
    enum Expect {
        Ok(&'static str, Option<Fix>, Carrier),
        Err(Reject),
    }

    fn ok(canonical: &'static str, carrier: Carrier) -> Expect {
        Expect::Ok(canonical, None, carrier)
    }
    fn zero(canonical: &'static str, carrier: Carrier) -> Expect {
        Expect::Ok(canonical, Some(Fix::LeadingZeroRestored), carrier)
    }
    fn legacy(canonical: &'static str, carrier: Carrier) -> Expect {
        Expect::Ok(canonical, Some(Fix::LegacyPrefix), carrier)
    }
    fn err(reject: Reject) -> Expect {
        Expect::Err(reject)
    }

    fn rows() -> Vec<(&'static str, Expect)> {
        use Carrier::*;
        use Reject::*;
        vec![
            // Accepted forms.
            ("0912345678", ok("84912345678", Vinaphone)),
            ("84912345678", ok("84912345678", Vinaphone)),
            ("+84912345678", ok("84912345678", Vinaphone)),
            ("0084912345678", ok("84912345678", Vinaphone)),
            ("912345678", zero("84912345678", Vinaphone)),
            ("841234567", zero("84841234567", Vinaphone)), // 9 digits starting 84
            ("  091 234 5678 ", ok("84912345678", Vinaphone)),
            ("091.234.5678", ok("84912345678", Vinaphone)),
            ("091-234-5678", ok("84912345678", Vinaphone)),
            ("091–234—5678", ok("84912345678", Vinaphone)), // en/em dashes
            ("(091) 234-5678", ok("84912345678", Vinaphone)),
            ("091/234/5678", ok("84912345678", Vinaphone)),
            ("0912,345,678", ok("84912345678", Vinaphone)),
            ("+84 (91) 234 5678", ok("84912345678", Vinaphone)),
            ("(+84) 91 234 5678", ok("84912345678", Vinaphone)),
            ("+84 (0) 912 345 678", ok("84912345678", Vinaphone)),
            ("840912345678", ok("84912345678", Vinaphone)),
            ("+0912345678", ok("84912345678", Vinaphone)),
            ("091\u{a0}234\u{a0}5678", ok("84912345678", Vinaphone)),
            (
                "\u{3000}0912\u{202f}345678\u{2007}",
                ok("84912345678", Vinaphone),
            ),
            (
                "\u{feff}0912\u{200b}345678\u{200e}",
                ok("84912345678", Vinaphone),
            ),
            ("\t0912345678\r\n", ok("84912345678", Vinaphone)),
            ("'0912345678", ok("84912345678", Vinaphone)),
            ("'+84 912 345 678", ok("84912345678", Vinaphone)),
            ("=\"0912345678\"", ok("84912345678", Vinaphone)),
            ("\"0912345678\"", ok("84912345678", Vinaphone)),
            ("912345678.0", zero("84912345678", Vinaphone)),
            ("84912345678.0", ok("84912345678", Vinaphone)),
            ("84912345678.00", ok("84912345678", Vinaphone)),
            ("8491234567.0", ok("84912345670", Vinaphone)), // valid as written: not a float
            // URIs from phone exports, and full-width digits (Japanese/Chinese input methods).
            ("tel:+84912345678", ok("84912345678", Vinaphone)),
            ("TEL:+84-91-234-5678", ok("84912345678", Vinaphone)),
            ("tel:0912345678", ok("84912345678", Vinaphone)),
            ("０９１２３４５６７８", ok("84912345678", Vinaphone)),
            ("＋８４ ９１２ ３４５ ６７８", ok("84912345678", Vinaphone)),
            ("０９１２-345-６７８", ok("84912345678", Vinaphone)),
            // Every legacy prefix (carrier kept: 012x MobiFone/VinaPhone, 016x Viettel...).
            ("01201234567", legacy("84701234567", Mobifone)),
            ("01211234567", legacy("84791234567", Mobifone)),
            ("01221234567", legacy("84771234567", Mobifone)),
            ("01261234567", legacy("84761234567", Mobifone)),
            ("01281234567", legacy("84781234567", Mobifone)),
            ("01231234567", legacy("84831234567", Vinaphone)),
            ("01241234567", legacy("84841234567", Vinaphone)),
            ("01251234567", legacy("84851234567", Vinaphone)),
            ("01271234567", legacy("84811234567", Vinaphone)),
            ("01291234567", legacy("84821234567", Vinaphone)),
            ("01621234567", legacy("84321234567", Viettel)),
            ("01631234567", legacy("84331234567", Viettel)),
            ("01641234567", legacy("84341234567", Viettel)),
            ("01651234567", legacy("84351234567", Viettel)),
            ("01661234567", legacy("84361234567", Viettel)),
            ("01671234567", legacy("84371234567", Viettel)),
            ("01681234567", legacy("84381234567", Viettel)),
            ("01691234567", legacy("84391234567", Viettel)),
            ("01861234567", legacy("84561234567", Vietnamobile)),
            ("01881234567", legacy("84581234567", Vietnamobile)),
            ("01991234567", legacy("84591234567", Gmobile)),
            // Legacy in other forms.
            ("+84 168 912 3456", legacy("84389123456", Viettel)),
            ("841689123456", legacy("84389123456", Viettel)),
            ("0084 1689 123 456", legacy("84389123456", Viettel)),
            ("+84 (0) 168 912 3456", legacy("84389123456", Viettel)),
            ("1689123456", legacy("84389123456", Viettel)), // lost zero too
            ("0168-912-3456", legacy("84389123456", Viettel)),
            // Length decides: 10-digit 0121x / 0160 are current ranges, 11-digit are legacy.
            ("0121012345", ok("84121012345", Mobifone)),
            ("0121312345", ok("84121312345", Mobifone)),
            ("0160123456", ok("84160123456", Viettel)),
            ("01601234567", err(UnknownPrefix)),
            ("01301234567", err(UnknownPrefix)),
            ("01001234567", err(UnknownPrefix)),
            // Every carrier.
            ("0961234567", ok("84961234567", Viettel)),
            ("0321234567", ok("84321234567", Viettel)),
            ("0861234567", ok("84861234567", Viettel)),
            ("0881234567", ok("84881234567", Vinaphone)),
            ("0941234567", ok("84941234567", Vinaphone)),
            ("0901234567", ok("84901234567", Mobifone)),
            ("0931234567", ok("84931234567", Mobifone)),
            ("0701234567", ok("84701234567", Mobifone)),
            ("0896123456", ok("84896123456", Mobifone)),
            ("0301234567", ok("84301234567", Mobifone)),
            ("0511234567", ok("84511234567", Mobifone)),
            ("0921234567", ok("84921234567", Vietnamobile)),
            ("0522123456", ok("84522123456", Vietnamobile)),
            ("0528123456", ok("84528123456", Vietnamobile)),
            ("0561234567", ok("84561234567", Vietnamobile)),
            ("0591234567", ok("84591234567", Gmobile)),
            ("0993123456", ok("84993123456", Gmobile)),
            ("0997123456", ok("84997123456", Gmobile)),
            ("0871234567", ok("84871234567", Itel)),
            ("0559123456", ok("84559123456", Reddi)),
            ("0311234567", ok("84311234567", Other)),
            ("0951234567", ok("84951234567", Other)),
            ("0990123456", ok("84990123456", Other)),
            ("0998123456", ok("84998123456", Itel)),
            ("0999123456", ok("84999123456", Itel)),
            ("0140123456", ok("84140123456", Mobifone)),
            ("+84 140 123 456", ok("84140123456", Mobifone)),
            ("01401234567", err(UnknownPrefix)), // 0140 is no legacy prefix
            // Unknown prefixes.
            ("0891234567", err(UnknownPrefix)),
            ("0992123456", err(UnknownPrefix)),
            ("0551234567", err(UnknownPrefix)),
            ("0524123456", err(UnknownPrefix)),
            ("0801234567", err(UnknownPrefix)),
            ("0711234567", err(UnknownPrefix)),
            ("0612345678", err(UnknownPrefix)),
            ("0112345678", err(UnknownPrefix)),
            ("0121412345", err(UnknownPrefix)),
            ("0161234567", err(UnknownPrefix)),
            ("0000000000", err(UnknownPrefix)),
            // Landlines.
            ("02723812345", err(Landline)),      // Long An
            ("028 3823 4567", err(Landline)),    // HCMC
            ("+84 24 3825 1234", err(Landline)), // Hanoi
            ("2723812345", err(Landline)),
            ("0283823456", err(Landline)),
            // Foreign numbers.
            ("+1 202 555 0123", err(ForeignNumber)),
            ("+86 138 0013 8000", err(ForeignNumber)),
            ("0086 138 0013 8000", err(ForeignNumber)),
            ("+855 12 345 678", err(ForeignNumber)),
            ("00912345678", err(ForeignNumber)), // 00 + 91 (India)
            // Too short / too long.
            ("091234567", err(TooShort)),
            ("12345", err(TooShort)),
            ("+84 91234567", err(TooShort)),
            ("8491234567", err(TooShort)), // 84 + 8 digits
            ("+84", err(TooShort)),
            ("+8", err(TooShort)),
            ("0084", err(TooShort)),
            ("028 382", err(TooShort)),
            ("09123456789", err(TooLong)),
            ("849123456789", err(TooLong)),
            ("91234567890", err(TooLong)),
            ("0912345678 0987654321", err(TooLong)),
            ("0912345678.5", err(TooLong)),
            // Not a number.
            ("abc", err(NotANumber)),
            ("0912345678x", err(NotANumber)),
            ("091234567O", err(NotANumber)),
            ("84+912345678", err(NotANumber)),
            ("++84912345678", err(NotANumber)),
            ("0912;345678", err(NotANumber)),
            ("tel:0912345678x", err(NotANumber)),
            ("tel:", err(Empty)),
            ("0912e345678", err(NotANumber)),
            ("N/A", err(NotANumber)),
            // Scientific notation.
            ("8.49123E+10", err(ScientificNotation)),
            ("8,49123e+10", err(ScientificNotation)),
            ("9.12E8", err(ScientificNotation)),
            ("8.49123E+010", err(ScientificNotation)),
            ("=\"8.49123E+10\"", err(ScientificNotation)),
            // Empty.
            ("", err(Empty)),
            ("   ", err(Empty)),
            ("\u{a0}\t\u{feff}", err(Empty)),
            ("-", err(Empty)),
            ("( )", err(Empty)),
            ("=\"\"", err(Empty)),
            ("'", err(Empty)),
        ]
    }

    #[test]
    fn table() {
        let rows = rows();
        assert!(rows.len() >= 40);
        for (input, expect) in rows {
            let got = Msisdn::parse(input);
            match expect {
                Expect::Ok(canonical, fix, carrier) => {
                    let p = got
                        .unwrap_or_else(|e| panic!("{input:?}: expected {canonical}, got {e:?}"));
                    let m = p.msisdn;
                    assert_eq!(m.as_str(), canonical, "{input:?}");
                    assert_eq!(p.fix, fix, "{input:?}");
                    assert_eq!(m.carrier(), carrier, "{input:?}");
                    // Other forms and masking, for every accepted row.
                    assert_eq!(m.national(), format!("0{}", &canonical[2..]));
                    assert_eq!(m.e164(), format!("+{canonical}"));
                    let masked = format!("{}****{}", &canonical[..4], &canonical[8..]);
                    assert_eq!(m.masked(), masked, "{input:?}");
                    assert_eq!(m.to_string(), masked, "Display must be masked");
                    assert_eq!(format!("{m:?}"), format!("Msisdn({masked})"));
                    assert!(
                        !format!("{p:?}").contains(canonical),
                        "Debug of Parsed leaks"
                    );
                    assert_eq!(Msisdn::from_canonical(canonical), Some(m));
                }
                Expect::Err(reject) => assert_eq!(got, Err(reject), "{input:?}"),
            }
        }
    }

    #[test]
    fn every_reject_variant_and_carrier_is_covered_by_the_table() {
        let rows = rows();
        for reject in [
            Reject::Empty,
            Reject::ScientificNotation,
            Reject::NotANumber,
            Reject::TooShort,
            Reject::TooLong,
            Reject::Landline,
            Reject::UnknownPrefix,
            Reject::ForeignNumber,
        ] {
            assert!(
                rows.iter()
                    .any(|(_, e)| matches!(e, Expect::Err(r) if *r == reject)),
                "{reject:?}"
            );
        }
        for carrier in Carrier::ALL {
            assert!(
                rows.iter()
                    .any(|(_, e)| matches!(e, Expect::Ok(_, _, c) if *c == carrier)),
                "{carrier:?}"
            );
        }
        for (old, _) in LEGACY_PREFIXES {
            assert!(
                rows.iter().any(|(i, e)| i.starts_with(old)
                    && i.len() == 11
                    && matches!(e, Expect::Ok(_, Some(Fix::LegacyPrefix), _))),
                "{old}"
            );
        }
    }

    #[test]
    fn masking_display_debug_serialize() {
        let m = Msisdn::from_canonical("84912345678").unwrap();
        assert_eq!(m.as_str(), "84912345678");
        assert_eq!(m.national(), "0912345678");
        assert_eq!(m.e164(), "+84912345678");
        assert_eq!(m.masked(), "8491****678");
        assert_eq!(format!("{m}"), "8491****678");
        assert_eq!(format!("[{m:>13}]"), "[  8491****678]");
        assert_eq!(format!("{m:?}"), "Msisdn(8491****678)");
        assert_eq!(format!("{m:#?}"), "Msisdn(8491****678)");
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"8491****678\"");
        let p = Msisdn::parse("0912345678").unwrap();
        assert_eq!(
            format!("{p:?}"),
            "Parsed { msisdn: Msisdn(8491****678), fix: None }"
        );
    }

    #[test]
    fn from_canonical_is_strict() {
        assert!(Msisdn::from_canonical("84912345678").is_some());
        // Format only, not prefix: stored numbers survive table edits.
        assert_eq!(
            Msisdn::from_canonical("84200000000").map(|m| m.carrier()),
            Some(Carrier::Other)
        );
        for bad in [
            "",
            "0912345678",
            "+84912345678",
            "8491234567",
            "849123456789",
            "84912a45678",
            "85912345678",
            " 84912345678",
            "8491234567８",
        ] {
            assert_eq!(Msisdn::from_canonical(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ordering_is_numeric() {
        let a = Msisdn::from_canonical("84321234567").unwrap();
        let b = Msisdn::from_canonical("84912345678").unwrap();
        assert!(a < b);
    }

    #[test]
    fn carrier_names() {
        assert_eq!(Carrier::ALL.len(), 8);
        for (i, c) in Carrier::ALL.into_iter().enumerate() {
            assert_eq!(c as usize, i, "ALL must be in declaration order");
            assert_eq!(c.as_str().parse::<Carrier>(), Ok(c));
            assert_eq!(c.to_string().parse::<Carrier>(), Ok(c));
            assert_eq!(c.as_str().to_uppercase().parse::<Carrier>(), Ok(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
        let names: Vec<String> = Carrier::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "Viettel",
                "VinaPhone",
                "MobiFone",
                "Vietnamobile",
                "Gmobile",
                "iTel",
                "Reddi",
                "Other"
            ]
        );
        assert_eq!(" Viettel ".parse::<Carrier>(), Ok(Carrier::Viettel));
        let e = "vina".parse::<Carrier>().unwrap_err();
        assert_eq!(e, UnknownCarrier("vina".into()));
        assert!(e.to_string().contains("viettel, vinaphone"));
    }

    #[test]
    fn reject_codes_and_explanations() {
        let all = [
            Reject::Empty,
            Reject::ScientificNotation,
            Reject::NotANumber,
            Reject::TooShort,
            Reject::TooLong,
            Reject::Landline,
            Reject::UnknownPrefix,
            Reject::ForeignNumber,
        ];
        let mut codes: Vec<&str> = all.iter().map(Reject::code).collect();
        for (r, code) in all.iter().zip(&codes) {
            assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert_eq!(serde_json::to_string(r).unwrap(), format!("\"{code}\""));
            assert_eq!(r.to_string(), r.explain());
            assert!(r.explain().contains(" — ") || r.explain().contains("; "));
        }
        assert!(
            Reject::ScientificNotation
                .explain()
                .contains("re-export the column as text")
        );
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert_eq!(Fix::LegacyPrefix.code(), "legacy_prefix");
        assert_eq!(
            serde_json::to_string(&Fix::LeadingZeroRestored).unwrap(),
            "\"leading_zero_restored\""
        );
    }

    /// libphonenumber's mobile pattern for VN, verbatim from its metadata (9.0.43:
    /// `PhoneMetadata.metadata_for_region("VN").mobile.national_number_pattern` in the
    /// `phonenumbers` package, which is generated from libphonenumber's
    /// `resources/PhoneNumberMetadata.xml`). When libphonenumber moves, paste its new
    /// pattern here: the test below then names every prefix the table gets wrong.
    const LIBPHONENUMBER_VN_MOBILE: &str = r"121[0-3]\d{5}|(?:1[46]0|(?:3\d|7[06-9])\d|5(?:[1689]\d|2[238]|59)|8(?:[1-8]\d|9[6-9])|9(?:[0-8]\d|9[013-9]))\d{6}";

    fn libphonenumber_reference(nsn: &[u8]) -> bool {
        static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
        let re = RE.get_or_init(|| {
            regex::Regex::new(&format!("^(?:{LIBPHONENUMBER_VN_MOBILE})$")).unwrap()
        });
        std::str::from_utf8(nsn).is_ok_and(|s| re.is_match(s))
    }

    #[test]
    fn prefix_table_matches_libphonenumber_pattern() {
        for (slot, &entry) in CARRIER_BY_PREFIX.iter().enumerate() {
            for tail in ["00000", "99999"] {
                let nsn = format!("{slot:04}{tail}");
                let valid = libphonenumber_reference(nsn.as_bytes());
                assert_eq!(entry != NO_ENTRY, valid, "{nsn}");
                let parsed = Msisdn::parse(&format!("0{nsn}"));
                if valid {
                    assert_eq!(parsed.unwrap().msisdn.as_str(), format!("84{nsn}"));
                } else if nsn.starts_with('0') {
                    // "00…" is an international prefix: never a Vietnamese mobile.
                    assert!(parsed.is_err(), "{nsn}");
                } else if nsn.starts_with('2') {
                    assert_eq!(parsed, Err(Reject::Landline), "{nsn}");
                } else {
                    assert_eq!(parsed, Err(Reject::UnknownPrefix), "{nsn}");
                }
            }
        }
    }

    fn valid_nsn() -> impl Strategy<Value = String> {
        (
            (0..PREFIX_SLOTS)
                .prop_filter("valid mobile prefix", |s| CARRIER_BY_PREFIX[*s] != NO_ENTRY),
            0u32..100_000,
        )
            .prop_map(|(prefix, tail)| format!("{prefix:04}{tail:05}"))
    }

    fn valid_msisdn() -> impl Strategy<Value = Msisdn> {
        valid_nsn().prop_map(|nsn| Msisdn::from_canonical(&format!("84{nsn}")).unwrap())
    }

    /// Inserts separators at the given (relative) positions.
    fn sprinkle(s: &str, seps: &[(prop::sample::Index, &str)]) -> String {
        let mut pieces: Vec<String> = s.chars().map(String::from).collect();
        for (at, sep) in seps {
            let i = at.index(pieces.len() + 1);
            pieces.insert(i, (*sep).to_owned());
        }
        pieces.concat()
    }

    fn separators() -> impl Strategy<Value = Vec<(prop::sample::Index, &'static str)>> {
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                prop::sample::select(vec![
                    " ", "  ", ".", "-", ",", "(", ")", "/", "\u{a0}", "\u{2013}", "\t",
                ]),
            ),
            0..6,
        )
    }

    #[test]
    fn integer_keys_outside_the_plan_are_refused() {
        assert_eq!(Msisdn::from_u64(0), None);
        assert_eq!(Msisdn::from_u64(912_345_678), None);
        assert_eq!(Msisdn::from_u64(849_123_456_789), None);
        assert_eq!(Msisdn::from_u64(74_912_345_678), None);
    }

    proptest! {
        #[test]
        fn canonical_round_trips_through_every_form(
            m in valid_msisdn(),
            seps in separators(),
            which in 0usize..3,
        ) {
            let form = match which {
                0 => m.national(),
                1 => m.as_str().to_owned(),
                _ => m.e164(),
            };
            let input = sprinkle(&form, &seps);
            let parsed = Msisdn::parse(&input);
            prop_assert_eq!(parsed, Ok(Parsed { msisdn: m, fix: None }), "{:?}", input);
            prop_assert_eq!(Msisdn::from_canonical(m.as_str()), Some(m));
        }

        #[test]
        fn integer_key_round_trips_and_sorts_like_the_text(a in valid_msisdn(), b in valid_msisdn()) {
            prop_assert_eq!(Msisdn::from_u64(a.as_u64()), Some(a));
            prop_assert_eq!(a.as_u64().to_string(), a.as_str());
            prop_assert_eq!(a.as_u64().cmp(&b.as_u64()), a.as_str().cmp(b.as_str()));
        }

        #[test]
        fn lost_leading_zero_is_restored(m in valid_msisdn()) {
            let parsed = Msisdn::parse(&m.as_str()[2..]);
            prop_assert_eq!(
                parsed,
                Ok(Parsed { msisdn: m, fix: Some(Fix::LeadingZeroRestored) })
            );
        }

        #[test]
        fn legacy_numbers_keep_their_last_seven_digits(
            entry in prop::sample::select(LEGACY_PREFIXES.to_vec()),
            tail in 0u32..10_000_000,
        ) {
            let (old, new) = entry;
            let parsed = Msisdn::parse(&format!("{old}{tail:07}")).unwrap();
            prop_assert_eq!(parsed.fix, Some(Fix::LegacyPrefix));
            prop_assert_eq!(parsed.msisdn.as_str(), format!("84{}{tail:07}", &new[1..]));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = Msisdn::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_number_like_input(
            s in "[0-9+ .,()/eE'=\"\u{a0}-]{0,30}",
        ) {
            if let Ok(p) = Msisdn::parse(&s) {
                // Whatever is accepted is canonical and a valid mobile number.
                let canonical = p.msisdn.as_str();
                prop_assert_eq!(Msisdn::from_canonical(canonical), Some(p.msisdn));
                prop_assert!(libphonenumber_reference(&canonical.as_bytes()[2..]));
            }
        }

        #[test]
        fn masked_hides_the_middle_four_digits(m in valid_msisdn(), middle in 0u32..10_000) {
            let national = m.national();
            let masked = m.masked();
            prop_assert_eq!(masked.len(), 11);
            prop_assert_eq!(&masked[4..8], "****");
            prop_assert_eq!(&masked[..4], &m.as_str()[..4]);
            prop_assert_eq!(&masked[8..], &m.as_str()[8..]);
            // The hidden digits are national[3..7]; none of them is in the output...
            let shown: String = masked.chars().filter(char::is_ascii_digit).collect();
            prop_assert_eq!(shown, format!("{}{}", &m.as_str()[..4], &m.as_str()[8..]));
            prop_assert_eq!(&national[3..7], &m.as_str()[4..8]);
            // ...and the masked form carries no information about them.
            let other = Msisdn::from_canonical(
                &format!("{}{middle:04}{}", &m.as_str()[..4], &m.as_str()[8..]),
            ).unwrap();
            prop_assert_eq!(other.masked(), masked.clone());
            prop_assert_eq!(other.to_string(), masked.clone());
            prop_assert_eq!(format!("{other:?}"), format!("{m:?}"));
        }
    }
}
