//! Text that leaves smscast for a person: spreadsheet cells and terminal output.
//!
//! Names and texts come from files and flags that smscast does not control (a district column,
//! a list name, a message file). Two places would act on them instead of showing them:
//! a spreadsheet reads a cell starting with `=` as a formula (CSV injection), and a terminal
//! obeys escape sequences (ESC, CSI, BEL…) that can clear the screen, retitle the window or
//! hide text. Both are neutralised here, at the edge, and nowhere else.

use std::borrow::Cow;

/// A CSV cell a spreadsheet will not run: a cell starting with `=`, `+`, `-`, `@`, TAB or CR
/// gets a leading `'` (OWASP, "CSV Injection"). A number such as `+84 912…` is neutralised
/// too: the `'` only tells the spreadsheet it is text.
pub fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Characters a terminal may act on: C0 and C1 controls and DEL, and the bidirectional
/// overrides and isolates that reorder what is shown ("Trojan Source").
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// One line of output (a name, a message text): every control character, line breaks
/// included, is written as its escape (`\u{1b}`, `\n`).
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Several lines of output (a rendered report, an error chain): line breaks and tabs stay,
/// every other control character is escaped.
pub fn for_terminal_lines(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

fn escape(s: &str, keep_lines: bool) -> Cow<'_, str> {
    let kept = |c: char| keep_lines && matches!(c, '\n' | '\t');
    if !s.chars().any(|c| is_unsafe(c) && !kept(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) && !kept(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_get_an_apostrophe() {
        for cell in ["=1+2", "+84912345678", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(spreadsheet_safe(cell), format!("'{cell}"));
        }
        for cell in ["", "0912345678", "Tân An", "a=b", " =1", "'=1"] {
            assert!(matches!(spreadsheet_safe(cell), Cow::Borrowed(c) if c == cell));
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(for_terminal("la\u{1b}[2J"), "la\\u{1b}[2J");
        assert_eq!(
            for_terminal("a\u{9b}b\u{7}c\u{7f}"),
            "a\\u{9b}b\\u{7}c\\u{7f}"
        );
        assert_eq!(for_terminal("x\ny\tz\r"), "x\\ny\\tz\\r");
        assert_eq!(for_terminal("abc\u{202e}def"), "abc\\u{202e}def");
        assert!(matches!(for_terminal("Đức Hòa 😀"), Cow::Borrowed(_)));
        assert_eq!(
            for_terminal_lines("a\n\tb\u{1b}c\r\n"),
            "a\n\tb\\u{1b}c\\r\n"
        );
    }
}
