//! The WeCom intelligent robot (智能机器人, "AI bot") in API mode: the same WXBizMsgCrypt
//! math as WeCom apps with an empty receive id, carried in JSON envelopes instead of XML.
//!
//! * [`envelope`]: `{"encrypt": …}` in, `{"encrypt","msgsignature","timestamp","nonce"}` out
//!   (and the Mini Program's JSON push, `{"ToUserName","Encrypt"}`).
//! * [`callback`]: the decrypted JSON typed: messages (text, image, mixed, voice, file,
//!   video, with an optional quote), events (enter_chat, template_card_event,
//!   feedback_event) and the platform's stream refreshes; and the same as the crate's
//!   [`Message`](crate::message::Message), so reply rules and upstreams see one model.
//! * [`reply`]: the plaintext replies: a stream snapshot, the `enter_chat` welcome text.
//!
//! The platform's rules: a message is answered by opening a *stream* (an id of our
//! choosing); the platform then keeps POSTing refresh callbacks with that id, up to six
//! minutes after the message, and shows whatever content each answer carries (the whole
//! text so far, at most [`reply::MAX_STREAM_CONTENT_BYTES`]) until one says `finish`.

pub mod callback;
pub mod envelope;
pub mod reply;

pub use callback::{AibotBody, AibotCallback, AibotEvent, ChatType};
pub use envelope::{JsonEnvelope, ReplyEnvelope, render_reply_envelope};
pub use reply::{
    MAX_STREAM_CONTENT_BYTES, StreamSnapshot, markdown_message, stream_reply, text_reply,
};

/// How long the platform keeps asking for a stream's content after the message.
pub const STREAM_WINDOW: std::time::Duration = std::time::Duration::from_secs(6 * 60);

/// Stream ids start with this, then the `msgid` in URL-safe base64: every delivery of a
/// message gets the same stream, and a refresh names the record it reads.
const STREAM_ID_PREFIX: &str = "wxg";

/// The stream id wxgate gives a message's stream.
pub fn stream_id_of(msgid: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(msgid);
    format!("{STREAM_ID_PREFIX}{encoded}")
}

/// The `msgid` a stream id was made from; `None` for an id wxgate did not make.
pub fn msgid_of(stream_id: &str) -> Option<String> {
    use base64::Engine as _;
    let encoded = stream_id.strip_prefix(STREAM_ID_PREFIX)?;
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()?;
    String::from_utf8(decoded).ok().filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_id_names_its_message_and_nothing_else_does() {
        for msgid in ["CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=", "1", "消息"] {
            let id = crate::aibot::stream_id_of(msgid);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{id}"
            );
            assert_eq!(msgid_of(&id).as_deref(), Some(msgid));
        }
        for foreign in ["", "wxg", "abc", "wxg!!", "s-123"] {
            assert_eq!(msgid_of(foreign), None, "{foreign}");
        }
    }
}
