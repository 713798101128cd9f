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

/// Whether `bytes` may hold a forbidden character or a CR. U+FFFE/U+FFFF are `EF BF BE`/`EF
/// BF BF` in UTF-8, so flagging every `EF` lead byte (also the start of full-width CJK
/// punctuation) over-approximates cheaply; the exact check runs only on flagged text.
pub(crate) fn may_need_cleaning(bytes: &[u8]) -> bool {
    // Branch-free, so the compiler vectorises it.
    bytes.iter().fold(false, |acc, &b| {
        acc | ((b < 0x20) & (b != b'\t') & (b != b'\n')) | (b == 0xEF)
    })
}

/// `text` as XML carries it: forbidden characters dropped, then CR LF and lone CR as LF.
pub fn written_as(text: &str) -> Cow<'_, str> {
    clean(Cow::Borrowed(text))
}

/// As [`written_as`], keeping a borrowed value borrowed when it needs no change.
pub(crate) fn clean(text: Cow<'_, str>) -> Cow<'_, str> {
    let needs =
        may_need_cleaning(text.as_bytes()) && text.chars().any(|c| c == '\r' || is_forbidden(c));
    if !needs {
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
    fn the_quick_check_flags_whatever_needs_cleaning() {
        for text in ["\r", "\u{1}", "\u{FFFE}", "x\u{FFFF}"] {
            assert!(may_need_cleaning(text.as_bytes()), "{text:?}");
        }
        assert!(!may_need_cleaning("tab\tand\nlf 你好".as_bytes()));
    }
}
