//! The AI bot's decrypted callbacks, typed.
//!
//! Common fields: `msgid` (what a delivery is de-duplicated by), `aibotid`, `chattype`
//! (`single` | `group`), `chatid` (group only), `from.userid`, `response_url` (one use, one
//! hour), `msgtype` with the payload under the key of the same name, and an optional
//! `quote`. Unknown message types and events parse into generic variants, so a platform
//! addition never breaks a callback.

use serde_json::{Map, Value};

use super::envelope::json_reason;
use crate::error::ProtocolError;
use crate::message::{Content, Event, Message};

/// A decrypted AI bot callback.
#[derive(Debug, Clone, PartialEq)]
pub struct AibotCallback {
    /// The platform's id of this callback: the same on every delivery of it.
    pub msgid: String,
    /// The bot.
    pub aibotid: String,
    /// A single (one-to-one) or group chat.
    pub chattype: ChatType,
    /// The group chat, in a group.
    pub chatid: Option<String>,
    /// The sender's UserID.
    pub from_userid: String,
    /// Where one active reply may be POSTed within an hour (absent on refreshes).
    pub response_url: Option<String>,
    /// Unix seconds, when the platform says (events do).
    pub create_time: Option<u64>,
    /// What was sent.
    pub body: AibotBody,
    /// The message this one quotes: its type and its text, if it had text.
    pub quote: Option<(String, Option<String>)>,
}

/// One-to-one or group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatType {
    /// `single`.
    Single,
    /// `group`.
    Group,
}

impl ChatType {
    /// As the platform writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Group => "group",
        }
    }
}

/// The payload of an [`AibotCallback`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AibotBody {
    /// `text`; in a group it includes the @mention.
    Text {
        /// The text.
        content: String,
    },
    /// `image`: an encrypted file at `url` (five minutes).
    Image {
        /// Download URL.
        url: String,
    },
    /// `mixed`: text and images in one message.
    Mixed {
        /// The text items, in order.
        texts: Vec<String>,
        /// The image URLs, in order.
        image_urls: Vec<String>,
    },
    /// `voice`, already transcribed.
    Voice {
        /// The transcription.
        content: String,
    },
    /// `file`.
    File {
        /// Download URL.
        url: String,
    },
    /// `video`.
    Video {
        /// Download URL.
        url: String,
    },
    /// `stream`: the platform asks for the latest content of a stream we opened.
    Refresh {
        /// The stream's id, as our first answer gave it.
        stream_id: String,
    },
    /// `event`.
    Event(AibotEvent),
    /// Another `msgtype`.
    Unknown {
        /// As sent.
        msgtype: String,
    },
}

/// An AI bot event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AibotEvent {
    /// `enter_chat`: the user opened the chat (first time of the day); a welcome text may
    /// be answered.
    EnterChat,
    /// `template_card_event`: a card's button was pressed (answered within 5 s, once).
    TemplateCard {
        /// The button's key.
        event_key: String,
        /// The card's task id.
        task_id: String,
        /// The card type.
        card_type: String,
    },
    /// `feedback_event`: the user rated an answer; only the empty answer is allowed.
    Feedback {
        /// The stream id the feedback is about.
        id: String,
        /// The rating (1 good, 2 bad, 3 withdrawn).
        kind: Option<i64>,
    },
    /// Another event type.
    Other {
        /// As sent.
        eventtype: String,
    },
}

impl AibotCallback {
    /// Parses a decrypted callback.
    ///
    /// # Errors
    /// -40002: not a JSON object, no `msgid` or `msgtype`, a payload of the wrong shape.
    pub fn parse(json: &str) -> Result<Self, ProtocolError> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| ProtocolError::Json(json_reason(&e)))?;
        let Value::Object(root) = value else {
            return Err(ProtocolError::Json("not a JSON object".into()));
        };
        let msgid = required(&root, "msgid")?;
        let msgtype = required(&root, "msgtype")?;
        let chattype = match string(&root, "chattype").as_deref() {
            Some("group") => ChatType::Group,
            _ => ChatType::Single,
        };
        let from_userid = root
            .get("from")
            .and_then(Value::as_object)
            .and_then(|from| string(from, "userid"))
            .unwrap_or_default();
        let payload = root.get(msgtype.as_str()).and_then(Value::as_object);
        let field = |name: &str| payload.and_then(|p| string(p, name)).unwrap_or_default();
        let body = match msgtype.as_str() {
            "text" => AibotBody::Text {
                content: field("content"),
            },
            "image" => AibotBody::Image { url: field("url") },
            "voice" => AibotBody::Voice {
                content: field("content"),
            },
            "file" => AibotBody::File { url: field("url") },
            "video" => AibotBody::Video { url: field("url") },
            "mixed" => mixed(root.get("mixed")),
            "stream" => {
                let stream_id = field("id");
                if stream_id.is_empty() {
                    return Err(ProtocolError::JsonMissingField("stream.id"));
                }
                AibotBody::Refresh { stream_id }
            }
            "event" => AibotBody::Event(event(payload)?),
            _ => AibotBody::Unknown {
                msgtype: msgtype.clone(),
            },
        };
        let quote = root.get("quote").and_then(Value::as_object).map(|quote| {
            let kind = string(quote, "msgtype").unwrap_or_default();
            let text = quote
                .get(kind.as_str())
                .and_then(Value::as_object)
                .and_then(|p| string(p, "content"));
            (kind, text)
        });
        Ok(Self {
            msgid,
            aibotid: string(&root, "aibotid").unwrap_or_default(),
            chattype,
            chatid: string(&root, "chatid").filter(|c| !c.is_empty()),
            from_userid,
            response_url: string(&root, "response_url").filter(|u| !u.is_empty()),
            create_time: root.get("create_time").and_then(Value::as_u64),
            body,
            quote,
        })
    }

    /// The conversation: the group chat in a group, else the user.
    pub fn conversation(&self) -> &str {
        self.chatid.as_deref().unwrap_or(&self.from_userid)
    }

    /// The message as the crate's [`Message`], for reply rules and upstreams: `ToUserName`
    /// is the bot, `FromUserName` the user, the text where there is one (a voice's
    /// transcription as its recognition, a mixed message's text items joined by newlines),
    /// and the rest in `extra` (`msgid`, `chattype`, `chatid`, media URLs, the quote).
    /// `response_url` is left out: wxgate uses it itself, once. `now` stands in for a
    /// missing create time.
    pub fn to_message(&self, now: u64) -> Message {
        let mut extra = vec![
            ("msgid".to_owned(), self.msgid.clone()),
            ("chattype".to_owned(), self.chattype.as_str().to_owned()),
        ];
        if let Some(chatid) = &self.chatid {
            extra.push(("chatid".to_owned(), chatid.clone()));
        }
        let content = match &self.body {
            AibotBody::Text { content } => Content::Text {
                content: content.clone(),
            },
            AibotBody::Voice { content } => Content::Voice {
                media_id: String::new(),
                format: String::new(),
                recognition: Some(content.clone()),
            },
            AibotBody::Image { url } => Content::Image {
                pic_url: url.clone(),
                media_id: String::new(),
            },
            AibotBody::Mixed { texts, image_urls } => {
                for url in image_urls {
                    extra.push(("mixed.image_url".to_owned(), url.clone()));
                }
                Content::Text {
                    content: texts.join("\n"),
                }
            }
            AibotBody::Video { url } => {
                extra.push(("video.url".to_owned(), url.clone()));
                Content::Video {
                    media_id: String::new(),
                    thumb_media_id: String::new(),
                }
            }
            AibotBody::File { url } => {
                extra.push(("file.url".to_owned(), url.clone()));
                Content::Unknown {
                    msg_type: "file".to_owned(),
                }
            }
            AibotBody::Refresh { stream_id } => {
                extra.push(("stream.id".to_owned(), stream_id.clone()));
                Content::Unknown {
                    msg_type: "stream".to_owned(),
                }
            }
            AibotBody::Event(event) => Content::Event(match event {
                AibotEvent::TemplateCard {
                    event_key,
                    task_id,
                    card_type,
                } => Event::TemplateCardEvent {
                    event_key: event_key.clone(),
                    task_id: task_id.clone(),
                    card_type: card_type.clone(),
                    response_code: String::new(),
                },
                other => Event::Unknown {
                    name: other.name().to_owned(),
                    event_key: None,
                },
            }),
            AibotBody::Unknown { msgtype } => Content::Unknown {
                msg_type: msgtype.clone(),
            },
        };
        if let Some((kind, text)) = &self.quote {
            extra.push(("quote.msgtype".to_owned(), kind.clone()));
            if let Some(text) = text {
                extra.push(("quote.content".to_owned(), text.clone()));
            }
        }
        Message {
            to_user_name: self.aibotid.clone(),
            from_user_name: self.from_userid.clone(),
            create_time: self.create_time.unwrap_or(now),
            msg_id: None,
            agent_id: None,
            content,
            extra,
        }
    }
}

impl AibotEvent {
    /// The event type as sent.
    pub fn name(&self) -> &str {
        match self {
            Self::EnterChat => "enter_chat",
            Self::TemplateCard { .. } => "template_card_event",
            Self::Feedback { .. } => "feedback_event",
            Self::Other { eventtype } => eventtype,
        }
    }
}

fn event(payload: Option<&Map<String, Value>>) -> Result<AibotEvent, ProtocolError> {
    let payload = payload.ok_or(ProtocolError::JsonMissingField("event"))?;
    let eventtype =
        string(payload, "eventtype").ok_or(ProtocolError::JsonMissingField("event.eventtype"))?;
    let inner = payload.get(eventtype.as_str()).and_then(Value::as_object);
    let field = |name: &str| inner.and_then(|p| string(p, name)).unwrap_or_default();
    Ok(match eventtype.as_str() {
        "enter_chat" => AibotEvent::EnterChat,
        "template_card_event" => AibotEvent::TemplateCard {
            event_key: field("event_key"),
            task_id: field("task_id"),
            card_type: field("card_type"),
        },
        "feedback_event" => AibotEvent::Feedback {
            id: field("id"),
            kind: inner.and_then(|p| p.get("type")).and_then(Value::as_i64),
        },
        _ => AibotEvent::Other { eventtype },
    })
}

/// A mixed message's text and image items. `mixed` is read as an object or as a string
/// holding that object's JSON: adapters written against the platform report both, and
/// reading either costs nothing (the string was bounded with the body; serde_json bounds
/// its nesting).
fn mixed(payload: Option<&Value>) -> AibotBody {
    let (mut texts, mut image_urls) = (Vec::new(), Vec::new());
    let parsed;
    let payload = match payload {
        Some(Value::String(json)) => {
            parsed = serde_json::from_str::<Value>(json).ok();
            parsed.as_ref()
        }
        other => other,
    };
    let items = payload
        .and_then(|p| p.get("msg_item"))
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for item in items.iter().filter_map(Value::as_object) {
        let kind = string(item, "msgtype").unwrap_or_default();
        let inner = item.get(kind.as_str()).and_then(Value::as_object);
        match kind.as_str() {
            "text" => texts.extend(inner.and_then(|p| string(p, "content"))),
            "image" => image_urls.extend(inner.and_then(|p| string(p, "url"))),
            _ => {}
        }
    }
    AibotBody::Mixed { texts, image_urls }
}

/// A string field; a number is taken as its decimal text (ids are sometimes numbers).
fn string(map: &Map<String, Value>, name: &str) -> Option<String> {
    match map.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn required(map: &Map<String, Value>, name: &'static str) -> Result<String, ProtocolError> {
    string(map, name)
        .filter(|s| !s.is_empty())
        .ok_or(ProtocolError::JsonMissingField(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_text_with_a_quote_parses_and_maps() {
        let json = r#"{"msgid":"CAIQ1","aibotid":"AIBOT","chatid":"CHAT","chattype":"group",
            "from":{"userid":"zhangsan"},"response_url":"https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=x",
            "msgtype":"text","text":{"content":"@bot 你好"},
            "quote":{"msgtype":"text","text":{"content":"earlier"}}}"#;
        let c = AibotCallback::parse(json).unwrap();
        assert_eq!(c.chattype, ChatType::Group);
        assert_eq!(c.conversation(), "CHAT");
        assert_eq!(
            c.body,
            AibotBody::Text {
                content: "@bot 你好".into()
            }
        );
        assert_eq!(c.quote, Some(("text".into(), Some("earlier".into()))));
        let m = c.to_message(7);
        assert_eq!(
            (
                m.to_user_name.as_str(),
                m.from_user_name.as_str(),
                m.create_time
            ),
            ("AIBOT", "zhangsan", 7)
        );
        assert_eq!(
            m.content,
            Content::Text {
                content: "@bot 你好".into()
            }
        );
        assert!(m.extra.iter().any(|(k, v)| k == "chatid" && v == "CHAT"));
        assert!(
            !m.extra.iter().any(|(_, v)| v.contains("response_code")),
            "response_url stays out"
        );
    }

    #[test]
    fn every_documented_type_parses() {
        let cases = [
            (
                r#"{"msgid":"1","msgtype":"image","image":{"url":"https://x/i"}}"#,
                AibotBody::Image {
                    url: "https://x/i".into(),
                },
            ),
            (
                r#"{"msgid":"1","msgtype":"voice","voice":{"content":"说的话"}}"#,
                AibotBody::Voice {
                    content: "说的话".into(),
                },
            ),
            (
                r#"{"msgid":"1","msgtype":"file","file":{"url":"u"}}"#,
                AibotBody::File { url: "u".into() },
            ),
            (
                r#"{"msgid":"1","msgtype":"video","video":{"url":"v"}}"#,
                AibotBody::Video { url: "v".into() },
            ),
            (
                r#"{"msgid":"1","msgtype":"mixed","mixed":{"msg_item":[{"msgtype":"text","text":{"content":"a"}},{"msgtype":"image","image":{"url":"i"}},7]}}"#,
                AibotBody::Mixed {
                    texts: vec!["a".into()],
                    image_urls: vec!["i".into()],
                },
            ),
            (
                // The same, `mixed` given as a string holding its JSON.
                r#"{"msgid":"1","msgtype":"mixed","mixed":"{\"msg_item\":[{\"msgtype\":\"text\",\"text\":{\"content\":\"a\"}},{\"msgtype\":\"image\",\"image\":{\"url\":\"i\"}}]}"}"#,
                AibotBody::Mixed {
                    texts: vec!["a".into()],
                    image_urls: vec!["i".into()],
                },
            ),
            (
                // A string that is not JSON: an empty mixed message, not an error.
                r#"{"msgid":"1","msgtype":"mixed","mixed":"{not json"}"#,
                AibotBody::Mixed {
                    texts: vec![],
                    image_urls: vec![],
                },
            ),
            (
                r#"{"msgid":"1","msgtype":"stream","stream":{"id":"S1"}}"#,
                AibotBody::Refresh {
                    stream_id: "S1".into(),
                },
            ),
            (
                r#"{"msgid":"1","msgtype":"event","event":{"eventtype":"enter_chat"}}"#,
                AibotBody::Event(AibotEvent::EnterChat),
            ),
            (
                r#"{"msgid":"1","msgtype":"event","event":{"eventtype":"template_card_event","template_card_event":{"card_type":"button_interaction","event_key":"k","task_id":"t"}}}"#,
                AibotBody::Event(AibotEvent::TemplateCard {
                    event_key: "k".into(),
                    task_id: "t".into(),
                    card_type: "button_interaction".into(),
                }),
            ),
            (
                r#"{"msgid":"1","msgtype":"event","event":{"eventtype":"feedback_event","feedback_event":{"id":"S1","type":2}}}"#,
                AibotBody::Event(AibotEvent::Feedback {
                    id: "S1".into(),
                    kind: Some(2),
                }),
            ),
            (
                r#"{"msgid":"1","msgtype":"event","event":{"eventtype":"new_thing"}}"#,
                AibotBody::Event(AibotEvent::Other {
                    eventtype: "new_thing".into(),
                }),
            ),
            (
                r#"{"msgid":"1","msgtype":"hologram"}"#,
                AibotBody::Unknown {
                    msgtype: "hologram".into(),
                },
            ),
        ];
        for (json, body) in cases {
            assert_eq!(AibotCallback::parse(json).unwrap().body, body, "{json}");
        }
    }

    #[test]
    fn malformed_callbacks_are_typed_errors() {
        for (json, missing) in [
            (r#"{"msgtype":"text"}"#, "msgid"),
            (r#"{"msgid":"1"}"#, "msgtype"),
            (r#"{"msgid":"","msgtype":"text"}"#, "msgid"),
            (
                r#"{"msgid":"1","msgtype":"stream","stream":{}}"#,
                "stream.id",
            ),
            (r#"{"msgid":"1","msgtype":"event"}"#, "event"),
            (
                r#"{"msgid":"1","msgtype":"event","event":{}}"#,
                "event.eventtype",
            ),
        ] {
            assert_eq!(
                AibotCallback::parse(json).unwrap_err(),
                ProtocolError::JsonMissingField(missing),
                "{json}"
            );
        }
        for json in ["", "[1]", "\"s\"", "{", "{\"msgid\":1,"] {
            assert!(
                matches!(AibotCallback::parse(json), Err(ProtocolError::Json(_))),
                "{json}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,200}") {
            let _ = AibotCallback::parse(&s);
            let _ = super::super::JsonEnvelope::parse(&s);
        }

        #[test]
        fn arbitrary_shapes_never_panic(msgtype in "[a-z]{1,8}", inner in "[\\[\\]{}\":,a-z0-9 ]{0,60}") {
            let json = format!(r#"{{"msgid":"1","msgtype":"{msgtype}","{msgtype}":{inner},"event":{inner},"quote":{inner}}}"#);
            if let Ok(c) = AibotCallback::parse(&json) {
                let _ = c.to_message(0);
            }
        }
    }
}
