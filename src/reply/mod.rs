//! Passive replies: the XML answered in the HTTP response to a callback.
//!
//! [`Reply`] says what to answer; [`Reply::render`] checks it against the platform's rules
//! (limits count UTF-8 bytes, not characters) and writes the XML with To/From swapped.

use serde::{Deserialize, Serialize};

use crate::error::ProtocolError;
use crate::message::{Content, Message};
use crate::platform::Platform;
use crate::xml::XmlWriter;

pub mod limits;

use limits::{DESCRIPTION_MAX_BYTES, TITLE_MAX_BYTES};
pub use limits::{
    MAX_REPLY_XML_BYTES, MP_NEWS_MAX_ARTICLES_TO_MESSAGE, NEWS_MAX_ARTICLES, WECOM_TEXT_MAX_BYTES,
};

/// One linked article: of a news reply, or of a news message sent actively (WeCom app
/// message, Official Account customer message). Empty strings are absent fields.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Article {
    /// Title.
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Picture URL.
    #[serde(default)]
    pub pic_url: String,
    /// Link.
    #[serde(default)]
    pub url: String,
}

impl Article {
    /// An article titled `title` linking to `url`.
    pub fn new(title: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            url: url.into(),
            ..Self::default()
        }
    }

    /// With a description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// With a picture.
    #[must_use]
    pub fn pic_url(mut self, pic_url: impl Into<String>) -> Self {
        self.pic_url = pic_url.into();
        self
    }
}

impl std::fmt::Debug for Article {
    /// Sizes only: an article is a user's content.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Article")
            .field("title_bytes", &self.title.len())
            .finish_non_exhaustive()
    }
}

/// A passive reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reply {
    /// Text.
    Text {
        /// The text; WeCom limits it to 2048 bytes.
        content: String,
    },
    /// An uploaded image.
    Image {
        /// Media id.
        media_id: String,
    },
    /// An uploaded voice clip.
    Voice {
        /// Media id.
        media_id: String,
    },
    /// An uploaded video.
    Video {
        /// Media id.
        media_id: String,
        /// Title.
        #[serde(default)]
        title: String,
        /// Description.
        #[serde(default)]
        description: String,
    },
    /// Music (Official Account only).
    Music {
        /// Title.
        #[serde(default)]
        title: String,
        /// Description.
        #[serde(default)]
        description: String,
        /// Link.
        #[serde(default)]
        music_url: String,
        /// High-quality link, used on Wi-Fi.
        #[serde(default)]
        hq_music_url: String,
        /// Thumbnail media id.
        thumb_media_id: String,
    },
    /// News articles.
    News {
        /// 1 to 8 articles (1 for an Official Account reply to a user message).
        articles: Vec<Article>,
    },
    /// Hand the conversation to customer service (Official Account only).
    TransferCustomerService {
        /// A specific agent, or any.
        #[serde(default)]
        kf_account: Option<String>,
    },
    /// WeCom: rename the pressed button of a template card (answer to `template_card_event`).
    UpdateButton {
        /// The button's new label.
        replace_name: String,
    },
}

impl Reply {
    /// A text reply.
    pub fn text(content: impl Into<String>) -> Self {
        Self::Text {
            content: content.into(),
        }
    }

    /// The MsgType this reply is sent as.
    pub fn msg_type(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Image { .. } => "image",
            Self::Voice { .. } => "voice",
            Self::Video { .. } => "video",
            Self::Music { .. } => "music",
            Self::News { .. } => "news",
            Self::TransferCustomerService { .. } => "transfer_customer_service",
            Self::UpdateButton { .. } => "update_button",
        }
    }

    /// Checks the reply against the platform's rules.
    ///
    /// `to_event` says whether it answers an event (the Official Account then allows 8
    /// news articles instead of 1).
    ///
    /// # Errors
    /// [`ProtocolError::Reply`] (-40011) naming the rule broken.
    pub fn validate(&self, platform: Platform, to_event: bool) -> Result<(), ProtocolError> {
        let wecom = platform.is_wecom();
        match self {
            Self::Text { content } if platform == Platform::Aibot => {
                max_bytes("text content", content, limits::AIBOT_CONTENT_MAX_BYTES)
            }
            _ if platform == Platform::Aibot => Err(ProtocolError::Reply(format!(
                "an AI bot shows text only, not {} replies",
                self.msg_type()
            ))),
            Self::Text { content } if wecom => {
                max_bytes("text content", content, WECOM_TEXT_MAX_BYTES)
            }
            Self::Music { .. } | Self::TransferCustomerService { .. } if wecom => {
                Err(ProtocolError::Reply(format!(
                    "{} replies exist only on the Official Account",
                    self.msg_type()
                )))
            }
            Self::UpdateButton { .. } if !wecom => Err(ProtocolError::Reply(
                "update_button replies exist only on WeCom".into(),
            )),
            Self::News { articles } => {
                let max = if wecom || to_event {
                    NEWS_MAX_ARTICLES
                } else {
                    MP_NEWS_MAX_ARTICLES_TO_MESSAGE
                };
                if articles.is_empty() || articles.len() > max {
                    return Err(ProtocolError::Reply(format!(
                        "a news reply here takes 1 to {max} articles, not {}",
                        articles.len()
                    )));
                }
                if wecom {
                    for a in articles {
                        max_bytes("news title", &a.title, TITLE_MAX_BYTES)?;
                        max_bytes("news description", &a.description, DESCRIPTION_MAX_BYTES)?;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Renders the reply to `inbound`: To and From swapped, `create_time` as CreateTime.
    ///
    /// # Errors
    /// [`ProtocolError::Reply`] (-40011) when the reply breaks the platform's rules.
    pub fn render(
        &self,
        inbound: &Message,
        platform: Platform,
        create_time: u64,
    ) -> Result<String, ProtocolError> {
        let to_event = matches!(inbound.content, Content::Event(_));
        self.validate(platform, to_event)?;
        let mut out = String::with_capacity(256 + self.text_len());
        self.write(
            &mut out,
            &inbound.from_user_name,
            &inbound.to_user_name,
            create_time,
        );
        if out.len() > MAX_REPLY_XML_BYTES {
            return Err(ProtocolError::Reply(format!(
                "the reply is {} bytes of XML, over the {MAX_REPLY_XML_BYTES} the gateway answers",
                out.len()
            )));
        }
        Ok(out)
    }

    fn text_len(&self) -> usize {
        match self {
            Self::Text { content } => content.len(),
            Self::News { articles } => articles
                .iter()
                .map(|a| a.title.len() + a.description.len() + a.pic_url.len() + a.url.len() + 128)
                .sum(),
            _ => 128,
        }
    }

    /// Writes the XML without checking the platform's rules.
    pub fn write(&self, out: &mut String, to_user: &str, from_user: &str, create_time: u64) {
        let mut w = XmlWriter::new(out);
        w.open("xml")
            .text("ToUserName", to_user)
            .text("FromUserName", from_user)
            .number("CreateTime", create_time)
            .text("MsgType", self.msg_type());
        match self {
            Self::Text { content } => {
                w.text("Content", content);
            }
            Self::Image { media_id } => {
                w.open("Image").text("MediaId", media_id).close("Image");
            }
            Self::Voice { media_id } => {
                w.open("Voice").text("MediaId", media_id).close("Voice");
            }
            Self::Video {
                media_id,
                title,
                description,
            } => {
                w.open("Video")
                    .text("MediaId", media_id)
                    .text("Title", title)
                    .text("Description", description)
                    .close("Video");
            }
            Self::Music {
                title,
                description,
                music_url,
                hq_music_url,
                thumb_media_id,
            } => {
                w.open("Music")
                    .text("Title", title)
                    .text("Description", description)
                    .text("MusicUrl", music_url)
                    .text("HQMusicUrl", hq_music_url)
                    .text("ThumbMediaId", thumb_media_id)
                    .close("Music");
            }
            Self::News { articles } => {
                w.number("ArticleCount", articles.len() as u64)
                    .open("Articles");
                for a in articles {
                    w.open("item")
                        .text("Title", &a.title)
                        .text("Description", &a.description)
                        .text("PicUrl", &a.pic_url)
                        .text("Url", &a.url)
                        .close("item");
                }
                w.close("Articles");
            }
            Self::TransferCustomerService { kf_account } => {
                if let Some(account) = kf_account {
                    w.open("TransInfo")
                        .text("KfAccount", account)
                        .close("TransInfo");
                }
            }
            Self::UpdateButton { replace_name } => {
                w.open("Button")
                    .text("ReplaceName", replace_name)
                    .close("Button");
            }
        }
        w.close("xml");
    }
}

fn max_bytes(what: &str, value: &str, max: usize) -> Result<(), ProtocolError> {
    if value.len() > max {
        return Err(ProtocolError::Reply(format!(
            "{what} is {} bytes in UTF-8, over the limit of {max}",
            value.len()
        )));
    }
    Ok(())
}

/// The longest prefix of `text` of at most `max_bytes` UTF-8 bytes that ends on a character
/// boundary; for bots that prefer cutting to failing.
pub fn truncate_utf8(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
