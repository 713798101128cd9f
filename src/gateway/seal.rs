//! Sealing a passive reply: written in the app's data format, and encrypted with the key
//! slot that opened the callback in safe mode. A reply that cannot be sealed is logged and
//! answered empty: the platform then shows nothing rather than an error.

use super::App;
use super::open::Plaintext;
use super::response::{APPLICATION_JSON, CallbackResponse, TEXT_XML};
use crate::aibot::{ReplyEnvelope, render_reply_envelope};
use crate::clock::unix_now;
use crate::crypto::{KeySlot, MsgCrypt};
use crate::error::ProtocolError;
use crate::platform::DataFormat;

/// The response carrying `reply_xml` (the rendered reply) to the callback `opened`.
pub(super) fn seal(app: &App, opened: &Plaintext<'_>, reply_xml: String) -> CallbackResponse {
    let sealed = match app.data_format {
        DataFormat::Xml => seal_xml(opened, reply_xml).map(|body| (TEXT_XML, body)),
        DataFormat::Json => seal_json(opened, &reply_xml).map(|body| (APPLICATION_JSON, body)),
    };
    match sealed {
        Ok((content_type, body)) => CallbackResponse::ok(content_type, body),
        Err(e) => {
            tracing::error!(app = %app.name, code = e.code() as i32, cause = %e, "cannot seal the reply; answering empty");
            CallbackResponse::success()
        }
    }
}

/// The XML reply, or its `<xml><Encrypt>…` envelope.
fn seal_xml(opened: &Plaintext<'_>, reply_xml: String) -> Result<String, ProtocolError> {
    match opened {
        Plaintext::Body(_) => Ok(reply_xml),
        Plaintext::Decrypted { crypt, opened } => crypt.seal(&reply_xml, opened.key, unix_now()),
    }
}

/// The Mini Program's JSON reply, or its `{"Encrypt","MsgSignature","TimeStamp","Nonce"}`
/// envelope: a fresh nonce, as the XML envelope has, and one timestamp for the signature
/// and the envelope.
fn seal_json(opened: &Plaintext<'_>, reply_xml: &str) -> Result<String, ProtocolError> {
    let json = crate::json_push::reply_to_json(reply_xml)?;
    let Plaintext::Decrypted { crypt, opened } = opened else {
        return Ok(json);
    };
    let nonce = crate::crypto::fresh_nonce();
    // The nonce alphabet is ASCII.
    let nonce = std::str::from_utf8(&nonce).unwrap_or("0");
    json_envelope(crypt, opened.key, &json, ReplyEnvelope::MiniProgram, nonce)
}

/// `json` encrypted with the key in `slot` and signed, in `envelope` with `nonce` and one
/// timestamp for the signature and the envelope.
pub(super) fn json_envelope(
    crypt: &MsgCrypt,
    slot: KeySlot,
    json: &str,
    envelope: ReplyEnvelope,
    nonce: &str,
) -> Result<String, ProtocolError> {
    let timestamp = unix_now();
    let (encrypt, signature) = crypt.encrypt_and_sign(json, slot, timestamp, nonce)?;
    Ok(render_reply_envelope(
        envelope, &encrypt, &signature, timestamp, nonce,
    ))
}
