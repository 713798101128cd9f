//! The outer XML of safe-mode callbacks and of encrypted replies.

use std::borrow::Cow;

use crate::error::ProtocolError;
use crate::xml::{self, XmlWriter};

/// The outer document of an encrypted callback:
/// `<xml><ToUserName/><AgentID/><Encrypt/></xml>` (WeCom), `<xml><ToUserName/><Encrypt/></xml>`
/// (MP safe mode), or a full plaintext message plus `<Encrypt/>` (MP compatible mode).
///
/// Only `Encrypt` is covered by the signature, so nothing else is exposed as trusted: the
/// outer `ToUserName` is kept only as a routing hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedEnvelope<'a> {
    /// The base64 ciphertext, the only signed field.
    pub encrypt: Cow<'a, str>,
    /// Unsigned: the outer ToUserName, if any.
    pub to_user_name_hint: Option<Cow<'a, str>>,
}

impl<'a> EncryptedEnvelope<'a> {
    /// Parses the outer document.
    ///
    /// # Errors
    /// -40002 for malformed XML or a missing or empty `Encrypt`.
    pub fn parse(xml: &'a str) -> Result<Self, ProtocolError> {
        // Before the signature is checked: only the root's direct children are read, at a
        // cost that does not depend on how the body is shaped (`xml::scan_top_level`).
        let (mut encrypt, mut to_user_name_hint) = (None, None);
        xml::scan_top_level(xml, |name, value| match name {
            "Encrypt" if encrypt.is_none() => encrypt = Some(value),
            "ToUserName" if to_user_name_hint.is_none() => to_user_name_hint = Some(value),
            _ => {}
        })?;
        let encrypt = encrypt
            .filter(|e| !e.is_empty())
            .ok_or(ProtocolError::XmlMissingField("Encrypt"))?;
        Ok(Self {
            encrypt,
            to_user_name_hint,
        })
    }
}

/// Renders the encrypted reply envelope:
/// `<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>`. Crate-private because it
/// trusts `encrypt` to be base64 and `msg_signature` hex, as [`super::MsgCrypt::seal`] makes them.
pub(crate) fn render_reply_envelope(
    out: &mut String,
    encrypt: &str,
    msg_signature: &str,
    timestamp: u64,
    nonce: &str,
) {
    out.reserve(encrypt.len() + 160);
    XmlWriter::new(out)
        .open("xml")
        // Our own base64 and hex digits: nothing in them needs escaping.
        .safe_text("Encrypt", encrypt)
        .safe_text("MsgSignature", msg_signature)
        .number("TimeStamp", timestamp)
        .text("Nonce", nonce)
        .close("xml");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wecom_envelope() {
        let xml = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[abc=]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>";
        let env = EncryptedEnvelope::parse(xml).unwrap();
        assert_eq!(env.encrypt, "abc=");
        assert_eq!(env.to_user_name_hint.as_deref(), Some("wx5823bf96d3bd56c7"));
    }

    #[test]
    fn compatible_mode_envelope_takes_only_encrypt() {
        let xml = "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content>forged</Content><Encrypt>ZZZ=</Encrypt></xml>";
        assert_eq!(EncryptedEnvelope::parse(xml).unwrap().encrypt, "ZZZ=");
    }

    #[test]
    fn missing_or_empty_encrypt_is_40002() {
        for xml in [
            "<xml><ToUserName>a</ToUserName></xml>",
            "<xml><Encrypt></Encrypt></xml>",
            "<xml><Encrypt/></xml>",
        ] {
            assert_eq!(
                EncryptedEnvelope::parse(xml).unwrap_err(),
                ProtocolError::XmlMissingField("Encrypt")
            );
        }
    }

    #[test]
    fn reply_envelope_shape() {
        let mut out = String::new();
        render_reply_envelope(&mut out, "enc", "sig", 1409659813, "n1");
        assert_eq!(
            out,
            "<xml><Encrypt><![CDATA[enc]]></Encrypt><MsgSignature><![CDATA[sig]]></MsgSignature><TimeStamp>1409659813</TimeStamp><Nonce><![CDATA[n1]]></Nonce></xml>"
        );
    }
}
