//! District names: one canonical spelling per district, matched case- and
//! tone-insensitively.
//!
//! District names are *data*, not code: administrative units are reorganised
//! from time to time (Long An's were in 2025), so a [`DistrictMatcher`] is built
//! from a list of canonical names. [`LONG_AN_2019`] is the default list (the 15
//! district-level units of Long An before the 2025 reorganisation) and
//! [`LONG_AN_2019_POPULATION`] carries their 2019 census population for test-data
//! generators.
//!
//! Matching, in order:
//! 1. NFC + trim; empty → `None`.
//! 2. Words are split on anything that is not a letter or digit; a leading
//!    administrative prefix (`huyện`, `h.`, `quận`, `q.`, `thị xã`, `tx`,
//!    `thành phố`, `tp`, `city`, `district`, `town`) and a trailing `city` /
//!    `district` / `town` are dropped.
//! 3. *Tone key*: lower case, vowel shapes and `đ` kept, tone marks moved to the
//!    end of each word, so the old and new tone placements (`Hoà` / `Hòa`,
//!    `Thuỷ` / `Thủy`) are equal. An exact match here wins.
//! 4. *Folded key* ([`fold_key`] of the words): no diacritics at all, `đ` → `d`,
//!    no spaces. If two canonical names share a folded key, only a tone-key
//!    match can pick one of them.
//! 5. Otherwise `Unknown(nfc trimmed original)`.
//!
//! A small cache from raw string to result makes the common case (files repeat
//! the same few spellings) a single hash lookup.

use std::collections::HashMap;
use std::sync::Mutex;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// The 15 district-level units of Long An before the 2025 reorganisation
/// (canonical NFC spellings, without "thành phố" / "thị xã" / "huyện").
pub const LONG_AN_2019: &[&str] = &[
    "Tân An",
    "Kiến Tường",
    "Tân Hưng",
    "Vĩnh Hưng",
    "Mộc Hóa",
    "Tân Thạnh",
    "Thạnh Hóa",
    "Đức Huệ",
    "Đức Hòa",
    "Bến Lức",
    "Thủ Thừa",
    "Tân Trụ",
    "Cần Đước",
    "Cần Giuộc",
    "Châu Thành",
];

/// 2019 census population of each unit of [`LONG_AN_2019`] (same order and
/// spellings; total 1,688,547).
pub const LONG_AN_2019_POPULATION: &[(&str, u32)] = &[
    ("Tân An", 145_120),
    ("Kiến Tường", 43_674),
    ("Tân Hưng", 47_651),
    ("Vĩnh Hưng", 50_074),
    ("Mộc Hóa", 28_165),
    ("Tân Thạnh", 77_537),
    ("Thạnh Hóa", 56_074),
    ("Đức Huệ", 65_961),
    ("Đức Hòa", 315_711),
    ("Bến Lức", 181_660),
    ("Thủ Thừa", 98_333),
    ("Tân Trụ", 66_502),
    ("Cần Đước", 187_359),
    ("Cần Giuộc", 214_914),
    ("Châu Thành", 109_812),
];

/// Leading words (already folded) that name the kind of unit, not the unit.
const PREFIXES: &[&[&str]] = &[
    &["thanh", "pho"],
    &["thi", "xa"],
    &["t", "p"],
    &["t", "x"],
    &["huyen"],
    &["quan"],
    &["tp"],
    &["tx"],
    &["h"],
    &["q"],
    &["city"],
    &["district"],
    &["town"],
];

/// Trailing words (already folded) dropped as well: "Tan An City".
const SUFFIXES: &[&str] = &["city", "district", "town"];

/// How many distinct raw spellings the cache remembers.
const CACHE_LIMIT: usize = 4096;

/// The result of resolving a raw district value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum District {
    /// One of the matcher's canonical names, spelled exactly as given to it.
    Known(String),
    /// Not recognised: the NFC, trimmed original.
    Unknown(String),
}

impl District {
    /// The canonical name, or the unrecognised original.
    pub fn as_str(&self) -> &str {
        match self {
            District::Known(s) | District::Unknown(s) => s,
        }
    }

    /// True for a canonical name.
    pub fn is_known(&self) -> bool {
        matches!(self, District::Known(_))
    }
}

/// Resolves free-text district values to canonical names.
///
/// `resolve` takes `&self` and is safe to share between threads (the cache is
/// behind a mutex).
#[derive(Debug)]
pub struct DistrictMatcher {
    names: Vec<String>,
    tone_keys: HashMap<String, usize>,
    /// `None`: two canonical names fold to this key.
    folded_keys: HashMap<String, Option<usize>>,
    cache: Mutex<HashMap<String, Option<District>>>,
}

impl Clone for DistrictMatcher {
    fn clone(&self) -> Self {
        DistrictMatcher {
            names: self.names.clone(),
            tone_keys: self.tone_keys.clone(),
            folded_keys: self.folded_keys.clone(),
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl DistrictMatcher {
    /// Builds a matcher from canonical names (they are NFC-normalised and
    /// trimmed; empty names are ignored; of two names with the same tone key the
    /// first wins).
    pub fn new(canonical: &[&str]) -> Self {
        let mut names = Vec::with_capacity(canonical.len());
        let mut tone_keys = HashMap::with_capacity(canonical.len());
        let mut folded_keys: HashMap<String, Option<usize>> =
            HashMap::with_capacity(canonical.len());
        for name in canonical {
            let name = nfc_trim(name);
            let Some((tone, folded)) = keys(&name) else {
                continue;
            };
            let index = names.len();
            names.push(name);
            tone_keys.entry(tone).or_insert(index);
            folded_keys
                .entry(folded)
                .and_modify(|slot| {
                    if *slot != Some(index) {
                        *slot = None;
                    }
                })
                .or_insert(Some(index));
        }
        DistrictMatcher {
            names,
            tone_keys,
            folded_keys,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The matcher for [`LONG_AN_2019`].
    pub fn long_an() -> Self {
        Self::new(LONG_AN_2019)
    }

    /// The canonical names, in the order given.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// NFC + trim; then match ignoring case, diacritics (including old/new tone
    /// placement), đ/d, spacing and punctuation, and unit prefixes such as
    /// "huyện", "h.", "quận", "thị xã", "tx", "thành phố", "tp", "city",
    /// "district", "town". Unknown → `Unknown(nfc trimmed original)`.
    /// Empty → `None`.
    pub fn resolve(&self, raw: &str) -> Option<District> {
        if let Ok(cache) = self.cache.lock()
            && let Some(hit) = cache.get(raw)
        {
            return hit.clone();
        }
        let result = self.resolve_uncached(raw);
        if let Ok(mut cache) = self.cache.lock()
            && cache.len() < CACHE_LIMIT
        {
            cache.insert(raw.to_owned(), result.clone());
        }
        result
    }

    fn resolve_uncached(&self, raw: &str) -> Option<District> {
        let nfc = nfc_trim(raw);
        if nfc.is_empty() {
            return None;
        }
        let Some((tone, folded)) = keys(&nfc) else {
            return Some(District::Unknown(nfc));
        };
        let index = self
            .tone_keys
            .get(&tone)
            .copied()
            .or_else(|| self.folded_keys.get(&folded).copied().flatten());
        Some(match index {
            Some(i) => District::Known(self.names[i].clone()),
            None => District::Unknown(nfc),
        })
    }
}

/// The normalisation used for matching, reusable for header names: compatibility
/// decomposition, diacritics dropped, `đ`/`Đ` → `d`, lower case, and everything
/// that is not a letter or a digit removed ("Số điện thoại" → "sodienthoai",
/// "Quận/Huyện" → "quanhuyen", "phone_number" → "phonenumber").
pub fn fold_key(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfkd() {
        match c {
            'đ' | 'Đ' => out.push('d'),
            c if c.is_ascii() => {
                if c.is_ascii_alphanumeric() {
                    out.push(c.to_ascii_lowercase());
                }
            }
            c if is_combining_mark(c) => {}
            c => {
                for l in c.to_lowercase() {
                    if l.is_alphanumeric() && !is_combining_mark(l) {
                        out.push(l);
                    }
                }
            }
        }
    }
    out
}

fn nfc_trim(s: &str) -> String {
    let s = s.trim();
    if is_nfc_quick(s.chars()) == IsNormalized::Yes {
        s.to_owned()
    } else {
        s.nfc().collect::<String>().trim().to_owned()
    }
}

/// Vietnamese tone marks (as combining characters after NFD).
fn is_tone_mark(c: char) -> bool {
    matches!(c, '\u{300}' | '\u{301}' | '\u{303}' | '\u{309}' | '\u{323}')
}

/// Tone key of one word: lower case, NFD, tone marks moved to the end.
fn tone_word(word: &str, out: &mut String) {
    let mut tones = String::new();
    for c in word.chars().flat_map(char::to_lowercase).nfd() {
        if is_tone_mark(c) {
            tones.push(c);
        } else {
            out.push(c);
        }
    }
    out.push_str(&tones);
}

/// (tone key, folded key) of an NFC-trimmed, non-empty value; `None` when it
/// has no letters or digits at all.
fn keys(nfc: &str) -> Option<(String, String)> {
    let words: Vec<&str> = nfc
        .split(|c: char| !(c.is_alphanumeric() || is_combining_mark(c)))
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return None;
    }
    let folded: Vec<String> = words.iter().map(|w| fold_key(w)).collect();
    let mut start = 0;
    let mut end = words.len();
    for prefix in PREFIXES {
        if end > prefix.len() && folded[..prefix.len()].iter().eq(prefix.iter()) {
            start = prefix.len();
            break;
        }
    }
    if end - start > 1 && SUFFIXES.contains(&folded[end - 1].as_str()) {
        end -= 1;
    }
    let mut tone = String::with_capacity(nfc.len() + 8);
    for (i, word) in words[start..end].iter().enumerate() {
        if i > 0 {
            tone.push(' ');
        }
        tone_word(word, &mut tone);
    }
    Some((tone, folded[start..end].concat()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(s: &str) -> Option<District> {
        Some(District::Known(s.to_owned()))
    }

    #[test]
    fn canonical_names_are_nfc_and_populations_add_up() {
        assert_eq!(LONG_AN_2019.len(), 15);
        for (name, (pop_name, _)) in LONG_AN_2019.iter().zip(LONG_AN_2019_POPULATION) {
            assert_eq!(name, pop_name);
            assert_eq!(is_nfc_quick(name.chars()), IsNormalized::Yes, "{name}");
        }
        let total: u32 = LONG_AN_2019_POPULATION.iter().map(|(_, p)| p).sum();
        assert_eq!(total, 1_688_547);
        let m = DistrictMatcher::long_an();
        for name in LONG_AN_2019 {
            assert_eq!(m.resolve(name), known(name));
            assert_eq!(m.resolve(&fold_key(name)), known(name), "{name}");
            assert_eq!(m.resolve(&name.to_uppercase()), known(name));
        }
    }

    #[test]
    fn duc_hoa_spellings() {
        let m = DistrictMatcher::long_an();
        for raw in [
            "huyện Đức Hòa",
            "DUC HOA",
            "Đức Hoà",
            "H. Đức Hòa",
            "  Huyện   Đức  Hòa ",
            "h.duc hoa",
            "Đức Hòa District",
            "ĐỨC HOÀ",
            // Decomposed (NFD) input, as some systems write it.
            "Đu\u{301}c Ho\u{300}a",
        ] {
            assert_eq!(m.resolve(raw), known("Đức Hòa"), "{raw:?}");
        }
        // Cached path gives the same answer.
        assert_eq!(m.resolve("DUC HOA"), known("Đức Hòa"));
    }

    #[test]
    fn tan_an_and_kien_tuong_prefixes() {
        let m = DistrictMatcher::long_an();
        for raw in [
            "TP Tân An",
            "tp. tan an",
            "Thành phố Tân An",
            "Tan An city",
            "T.P Tân An",
        ] {
            assert_eq!(m.resolve(raw), known("Tân An"), "{raw:?}");
        }
        for raw in [
            "Thị xã Kiến Tường",
            "TX Kiến Tường",
            "tx.kien tuong",
            "Kien Tuong town",
        ] {
            assert_eq!(m.resolve(raw), known("Kiến Tường"), "{raw:?}");
        }
        assert_eq!(m.resolve("Q. Cần Giuộc"), known("Cần Giuộc"));
        assert_eq!(m.resolve("quận can duoc"), known("Cần Đước"));
    }

    #[test]
    fn unknown_kept_and_empty_is_none() {
        let m = DistrictMatcher::long_an();
        assert_eq!(
            m.resolve("  Quận 1 "),
            Some(District::Unknown("Quận 1".to_owned()))
        );
        // NFC applied to the kept original.
        assert_eq!(
            m.resolve("Bi\u{300}nh Chánh"),
            Some(District::Unknown("Bình Chánh".to_owned()))
        );
        assert_eq!(m.resolve("---"), Some(District::Unknown("---".to_owned())));
        assert_eq!(m.resolve(""), None);
        assert_eq!(m.resolve("  \t "), None);
        // A bare prefix is not stripped to nothing.
        assert_eq!(
            m.resolve("Huyện"),
            Some(District::Unknown("Huyện".to_owned()))
        );
    }

    #[test]
    fn old_and_new_tone_placement() {
        let m = DistrictMatcher::new(&["Thủy Nguyên", "Hòa Vang"]);
        assert_eq!(m.resolve("Thuỷ Nguyên"), known("Thủy Nguyên"));
        assert_eq!(m.resolve("huyện Hoà Vang"), known("Hòa Vang"));
    }

    #[test]
    fn names_colliding_without_tones_need_the_tones() {
        // Hypothetical units differing only by tone.
        let m = DistrictMatcher::new(&["Tân Thạnh", "Tân Thành"]);
        assert_eq!(m.resolve("Tân Thạnh"), known("Tân Thạnh"));
        assert_eq!(m.resolve("TÂN THÀNH"), known("Tân Thành"));
        assert_eq!(
            m.resolve("tan thanh"),
            Some(District::Unknown("tan thanh".to_owned()))
        );
    }

    #[test]
    fn fold_key_for_headers() {
        assert_eq!(fold_key("Số điện thoại"), "sodienthoai");
        assert_eq!(fold_key("Quận/Huyện"), "quanhuyen");
        assert_eq!(fold_key("SĐT"), "sdt");
        assert_eq!(fold_key(" phone_number "), "phonenumber");
        assert_eq!(fold_key("Di-động"), "didong");
        assert_eq!(fold_key("Ｍｓｉｓｄｎ"), "msisdn");
    }
}
