//! Writes the platforms' reply XML into a `String`.
//!
//! Text goes into CDATA sections. Two things every hand-rolled writer gets wrong are handled
//! here, in this order: characters XML 1.0 cannot carry at all (C0 controls other than tab,
//! CR, LF, and U+FFFE/U+FFFF) would make the platform's parser reject the whole reply, so
//! they are dropped, and line ends are written as LF, as any parser reads them
//! ([`written_as`](super::written_as)); then `]]>` inside the text, which would end the
//! section early, is split across two sections. Dropping first matters: `]\u{1}]>` must not
//! become a `]]>` after the split, or a user's text could end the section and add elements
//! to the reply.

/// Appends XML elements to a string.
#[derive(Debug)]
pub struct XmlWriter<'o> {
    out: &'o mut String,
}

impl<'o> XmlWriter<'o> {
    /// Writes into `out`, appending.
    pub fn new(out: &'o mut String) -> Self {
        Self { out }
    }

    /// `<name>`
    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `</name>`
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `<name><![CDATA[text]]></name>`, with `text` made safe for CDATA.
    pub fn text(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name);
        push_cdata(self.out, text);
        self.close(name)
    }

    /// `<name><![CDATA[value]]></name>` for a value that is safe by construction (base64 or
    /// hex that we produced): written without the scan [`text`](Self::text) does.
    pub fn safe_text(&mut self, name: &str, value: &str) -> &mut Self {
        debug_assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        );
        self.open(name);
        self.out.push_str("<![CDATA[");
        self.out.push_str(value);
        self.out.push_str("]]>");
        self.close(name)
    }

    /// `<name>n</name>` for a number, which needs no CDATA.
    pub fn number(&mut self, name: &str, n: u64) -> &mut Self {
        use std::fmt::Write;
        self.open(name);
        // Writing to a String cannot fail.
        let _ = write!(self.out, "{n}");
        self.close(name)
    }

    /// `<name>x</name>` for a decimal (coordinates), which needs no CDATA.
    pub fn decimal(&mut self, name: &str, x: f64) -> &mut Self {
        use std::fmt::Write;
        self.open(name);
        let _ = write!(self.out, "{x}");
        self.close(name)
    }
}

/// Whether `text` can go into one CDATA section as it is: no `]]>`, no CR and no forbidden
/// character. U+FFFE/U+FFFF are `EF BF BE`/`EF BF BF` in UTF-8, so a byte scan suffices.
fn is_plain_cdata(text: &str) -> bool {
    let bytes = text.as_bytes();
    // A branch-free pass the compiler vectorises finds the bytes that could start trouble;
    // only text holding one of them (rare, bar full-width CJK punctuation, which starts with
    // 0xEF) gets the exact check: `chars::needs_cleaning`'s rule and the `]]>` test in one
    // pass (calling both is measurably slower on Chinese text; docs/benchmarks.md).
    let suspicious = bytes.iter().fold(false, |acc, &b| {
        acc | (b < 0x20) | (b == b']') | (b == 0xEF)
    });
    !suspicious
        || !bytes.iter().enumerate().any(|(i, &b)| {
            (b < 0x20 && !matches!(b, b'\t' | b'\n'))
                || (b == b']' && bytes[i + 1..].starts_with(b"]>"))
                || (b == 0xEF && matches!(bytes[i + 1..], [0xBF, 0xBE | 0xBF, ..]))
        })
}

/// Appends `text` as one or more CDATA sections: what XML cannot carry dropped first, then
/// `]]>` split.
pub(crate) fn push_cdata(out: &mut String, text: &str) {
    out.push_str("<![CDATA[");
    if is_plain_cdata(text) {
        out.push_str(text);
    } else {
        let clean = super::written_as(text);
        let mut rest = &*clean;
        while let Some(at) = rest.find("]]>") {
            out.push_str(&rest[..at]);
            // End the section after `]]`, start a new one with `>`.
            out.push_str("]]]]><![CDATA[>");
            rest = &rest[at + 3..];
        }
        out.push_str(rest);
    }
    out.push_str("]]>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::Fields;

    fn cdata(text: &str) -> String {
        let mut s = String::new();
        push_cdata(&mut s, text);
        s
    }

    #[test]
    fn plain_text_is_one_section() {
        assert_eq!(cdata("你好 <b>&"), "<![CDATA[你好 <b>&]]>");
    }

    #[test]
    fn terminator_is_split_across_sections() {
        assert_eq!(cdata("a]]>b"), "<![CDATA[a]]]]><![CDATA[>b]]>");
        assert_eq!(
            cdata("]]>]]>"),
            "<![CDATA[]]]]><![CDATA[>]]]]><![CDATA[>]]>"
        );
        assert_eq!(cdata("]]"), "<![CDATA[]]]]>");
    }

    #[test]
    fn forbidden_characters_are_dropped_allowed_ones_kept() {
        assert_eq!(
            cdata("a\u{0}b\u{1f}c\td\ne\rf\u{FFFE}g\u{FFFF}h\u{FFFD}"),
            "<![CDATA[abc\td\ne\nfgh\u{FFFD}]]>"
        );
    }

    #[test]
    fn a_terminator_hidden_by_forbidden_characters_is_still_split() {
        // Dropping \u{1} joins `]]>`; it must be split after the drop, not before.
        for text in ["]\u{1}]>", "]]\u{0}>", "]\u{1}]\u{2}>", "]\u{FFFE}]>"] {
            let out = cdata(text);
            assert_eq!(out, "<![CDATA[]]]]><![CDATA[>]]>", "{text:?}");
        }
    }

    #[test]
    fn written_text_parses_back_to_the_same_value() {
        for text in [
            "",
            "]]>",
            "x]]>y]]>z",
            "emoji 😀 中文",
            "]",
            "]]",
            "]>",
            "a]]]>b",
        ] {
            let mut out = String::new();
            XmlWriter::new(&mut out)
                .open("xml")
                .text("C", text)
                .number("N", 42)
                .close("xml");
            let fields = Fields::parse(&out).unwrap();
            assert_eq!(fields.get("C"), Some(text), "{out}");
            assert_eq!(fields.get("N"), Some("42"));
        }
    }
}
