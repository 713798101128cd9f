//! The characters an XML value can hold, with one rule for reading and writing.
//!
//! XML 1.0 cannot carry C0 control characters other than tab, LF and CR, nor U+FFFE and
//! U+FFFF, not even escaped; and a parser reports CR LF and a lone CR as LF. A user's text
//! can hold any of them, so the parser drops the forbidden characters from every value (raw
//! or written as character references) and the writer drops them and normalises line ends
//! before writing: a value read back is exactly [`written_as`] of what was written, and no
//! character can change how the writer splits CDATA sections.

use std::borrow::Cow;

/// Whether XML 1.0 cannot represent `c` at all.
pub fn is_forbidden(c: char) -> bool {
    (c < '\u{20}' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}'
}

/// Whether `bytes` hold a forbidden character or a CR, exactly: a branch-free pass for the
/// control characters, and a look at the bytes after each `EF` (U+FFFE/U+FFFF are
/// `EF BF BE`/`EF BF BF`; Chinese full-width punctuation also starts with `EF`).
pub(crate) fn needs_cleaning(bytes: &[u8]) -> bool {
    let controls = bytes.iter().fold(false, |acc, &b| {
        acc | ((b < 0x20) & (b != b'\t') & (b != b'\n'))
    });
    controls
        || memchr::memchr_iter(0xEF, bytes)
            .any(|at| matches!(bytes.get(at + 1..at + 3), Some([0xBF, 0xBE | 0xBF])))
}

/// `text` as XML carries it: forbidden characters dropped, then CR LF and lone CR as LF.
pub fn written_as(text: &str) -> Cow<'_, str> {
    clean(Cow::Borrowed(text))
}

/// As [`written_as`], keeping a borrowed value borrowed when it needs no change.
pub(crate) fn clean(text: Cow<'_, str>) -> Cow<'_, str> {
    if !needs_cleaning(text.as_bytes()) {
        return text;
    }
    // Dropped first, then line ends: `\r\u{1}\n` is one line end, as the writer writes it.
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().filter(|&c| !is_forbidden(c)).peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
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
    fn forbidden_characters_go_and_line_ends_become_lf() {
        assert_eq!(
            written_as("a\u{0}b\u{1f}c\td\ne\r\nf\rg\u{FFFE}h\u{FFFF}i\u{FFFD}"),
            "abc\td\ne\nf\nghi\u{FFFD}"
        );
        assert!(matches!(written_as("plain 中文，"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_check_finds_exactly_what_needs_cleaning() {
        for text in ["\r", "\u{1}", "\u{FFFE}", "x\u{FFFF}", "，\u{1f}"] {
            assert!(needs_cleaning(text.as_bytes()), "{text:?}");
        }
        // Full-width punctuation (EF BC xx) and the halfwidth forms before U+FFFE are fine.
        for text in ["tab\tand\nlf 你好，世界？", "\u{FFEE}\u{FFFD}", ""] {
            assert!(!needs_cleaning(text.as_bytes()), "{text:?}");
        }
    }
}
