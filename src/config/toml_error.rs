//! A TOML error said by where it is and what is wrong, never by what is written there.
//!
//! toml's own `Display` quotes the offending source line, and serde's messages quote the
//! offending value (`invalid type: string "218"`, `invalid type: integer `12345678``,
//! `unknown variant `…``). A config holds tokens, keys and secrets inline, often on the very
//! line that is wrong (an inline `WXGATE_CONFIG` is one line), and the error goes to
//! CloudWatch at every init or to a terminal. So the report is the line, the column, the key
//! the value belongs to, and the message with every quoted value taken out.

/// `line L, column C (key): message`, without any value from the document.
pub(super) fn describe(text: &str, error: &toml::de::Error) -> String {
    let message = redact_values(error.message());
    let Some(span) = error.span() else {
        return message;
    };
    let at = span.start.min(text.len());
    let before = text.get(..at).unwrap_or_default();
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    match key_before(&before[line_start..]) {
        Some(key) => format!("line {line}, column {column} ({key}): {message}"),
        None => format!("line {line}, column {column}: {message}"),
    }
}

/// The bare key a value at the end of `line` is assigned to (`… agent_id = `), if any. Keys
/// are names from the schema, never secrets.
fn key_before(line: &str) -> Option<&str> {
    let rest = line.trim_end().strip_suffix('=')?.trim_end();
    let start = rest
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let key = &rest[start..];
    (!key.is_empty() && key.len() <= 64).then_some(key)
}

/// serde's messages with the values they quote replaced by the kind of value:
/// `invalid type: string "218", expected u64` → `invalid type: a string, expected u64`.
fn redact_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((unexpected, expected)) = rest.split_once(", expected ")
        {
            return format!("{prefix}{}, expected {expected}", kind(unexpected));
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant ")
        && let Some((_, expected)) = rest.split_once(", expected ")
    {
        return format!("unknown value, expected {expected}");
    }
    if (message.contains('"') || message.contains('`')) && !is_known_safe(message) {
        // A message of a shape not seen before that quotes something: say only that the
        // value there is invalid.
        return "invalid value".into();
    }
    message.to_owned()
}

/// Messages that quote only names from the schema or TOML syntax (`unknown field `tokne`,
/// expected one of `name`, …`, `missing field `token``, `expected `}``).
fn is_known_safe(message: &str) -> bool {
    message.starts_with("unknown field ")
        || message.starts_with("missing field ")
        || message.starts_with("duplicate field ")
        || message.contains(", expected `")
        || message.starts_with("expected `")
}

/// `string "218"` → `a string`, `integer `1` as i128` → `an integer`, `map` → `a map`.
fn kind(unexpected: &str) -> String {
    let name = unexpected
        .split(['"', '`'])
        .next()
        .unwrap_or_default()
        .trim();
    let name = if name.is_empty() { "value" } else { name };
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_replaced_by_their_kind() {
        assert_eq!(
            redact_values("invalid type: string \"218\", expected u64"),
            "invalid type: a string, expected u64"
        );
        assert_eq!(
            redact_values("invalid type: integer `99` as i128, expected u64"),
            "invalid type: an integer, expected u64"
        );
        assert_eq!(
            redact_values("invalid value: integer `-5`, expected u64"),
            "invalid value: an integer, expected u64"
        );
        assert_eq!(
            redact_values("unknown variant `S3CRET`, expected `wecom` or `mp`"),
            "unknown value, expected `wecom` or `mp`"
        );
        assert_eq!(
            redact_values("invalid type: map, expected a string"),
            "invalid type: a map, expected a string"
        );
    }

    #[test]
    fn names_and_syntax_are_kept() {
        for message in [
            "unknown field `tokne`, expected one of `name`, `token`",
            "missing field `token`",
            "duplicate key",
            "unclosed inline table, expected `}`",
            "string values must be quoted, expected literal string",
        ] {
            assert_eq!(redact_values(message), message);
        }
        assert_eq!(redact_values("odd \"S3CRET\" message"), "invalid value");
    }

    #[test]
    fn the_key_before_a_value_is_found() {
        assert_eq!(key_before("a = 1, agent_id = "), Some("agent_id"));
        assert_eq!(key_before("[apps.reply]"), None);
        assert_eq!(key_before("x = { y.z ="), Some("y.z"));
        assert_eq!(key_before("名字 ="), None);
        assert_eq!(key_before("中key ="), Some("key"));
    }
}
