//! Text from outside (a query parameter, an element name, a parser's report of the input)
//! as it may appear in an error, a log line or a response body: one line, no terminal
//! sequences, bounded. A leaf of the protocol core, so the parsers' errors use it too.

/// `text` as it may be shown: at most `max_chars` characters (then `…`), control characters
/// escaped.
pub fn shown(text: &str, max_chars: usize) -> String {
    let (cut, more) = match text.char_indices().nth(max_chars) {
        Some((at, _)) => (&text[..at], true),
        None => (text, false),
    };
    let mut out = escape_controls(cut).into_owned();
    if more {
        out.push('…');
    }
    out
}

/// `text` with every control character (C0, DEL, C1) written as an escape, so it stays on
/// one line and cannot carry terminal sequences.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_from_outside_are_cut_and_escaped() {
        assert_eq!(shown("aes", 32), "aes");
        assert_eq!(shown("x\ny\u{1b}[2J", 32), "x\\ny\\u{1b}[2J");
        assert_eq!(shown(&"長".repeat(40), 32), format!("{}…", "長".repeat(32)));
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("plain 中文"), "plain 中文");
        assert_eq!(
            escape_controls("a\nb\r\u{1b}[31mc\u{7f}\u{85}"),
            "a\\nb\\r\\u{1b}[31mc\\u{7f}\\u{85}"
        );
    }
}
