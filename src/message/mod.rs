//! The inbound model: what the platform sends, typed, with nothing dropped.
//!
//! A decrypted callback body is either a [`Message`] (`MsgType`, which includes events) or
//! an [`InfoEvent`] (`InfoType`: Open Platform authorization and WeCom suite pushes). Fields
//! the typed form does not read are kept in `extra`, and unknown message types and events
//! parse into generic variants, so a platform addition never breaks a callback.

mod event;
mod info;
mod take;

pub use event::{Event, PicSource, ScanMode};
pub use info::{Authorization, Info, InfoEvent};

use std::fmt;

use serde::Serialize;

use crate::error::ProtocolError;
use crate::xml::Fields;
use take::{lowercase, optional, optional_num, required, required_num, text};

/// A decrypted callback body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Callback {
    /// A user message or event (`MsgType`).
    Message(Message),
    /// An `InfoType` push.
    Info(InfoEvent),
}

impl Callback {
    /// Parses a decrypted body (or an MP plaintext body).
    ///
    /// # Errors
    /// -40002 for malformed XML, a document with neither `MsgType` nor `InfoType`, a missing
    /// header field or a number that is not one.
    pub fn parse(xml: &str) -> Result<Self, ProtocolError> {
        let fields = Fields::parse(xml)?;
        if fields.get("MsgType").is_some() {
            Message::from_fields(fields).map(Self::Message)
        } else if fields.get("InfoType").is_some() {
            InfoEvent::from_fields(fields).map(Self::Info)
        } else {
            Err(ProtocolError::XmlMissingField("MsgType"))
        }
    }

    /// The key under which this delivery is de-duplicated: see [`DedupKey`].
    pub fn dedup_key(&self) -> DedupKey {
        match self {
            Self::Message(m) => m.dedup_key(),
            Self::Info(i) => DedupKey(format!(
                "info|{}|{}|{}|{}",
                i.app_id,
                i.info_type(),
                i.create_time,
                i.subject().unwrap_or("")
            )),
        }
    }
}

/// A user message or event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// Our account: the MP original id (`gh_…`) or the WeCom corp id.
    pub to_user_name: String,
    /// The sender: an OpenID or a WeCom UserID.
    pub from_user_name: String,
    /// Unix seconds.
    pub create_time: u64,
    /// Present on messages, absent on events.
    pub msg_id: Option<u64>,
    /// WeCom: the app's agent id.
    pub agent_id: Option<u64>,
    /// What was sent.
    #[serde(flatten)]
    pub content: Content,
    /// Fields not read into the typed form, as `(dotted path, value)`.
    pub extra: Vec<(String, String)>,
}

/// The typed payload of a [`Message`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "msg_type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Content {
    /// `text`.
    Text {
        /// The text.
        content: String,
    },
    /// `image`.
    Image {
        /// Download URL.
        pic_url: String,
        /// Media id.
        media_id: String,
    },
    /// `voice`.
    Voice {
        /// Media id.
        media_id: String,
        /// `amr`, `speex`, …
        format: String,
        /// Speech recognition result, when enabled.
        recognition: Option<String>,
    },
    /// `video`.
    Video {
        /// Media id.
        media_id: String,
        /// Thumbnail media id.
        thumb_media_id: String,
    },
    /// `shortvideo`.
    #[serde(rename = "shortvideo")]
    ShortVideo {
        /// Media id.
        media_id: String,
        /// Thumbnail media id.
        thumb_media_id: String,
    },
    /// `location`: a location sent as a message (not the LOCATION event).
    Location {
        /// Latitude (`Location_X`).
        location_x: Option<f64>,
        /// Longitude (`Location_Y`).
        location_y: Option<f64>,
        /// Map zoom.
        scale: Option<f64>,
        /// Address text.
        label: String,
    },
    /// `link`.
    Link {
        /// Title.
        title: String,
        /// Description.
        description: String,
        /// Target.
        url: String,
        /// WeCom: a picture.
        pic_url: Option<String>,
    },
    /// `event`.
    Event(Event),
    /// Any other MsgType; its fields stay in `extra`.
    Unknown {
        /// The MsgType as sent.
        #[serde(rename = "unknown_msg_type")]
        msg_type: String,
    },
}

impl Message {
    /// Parses a decrypted body that must be a message or event.
    ///
    /// # Errors
    /// As [`Callback::parse`]; an `InfoType` push is -40002 (missing `MsgType`).
    pub fn parse(xml: &str) -> Result<Self, ProtocolError> {
        Self::from_fields(Fields::parse(xml)?)
    }

    fn from_fields(mut f: Fields<'_>) -> Result<Self, ProtocolError> {
        let to_user_name = required(&mut f, "ToUserName")?;
        let from_user_name = required(&mut f, "FromUserName")?;
        let create_time = required_num(&mut f, "CreateTime")?;
        let msg_type = required(&mut f, "MsgType")?;
        let msg_id = optional_num(&mut f, "MsgId")?;
        let agent_id = optional_num(&mut f, "AgentID")?;
        let f = &mut f;
        let content = match lowercase(&msg_type, &mut [0; take::MAX_KNOWN_NAME]) {
            "text" => Content::Text {
                content: text(f, "Content"),
            },
            "image" => Content::Image {
                pic_url: text(f, "PicUrl"),
                media_id: text(f, "MediaId"),
            },
            "voice" => Content::Voice {
                media_id: text(f, "MediaId"),
                format: text(f, "Format"),
                recognition: optional(f, "Recognition"),
            },
            "video" => Content::Video {
                media_id: text(f, "MediaId"),
                thumb_media_id: text(f, "ThumbMediaId"),
            },
            "shortvideo" => Content::ShortVideo {
                media_id: text(f, "MediaId"),
                thumb_media_id: text(f, "ThumbMediaId"),
            },
            "location" => Content::Location {
                location_x: optional_num(f, "Location_X")?,
                location_y: optional_num(f, "Location_Y")?,
                scale: optional_num(f, "Scale")?,
                label: text(f, "Label"),
            },
            "link" => Content::Link {
                title: text(f, "Title"),
                description: text(f, "Description"),
                url: text(f, "Url"),
                pic_url: optional(f, "PicUrl"),
            },
            "event" => Content::Event(Event::from_fields(f)?),
            _ => Content::Unknown { msg_type },
        };
        Ok(Self {
            to_user_name,
            from_user_name,
            create_time,
            msg_id,
            agent_id,
            content,
            extra: std::mem::take(f).into_owned_pairs(),
        })
    }

    /// The event, if this is one.
    pub fn event(&self) -> Option<&Event> {
        match &self.content {
            Content::Event(e) => Some(e),
            _ => None,
        }
    }

    /// The text, if this is a text message.
    pub fn text(&self) -> Option<&str> {
        match &self.content {
            Content::Text { content } => Some(content),
            _ => None,
        }
    }

    /// The MsgType, lowercase (`text`, `event`, …; unknown types as sent, lowercased).
    pub fn msg_type(&self) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow::{Borrowed, Owned};
        match &self.content {
            Content::Text { .. } => Borrowed("text"),
            Content::Image { .. } => Borrowed("image"),
            Content::Voice { .. } => Borrowed("voice"),
            Content::Video { .. } => Borrowed("video"),
            Content::ShortVideo { .. } => Borrowed("shortvideo"),
            Content::Location { .. } => Borrowed("location"),
            Content::Link { .. } => Borrowed("link"),
            Content::Event(_) => Borrowed("event"),
            Content::Unknown { msg_type } => Owned(msg_type.to_ascii_lowercase()),
        }
    }

    /// The de-duplication key, following the platforms' guidance: `MsgId` for messages;
    /// sender, time, event name, EventKey and AgentID for events. (WeCom delivers one
    /// `unsubscribe` once per app, differing only in AgentID, so AgentID must be part of it.)
    pub fn dedup_key(&self) -> DedupKey {
        match (&self.content, self.msg_id) {
            (Content::Event(event), _) => DedupKey(format!(
                "evt|{}|{}|{}|{}|{}",
                self.from_user_name,
                self.create_time,
                event.name(),
                event.event_key().unwrap_or(""),
                self.agent_id.map(|a| a.to_string()).unwrap_or_default()
            )),
            (_, Some(id)) => DedupKey(format!("msg|{id}")),
            // A message without MsgId should not happen; fall back to what identifies it.
            (_, None) => DedupKey(format!(
                "msg|{}|{}|{}",
                self.from_user_name,
                self.create_time,
                self.msg_type()
            )),
        }
    }
}

/// A de-duplication key: identical for every delivery (first try and retries) of one
/// callback, different for different callbacks of one app. Scoping by app is the store's job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct DedupKey(String);

impl DedupKey {
    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DedupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
