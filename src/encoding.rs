//! SMS text encoding, cost and segmentation.
//!
//! A message is sent as GSM-7 (3GPP TS 23.038 default alphabet: 1 septet per basic
//! character, 2 for the extension characters form feed, `^ { } \ [ ~ ] |` and `€`) when
//! every character is in that alphabet, and otherwise as UCS-2, counted in UTF-16 code
//! units. A single SMS carries 160 septets or 70 UCS-2 units; a concatenated message
//! carries 153 or 67 per segment. Text is NFC-normalised before anything is counted,
//! because decomposed Vietnamese costs more.
//!
//! [`fold_diacritics`] produces the "không dấu" form (no diacritics, plain punctuation)
//! that Vietnamese senders use to fit a message into GSM-7.

use std::fmt;

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The character set a message is sent in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Encoding {
    #[serde(rename = "GSM-7")]
    Gsm7,
    #[serde(rename = "UCS-2")]
    Ucs2,
}

impl Encoding {
    /// `"GSM-7"` or `"UCS-2"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        }
    }

    /// Capacity of a message that fits in one SMS.
    fn single_limit(self) -> usize {
        match self {
            Encoding::Gsm7 => GSM7_SINGLE,
            Encoding::Ucs2 => UCS2_SINGLE,
        }
    }

    /// Capacity of each segment of a concatenated message.
    fn concat_limit(self) -> usize {
        match self {
            Encoding::Gsm7 => GSM7_CONCAT,
            Encoding::Ucs2 => UCS2_CONCAT,
        }
    }

    /// Cost of one character in this encoding (septets or UTF-16 code units).
    fn cost(self, c: char) -> usize {
        match self {
            // Only reached for characters already known to be GSM-7; 2 is the
            // conservative answer should that ever not hold.
            Encoding::Gsm7 => gsm7_septets(c).unwrap_or(2),
            Encoding::Ucs2 => c.len_utf16(),
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything known about how a text will be sent.
#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    /// The text exactly as it will be sent (NFC-normalised; folded if asked).
    pub text: String,
    pub encoding: Encoding,
    /// Unicode scalar values in `text`.
    pub characters: usize,
    /// Septets (GSM-7, extension characters count 2) or UTF-16 code units (UCS-2).
    pub units: usize,
    /// Number of SMS segments; 0 for empty text.
    pub segments: usize,
    /// Capacity per segment for this message: 160/153 (GSM-7) or 70/67 (UCS-2).
    pub per_segment: usize,
    /// The split into segments; their concatenation is exactly `text`.
    pub parts: Vec<String>,
    /// Characters that are not GSM-7 (empty when the encoding is GSM-7).
    pub offending: Vec<Offending>,
    /// Whether no-diacritics folding was applied.
    pub folded: bool,
}

/// A character that forces the message into UCS-2.
#[derive(Clone, Debug, Serialize)]
pub struct Offending {
    /// 1-based character index in `Analysis::text`.
    pub position: usize,
    pub character: char,
    /// `"U+201C"`.
    pub codepoint: String,
    /// Short description, e.g. `"left double quotation mark"`, `"emoji"`.
    pub name: &'static str,
    /// GSM-7 replacement (what [`fold_diacritics`] does to it); `Some("")` means the
    /// character can simply be removed; `None` when there is no GSM-7 equivalent.
    pub suggestion: Option<String>,
}

const GSM7_SINGLE: usize = 160;
const GSM7_CONCAT: usize = 153;
const UCS2_SINGLE: usize = 70;
const UCS2_CONCAT: usize = 67;

/// GSM 03.38 basic table, indexed by code (3GPP TS 23.038 §6.2.1).
const GSM7_BASIC: [char; 128] = [
    // 0x00
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
    // 0x10 (0x1B is the escape to the extension table, not a character)
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1B}', 'Æ', 'æ', 'ß', 'É',
    // 0x20
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
    // 0x30
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
    // 0x40
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
    // 0x50
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
    // 0x60
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
    // 0x70
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
];

/// Position of ESC in the basic table.
const GSM7_ESCAPE: usize = 0x1B;

/// GSM 03.38 extension table: (code after ESC, character). Each costs 2 septets.
const GSM7_EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{0C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// Septet cost of each ASCII character (0 = not GSM-7), derived from the tables above.
const ASCII_SEPTETS: [u8; 128] = ascii_septets();

const fn ascii_septets() -> [u8; 128] {
    let mut table = [0u8; 128];
    let mut i = 0;
    while i < GSM7_BASIC.len() {
        let c = GSM7_BASIC[i] as usize;
        if i != GSM7_ESCAPE && c < 128 {
            table[c] = 1;
        }
        i += 1;
    }
    let mut j = 0;
    while j < GSM7_EXTENSION.len() {
        let c = GSM7_EXTENSION[j].1 as usize;
        if c < 128 {
            table[c] = 2;
        }
        j += 1;
    }
    table
}

/// Punctuation and spacing with a safe GSM-7 replacement: (character, name, replacement).
/// [`fold_diacritics`] applies every one of these.
const PUNCTUATION: &[(char, &str, &str)] = &[
    ('\u{201C}', "left double quotation mark", "\""),
    ('\u{201D}', "right double quotation mark", "\""),
    ('\u{201E}', "double low-9 quotation mark", "\""),
    ('\u{201F}', "double high-reversed-9 quotation mark", "\""),
    (
        '\u{00AB}',
        "left-pointing double angle quotation mark",
        "\"",
    ),
    (
        '\u{00BB}',
        "right-pointing double angle quotation mark",
        "\"",
    ),
    ('\u{2033}', "double prime", "\""),
    ('\u{2018}', "left single quotation mark", "'"),
    ('\u{2019}', "right single quotation mark (apostrophe)", "'"),
    ('\u{201A}', "single low-9 quotation mark", "'"),
    ('\u{201B}', "single high-reversed-9 quotation mark", "'"),
    ('\u{2039}', "single left-pointing angle quotation mark", "'"),
    (
        '\u{203A}',
        "single right-pointing angle quotation mark",
        "'",
    ),
    ('\u{2032}', "prime", "'"),
    ('\u{0060}', "grave accent (backtick)", "'"),
    ('\u{00B4}', "acute accent", "'"),
    ('\u{2010}', "hyphen", "-"),
    ('\u{2011}', "non-breaking hyphen", "-"),
    ('\u{2012}', "figure dash", "-"),
    ('\u{2013}', "en dash", "-"),
    ('\u{2014}', "em dash", "-"),
    ('\u{2015}', "horizontal bar", "-"),
    ('\u{2212}', "minus sign", "-"),
    ('\u{2022}', "bullet", "-"),
    ('\u{2026}', "horizontal ellipsis", "..."),
    ('\u{0009}', "tab", " "),
    ('\u{00A0}', "no-break space", " "),
    ('\u{2000}', "en quad", " "),
    ('\u{2001}', "em quad", " "),
    ('\u{2002}', "en space", " "),
    ('\u{2003}', "em space", " "),
    ('\u{2004}', "three-per-em space", " "),
    ('\u{2005}', "four-per-em space", " "),
    ('\u{2006}', "six-per-em space", " "),
    ('\u{2007}', "figure space", " "),
    ('\u{2008}', "punctuation space", " "),
    ('\u{2009}', "thin space", " "),
    ('\u{200A}', "hair space", " "),
    ('\u{202F}', "narrow no-break space", " "),
    ('\u{205F}', "medium mathematical space", " "),
    ('\u{3000}', "ideographic space", " "),
    ('\u{0085}', "next line", "\n"),
    ('\u{2028}', "line separator", "\n"),
    ('\u{2029}', "paragraph separator", "\n"),
    ('\u{200B}', "zero width space", ""),
    ('\u{2060}', "word joiner", ""),
    (
        '\u{FEFF}',
        "zero width no-break space (byte order mark)",
        "",
    ),
    ('\u{00AD}', "soft hyphen", ""),
    ('\u{20AB}', "dong sign", "d"),
];

/// Every Vietnamese letter that carries a diacritic (precomposed, NFC), lower and upper case.
const VIETNAMESE_LETTERS: &str = concat!(
    "àảãáạăằẳẵắặâầẩẫấậèẻẽéẹêềểễếệìỉĩíịòỏõóọôồổỗốộơờởỡớợùủũúụưừửữứựỳỷỹýỵđ",
    "ÀẢÃÁẠĂẰẲẴẮẶÂẦẨẪẤẬÈẺẼÉẸÊỀỂỄẾỆÌỈĨÍỊÒỎÕÓỌÔỒỔỖỐỘƠỜỞỠỚỢÙỦŨÚỤƯỪỬỮỨỰỲỶỸÝỴĐ",
);

/// Code point ranges treated as emoji (pictographic symbols) for reporting.
const EMOJI_RANGES: &[(u32, u32)] = &[
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2139, 0x2139),
    (0x2194, 0x2199),
    (0x21A9, 0x21AA),
    (0x231A, 0x231B),
    (0x2328, 0x2328),
    (0x23CF, 0x23CF),
    (0x23E9, 0x23F3),
    (0x23F8, 0x23FA),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25AB),
    (0x25B6, 0x25B6),
    (0x25C0, 0x25C0),
    (0x25FB, 0x25FE),
    (0x2600, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B07),
    (0x2B1B, 0x2B1C),
    (0x2B50, 0x2B50),
    (0x2B55, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3297),
    (0x3299, 0x3299),
    (0x1F000, 0x1F2FF),
    (0x1F300, 0x1F64F),
    (0x1F680, 0x1F6FF),
    (0x1F7E0, 0x1F7FF),
    (0x1F900, 0x1F9FF),
    (0x1FA70, 0x1FAFF),
];

/// Whether `c` is in the GSM-7 default alphabet (basic or extension table).
///
/// The escape code itself (U+001B) is not a character a message may contain.
pub fn is_gsm7(c: char) -> bool {
    gsm7_septets(c).is_some()
}

/// `Some(1)` for a basic-table character, `Some(2)` for an extension-table character
/// (escape + code), `None` when `c` is not GSM-7.
pub fn gsm7_septets(c: char) -> Option<usize> {
    let cost = if c.is_ascii() {
        ASCII_SEPTETS[c as usize]
    } else if GSM7_BASIC.contains(&c) {
        1
    } else if GSM7_EXTENSION.iter().any(|&(_, e)| e == c) {
        2
    } else {
        0
    };
    (cost > 0).then_some(usize::from(cost))
}

/// Segments needed for `units` septets / UTF-16 units: 0 for nothing, 1 up to 160/70,
/// otherwise `ceil(units / 153)` / `ceil(units / 67)`.
///
/// This is the arithmetic count. The actual split ([`Analysis::segments`]) can need one
/// more when an escape pair or surrogate pair cannot straddle a boundary.
pub fn segments_for(encoding: Encoding, units: usize) -> usize {
    if units == 0 {
        0
    } else if units <= encoding.single_limit() {
        1
    } else {
        units.div_ceil(encoding.concat_limit())
    }
}

/// NFC-normalise `text`, choose the encoding, count and split it.
pub fn analyze(text: &str) -> Analysis {
    analyze_normalised(text.nfc().collect(), false)
}

/// [`fold_diacritics`] then [`analyze`]; `folded` is true.
pub fn analyze_folded(text: &str) -> Analysis {
    analyze_normalised(fold_diacritics(text).nfc().collect(), true)
}

/// "Không dấu": NFD, drop combining marks, `đ`→`d`, `Đ`→`D`, apply the safe punctuation
/// replacements (smart quotes, dashes, special spaces, ellipsis, invisible characters),
/// then NFC. Every letter with a diacritic loses it, including the ones GSM-7 has
/// (`à è é ì ò ù É Ä Ñ ...`). Characters with no replacement (emoji, other scripts) are
/// kept, so the result is GSM-7 whenever that is possible.
pub fn fold_diacritics(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        match c {
            'đ' => out.push('d'),
            'Đ' => out.push('D'),
            _ => match punctuation(c) {
                Some((_, replacement)) => out.push_str(replacement),
                None => out.push(c),
            },
        }
    }
    out.nfc().collect()
}

/// Check a brandname (sender id): 1 to 11 characters, each an ASCII letter, a digit,
/// `.` or `_`.
pub fn check_brandname(s: &str) -> Result<(), String> {
    const ALLOWED: &str = "use 1 to 11 characters: ASCII letters A-Z a-z, digits 0-9, '.' and '_'";
    if s.is_empty() {
        return Err(format!("brandname is empty; {ALLOWED}"));
    }
    let mut problems = Vec::new();
    let mut bad: Vec<char> = Vec::new();
    for c in s.chars() {
        let allowed = c.is_ascii_alphanumeric() || c == '.' || c == '_';
        if !allowed && !bad.contains(&c) {
            bad.push(c);
        }
    }
    if !bad.is_empty() {
        let list: Vec<String> = bad
            .iter()
            .map(|&c| format!("{c:?} ({})", codepoint(c)))
            .collect();
        let verb = if bad.len() == 1 { "is" } else { "are" };
        problems.push(format!(
            "contains {}, which {verb} not allowed",
            list.join(", ")
        ));
    }
    let length = s.chars().count();
    if length > 11 {
        problems.push(format!("is {length} characters long (at most 11)"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "brandname {s:?} {}; {ALLOWED}",
            problems.join(" and ")
        ))
    }
}

/// Analyse text that is already NFC (and folded when `folded`).
fn analyze_normalised(text: String, folded: bool) -> Analysis {
    let mut offending = Vec::new();
    for (index, c) in text.chars().enumerate() {
        if !is_gsm7(c) {
            offending.push(describe(index + 1, c));
        }
    }
    let encoding = if offending.is_empty() {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    };
    let characters = text.chars().count();
    let units: usize = text.chars().map(|c| encoding.cost(c)).sum();
    let per_segment = if units <= encoding.single_limit() {
        encoding.single_limit()
    } else {
        encoding.concat_limit()
    };
    let parts = split(&text, encoding, per_segment);
    Analysis {
        segments: parts.len(),
        text,
        encoding,
        characters,
        units,
        per_segment,
        parts,
        offending,
        folded,
    }
}

/// Greedy split into parts of at most `limit` units; a character (so an escape pair or a
/// surrogate pair) is never divided.
fn split(text: &str, encoding: Encoding, limit: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (i, c) in text.char_indices() {
        let cost = encoding.cost(c);
        if used + cost > limit && used > 0 {
            parts.push(text[start..i].to_string());
            start = i;
            used = 0;
        }
        used += cost;
    }
    if start < text.len() {
        parts.push(text[start..].to_string());
    }
    parts
}

fn punctuation(c: char) -> Option<(&'static str, &'static str)> {
    PUNCTUATION
        .iter()
        .find(|&&(p, _, _)| p == c)
        .map(|&(_, name, replacement)| (name, replacement))
}

fn is_emoji(c: char) -> bool {
    let cp = u32::from(c);
    EMOJI_RANGES.iter().any(|&(lo, hi)| (lo..=hi).contains(&cp))
}

fn codepoint(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// Describe a non-GSM character at 1-based `position`.
fn describe(position: usize, c: char) -> Offending {
    let name = if let Some((name, _)) = punctuation(c) {
        name
    } else if VIETNAMESE_LETTERS.contains(c) {
        "Vietnamese letter with diacritics"
    } else if is_emoji(c) {
        "emoji"
    } else {
        match c {
            '\u{FE0F}' => "emoji variation selector",
            '\u{FE0E}' => "text variation selector",
            '\u{200D}' => "zero width joiner",
            '\u{200C}' => "zero width non-joiner",
            '\u{20E3}' => "combining enclosing keycap",
            '\u{00A9}' => "copyright sign",
            '\u{00AE}' => "registered sign",
            '\u{2122}' => "trade mark sign",
            '\u{00B0}' => "degree sign",
            _ if is_combining_mark(c) => "combining mark",
            _ if c.is_control() => "control character",
            _ if c.is_alphabetic() && c.nfd().nth(1).is_some_and(is_combining_mark) => {
                "letter with diacritics"
            }
            _ => "non-GSM character",
        }
    };
    let folded = fold_diacritics(c.encode_utf8(&mut [0; 4]));
    let suggestion = (folded.chars().ne([c]) && folded.chars().all(is_gsm7)).then_some(folded);
    Offending {
        position,
        character: c,
        codepoint: codepoint(c),
        name,
        suggestion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 353 characters after NFC; the real campaign message length from the domain notes.
    const CAMPAIGN_353: &str = "UBND tỉnh Long An: Hưởng ứng Tháng hành động phòng, chống ma túy, hãy chung tay nâng cao hiệu quả công tác cai nghiện ma túy và quản lý người sử dụng trái phép chất ma túy - Vì một cộng đồng khỏe mạnh và an toàn. Phát hiện hành vi mua bán, tàng trữ, sử dụng trái phép chất ma túy, hãy báo cho Công an xã, phường nơi gần nhất hoặc gọi số 113. Trân trọng!";

    fn part_cost(encoding: Encoding, part: &str) -> usize {
        part.chars().map(|c| encoding.cost(c)).sum()
    }

    fn part_costs(a: &Analysis) -> Vec<usize> {
        a.parts.iter().map(|p| part_cost(a.encoding, p)).collect()
    }

    /// Vietnamese letters generated from base letters and tone marks, both cases.
    fn vietnamese_generated() -> Vec<char> {
        let bases = [
            "a", "a\u{306}", "a\u{302}", "e", "e\u{302}", "i", "o", "o\u{302}", "o\u{31B}", "u",
            "u\u{31B}", "y",
        ];
        let tones = ["", "\u{300}", "\u{309}", "\u{303}", "\u{301}", "\u{323}"];
        let mut out = Vec::new();
        for b in bases {
            for t in tones {
                let s: String = format!("{b}{t}").nfc().collect();
                let mut chars = s.chars();
                let c = chars.next().unwrap();
                assert!(chars.next().is_none(), "{b}{t} has no precomposed form");
                if !c.is_ascii() {
                    out.push(c);
                }
            }
        }
        out.push('đ');
        let upper: Vec<char> = out.iter().flat_map(|c| c.to_uppercase()).collect();
        out.extend(upper);
        out
    }

    #[test]
    fn tables_are_complete() {
        let mut basic = GSM7_BASIC.to_vec();
        basic.sort_unstable();
        basic.dedup();
        assert_eq!(basic.len(), 128);
        assert_eq!(GSM7_BASIC[GSM7_ESCAPE], '\u{1B}');
        let encodable = GSM7_BASIC.iter().filter(|&&c| is_gsm7(c)).count();
        assert_eq!(encodable, 127, "everything but ESC");
        for (i, &c) in GSM7_BASIC.iter().enumerate() {
            if i != GSM7_ESCAPE {
                assert_eq!(gsm7_septets(c), Some(1), "{c:?}");
                assert_eq!(c.to_string().nfc().collect::<String>(), c.to_string());
            }
        }
        for (_, c) in GSM7_EXTENSION {
            assert_eq!(gsm7_septets(c), Some(2), "{c:?}");
            assert!(!GSM7_BASIC.contains(&c));
        }
        assert_eq!(gsm7_septets('\u{1B}'), None);
        assert_eq!(gsm7_septets('`'), None);
        assert_eq!(gsm7_septets('ç'), None);
        assert_eq!(gsm7_septets('Ç'), Some(1));
        assert_eq!(gsm7_septets('@'), Some(1));
        assert_eq!(gsm7_septets('\u{C}'), Some(2));
        let ascii_gsm = (0u8..128).filter(|&b| is_gsm7(char::from(b))).count();
        // 95 printable + LF + CR + FF, minus the backtick.
        assert_eq!(ascii_gsm, 97);
    }

    #[test]
    fn vietnamese_letter_table_matches_generated() {
        let generated = vietnamese_generated();
        assert_eq!(generated.len(), 134);
        let table: Vec<char> = VIETNAMESE_LETTERS.chars().collect();
        assert_eq!(table, generated);
    }

    #[test]
    fn encoding_strings() {
        assert_eq!(Encoding::Gsm7.as_str(), "GSM-7");
        assert_eq!(Encoding::Ucs2.to_string(), "UCS-2");
        assert_eq!(serde_json::to_string(&Encoding::Gsm7).unwrap(), "\"GSM-7\"");
        let a = serde_json::to_value(analyze("Hi \u{201C}x\u{201D}")).unwrap();
        assert_eq!(a["encoding"], "UCS-2");
        assert_eq!(a["offending"][0]["position"], 4);
        assert_eq!(a["offending"][0]["character"], "\u{201C}");
        assert_eq!(a["offending"][0]["codepoint"], "U+201C");
        assert_eq!(a["offending"][0]["suggestion"], "\"");
    }

    #[test]
    fn empty_text() {
        let a = analyze("");
        assert_eq!(a.encoding, Encoding::Gsm7);
        assert_eq!((a.characters, a.units, a.segments), (0, 0, 0));
        assert_eq!(a.per_segment, 160);
        assert!(a.parts.is_empty());
        assert_eq!(segments_for(Encoding::Ucs2, 0), 0);
    }

    #[test]
    fn ascii_segment_boundaries() {
        for (n, segments) in [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3)] {
            let a = analyze(&"a".repeat(n));
            assert_eq!(a.encoding, Encoding::Gsm7);
            assert_eq!(a.units, n);
            assert_eq!(a.segments, segments, "{n} chars");
            assert_eq!(segments_for(Encoding::Gsm7, n), segments);
        }
        let a = analyze(&"a".repeat(160));
        assert_eq!(a.per_segment, 160);
        let a = analyze(&"a".repeat(161));
        assert_eq!(a.per_segment, 153);
        assert_eq!(part_costs(&a), [153, 8]);
    }

    #[test]
    fn extension_chars_cost_two_and_are_never_split() {
        let a = analyze(&format!("{}€", "a".repeat(158)));
        assert_eq!((a.units, a.segments), (160, 1));

        let a = analyze(&format!("{}€", "a".repeat(159)));
        assert_eq!(a.encoding, Encoding::Gsm7);
        assert_eq!((a.characters, a.units, a.segments), (160, 161, 2));
        assert_eq!(part_costs(&a), [153, 8]);
        assert!(a.parts[1].ends_with('€'));

        // '€' would occupy septets 153 and 154: it moves whole into part 2.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(20));
        let a = analyze(&text);
        assert_eq!(a.parts[0], "a".repeat(152));
        assert!(a.parts[1].starts_with('€'));
        assert_eq!(part_costs(&a), [152, 22]);
        assert_eq!(a.parts.concat(), text);

        // The wasted septet can cost a segment over the arithmetic count.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(152));
        let a = analyze(&text);
        assert_eq!(a.units, 306);
        assert_eq!(segments_for(Encoding::Gsm7, a.units), 2);
        assert_eq!(a.segments, 3);
    }

    #[test]
    fn vietnamese_with_diacritics_is_ucs2() {
        let a = analyze(&"ệ".repeat(70));
        assert_eq!(a.encoding, Encoding::Ucs2);
        assert_eq!((a.units, a.segments, a.per_segment), (70, 1, 70));
        let a = analyze(&"ệ".repeat(71));
        assert_eq!((a.units, a.segments, a.per_segment), (71, 2, 67));
        assert_eq!(part_costs(&a), [67, 4]);
        let off = &a.offending[0];
        assert_eq!(off.position, 1);
        assert_eq!(off.codepoint, "U+1EC7");
        assert_eq!(off.name, "Vietnamese letter with diacritics");
        assert_eq!(off.suggestion.as_deref(), Some("e"));
        // The GSM-7 accented letters alone keep a message in GSM-7.
        assert_eq!(analyze("à è é ì ò ù É").encoding, Encoding::Gsm7);
    }

    #[test]
    fn emoji_and_surrogate_pairs() {
        let a = analyze("Hi 😀");
        assert_eq!(a.encoding, Encoding::Ucs2);
        assert_eq!((a.characters, a.units, a.segments), (4, 5, 1));
        let off = &a.offending[0];
        assert_eq!((off.position, off.character), (4, '😀'));
        assert_eq!(off.codepoint, "U+1F600");
        assert_eq!(off.name, "emoji");
        assert_eq!(off.suggestion, None);

        // The pair would occupy units 67 and 68: it moves whole into part 2.
        let text = format!("{}😀{}", "x".repeat(66), "y".repeat(10));
        let a = analyze(&text);
        assert_eq!(a.units, 78);
        assert_eq!(a.parts[0], "x".repeat(66));
        assert!(a.parts[1].starts_with('😀'));
        assert_eq!(part_costs(&a), [66, 12]);

        // A ZWJ family sequence: three pairs and two joiners.
        let a = analyze("👨\u{200D}👩\u{200D}👧");
        assert_eq!((a.characters, a.units), (5, 8));
        let a = analyze("👍🏽");
        assert_eq!(a.units, 4);
    }

    #[test]
    fn decomposed_input_equals_composed() {
        let nfd: String = CAMPAIGN_353.nfd().collect();
        assert!(nfd.chars().count() > 353);
        let a = analyze(&nfd);
        let b = analyze(CAMPAIGN_353);
        assert_eq!(a.text, b.text);
        assert_eq!(a.text, CAMPAIGN_353);
        assert_eq!(
            (a.encoding, a.characters, a.units, a.segments),
            (b.encoding, b.characters, b.units, b.segments)
        );
        assert_eq!(a.parts, b.parts);
        let folded_a = analyze_folded(&nfd);
        let folded_b = analyze_folded(CAMPAIGN_353);
        assert_eq!(folded_a.text, folded_b.text);
    }

    #[test]
    fn campaign_message_353_characters() {
        assert_eq!(CAMPAIGN_353.chars().count(), 353);
        let a = analyze(CAMPAIGN_353);
        assert_eq!(a.characters, 353);
        assert_eq!(a.encoding, Encoding::Ucs2);
        assert_eq!((a.units, a.segments, a.per_segment), (353, 6, 67));
        assert_eq!(segments_for(Encoding::Ucs2, 353), 6);
        assert!(!a.folded);

        let f = analyze_folded(CAMPAIGN_353);
        assert!(f.folded);
        assert_eq!(f.encoding, Encoding::Gsm7);
        assert!(f.offending.is_empty());
        assert_eq!(
            (f.characters, f.units, f.segments, f.per_segment),
            (353, 353, 3, 153)
        );
        assert!(
            f.text
                .starts_with("UBND tinh Long An: Huong ung Thang hanh dong phong, chong ma tuy")
        );
        assert!(f.text.contains("Vi mot cong dong khoe manh va an toan."));
        assert_eq!(f.parts.concat(), f.text);
    }

    #[test]
    fn fold_examples() {
        assert_eq!(fold_diacritics("Đường đến trường"), "Duong den truong");
        assert_eq!(fold_diacritics("Cần Giuộc, Đức Hòa"), "Can Giuoc, Duc Hoa");
        assert_eq!(fold_diacritics("à è é ì ò ù É Ñ ü"), "a e e i o u E N u");
        assert_eq!(fold_diacritics("100.000₫"), "100.000d");
        assert_eq!(fold_diacritics("a\u{200B}b\u{00AD}c"), "abc");
        assert_eq!(fold_diacritics("ok 😀"), "ok 😀");
        assert_eq!(fold_diacritics("{[€]}"), "{[€]}");
    }

    #[test]
    fn punctuation_offenders_and_folding() {
        let text = "Say \u{201C}no\u{201D} \u{2013} now\u{00A0}\u{2019}s the time\u{2026}";
        let a = analyze(text);
        assert_eq!(a.encoding, Encoding::Ucs2);
        let found: Vec<(usize, &str, Option<&str>)> = a
            .offending
            .iter()
            .map(|o| (o.position, o.codepoint.as_str(), o.suggestion.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                (5, "U+201C", Some("\"")),
                (8, "U+201D", Some("\"")),
                (10, "U+2013", Some("-")),
                (15, "U+00A0", Some(" ")),
                (16, "U+2019", Some("'")),
                (27, "U+2026", Some("...")),
            ]
        );
        assert_eq!(a.offending[0].name, "left double quotation mark");
        assert_eq!(a.offending[2].name, "en dash");
        assert_eq!(a.offending[3].name, "no-break space");
        assert_eq!(a.offending[5].name, "horizontal ellipsis");
        assert_eq!(a.offending[4].character, '\u{2019}');

        let f = analyze_folded(text);
        assert_eq!(f.encoding, Encoding::Gsm7);
        assert!(f.offending.is_empty());
        assert_eq!(f.text, "Say \"no\" - now 's the time...");
        let em = analyze("a\u{2014}b");
        assert_eq!(em.offending[0].suggestion.as_deref(), Some("-"));
    }

    #[test]
    fn other_offender_names() {
        let a = analyze("Ѣ\u{FE0F}ç");
        let names: Vec<&str> = a.offending.iter().map(|o| o.name).collect();
        assert_eq!(
            names,
            [
                "non-GSM character",
                "emoji variation selector",
                "letter with diacritics"
            ]
        );
        assert_eq!(a.offending[0].suggestion, None);
        assert_eq!(a.offending[1].suggestion.as_deref(), Some(""));
        assert_eq!(a.offending[2].suggestion.as_deref(), Some("c"));
        let a = analyze("x\tý");
        assert_eq!(a.offending[0].name, "tab");
        assert_eq!(a.offending[1].position, 3);
    }

    #[test]
    fn brandnames() {
        assert_eq!(check_brandname("LONGAN"), Ok(()));
        assert_eq!(check_brandname("SO_TTTT.LA"), Ok(()));
        assert_eq!(check_brandname("ABCDEFGHIJK"), Ok(()));
        let long = check_brandname("ABCDEFGHIJKL").unwrap_err();
        assert!(long.contains("12 characters"), "{long}");
        let space = check_brandname("Long An").unwrap_err();
        assert!(space.contains("' '") && space.contains("U+0020"), "{space}");
        let viet = check_brandname("Sở").unwrap_err();
        assert!(viet.contains("'ở'"), "{viet}");
        let empty = check_brandname("").unwrap_err();
        assert!(empty.contains("empty"), "{empty}");
        for err in [long, space, viet, empty] {
            assert!(err.contains("'.' and '_'"), "{err}");
        }
    }

    fn interesting_char() -> impl Strategy<Value = char> {
        let mut pool: Vec<char> = vietnamese_generated();
        pool.extend(
            "aZ09 .,!?\n€^{}\\[]~|\u{C}😀👍🏽\u{200D}\u{FE0F}\u{301}\u{323}\u{302}“”–…\u{A0}".chars(),
        );
        prop_oneof![
            3 => prop::sample::select(pool),
            1 => any::<char>(),
            3 => prop::char::range('a', 'z'),
        ]
    }

    fn foldable_char() -> impl Strategy<Value = char> {
        let mut pool: Vec<char> = vietnamese_generated();
        pool.extend("abcxyzABCXYZ0123456789 .,;:!?-'\"()/%“”‘’–—…\u{A0}".chars());
        prop::sample::select(pool)
    }

    proptest! {
        #[test]
        fn folding_vietnamese_yields_gsm7(chars in prop::collection::vec(foldable_char(), 0..400), decompose in any::<bool>()) {
            let s: String = chars.into_iter().collect();
            let s: String = if decompose { s.nfd().collect() } else { s };
            let f = analyze_folded(&s);
            prop_assert_eq!(f.encoding, Encoding::Gsm7);
            prop_assert!(f.offending.is_empty());
            prop_assert!(f.text.is_ascii(), "{:?}", f.text);
            prop_assert!(f.folded);
        }

        #[test]
        fn parts_rejoin_to_nfc_text(chars in prop::collection::vec(interesting_char(), 0..500)) {
            let s: String = chars.into_iter().collect();
            let a = analyze(&s);
            let nfc: String = s.nfc().collect();
            prop_assert_eq!(&a.text, &nfc);
            prop_assert_eq!(a.parts.concat(), nfc);
            prop_assert_eq!(a.segments, a.parts.len());
            prop_assert!(a.parts.iter().all(|p| !p.is_empty()));
            prop_assert_eq!(a.characters, a.text.chars().count());
            prop_assert_eq!(a.units, part_costs(&a).iter().sum::<usize>());
            prop_assert_eq!(a.encoding == Encoding::Gsm7, a.offending.is_empty());
            prop_assert!(a.segments >= segments_for(a.encoding, a.units));
        }

        #[test]
        fn appending_never_lowers_segments(chars in prop::collection::vec(interesting_char(), 0..500), extra in interesting_char()) {
            let s: String = chars.into_iter().collect();
            let before = analyze(&s).segments;
            let after = analyze(&format!("{s}{extra}")).segments;
            prop_assert!(after >= before, "{} -> {}", before, after);
        }

        #[test]
        fn every_part_fits(chars in prop::collection::vec(interesting_char(), 0..600)) {
            let s: String = chars.into_iter().collect();
            let a = analyze(&s);
            for cost in part_costs(&a) {
                prop_assert!(cost <= a.per_segment, "{} > {}", cost, a.per_segment);
            }
            if a.segments > 1 {
                prop_assert_eq!(a.per_segment, a.encoding.concat_limit());
            }
        }
    }

    proptest! {
        // Quadratic in the length: fewer cases.
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn segments_grow_with_every_prefix(chars in prop::collection::vec(interesting_char(), 150..420)) {
            // Every prefix, so the single/concatenated and GSM-7/UCS-2 boundaries are all crossed.
            let mut s = String::new();
            let mut last = 0;
            for c in chars {
                s.push(c);
                let segments = analyze(&s).segments;
                prop_assert!(segments >= last, "{:?}: {} -> {}", s, last, segments);
                last = segments;
            }
        }
    }
}
