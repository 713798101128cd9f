//! The JSON envelopes around the ciphertext.
//!
//! In: the AI bot POSTs `{"encrypt": "…"}`; the Mini Program's JSON push POSTs
//! `{"ToUserName": "gh_…", "Encrypt": "…"}`. Only the ciphertext is signed, so nothing else
//! is trusted. Out: `{"encrypt","msgsignature","timestamp","nonce"}` (AI bot) or
//! `{"Encrypt","MsgSignature","TimeStamp","Nonce"}` (Mini Program).

use serde::Deserialize;

use crate::error::ProtocolError;

/// The outer JSON of an encrypted callback, before its signature is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonEnvelope {
    /// The base64 ciphertext, the only signed field.
    pub encrypt: String,
    /// Unsigned: the Mini Program's outer ToUserName, if any.
    pub to_user_name_hint: Option<String>,
}

/// The fields read; any other is ignored, a repeated one refused (serde).
#[derive(Deserialize)]
struct Outer {
    #[serde(default)]
    encrypt: Option<String>,
    #[serde(default, rename = "Encrypt")]
    encrypt_upper: Option<String>,
    #[serde(default, rename = "ToUserName")]
    to_user_name: Option<String>,
}

impl JsonEnvelope {
    /// Parses the outer document: a JSON object with a non-empty string `encrypt` (the AI
    /// bot) or `Encrypt` (the Mini Program); not both.
    ///
    /// # Errors
    /// -40002: not a JSON object, a field of the wrong type or given twice, no ciphertext.
    pub fn parse(body: &str) -> Result<Self, ProtocolError> {
        // The body's size is bounded before (the gateway's max_body_bytes) and serde_json
        // bounds nesting, so this costs at most one pass over a bounded input.
        let outer: Outer =
            serde_json::from_str(body).map_err(|e| ProtocolError::Json(json_reason(&e)))?;
        let encrypt = match (outer.encrypt, outer.encrypt_upper) {
            (Some(_), Some(_)) => {
                return Err(ProtocolError::Json(
                    "both `encrypt` and `Encrypt` are present".into(),
                ));
            }
            (Some(e), None) | (None, Some(e)) => e,
            (None, None) => return Err(ProtocolError::JsonMissingField("encrypt")),
        };
        if encrypt.is_empty() {
            return Err(ProtocolError::JsonMissingField("encrypt"));
        }
        Ok(Self {
            encrypt,
            to_user_name_hint: outer.to_user_name,
        })
    }
}

/// Why JSON did not parse, without quoting it (it may carry message contents).
pub(crate) fn json_reason(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "not well-formed",
        Category::Data => "not the expected shape",
        Category::Eof => "cut short",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// Which envelope an encrypted reply goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyEnvelope {
    /// The AI bot's: lowercase keys, `msgsignature` without an underscore.
    Aibot,
    /// The Mini Program's JSON push: capitalised keys.
    MiniProgram,
}

/// Renders an encrypted reply. `encrypt` (base64) and `msg_signature` (hex) are the
/// crate's own output and `nonce` the callback's, checked as signable: nothing in them
/// needs escaping, but they are escaped by serde anyway. The timestamp is a JSON number,
/// as the platforms' documents show it (the official Python sample writes a string; the
/// platform's parser is not documented to insist on either).
pub fn render_reply_envelope(
    kind: ReplyEnvelope,
    encrypt: &str,
    msg_signature: &str,
    timestamp: u64,
    nonce: &str,
) -> String {
    let value = match kind {
        ReplyEnvelope::Aibot => serde_json::json!({
            "encrypt": encrypt,
            "msgsignature": msg_signature,
            "timestamp": timestamp,
            "nonce": nonce,
        }),
        ReplyEnvelope::MiniProgram => serde_json::json!({
            "Encrypt": encrypt,
            "MsgSignature": msg_signature,
            "TimeStamp": timestamp,
            "Nonce": nonce,
        }),
    };
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aibot_and_mini_program_envelopes_parse() {
        let e = JsonEnvelope::parse(r#"{"encrypt":"abc="}"#).unwrap();
        assert_eq!(e.encrypt, "abc=");
        let e = JsonEnvelope::parse(r#"{"ToUserName":"gh_1","Encrypt":"x=","other":[1,{"a":2}]}"#)
            .unwrap();
        assert_eq!(
            (e.encrypt.as_str(), e.to_user_name_hint.as_deref()),
            ("x=", Some("gh_1"))
        );
    }

    #[test]
    fn malformed_envelopes_are_40002_and_quote_nothing() {
        for body in [
            "",
            "not json",
            "[]",
            r#"{"encrypt":1}"#,
            r#"{"encrypt":"a","encrypt":"b"}"#,
            r#"{"encrypt":"a","Encrypt":"b"}"#,
            r#"{"encrypt":"secret-looking"#,
        ] {
            let e = JsonEnvelope::parse(body).unwrap_err();
            assert_eq!(e.code(), crate::error::ErrorCode::ParseXml, "{body}");
            assert!(!e.to_string().contains("secret-looking"), "{e}");
        }
        for body in ["{}", r#"{"encrypt":""}"#, r#"{"ToUserName":"gh"}"#] {
            assert_eq!(
                JsonEnvelope::parse(body).unwrap_err(),
                ProtocolError::JsonMissingField("encrypt"),
                "{body}"
            );
        }
    }

    #[test]
    fn deep_nesting_in_an_ignored_field_costs_no_stack() {
        // Skipped without recursion (a stack overflow would abort the test process).
        let body = format!(
            r#"{{"x":{}1{}, "encrypt":"a"}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(JsonEnvelope::parse(&body).unwrap().encrypt, "a");
        let unbalanced = format!(r#"{{"x":{}"#, "[".repeat(100_000));
        assert!(JsonEnvelope::parse(&unbalanced).is_err());
    }

    #[test]
    fn reply_envelopes_have_the_platforms_keys() {
        let v: serde_json::Value = serde_json::from_str(&render_reply_envelope(
            ReplyEnvelope::Aibot,
            "enc",
            "sig",
            1_700_000_000,
            "n1",
        ))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"encrypt":"enc","msgsignature":"sig","timestamp":1_700_000_000u64,"nonce":"n1"})
        );
        let v: serde_json::Value = serde_json::from_str(&render_reply_envelope(
            ReplyEnvelope::MiniProgram,
            "enc",
            "sig",
            5,
            "n",
        ))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"Encrypt":"enc","MsgSignature":"sig","TimeStamp":5,"Nonce":"n"})
        );
    }
}
