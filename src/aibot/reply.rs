//! The AI bot's plaintext replies (encrypted into the reply envelope by the gateway).

use serde_json::json;

use crate::reply::truncate_utf8;

/// The most content one stream answer (or one `response_url` message) carries, in UTF-8
/// bytes.
pub const MAX_STREAM_CONTENT_BYTES: usize = crate::reply::limits::AIBOT_CONTENT_MAX_BYTES;

/// What a stream shows at one moment: the whole text so far and whether it is finished.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamSnapshot {
    /// The whole text so far (markdown).
    pub content: String,
    /// No more refreshes: the platform stops asking.
    pub finish: bool,
}

impl StreamSnapshot {
    /// A finished stream showing `content`.
    pub fn finished(content: String) -> Self {
        Self {
            content,
            finish: true,
        }
    }
}

/// `{"msgtype":"stream","stream":{"id","finish","content"}}`, the content cut to
/// [`MAX_STREAM_CONTENT_BYTES`] at a character boundary.
pub fn stream_reply(stream_id: &str, snapshot: &StreamSnapshot) -> String {
    json!({
        "msgtype": "stream",
        "stream": {
            "id": stream_id,
            "finish": snapshot.finish,
            "content": truncate_utf8(&snapshot.content, MAX_STREAM_CONTENT_BYTES),
        }
    })
    .to_string()
}

/// `{"msgtype":"text","text":{"content"}}`: allowed only as the answer to `enter_chat`.
pub fn text_reply(content: &str) -> String {
    json!({
        "msgtype": "text",
        "text": { "content": truncate_utf8(content, MAX_STREAM_CONTENT_BYTES) }
    })
    .to_string()
}

/// The body POSTed to a `response_url`: a markdown message.
pub fn markdown_message(content: &str) -> String {
    json!({
        "msgtype": "markdown",
        "markdown": { "content": truncate_utf8(content, MAX_STREAM_CONTENT_BYTES) }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_answer_is_cut_at_the_limit_on_a_character_boundary() {
        let snapshot = StreamSnapshot {
            content: "好".repeat(10_000), // 30000 bytes
            finish: false,
        };
        let v: serde_json::Value = serde_json::from_str(&stream_reply("S", &snapshot)).unwrap();
        let content = v["stream"]["content"].as_str().unwrap();
        assert_eq!(content.len(), 20_478, "6826 whole characters");
        assert_eq!(v["stream"]["id"], "S");
        assert_eq!(v["stream"]["finish"], false);
        assert_eq!(v["msgtype"], "stream");
    }

    #[test]
    fn text_and_markdown_shapes() {
        let v: serde_json::Value = serde_json::from_str(&text_reply("hi \"there\"")).unwrap();
        assert_eq!(
            v,
            json!({"msgtype":"text","text":{"content":"hi \"there\""}})
        );
        let v: serde_json::Value = serde_json::from_str(&markdown_message("**b**")).unwrap();
        assert_eq!(
            v,
            json!({"msgtype":"markdown","markdown":{"content":"**b**"}})
        );
    }
}
