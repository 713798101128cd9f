//! Typed reads from [`Fields`], consuming what they read so the rest can be kept as extras.

use crate::error::ProtocolError;
use crate::xml::Fields;

/// Longest type or event name matched against the known ones; longer ones are unknown.
pub(crate) const MAX_KNOWN_NAME: usize = 32;

/// `name` in ASCII lowercase, in `buf`, for matching known names without allocating. Names
/// too long to be known ones come back empty and so match nothing.
pub(crate) fn lowercase<'b>(name: &str, buf: &'b mut [u8; MAX_KNOWN_NAME]) -> &'b str {
    let Some(dst) = buf.get_mut(..name.len()) else {
        return "";
    };
    dst.copy_from_slice(name.as_bytes());
    dst.make_ascii_lowercase();
    // Lowercasing ASCII bytes keeps UTF-8 valid.
    std::str::from_utf8(dst).unwrap_or("")
}

/// A field the platform always sends; absent or empty is an error.
pub(crate) fn required(f: &mut Fields<'_>, name: &'static str) -> Result<String, ProtocolError> {
    match f.take(name) {
        Some(v) if !v.is_empty() => Ok(v.into_owned()),
        _ => Err(ProtocolError::XmlMissingField(name)),
    }
}

/// A text field; absent reads as empty, because payload fields vary between platform
/// versions and a missing one must not fail the whole callback.
pub(crate) fn text(f: &mut Fields<'_>, name: &str) -> String {
    f.take(name).map(|v| v.into_owned()).unwrap_or_default()
}

/// A text field that is often absent or empty (EventKey on subscribe, say).
pub(crate) fn optional(f: &mut Fields<'_>, name: &str) -> Option<String> {
    f.take(name)
        .filter(|v| !v.is_empty())
        .map(|v| v.into_owned())
}

/// A number the platform always sends.
pub(crate) fn required_num<T: std::str::FromStr>(
    f: &mut Fields<'_>,
    name: &'static str,
) -> Result<T, ProtocolError> {
    optional_num(f, name)?.ok_or(ProtocolError::XmlMissingField(name))
}

/// A number that may be absent or empty; present but not a number is an error, since
/// a garbled value must not pass as zero.
pub(crate) fn optional_num<T: std::str::FromStr>(
    f: &mut Fields<'_>,
    name: &'static str,
) -> Result<Option<T>, ProtocolError> {
    match f.take(name) {
        None => Ok(None),
        Some(v) if v.trim_ascii().is_empty() => Ok(None),
        Some(v) => v
            .trim_ascii()
            .parse()
            .map(Some)
            .map_err(|_| ProtocolError::XmlInvalidField {
                field: name,
                reason: "expected a number",
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_trimmed_and_checked() {
        let mut f = Fields::parse("<xml><A> 12 </A><B>x</B><C></C></xml>").unwrap();
        assert_eq!(optional_num::<u64>(&mut f, "A").unwrap(), Some(12));
        assert_eq!(
            optional_num::<u64>(&mut f, "B").unwrap_err(),
            ProtocolError::XmlInvalidField {
                field: "B",
                reason: "expected a number"
            }
        );
        assert_eq!(optional_num::<u64>(&mut f, "C").unwrap(), None);
        assert_eq!(
            required_num::<u64>(&mut f, "D").unwrap_err(),
            ProtocolError::XmlMissingField("D")
        );
    }

    #[test]
    fn lowercase_matches_without_allocating_and_refuses_long_names() {
        let mut buf = [0u8; MAX_KNOWN_NAME];
        assert_eq!(
            lowercase("TEMPLATESENDJOBFINISH", &mut buf),
            "templatesendjobfinish"
        );
        assert_eq!(lowercase("Ünïcode", &mut buf), "Ünïcode");
        assert_eq!(lowercase(&"x".repeat(33), &mut buf), "");
    }

    #[test]
    fn required_text_must_be_present_and_non_empty() {
        let mut f = Fields::parse("<xml><A></A></xml>").unwrap();
        assert_eq!(
            required(&mut f, "A").unwrap_err(),
            ProtocolError::XmlMissingField("A")
        );
        assert_eq!(text(&mut f, "Z"), "");
        assert_eq!(optional(&mut f, "Z"), None);
    }
}
